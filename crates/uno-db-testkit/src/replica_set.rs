//! A throwaway primary with streaming standbys, for failover tests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::admin::{Deadlines, run_admin};
use crate::log_tail::log_tail;
use crate::postgres_url::multi_host_url;
use crate::pristine_data_dir::SUPERUSER;
use crate::sql_quote::{quote_ident, quote_literal};
use crate::standby::{
    REPLICATION_CONF_LINES, primary_conninfo, rewind, start_standby, write_standby_settings,
};
use crate::{TestCluster, TestkitError};

/// How long a standby may take to start streaming from its primary.
const STREAMING_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a standby that was told to follow another primary may take to do so by itself
/// (after a reload) before the test kit restarts it.
const FOLLOW_RELOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a promotion may take (`pg_promote` waits this long too).
const PROMOTE_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a condition on a member is checked while waiting for it.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// A throwaway primary plus streaming standbys, each a [`TestCluster`] of its own (own data
/// directory, own port on 127.0.0.1, own log), for testing failover, read-only standbys and
/// multi-host connection strings.
///
/// Member 0 starts as the primary; members `1..=standbys` are made with
/// `pg_basebackup -X stream` from it and stream from it. The members keep their indexes (and
/// ports) for the life of the set, whatever their roles become: after
/// [`promote`](Self::promote), [`primary_index`](Self::primary_index) tells which member is
/// the primary. Every server is set up for streaming replication and for `pg_rewind`
/// (`wal_log_hints = on`, `full_page_writes = on`), so any member can be promoted and an
/// old primary can be [`demote`](Self::demote)d.
///
/// Dropping the set stops every server and removes every directory, also when the test
/// panics; should the test process die first, each member's watchdog does it.
///
/// ```no_run
/// use std::time::Duration;
/// use uno_db_testkit::TestReplicaSet;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let set = TestReplicaSet::start(2)?;
/// let mut primary = postgres::Client::connect(&set.primary().admin_url(), postgres::NoTls)?;
/// primary.batch_execute("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")?;
/// set.wait_until_replayed(Duration::from_secs(10))?;
///
/// set.kill(0)?; // the primary crashes
/// set.promote(1)?; // member 1 takes over
/// set.follow(2, 1)?; // member 2 streams from it
/// set.demote(0)?; // the old primary is rewound and becomes a standby of member 1
/// let url = set.url("postgres"); // all three members, for target_session_attrs tests
/// # let _ = url;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TestReplicaSet {
    members: Vec<TestCluster>,
    primary: AtomicUsize,
}

impl TestReplicaSet {
    /// Starts a primary and `standbys` standbys, and waits until every standby streams.
    ///
    /// # Errors
    ///
    /// As [`TestClusterBuilder::start`](crate::TestClusterBuilder::start) for the primary;
    /// [`TestkitError::ReplicaSet`] if a standby cannot be made or started, or does not
    /// stream within 30 s.
    pub fn start(standbys: usize) -> Result<Self, TestkitError> {
        let mut builder = TestCluster::builder();
        for line in REPLICATION_CONF_LINES {
            builder = builder.conf_line(line);
        }
        let primary = builder.start()?;
        let mut set = Self {
            members: vec![primary],
            primary: AtomicUsize::new(0),
        };
        for index in 1..=standbys {
            let standby =
                start_standby(&set.members[0], &application_name(index)).map_err(|error| {
                    set.failure(
                        0,
                        format!("starting standby {index} (a base backup of member 0)"),
                        Some(error),
                    )
                })?;
            set.members.push(standby);
            set.wait_streaming(index, 0, STREAMING_TIMEOUT)?;
        }
        Ok(set)
    }

    /// Every member, in index order (member 0 was the first primary).
    pub fn members(&self) -> &[TestCluster] {
        &self.members
    }

    /// The member with index `index`.
    ///
    /// # Panics
    ///
    /// If there is no such member.
    pub fn member(&self, index: usize) -> &TestCluster {
        &self.members[index]
    }

    /// The index of the current primary: 0 until [`promote`](Self::promote) makes another
    /// member the primary.
    pub fn primary_index(&self) -> usize {
        self.primary.load(Ordering::SeqCst)
    }

