//! The blocking backend of uno-db: `PostgreSQL` connection pools on the
//! `postgres` crate and r2d2 (connections opened through `r2d2_postgres`).
//!
//! [`SyncEngineFactory`] hands out one [`SyncEngine`] per configuration;
//! an engine checks out [`SyncConnection`]s and begins [`SyncSession`]s.
//! They implement the traits of [`uno_db_core::blocking`]; inject those in
//! application code. [`transaction_with_retry`] and
//! [`transaction_with_retry_options`] rerun a transaction that failed to
//! serialize or deadlocked.
//!
//! Everything here blocks the calling thread. Called from a tokio runtime's
//! `block_on` body (`#[tokio::main]`, `#[tokio::test]`) it returns
//! [`ErrorKind::Unsupported`](uno_db_core::ErrorKind) instead of panicking:
//! use uno-db-async there, or `tokio::task::spawn_blocking`, where it works
//! (see [`SyncEngine`] for the details).
//!
//! Design: r2d2 manages *slots* (bounding the pool, waiting with a timeout,
//! keeping idle connections, pre-ping, reaping); the thread that checks out
//! an empty slot opens the physical connection itself, so connect errors
//! arrive typed and permanent ones (wrong password, missing database) fail
//! fast instead of being retried by r2d2 in the background until
//! `pool_timeout`.

mod connection;
mod connector;
mod engine;
mod engine_state;
mod factory;
mod physical;
mod runtime_guard;
mod session;
mod slot_manager;
mod transaction_retry;

pub use connection::SyncConnection;
pub use engine::SyncEngine;
pub use factory::SyncEngineFactory;
pub use session::SyncSession;
pub use transaction_retry::{transaction_with_retry, transaction_with_retry_options};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_types_are_thread_safe() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<SyncEngineFactory>();
        send_sync::<SyncEngine>();
        send::<SyncConnection>();
        send::<SyncSession>();
    }
}
