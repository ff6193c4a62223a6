//! What the blocking and async `LISTEN`/`NOTIFY` cases share.

use std::time::Duration;

/// Sends a notification from a pooled connection: `$1` channel, `$2`
/// payload. `pg_notify` takes the channel as a value, so any name works.
pub(super) const NOTIFY: &str = "SELECT pg_notify($1, $2)";

/// A channel name that would drop table `x` if it were pasted into SQL.
pub(super) const HOSTILE_CHANNEL: &str = "a\"; DROP TABLE x; --";

/// Whether table `x` (which the hostile name targets) still exists.
pub(super) const TABLE_EXISTS: &str = "SELECT to_regclass('x') IS NOT NULL";

/// Names that are not identifiers: empty, NUL, 64 bytes, 64 KiB.
pub(super) const INVALID_CHANNELS: [fn() -> String; 4] = [
    String::new,
    || "a\0b".to_owned(),
    || "x".repeat(64),
    || "x".repeat(64 * 1024),
];

/// How long a case waits for an event it expects (a reconnect included).
pub(super) const LISTEN_WAIT: Duration = Duration::from_secs(10);

/// How long a case waits to see that nothing more arrives.
pub(super) const QUIET_WAIT: Duration = Duration::from_millis(300);
