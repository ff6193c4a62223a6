//! The async family of traits: the same names, methods and semantics as
//! [`blocking`](crate::blocking), with `async` methods (through
//! `async-trait`, so they stay object-safe).
//!
//! Inject `F: EngineFactory` into services; in tests use the mocks
//! (`MockEngineFactory`, `MockEngine`, `MockConnection`, `MockSession`,
//! feature `mock`).

use std::sync::Arc;

use async_trait::async_trait;

use postgres_types::ToSql;

use crate::callbacks::AsyncCallbacks;
use crate::config::ConnectionConfig;
use crate::error::Result;
use crate::row::Row;
use crate::statement::Statement;
use crate::status::{PoolCounters, PoolStatus};
use crate::transaction_options::TransactionOptions;

/// Creates [`Engine`]s (connection pools) from configurations.
///
/// A factory keeps one engine per distinct configuration: asking twice for
/// the same configuration returns the same engine (an engine left unused
/// and unheld for a while may be disposed and replaced). Its
/// [`callbacks`](Self::callbacks) run on every new physical connection of
/// every engine it created.
// `async_trait` goes first so that mockall mocks the desugared methods:
// their mocks return `Box::pin(async { ... })`.
#[async_trait]
#[cfg_attr(feature = "mock", mockall::automock)]
pub trait EngineFactory: Send + Sync {
    /// The engine for `config`, creating it on first use. Creating an
    /// engine validates nothing further and connects lazily.
    ///
    /// # Errors
    ///
    /// The configuration names a driver of the other family, or the
    /// factory was disposed.
    fn engine(&self, config: &ConnectionConfig) -> Result<Arc<dyn Engine>>;

    /// The connection callbacks shared by this factory's engines.
    fn callbacks(&self) -> &AsyncCallbacks;

    /// Disposes the engine kept for `config` and forgets it, so that a
    /// factory fed many configurations (one per tenant role, say) can let
    /// one go: the next [`engine`](Self::engine) call for `config` creates
    /// a new engine, and callers still holding the old one see it disposed.
    /// Returns whether an engine was kept for `config`.
    fn dispose(&self, config: &ConnectionConfig) -> bool;

    /// Disposes every engine this factory created.
    fn dispose_all(&self);
}

/// A connection pool for one configuration.
// `async_trait` goes first so that mockall mocks the desugared methods:
// their mocks return `Box::pin(async { ... })`.
#[async_trait]
#[cfg_attr(feature = "mock", mockall::automock)]
pub trait Engine: Send + Sync {
    /// Checks out a pooled connection, waiting at most `pool_timeout`. The
    /// connection returns to the pool when dropped.
    ///
    /// # Errors
    ///
    /// [`PoolTimeout`](crate::ErrorKind::PoolTimeout) (carrying the last
    /// connect error), [`PoolClosed`](crate::ErrorKind::PoolClosed), or a
    /// connect, auth or callback error.
    async fn connect(&self) -> Result<Box<dyn Connection>>;

    /// Checks out a connection and begins a transaction on it: a unit of
    /// work that is rolled back unless committed.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect), or `BEGIN` failed.
    async fn session(&self, options: &TransactionOptions) -> Result<Box<dyn Session>>;

    /// The configuration this engine was built from.
    fn config(&self) -> &ConnectionConfig;

    /// A snapshot of the pool.
    fn status(&self) -> PoolStatus;

    /// Cumulative counters since the engine was created.
    fn counters(&self) -> PoolCounters;

    /// Closes the pool: new checkouts fail with
    /// [`PoolClosed`](crate::ErrorKind::PoolClosed), idle connections close
    /// now and checked-out ones when returned.
    fn dispose(&self);

    /// Whether [`dispose`](Self::dispose) was called.
    fn is_disposed(&self) -> bool;
}

/// A pooled connection, returned to its pool when dropped.
///
/// Statements with parameters go through the connection's statement cache
/// (unless `statement_cache_size` is 0), so repeating the same SQL costs one
/// round trip.
// `async_trait` goes first so that mockall mocks the desugared methods:
// their mocks return `Box::pin(async { ... })`.
#[async_trait]
#[cfg_attr(feature = "mock", mockall::automock)]
pub trait Connection: Send {
    /// Runs a statement and returns the number of rows it affected.
    ///
    /// # Errors
    ///
    /// The server rejected the statement, a parameter did not encode, or
    /// the connection is broken.
    async fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64>;

