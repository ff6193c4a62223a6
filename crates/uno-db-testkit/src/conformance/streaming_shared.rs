//! What the streaming and `COPY` cases of both families share.

use std::time::Duration;

use uno_db_core::{ConnectionConfig, Result};

/// `config` with a pool of one connection: a case that reuses it proves
/// that the connection came back clean, and counts what the pool opened.
pub(super) fn one_connection(config: &ConnectionConfig) -> Result<ConnectionConfig> {
    config.to_builder().pool_size(1).max_overflow(0).build()
}

/// Rows a stream case reads: enough that the server sends them in many
/// packets, so that a dropped stream leaves rows unread.
pub(super) const MANY_ROWS: i64 = 200_000;

/// Rows the tests of an early drop start: far more than a socket buffer
/// holds, so that the server is still sending when the stream is dropped.
pub(super) const ENDLESS_ROWS: &str =
    "SELECT g, repeat('x', 200) AS pad FROM generate_series(1, 50000000) AS g";

/// A query that fails with division by zero (22012) after `MANY_ROWS / 2`
/// rows.
pub(super) const FAILS_HALFWAY: &str =
    "SELECT 1 / (g - 100000) AS r FROM generate_series(1, 200000) AS g";

/// The table the `COPY` cases load.
pub(super) const COPY_TABLE: &str = "CREATE TABLE copied (id int8 PRIMARY KEY, name text)";

/// `COPY` into [`COPY_TABLE`] in text format.
pub(super) const COPY_IN: &str = "COPY copied (id, name) FROM STDIN";

/// `COPY` out of [`COPY_TABLE`] in text format, in `id` order.
pub(super) const COPY_OUT: &str = "COPY (SELECT id, name FROM copied ORDER BY id) TO STDOUT";

/// The rows of the round trip.
pub(super) const COPY_ROWS: i64 = 1000;

/// Text-format `COPY` data for ids `1..=COPY_ROWS`, names with a tab and
/// a backslash escaped as text format wants.
pub(super) fn copy_text() -> String {
    (1..=COPY_ROWS)
        .map(|id| format!("{id}\tname\\t{id}\\\\\n"))
        .collect()
}

/// Data the server refuses: the second row's id is not a number (22P02).
pub(super) const MALFORMED: &str = "1\tfine\nnot-a-number\tbad\n";

/// The `query_timeout` of the timing cases, and how long the caller
/// dawdles between rows (longer: caller time is not the server's).
pub(super) const STREAM_QUERY_TIMEOUT: Duration = Duration::from_millis(400);
pub(super) const CALLER_PAUSE: Duration = Duration::from_millis(150);

/// A query whose server side stalls past [`STREAM_QUERY_TIMEOUT`] after
/// sending many rows (more than its 8 KiB output buffer, so they are
/// flushed before the stall).
pub(super) const STALLS: &str = "SELECT g, repeat('x', 100) AS pad, \
     CASE WHEN g = 5000 THEN pg_sleep(30) END AS s FROM generate_series(1, 5001) AS g";