    /// The current primary.
    pub fn primary(&self) -> &TestCluster {
        &self.members[self.primary_index()]
    }

    /// The host every member listens on: `127.0.0.1`.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// Every member's host and every member's port, comma-separated in index order, e.g.
    /// `("127.0.0.1,127.0.0.1,127.0.0.1", "5433,5434,5435")`: the `host` and `port` of a
    /// multi-host libpq connection string.
    pub fn hosts_and_ports(&self) -> (String, String) {
        let hosts = vec![self.host(); self.members.len()].join(",");
        let ports = self
            .members
            .iter()
            .map(|member| member.port().to_string())
            .collect::<Vec<_>>()
            .join(",");
        (hosts, ports)
    }

    /// A multi-host URL for `database` as the trusted superuser listing every member in
    /// index order, e.g. `postgresql://postgres@127.0.0.1:5433,127.0.0.1:5434/db`.
    pub fn url(&self, database: &str) -> String {
        let hosts: Vec<(&str, u16)> = self
            .members
            .iter()
            .map(|member| (member.host(), member.port()))
            .collect();
        multi_host_url(&hosts, SUPERUSER, database)
    }

    /// Promotes the standby `index` to primary (`pg_promote`) and waits until it is out of
    /// recovery (`pg_is_in_recovery()` is false). The other standbys keep streaming from
    /// the old primary (if it still runs) until told to [`follow`](Self::follow) the new one.
    /// Does nothing if `index` already is the primary.
    ///
    /// # Errors
    ///
    /// [`TestkitError::ReplicaSet`] if the member is not running, or the promotion fails or
    /// takes longer than 30 s.
    ///
    /// # Panics
    ///
    /// If there is no such member.
    pub fn promote(&self, index: usize) -> Result<(), TestkitError> {
        if index == self.primary_index() {
            return Ok(());
        }
        let action = format!("promoting member {index}");
        let promoted = run_admin(
            &self.members[index].server(),
            &action,
            Deadlines::ADMIN,
            |client| {
                let seconds = PROMOTE_TIMEOUT.as_secs().to_string();
                let row = client.query_one(&format!("SELECT pg_promote(true, {seconds})"), &[])?;
                Ok(row.get::<_, bool>(0))
            },
        )
        .map_err(|error| self.failure(index, action.clone(), Some(error)))?;
        if !promoted {
            return Err(self.failure(index, format!("{action} (pg_promote gave up)"), None));
        }
        self.poll_until(
            index,
            &format!("waiting for member {index} to leave recovery"),
            PROMOTE_TIMEOUT,
            "SELECT NOT pg_is_in_recovery()",
        )?;
        self.primary.store(index, Ordering::SeqCst);
        Ok(())
    }

    /// Crashes member `index` ([`TestCluster::kill`]): an immediate shutdown, every
    /// connection drops. Killing the primary leaves the set without one until
    /// [`promote`](Self::promote).
    ///
    /// # Errors
    ///
    /// As [`TestCluster::kill`].
    ///
    /// # Panics
    ///
    /// If there is no such member.
    pub fn kill(&self, index: usize) -> Result<(), TestkitError> {
        self.members[index].kill()
    }

    /// Stops member `index` with a fast shutdown ([`TestCluster::stop`]).
    ///
    /// # Errors
    ///
    /// As [`TestCluster::stop`].
    ///
    /// # Panics
    ///
    /// If there is no such member.
    pub fn stop(&self, index: usize) -> Result<(), TestkitError> {
        self.members[index].stop()
    }

    /// Starts member `index` again after [`stop`](Self::stop) or [`kill`](Self::kill), in
    /// whatever role its data directory has. A killed old primary starts as a second primary
    /// (split brain); use [`demote`](Self::demote) to bring it back as a standby instead.
    ///
    /// # Errors
    ///
    /// As [`TestCluster::start`].
    ///
    /// # Panics
    ///
    /// If there is no such member.
    pub fn start_member(&self, index: usize) -> Result<(), TestkitError> {
        self.members[index].start()
    }

