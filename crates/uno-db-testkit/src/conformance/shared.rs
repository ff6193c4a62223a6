//! What the blocking and the async cases share: the SQL they check the
//! server with, their bars, and the pure checks on what they measured.

use std::time::Duration;

use uno_db_core::{ConnectionConfig, Result};

/// Three columns whose names differ only in ASCII case, or not at all:
/// what [`assert_names_match_exactly_then_ignoring_case`] checks.
pub(super) const CASED_NAMES: &str = r#"SELECT 1 AS "ID", 2 AS id, 3 AS "Other""#;

/// A row of [`CASED_NAMES`] finds a name exactly first, then ignoring
/// ASCII case, and describes its columns.
pub(super) fn assert_names_match_exactly_then_ignoring_case(named: &uno_db_core::Row) {
    assert_eq!(named.get::<_, i32>("ID"), 1);
    assert_eq!(named.get::<_, i32>("id"), 2);
    assert_eq!(named.get::<_, i32>("Id"), 1);
    assert_eq!(named.get::<_, i32>("other"), 3);
    assert_eq!(named.len(), 3);
    assert_eq!(named.columns()[2].name(), "Other");
}

/// Every statement of a case that waits for the server polls this often.
pub(super) const POLL: Duration = Duration::from_millis(10);

/// How long a case waits for the server to reach a state (a backend gone,
/// a statement running) before failing.
pub(super) const SERVER_STATE_WAIT: Duration = Duration::from_secs(5);

/// The backends (process ids) of this database whose `application_name`
/// is `$1`.
pub(super) const BACKENDS_OF_APPLICATION: &str = "SELECT coalesce(array_agg(pid), '{}')::int4[] \
     FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()";

/// How many of the processes `$1` the server still lists.
pub(super) const ALIVE_OF: &str = "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)";

/// Terminates the backends `$1` and counts those the server agreed to
/// terminate. Only the listed process ids are touched: nothing else on a
/// shared server.
pub(super) const TERMINATE: &str =
    "SELECT count(*) FILTER (WHERE pg_terminate_backend(p)) FROM unnest($1::int4[]) AS p";

/// How many of the backends `$1` still exist.
pub(super) const STILL_RUNNING: &str =
    "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int4[])";

/// Whether the current transaction has the server's default isolation.
pub(super) const DEFAULT_ISOLATION: &str = "SELECT current_setting('transaction_isolation') \
     = current_setting('default_transaction_isolation')";

/// Refused by the server outside a transaction block (SQLSTATE 25P01),
/// accepted inside one: asks the server whether a transaction is open
/// without depending on what that transaction did.
pub(super) const OPEN_TRANSACTION_PROBE: &str = "SAVEPOINT uno_db_open_transaction_probe";

/// Batches that open a transaction after another statement, and whether
/// the server rejects them (SQLSTATE 25001, after the first statement took
/// a snapshot). The second is rejected yet leaves an aborted transaction
/// block open.
pub(super) const SELECT_THEN_START_TRANSACTION: [(&str, bool); 3] = [
    (
        "SELECT 1; START TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        true,
    ),
    (
        "SELECT 1; START TRANSACTION; SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        true,
    ),
    (
        "SHOW search_path; START TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        false,
    ),
];

/// SQL that only mentions transaction keywords: a comment and a `DO`
/// body. Run through `batch_execute` and through `execute`.
pub(super) const TRANSACTION_WORDS_ONLY: [&str; 2] = [
    "-- START TRANSACTION\nSELECT 1",
    "DO $$ BEGIN PERFORM 1; END $$",
];

/// How long the server stays away in the "back within `pool_timeout`" case.
pub(super) const OUTAGE: Duration = Duration::from_secs(1);

/// The `pool_timeout` of the "back within `pool_timeout`" case.
pub(super) const OUTAGE_POOL_TIMEOUT: Duration = Duration::from_secs(4);

/// The client-side statement timeout of the black-hole case, as given in
/// its URL (`query_timeout=1s`).
pub(super) const QUERY_TIMEOUT: Duration = Duration::from_secs(1);

/// `config` for the `query_timeout` timing cases: one connection, no
/// overflow, statements limited to [`QUERY_TIMEOUT`].
pub(super) fn one_connection_under_query_timeout(
    config: &ConnectionConfig,
) -> Result<ConnectionConfig> {
    config
        .to_builder()
        .pool_size(1)
        .max_overflow(0)
        .query_timeout(QUERY_TIMEOUT)
        .build()
}

