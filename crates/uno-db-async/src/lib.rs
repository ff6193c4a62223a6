//! The async backend of uno-db: [`tokio_postgres`] connections pooled by
//! `deadpool`, behind the [`uno_db_core::nonblocking`] traits.
//!
//! - [`AsyncEngineFactory`]: one [`AsyncEngine`] per configuration, and the
//!   connection callbacks they share.
//! - [`AsyncEngine`]: the pool (sizing with overflow, checkout timeout,
//!   connect retry, `set_role`, `pre_ping`, `pool_recycle`, `idle_timeout`).
//! - [`AsyncConnection`] / [`AsyncSession`]: a pooled connection, and one
//!   inside a transaction, both returned to the pool clean when dropped.
//!   Their statement methods (and [`MultiplexedClient`]'s) are inherent as
//!   well as the [`Client`](uno_db_core::nonblocking::Client) trait's:
//!   called on the concrete type, no future is boxed (the trait's are, by
//!   `async-trait`), as tokio-postgres has its `Client` beside the boxed
//!   `GenericClient`.
//! - [`MultiplexedClient`]: autocommit statements of many tasks pipelined
//!   over a few shared connections (`multiplex_connections`), no checkout.
//! - [`AsyncListener`]: `LISTEN`/`NOTIFY` on a dedicated connection that
//!   reconnects and says so.
//! - [`AsyncSessionFactory`]: units of work with preset options
//!   (whole-transaction retry is
//!   [`uno_db_core::nonblocking::transaction_with_retry`]).
//!
//! Every rule about a connection (what runs when it opens, whether an idle
//! one may be handed out, what a returned one needs, when one is
//! discarded) is the kernel's, [`uno_db_core::backend`], shared with the
//! blocking backend; this crate does the I/O. Cleaning a returned
//! connection and cancelling a statement whose caller was dropped run in
//! spawned tasks, before anyone else gets the connection.
//!
//! Statements, with or without parameters, are prepared once per
//! connection and cached (`statement_cache_size`, least recently used
//! evicted, stale plans re-prepared), so that the server parses and plans
//! each once. With the cache at 0 (for `PgBouncer` in transaction mode) a
//! statement without parameters runs as the unnamed statement, one round
//! trip and nothing left on the server, and one with parameters is
//! described once per connection and then runs unnamed (see
//! `docs/high-availability.md`).
//!
//! TLS (feature `tls`, on by default) is the core's rustls connector, the
//! same for both backends: every libpq `sslmode`, client certificates and
//! channel binding (see [`SslMode`](uno_db_core::SslMode)).

mod batching;
mod cancel;
mod checkout;
mod client_methods;
mod connect;
mod connection;
mod copy;
mod deadline_queue;
mod engine;
mod factory;
mod listener;
mod manager;
mod multiplexed;
mod multiplexer;
mod pg_conn;
mod pool_ops;
mod read_rows;
mod reaper;
mod release;
mod session;
mod session_factory;
mod shared;
mod shared_line;
mod streamed;
mod watchdog;

pub use cancel::CancelHandle;
pub use connection::AsyncConnection;
pub use engine::AsyncEngine;
pub use factory::AsyncEngineFactory;
pub use listener::AsyncListener;
pub use multiplexed::MultiplexedClient;
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
        send_sync::<CancelHandle>();
        send_sync::<AsyncSessionFactory>();
        send_sync::<MultiplexedClient>();
        send::<AsyncConnection>();
        send::<AsyncSession>();
        send::<AsyncListener>();
    }
}