    /// Runs a query and returns all its rows.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    async fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>>;

    /// Runs a query that must return exactly one row.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute), or
    /// [`RowNotFound`](crate::ErrorKind::RowNotFound) /
    /// [`TooManyRows`](crate::ErrorKind::TooManyRows).
    async fn query_one(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row>;

    /// Runs a query that returns at most one row.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute), or
    /// [`TooManyRows`](crate::ErrorKind::TooManyRows).
    async fn query_opt(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)])
    -> Result<Option<Row>>;

    /// Runs one or more statements separated by `;`, without parameters,
    /// using the simple query protocol.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    async fn batch_execute(&mut self, sql: &str) -> Result<()>;

    /// Prepares `sql` (or takes it from the statement cache) and describes
    /// it.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    async fn prepare(&mut self, sql: &str) -> Result<Statement>;

    /// Begins a transaction, turning this connection into a [`Session`].
    ///
    /// # Errors
    ///
    /// `BEGIN` failed.
    async fn begin(self: Box<Self>, options: &TransactionOptions) -> Result<Box<dyn Session>>;

    /// Whether the connection is known to be broken.
    fn is_closed(&self) -> bool;
}

/// A unit of work: one connection inside one transaction. Dropped without
/// [`commit`](Self::commit), it is rolled back.
// `async_trait` goes first so that mockall mocks the desugared methods:
// their mocks return `Box::pin(async { ... })`.
#[async_trait]
#[cfg_attr(feature = "mock", mockall::automock)]
pub trait Session: Send {
    /// As [`Connection::execute`], inside the transaction.
    ///
    /// # Errors
    ///
    /// As [`Connection::execute`].
    async fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64>;

    /// As [`Connection::query`], inside the transaction.
    ///
    /// # Errors
    ///
    /// As [`Connection::query`].
    async fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>>;

    /// As [`Connection::query_one`], inside the transaction.
    ///
    /// # Errors
    ///
    /// As [`Connection::query_one`].
    async fn query_one(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row>;

    /// As [`Connection::query_opt`], inside the transaction.
    ///
    /// # Errors
    ///
    /// As [`Connection::query_opt`].
    async fn query_opt(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)])
    -> Result<Option<Row>>;

    /// As [`Connection::batch_execute`], inside the transaction.
    ///
    /// # Errors
    ///
    /// As [`Connection::batch_execute`].
    async fn batch_execute(&mut self, sql: &str) -> Result<()>;

    /// As [`Connection::prepare`].
    ///
    /// # Errors
    ///
    /// As [`Connection::prepare`].
    async fn prepare(&mut self, sql: &str) -> Result<Statement>;

    /// Sets a savepoint called `name`, for nested units of work.
    ///
    /// # Errors
    ///
    /// `name` is not a valid identifier, or the server refused.
    async fn savepoint(&mut self, name: &str) -> Result<()>;

    /// Rolls back to the savepoint `name`, keeping the transaction open.
    ///
    /// # Errors
    ///
    /// No such savepoint, or the server refused.
    async fn rollback_to_savepoint(&mut self, name: &str) -> Result<()>;

    /// Releases the savepoint `name`, keeping its work.
    ///
    /// # Errors
    ///
    /// No such savepoint, or the server refused.
    async fn release_savepoint(&mut self, name: &str) -> Result<()>;

    /// Commits and returns the connection to its pool.
    ///
    /// # Errors
    ///
    /// The commit failed (for example a serialization failure, 40001); the
    /// work was rolled back.
    async fn commit(self: Box<Self>) -> Result<()>;

    /// Rolls back and returns the connection to its pool.
    ///
    /// # Errors
    ///
    /// The connection broke; the server rolls back on its own.
    async fn rollback(self: Box<Self>) -> Result<()>;
}

impl std::fmt::Debug for dyn Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config().to_url())
            .field("status", &self.status())
            .field("disposed", &self.is_disposed())
            .finish()
    }
}

impl std::fmt::Debug for dyn Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl std::fmt::Debug for dyn Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}