/// How late a timed-out statement may fail, beyond its timeout.
pub(super) const TIMEOUT_SLACK: Duration = Duration::from_millis(250);

/// Pool size and workers of the "terminated under load" cases.
pub(super) const LOAD_WORKERS: usize = 8;

/// Successful operations between two termination points of the
/// "terminated under load" cases.
pub(super) const OPS_BETWEEN_POINTS: usize = 40;

/// How many times the "terminated under load" cases terminate the pool's
/// backends.
pub(super) const TERMINATION_POINTS: usize = 3;

/// Connections of the first-come-first-served case.
pub(super) const FIFO_POOL: usize = 4;

/// Waiters of the first-come-first-served case.
pub(super) const FIFO_WAITERS: usize = 32;

/// The most later arrivals any waiter may see served before it. A waiter
/// counts as arrived once `status().waiting` shows it, which may be a
/// moment before it is queued inside the pool: a tolerance of one covers
/// that race and nothing more.
pub(super) const FIFO_TOLERANCE: usize = 1;

/// The worst overtaking in `serve_order` (waiter indices, in arrival order
/// 0, 1, 2, ..., listed in the order they were served): the waiter most
/// overtaken and by how many later arrivals.
pub(super) fn worst_overtaking(serve_order: &[usize]) -> (usize, usize) {
    let mut worst = (0, 0);
    for (position, &waiter) in serve_order.iter().enumerate() {
        let overtaken_by = serve_order[..position]
            .iter()
            .filter(|&&earlier| earlier > waiter)
            .count();
        if overtaken_by > worst.1 {
            worst = (waiter, overtaken_by);
        }
    }
    worst
}

/// `url` with the query parameter `key=value` added.
pub(super) fn with_url_param(url: &str, key: &str, value: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{key}={value}")
}

/// A `pg_sleep(30)` no other statement has the text of, so that
/// `pg_stat_activity` finds it by its text: behind PgBouncer each statement
/// of a client may run on another server connection, so the client's
/// `pg_backend_pid()` does not say where the next one runs.
pub(super) fn unique_sleep() -> String {
    format!(
        "SELECT pg_sleep(30) /* {} */",
        super::unique_name::unique_application_name("sleep")
    )
}

/// The server process running the statement `$1` in `pg_sleep`, if any.
pub(super) const SLEEPER: &str =
    "SELECT pid FROM pg_stat_activity WHERE query = $1 AND wait_event = 'PgSleep'";

/// Whether `pg_backend_pid()` tells the pool's connections apart: behind
/// PgBouncer it names whichever server connection PgBouncer lent, which a
/// new pool connection may be lent too; the cases then count the pool's
/// new connections instead.
pub(super) fn pids_name_connections(config: &uno_db_core::ConnectionConfig) -> bool {
    config.pgbouncer_mode() == uno_db_core::PgBouncerMode::None
}

/// The row the `FromRow` cases map: a non-`Option` and an `Option` column.
#[derive(Debug)]
pub(super) struct Pair {
    pub(super) id: i64,
    pub(super) label: Option<String>,
}

impl uno_db_core::FromRow for Pair {
    fn from_row(row: &uno_db_core::Row) -> uno_db_core::Result<Self> {
        Ok(Self {
            id: row.try_get("id")?,
            label: row.try_get("label")?,
        })
    }
}

/// Rows that do not map to [`Pair`], and the column each error names.
pub(super) const BAD_PAIRS: [(&str, &str); 3] = [
    ("SELECT 1::int8 AS id", "label"),
    ("SELECT 'x'::text AS id, NULL::text AS label", "id"),
    ("SELECT NULL::int8 AS id, 'x'::text AS label", "id"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overtaking_counts_later_arrivals_served_first() {
        assert_eq!(worst_overtaking(&[0, 1, 2, 3]), (0, 0));
        assert_eq!(worst_overtaking(&[1, 0, 2, 3]), (0, 1));
        assert_eq!(worst_overtaking(&[3, 2, 1, 0]), (0, 3));
        assert_eq!(worst_overtaking(&[0, 2, 3, 1]), (1, 2));
    }

    #[test]
    fn url_params_are_appended() {
        assert_eq!(
            with_url_param("postgresql://h/db", "a", "1"),
            "postgresql://h/db?a=1"
        );
        assert_eq!(
            with_url_param("postgresql://h/db?b=2", "a", "1"),
            "postgresql://h/db?b=2&a=1"
        );
    }
}
