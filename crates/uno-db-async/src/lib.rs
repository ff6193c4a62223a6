//! The async backend of uno-db: [`tokio_postgres`] connections pooled by
//! `deadpool`, behind the [`uno_db_core::nonblocking`] traits.
//!
//! - [`AsyncEngineFactory`]: one [`AsyncEngine`] per configuration, and the
//!   connection callbacks they share.
//! - [`AsyncEngine`]: the pool (sizing with overflow, checkout timeout,
//!   connect retry, `set_role`, `pre_ping`, `pool_recycle`, `idle_timeout`).
//! - [`AsyncConnection`] / [`AsyncSession`]: a pooled connection, and one
//!   inside a transaction, both returned to the pool clean when dropped.
//! - [`AsyncSessionFactory`] and [`transaction_with_retry`] for units of
//!   work.
//!
//! How the pool keeps connections clean and alive:
//!
//! - A new connection gets its `schema` (search path), then the
//!   callbacks, then `set_role`; a failing callback discards it.
//! - On checkout an idle connection is checked: not closed, within
//!   `pool_recycle` and `idle_timeout`; `SET ROLE` (with `set_role`) or
//!   `SELECT 1` (with `pre_ping`) must succeed, else another is used.
//! - On return, a connection that may be inside a transaction (a session
//!   not committed, or `BEGIN` seen on a plain connection) is rolled back
//!   and its role reset in a background task before anyone else gets it;
//!   one dropped in the middle of a statement has that statement cancelled
//!   and is closed.
//!
//! Statements without parameters run as unnamed statements: one round
//! trip, nothing left on the server. Statements with parameters are
//! prepared once per connection and cached (`statement_cache_size`, least
//! recently used evicted, stale plans re-prepared); with the cache at 0
//! they are prepared per call and closed afterwards (two round trips), for
//! `PgBouncer` in transaction mode.
//!
//! TLS is not compiled in: `sslmode=require` is refused with
//! [`ErrorKind::Tls`](uno_db_core::ErrorKind::Tls) when the engine is created.

mod connect;
mod connection;
mod engine;
mod factory;
mod manager;
mod pg_conn;
mod reaper;
mod release;
mod retry_tx;
mod session;
mod session_factory;
mod shared;

pub use connection::AsyncConnection;
pub use engine::AsyncEngine;
pub use factory::AsyncEngineFactory;
pub use retry_tx::{transaction_with_retry, transaction_with_retry_options};
pub use session::AsyncSession;
pub use session_factory::AsyncSessionFactory;

#[cfg(test)]
mod tests {
    use super::*;

    /// The public types can cross tasks and threads.
    #[test]
    fn public_types_are_send_and_sync() {
        fn send<T: Send>() {}
        fn send_sync<T: Send + Sync>() {}
        send_sync::<AsyncEngineFactory>();
        send_sync::<AsyncEngine>();
        send_sync::<AsyncSessionFactory>();
        send::<AsyncConnection>();
        send::<AsyncSession>();
    }
}
