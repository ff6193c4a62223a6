//! The blocking backend of uno-db: `PostgreSQL` connection pools on the
//! `postgres` crate and r2d2 (connections opened through `r2d2_postgres`),
//! behind the [`uno_db_core::blocking`] traits.
//!
//! - [`SyncEngineFactory`]: one [`SyncEngine`] per configuration, and the
//!   connection callbacks they share.
//! - [`SyncEngine`]: the pool (sizing with overflow, checkout timeout with
//!   first-come-first-served waiting, connect retry, `set_role`,
//!   `pre_ping`, `pool_recycle`, `idle_timeout`).
//! - [`SyncConnection`] / [`SyncSession`]: a pooled connection, and one
//!   inside a transaction, both returned to the pool clean when dropped.
//!   Whole-transaction retry is
//!   [`uno_db_core::blocking::transaction_with_retry`].
//! - [`SyncListener`]: `LISTEN`/`NOTIFY` on a dedicated connection that
//!   reconnects and says so.
//!
//! Every rule about a connection (what runs when it opens, whether an idle
//! one may be handed out, what a returned one needs, when one is
//! discarded) is the kernel's, [`uno_db_core::backend`], shared with the
//! async backend; this crate does the I/O. The files and types mirror
//! uno-db-async's: `engine.rs`, `shared.rs` (`EngineShared`), `manager.rs`
//! (`ConnManager`), `connect.rs`, `pg_conn.rs` (`PgConn`), `release.rs`,
//! `connection.rs`, `session.rs`, `factory.rs`.
//!
//! Everything here blocks the calling thread. Inside an async runtime (an
//! async task or a `block_on` body) calls fail with
//! [`ErrorKind::Unsupported`](uno_db_core::ErrorKind) instead of stalling
//! it: use uno-db-async there, `tokio::task::spawn_blocking`, or
//! `tokio::task::block_in_place` on a multi-threaded runtime.
//!
//! r2d2 manages *slots* (bounding the pool, keeping idle connections,
//! reaping); the thread that checks out an empty slot opens the physical
//! connection itself, so connect errors arrive typed and permanent ones
//! (wrong password, missing database) fail fast instead of being retried
//! by r2d2 in the background until `pool_timeout`.

mod cancel_handle;
mod connect;
mod connection;
mod copy;
mod engine;
mod factory;
mod listener;
mod manager;
mod pg_conn;
mod release;
mod runtime_guard;
mod session;
mod shared;
mod streamed;
mod wait_queue;
mod watchdog;

pub use cancel_handle::CancelHandle;
pub use connection::SyncConnection;
pub use engine::SyncEngine;
pub use factory::SyncEngineFactory;
pub use listener::SyncListener;
pub use session::SyncSession;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_types_are_thread_safe() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<SyncEngineFactory>();
        send_sync::<SyncEngine>();
        send_sync::<CancelHandle>();
        send::<SyncConnection>();
        send::<SyncSession>();
        send::<SyncListener>();
    }
}