    /// Makes the standby `index` stream from member `new_primary` (usually the member just
    /// promoted): its `primary_conninfo` is changed with `ALTER SYSTEM` and the configuration
    /// reloaded (restarting the standby if it does not switch over within 10 s), then the
    /// test kit waits until it streams from `new_primary`. A stopped standby is started first.
    ///
    /// The standby must not have replayed WAL the new primary never had; after a crash of
    /// the old primary, [`wait_until_replayed`](Self::wait_until_replayed) before the crash
    /// makes sure of that. Otherwise use [`demote`](Self::demote), which rewinds.
    ///
    /// # Errors
    ///
    /// [`TestkitError::ReplicaSet`] if the standby cannot be reconfigured or does not stream
    /// from `new_primary` within 40 s.
    ///
    /// # Panics
    ///
    /// If either member does not exist.
    pub fn follow(&self, index: usize, new_primary: usize) -> Result<(), TestkitError> {
        let member = &self.members[index];
        let primary_port = self.members[new_primary].port();
        let action = format!("pointing member {index} at member {new_primary}");
        member
            .start()
            .map_err(|error| self.failure(index, action.clone(), Some(error)))?;
        let alter = format!(
            "ALTER SYSTEM SET primary_conninfo = {}",
            quote_literal(&primary_conninfo(primary_port, &application_name(index)))
        );
        run_admin(&member.server(), &action, Deadlines::ADMIN, move |client| {
            // Separate statements: ALTER SYSTEM cannot run in a (multi-statement) transaction.
            client.batch_execute(&alter)?;
            client.batch_execute("SELECT pg_reload_conf()")
        })
        .map_err(|error| self.failure(index, action.clone(), Some(error)))?;
        if self
            .wait_streaming(index, new_primary, FOLLOW_RELOAD_TIMEOUT)
            .is_ok()
        {
            return Ok(());
        }
        tracing::debug!(
            index,
            new_primary,
            "standby did not switch on reload; restarting it"
        );
        member
            .restart()
            .map_err(|error| self.failure(index, action, Some(error)))?;
        self.wait_streaming(index, new_primary, STREAMING_TIMEOUT)
    }

