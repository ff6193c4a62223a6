//! What the blocking and async per-transaction-limit cases share.

use std::time::Duration;

use uno_db_core::{ConnectionConfig, Result};

/// The limit the cases set (shown by the server as `300ms`).
pub(super) const LIMIT: Duration = Duration::from_millis(300);

/// How late a limited statement may fail, counted from its start.
pub(super) const LIMIT_BOUND: Duration = Duration::from_millis(1500);

/// Runs far past [`LIMIT`] (but ends on its own, should the limit be
/// missing).
pub(super) const SLEEP_PAST_LIMIT: &str = "SELECT pg_sleep(5)";

/// Runs a little longer than [`LIMIT`].
pub(super) const LONGER_THAN_LIMIT: &str = "SELECT pg_sleep(0.6)";

/// The idle-in-transaction limit of its case, and how long that case sits
/// idle.
pub(super) const IDLE_LIMIT: Duration = Duration::from_millis(200);
pub(super) const IDLE_WAIT: Duration = Duration::from_secs(1);

/// How long a case waits for the server or the pool before failing; also
/// the client-side `query_timeout` of the cases, so that no statement
/// waits longer.
pub(super) const SERVER_WAIT: Duration = Duration::from_secs(5);

/// More than `PostgreSQL` takes for a time-out (`i32::MAX` ms).
pub(super) const TOO_LONG: Duration = Duration::from_secs(30 * 24 * 3600);

/// The connection's backend process id.
pub(super) const BACKEND_PID: &str = "SELECT pg_backend_pid()";

/// The current value of the setting `name`, as the server shows it.
pub(super) fn setting(name: &str) -> String {
    format!("SELECT current_setting('{name}')")
}

/// `config` with a pool of exactly one connection, so that every checkout
/// gets the same one while it lives, and statements bounded by
/// [`SERVER_WAIT`].
pub(super) fn one_connection(config: &ConnectionConfig) -> Result<ConnectionConfig> {
    config
        .to_builder()
        .pool_size(1)
        .max_overflow(0)
        .query_timeout(SERVER_WAIT)
        .build()
}
