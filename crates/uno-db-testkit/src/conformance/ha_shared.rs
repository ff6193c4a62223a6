//! What the high-availability cases of both families share: their replica
//! set, configurations, expectations and the failover log.

use std::time::Duration;

use uno_db_core::{ConnectionConfig, Error, SqlState};

use super::case_config::case_config;
use crate::TestReplicaSet;

/// How long one high-availability case may take (it starts a replica set).
pub const HA_CASE_TIMEOUT: Duration = Duration::from_secs(150);

/// The role re-check interval of the cases' engines.
pub(super) const HA_RECHECK: Duration = Duration::from_millis(500);

/// Tasks (or threads) writing and reading during the failover case.
pub(super) const FAILOVER_WORKERS: i32 = 16;

/// The longest the failover case accepts between the promotion and the
/// first successful write, on top of [`HA_RECHECK`]: the goal is 2 s, and
/// the slack absorbs a loaded CI machine.
const RESUME_BOUND: Duration = Duration::from_secs(4);

/// `target_session_attrs` values and the member each must reach (0 is the
/// primary), for host orders after a dead first host.
pub(super) struct Modes;

impl Modes {
    /// Order: dead, standby 1, primary, standby 2.
    pub(super) const STANDBY_FIRST: [(&'static str, usize); 6] = [
        ("any", 1),
        ("read-write", 0),
        ("primary", 0),
        ("read-only", 1),
        ("standby", 1),
        ("prefer-standby", 1),
    ];
    /// Order: dead, primary, standby 1, standby 2.
    pub(super) const PRIMARY_FIRST: [(&'static str, usize); 6] = [
        ("any", 0),
        ("read-write", 0),
        ("primary", 0),
        ("read-only", 1),
        ("standby", 1),
        ("prefer-standby", 1),
    ];
}

/// A primary and two streaming standbys of the case's own.
#[allow(clippy::expect_used)] // Test support: no replica set means no test.
pub(super) fn replica_set() -> TestReplicaSet {
    TestReplicaSet::start(2).expect("a primary and two standbys")
}

/// A URL for the `postgres` database over the members listening on
/// `ports`, in that order (a port nobody listens on is a host that is down).
pub(super) fn member_url(set: &TestReplicaSet, ports: &[u16]) -> String {
    let hosts: Vec<String> = ports
        .iter()
        .map(|port| format!("{}:{port}", set.host()))
        .collect();
    format!("postgresql://postgres@{}/postgres", hosts.join(","))
}

/// The conformance configuration for `url` with the role re-check at
/// [`HA_RECHECK`] and `params` on top.
#[allow(clippy::expect_used)]
pub(super) fn ha_config(url: &str, params: &[(&str, &str)]) -> ConnectionConfig {
    let mut url = format!("{url}?host_recheck_interval={}ms", HA_RECHECK.as_millis());
    for (name, value) in params {
        url.push_str(&format!("&{name}={value}"));
    }
    let base = case_config(&url).expect("a valid configuration");
    // case_config's small pool, unless the case asked for its own.
    if params.iter().any(|(name, _)| *name == "pool_size") {
        base.to_builder()
            .pool_size(url_value(params, "pool_size"))
            .max_overflow(url_value(params, "max_overflow"))
            .pool_timeout(Duration::from_secs(2))
            .build()
            .expect("a valid configuration")
    } else {
        base
    }
}

#[allow(clippy::expect_used)]
fn url_value(params: &[(&str, &str)], name: &str) -> usize {
    params
        .iter()
        .find(|(key, _)| *key == name)
        .map_or(0, |(_, value)| value.parse().expect("a count"))
}

/// Each operation of the failover case: when it ended (since the start)
/// and how.
#[derive(Debug, Default)]
pub(super) struct FailoverLog {
    ops: Vec<(Duration, Option<Error>)>,
}

impl FailoverLog {
    pub(super) fn record(&mut self, at: Duration, error: Option<Error>) {
        self.ops.push((at, error));
    }

    /// The figures of the run: the primary was killed at `killed` and the
    /// standby promoted at `promoted` (when it left recovery).
    pub(super) fn figures(
        &self,
        killed: Duration,
        promoted: Duration,
        recheck: Duration,
    ) -> FailoverFigures {
        let after = |at: Duration| self.ops.iter().filter(move |(end, _)| *end > at);
        FailoverFigures {
            ops: self.ops.len(),
            ok_before_kill: self
                .ops
                .iter()
                .filter(|(end, error)| *end < killed && error.is_none())
                .count(),
            failed: self.ops.iter().filter(|(_, error)| error.is_some()).count(),
            first_write_after_promotion: after(promoted)
                .find(|(_, error)| error.is_none())
                .map(|(end, _)| end.saturating_sub(promoted)),
            ok_after_promotion: after(promoted).filter(|(_, error)| error.is_none()).count(),
            standby_writes_after_recheck: after(promoted + recheck)
                .filter(|(_, error)| {
                    error.as_ref().and_then(Error::sqlstate)
                        == Some(&SqlState::READ_ONLY_SQL_TRANSACTION)
                })
                .count(),
            outage: promoted.saturating_sub(killed),
            first_failure: self
                .ops
                .iter()
                .find_map(|(_, error)| error.as_ref().map(ToString::to_string)),
        }
    }
}

/// What the failover case measured.
#[derive(Debug)]
pub struct FailoverFigures {
    /// Operations (a write and a read on one checkout) in all.
    pub ops: usize,
    /// Successful operations before the primary was killed.
    pub ok_before_kill: usize,
    /// Failed operations.
    pub failed: usize,
    /// From the promotion to the end of the first successful operation.
    pub first_write_after_promotion: Option<Duration>,
    /// Successful operations after the promotion.
    pub ok_after_promotion: usize,
    /// Writes a standby refused (25006) after the promotion plus the role
    /// re-check interval: must be none.
    pub standby_writes_after_recheck: usize,
    /// From the kill to the promotion (the failover manager's time).
    pub outage: Duration,
    /// The first failure, for the report.
    pub first_failure: Option<String>,
}

impl FailoverFigures {
    /// Prints the figures (for docs/high-availability.md) and checks the
    /// goals with generous bounds.
    ///
    /// # Panics
    ///
    /// When writes did not resume in time, or a standby was written to.
    // The figures are the case's report, read from the test output.
    #[allow(clippy::panic, clippy::print_stderr)]
    pub fn check(&self, family: &str) {
        eprintln!("failover figures ({family}): {self:?}");
        assert!(self.ok_before_kill > 0, "no load before the kill: {self:?}");
        let Some(resumed) = self.first_write_after_promotion else {
            panic!("writes never resumed after the promotion: {self:?}");
        };
        assert!(
            resumed <= RESUME_BOUND + HA_RECHECK,
            "writes resumed only {resumed:?} after the promotion: {self:?}"
        );
        assert_eq!(
            self.standby_writes_after_recheck, 0,
            "writes reached a standby after the re-check interval: {self:?}"
        );
        assert!(
            self.ok_after_promotion > FAILOVER_WORKERS as usize,
            "{self:?}"
        );
    }
}