    /// Turns member `index`, an old primary (stopped, killed or still running), into a
    /// standby of the current primary: it is stopped if it runs, `pg_rewind` winds its data
    /// directory back to where its history and the current primary's diverged (running crash
    /// recovery first if it was killed), `standby.signal` and a `primary_conninfo` pointing at
    /// the current primary are written, and it is started and waited on until it streams.
    ///
    /// # Errors
    ///
    /// [`TestkitError::ReplicaSet`] if `index` is the current primary, or if stopping,
    /// rewinding or starting it fails, or it does not stream within 30 s.
    ///
    /// # Panics
    ///
    /// If there is no such member.
    pub fn demote(&self, index: usize) -> Result<(), TestkitError> {
        let primary_index = self.primary_index();
        let action = format!("demoting member {index} to a standby of member {primary_index}");
        if index == primary_index {
            return Err(self.failure(index, format!("{action} (it is the primary)"), None));
        }
        let member = &self.members[index];
        let primary = &self.members[primary_index];
        member
            .stop()
            .and_then(|()| rewind(member, primary))
            .and_then(|()| {
                write_standby_settings(member.dir(), primary.port(), &application_name(index))
            })
            .and_then(|()| member.start())
            .map_err(|error| self.failure(index, action.clone(), Some(error)))?;
        self.wait_streaming(index, primary_index, STREAMING_TIMEOUT)?;
        // Streaming alone is not enough: a member that was not rewound streams the old
        // timeline up to the fork and then stalls. It must receive the primary's current
        // timeline (the first 8 hex digits of its current WAL file's name; the control
        // file's may lag until a checkpoint).
        let timeline = run_admin(&primary.server(), &action, Deadlines::ADMIN, |client| {
            let row = client.query_one(
                "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))\
                     ::bit(32)::int",
                &[],
            )?;
            Ok(row.get::<_, i32>(0))
        })
        .map_err(|error| self.failure(primary_index, action, Some(error)))?;
        self.poll_until(
            index,
            &format!("waiting for member {index} to stream timeline {timeline}"),
            STREAMING_TIMEOUT,
            &format!(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_wal_receiver \
                 WHERE status = 'streaming' AND received_tli = {timeline})"
            ),
        )
    }

    /// Waits until every running standby has replayed the primary's current WAL position
    /// (`pg_current_wal_insert_lsn()` when called), so that what was committed on the
    /// primary before the call is visible on every standby.
    ///
    /// # Errors
    ///
    /// [`TestkitError::ReplicaSet`] if the primary cannot be asked for its position or a
    /// standby has not caught up within `timeout`.
    pub fn wait_until_replayed(&self, timeout: Duration) -> Result<(), TestkitError> {
        let deadline = Instant::now() + timeout;
        let primary_index = self.primary_index();
        let action = "reading the primary's WAL position";
        let lsn = run_admin(
            &self.members[primary_index].server(),
            action,
            Deadlines::ADMIN,
            |client| {
                // The insert position, not the write position (`pg_current_wal_lsn`): with
                // `synchronous_commit = off` a commit record may not be written yet.
                let row = client.query_one("SELECT pg_current_wal_insert_lsn()::text", &[])?;
                Ok(row.get::<_, String>(0))
            },
        )
        .map_err(|error| self.failure(primary_index, action.to_owned(), Some(error)))?;
        for (index, member) in self.members.iter().enumerate() {
            if index == primary_index || !member.is_running() {
                continue;
            }
            self.poll_until(
                index,
                &format!("waiting for member {index} to replay up to {lsn}"),
                deadline.saturating_duration_since(Instant::now()),
                &format!(
                    "SELECT coalesce(pg_last_wal_replay_lsn() >= {}::pg_lsn, false)",
                    quote_literal(&lsn)
                ),
            )?;
        }
        Ok(())
    }

    /// Creates database `name` on the primary; the standbys get it through replication.
    ///
    /// # Errors
    ///
    /// If the statement fails (e.g. the database exists) or the primary cannot be reached.
    pub fn create_database(&self, name: &str) -> Result<(), TestkitError> {
        let statement = format!("CREATE DATABASE {}", quote_ident(name));
        run_admin(
            &self.primary().server(),
            &format!("creating database {name:?} on the primary"),
            Deadlines::ADMIN,
            move |client| client.batch_execute(&statement),
        )
    }

    /// Waits until member `index` streams from member `primary`.
    fn wait_streaming(
        &self,
        index: usize,
        primary: usize,
        timeout: Duration,
    ) -> Result<(), TestkitError> {
        let port = self.members[primary].port();
        self.poll_until(
            index,
            &format!("waiting for member {index} to stream from member {primary}"),
            timeout,
            &format!(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_wal_receiver \
                 WHERE status = 'streaming' AND sender_port = {port})"
            ),
        )
    }

    /// Runs `query` (one boolean) on member `index` until it answers true or `timeout` passes.
    /// Failed attempts (the server may be restarting) count as false.
    fn poll_until(
        &self,
        index: usize,
        action: &str,
        timeout: Duration,
        query: &str,
    ) -> Result<(), TestkitError> {
        let deadline = Instant::now() + timeout;
        let server = self.members[index].server();
        loop {
            let query = query.to_owned();
            let last_error = match run_admin(&server, action, Deadlines::PROBE, move |client| {
                Ok(client.query_one(&query, &[])?.get::<_, bool>(0))
            }) {
                Ok(true) => return Ok(()),
                Ok(false) => None,
                Err(error) => Some(error),
            };
            if Instant::now() >= deadline {
                return Err(self.failure(
                    index,
                    format!("{action} (gave up after {timeout:?})"),
                    last_error,
                ));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// A [`TestkitError::ReplicaSet`] about member `index`, with the end of its log.
    fn failure(&self, index: usize, action: String, source: Option<TestkitError>) -> TestkitError {
        TestkitError::ReplicaSet {
            action,
            member: index,
            log_tail: log_tail(&self.members[index].log_path()),
            source: source.map(Box::new),
        }
    }
}

/// The `application_name` member `index` streams as (seen in `pg_stat_replication`).
fn application_name(index: usize) -> String {
    format!("member{index}")
}
