//! Making and re-pointing standby servers: base backups, `pg_rewind`, recovery settings.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use crate::admin::{Deadlines, run_admin};
use crate::bounded_command::run_bounded;
use crate::pristine_data_dir::SUPERUSER;
use crate::server_config::LISTEN_HOST;
use crate::sql_quote::quote_literal;
use crate::{TestCluster, TestkitError};

/// How long `pg_basebackup` and `pg_rewind` may take (seconds for a test's data).
const COPY_TIMEOUT: Duration = Duration::from_secs(60);

/// The `postgresql.conf` lines a replica set's primary needs for streaming replication and
/// for `pg_rewind` (which needs `wal_log_hints` or checksums, and `full_page_writes` on the
/// source). Standbys inherit them with the base backup, so any member can be promoted.
pub(crate) const REPLICATION_CONF_LINES: [&str; 9] = [
    "wal_level = replica",
    "max_wal_senders = 10",
    "max_replication_slots = 10",
    "hot_standby = on",
    "wal_log_hints = on",
    // The test kit switches it off for speed; pg_rewind refuses a source without it.
    "full_page_writes = on",
    // Keeps enough WAL for a standby that falls behind for a moment or is rewound.
    "wal_keep_size = '128MB'",
    // A walreceiver whose primary went away retries after this (default 5 s), which is
    // what makes following a new primary quick.
    "wal_retrieve_retry_interval = '100ms'",
    "wal_receiver_status_interval = '1s'",
];

/// The `primary_conninfo` of a standby that streams from the server on `primary_port`,
/// reporting itself as `application_name`.
pub(crate) fn primary_conninfo(primary_port: u16, application_name: &str) -> String {
    format!(
        "host={LISTEN_HOST} port={primary_port} user={SUPERUSER} application_name={application_name}"
    )
}

/// Starts a new standby of `primary`: a cluster whose data directory is a `pg_basebackup` of
/// it, streaming from it as `application_name`.
pub(crate) fn start_standby(
    primary: &TestCluster,
    application_name: &str,
) -> Result<TestCluster, TestkitError> {
    let bins = primary.bins();
    let owner = primary.owner();
    TestCluster::launch(bins, owner, |dir| {
        let mut backup = bins.command("pg_basebackup", owner, dir);
        backup
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-h", &LISTEN_HOST.to_string()])
            .args(["-p", &primary.port().to_string()])
            .args([
                "-U",
                SUPERUSER,
                "-X",
                "stream",
                "-R",
                "-c",
                "fast",
                "--no-sync",
            ]);
        run_bounded(backup, "pg_basebackup", COPY_TIMEOUT)?;
        write_standby_settings(dir, primary.port(), application_name)?;
        Ok(None)
    })
}

/// Turns the stopped server of `member` into one that can stream from `source`:
/// `pg_rewind` winds its data directory back to where its history and `source`'s diverged
/// (after a crash it first runs crash recovery in single-user mode, `pg_rewind`'s default).
pub(crate) fn rewind(member: &TestCluster, source: &TestCluster) -> Result<(), TestkitError> {
    // pg_rewind learns the source's timeline from its control file, which a promotion only
    // updates at the next checkpoint; without one it sees the old timeline and decides
    // "no rewind required", leaving the member unable to follow.
    run_admin(
        &source.server(),
        "checkpointing the rewind source",
        Deadlines::ADMIN,
        |client| client.batch_execute("CHECKPOINT"),
    )?;
    let mut pg_rewind = member
        .bins()
        .command("pg_rewind", member.owner(), member.dir());
    pg_rewind
        .arg("--target-pgdata")
        .arg(member.data_dir())
        .arg(format!(
            "--source-server=host={LISTEN_HOST} port={} user={SUPERUSER} dbname=postgres",
            source.port()
        ))
        .arg("--no-sync");
    let output = run_bounded(pg_rewind, "pg_rewind", COPY_TIMEOUT)?;
    tracing::debug!(%output, "pg_rewind done");
    Ok(())
}

/// Makes the data directory in `cluster_dir` start as a standby of the server on
/// `primary_port`: `standby.signal`, and in `postgresql.auto.conf` (read last, so it wins over
/// what a base backup or `pg_rewind` copied from another member) the member's own unix socket
/// directory and its `primary_conninfo`.
pub(crate) fn write_standby_settings(
    cluster_dir: &Path,
    primary_port: u16,
    application_name: &str,
) -> Result<(), TestkitError> {
    let data_dir = cluster_dir.join("data");
    let lines = format!(
        "\n# Added by uno-db-testkit for a standby.\n\
         unix_socket_directories = {}\n\
         primary_conninfo = {}\n",
        quote_literal(&cluster_dir.to_string_lossy()),
        quote_literal(&primary_conninfo(primary_port, application_name)),
    );
    std::fs::OpenOptions::new()
        .append(true)
        .open(data_dir.join("postgresql.auto.conf"))
        .and_then(|mut file| file.write_all(lines.as_bytes()))
        .map_err(|source| TestkitError::io("writing the standby's postgresql.auto.conf", source))?;
    // An empty file; the server (another user when we are root) only needs to see it.
    std::fs::write(data_dir.join("standby.signal"), "")
        .map_err(|source| TestkitError::io("writing standby.signal", source))
}
