//! The bounds [`ConnectionConfigBuilder::build`](crate::ConnectionConfigBuilder::build)
//! enforces. `docs/configuration.md` lists every rule and which fields
//! each bound applies to.

use std::time::Duration;

/// Longest role, database, identifier and `application_name`, in bytes
/// (the server's `NAMEDATALEN - 1`).
pub const MAX_NAME_BYTES: usize = 63;

/// Largest `pool_size`, `max_overflow` and `pool_size + max_overflow`.
pub const MAX_CONNECTIONS: usize = 1000;

/// Longest `pool_timeout` and `connect_timeout`: 1 hour.
pub const MAX_WAIT: Duration = Duration::from_secs(3600);

/// Shortest `pool_recycle` and `idle_timeout`: 1 second.
pub const MIN_LIFETIME: Duration = Duration::from_secs(1);

/// Longest `pool_recycle` and `idle_timeout`: 1 week.
pub const MAX_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// Shortest timeout of any kind: 1 millisecond (the server and the
/// kernel count in milliseconds; less would round to "never").
pub const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// Shortest `keepalives_idle`: 1 second (the kernel counts in seconds).
pub const MIN_KEEPALIVES_IDLE: Duration = Duration::from_secs(1);

/// Longest statement and TCP timeout (`statement_timeout`, `keepalives_idle`,
/// `tcp_user_timeout`, ...): 1 day.
pub const MAX_SERVER_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Largest `statement_cache_size`.
pub const MAX_STATEMENT_CACHE_SIZE: usize = 10_000;

/// Largest `multiplex_connections`.
pub const MAX_MULTIPLEX_CONNECTIONS: usize = 64;
