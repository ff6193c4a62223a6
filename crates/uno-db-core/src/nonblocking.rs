//! The async family of traits: the same names, methods and semantics as
//! [`blocking`](crate::blocking), with `async` methods (through
//! `async-trait`, so they stay object-safe).
//!
//! Inject `F: EngineFactory` into services, and write code that only runs
//! statements against [`Client`], which both [`Connection`] and [`Session`]
//! are; in tests use the mocks (`MockEngineFactory`, `MockEngine`,
//! `MockConnection`, `MockSession`, `MockClient`, feature `mock`) or the
//! scripted fake database of both families (`fake::FakeDatabase`, same
//! feature).

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use postgres_types::ToSql;

use crate::callbacks::{AsyncCallbacks, BoxFuture};
use secrecy::SecretString;

use crate::config::ConnectionConfig;
pub use crate::copy::{CopyInSink, CopyOutStream};
use crate::credentials::CredentialRequest;
use crate::error::BoxError;
use crate::error::Result;
use crate::from_row::{FromRow, map_rows};
use crate::listener_event::ListenerEvent;
pub use crate::listener_stream::ListenerStream;
use crate::retry::RetryPolicy;
use crate::row::Row;
pub use crate::row_stream::RowStream;
use crate::statement::Statement;
use crate::status::{CloseReport, PoolCounters, PoolStatus};
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

    /// The engine for read-only work on `config`'s servers: the engine of
    /// [`config.for_reads()`](ConnectionConfig::for_reads), a pool of its
    /// own that connects to a standby when one answers and, unless
    /// `read_target_session_attrs=standby`, to the primary when none
    /// does. Writes through it fail on a standby (SQLSTATE 25006).
    ///
    /// ```no_run
    /// # use uno_db_core::{ConnectionConfig, Result};
    /// # use uno_db_core::nonblocking::EngineFactory;
    /// # fn demo(factory: &dyn EngineFactory) -> Result<()> {
    /// let config: ConnectionConfig =
    ///     "postgresql://app@db1,db2,db3/orders?target_session_attrs=primary".parse()?;
    /// let writes = factory.engine(&config)?; // the primary
    /// let reads = factory.reader(&config)?; // a standby, else the primary
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`engine`](Self::engine).
    fn reader(&self, config: &ConnectionConfig) -> Result<Arc<dyn Engine>> {
        self.engine(&config.for_reads())
    }

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
    /// connection returns to the pool when dropped. With
    /// `leak_detection_threshold` set, the caller's location is what a
    /// leak report names (`#[track_caller]`; built with the `mock`
    /// feature, a call through `dyn Engine` names the backend's `connect`
    /// instead, and the backends' concrete `checkout` always names its
    /// caller).
    ///
    /// # Errors
    ///
    /// [`PoolTimeout`](crate::ErrorKind::PoolTimeout) (carrying the last
    /// connect error), [`PoolClosed`](crate::ErrorKind::PoolClosed), or a
    /// connect, auth or callback error.
    // mockall copies attributes onto items where `track_caller` is
    // refused, so the mocks' build goes without it (see
    // `backend::DYN_ENGINE_TRACKS_CALLER`).
    #[cfg_attr(not(feature = "mock"), track_caller)]
    async fn connect(&self) -> Result<Box<dyn Connection>>;

    /// Checks out a connection and begins a transaction on it: a unit of
    /// work that is rolled back unless committed.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect), or `BEGIN` failed.
    // mockall copies attributes onto items where `track_caller` is
    // refused, so the mocks' build goes without it (see
    // `backend::DYN_ENGINE_TRACKS_CALLER`).
    #[cfg_attr(not(feature = "mock"), track_caller)]
    async fn session(&self, options: &TransactionOptions) -> Result<Box<dyn Session>>;

    /// A client of the multiplexed mode: autocommit statements of many
    /// callers pipelined over a few shared connections
    /// (`multiplex_connections`), with no checkout. Each call gives a new
    /// handle to the same shared connections; it costs an allocation.
    /// Statements that may change or rely on session state (settings,
    /// transactions, `LISTEN`, temporary objects, session advisory
    /// locks...) are refused: run those on a connection from
    /// [`connect`](Self::connect) or in a [`session`](Self::session).
    /// See docs/multiplexing.md.
    ///
    /// ```no_run
    /// # use uno_db_core::Result;
    /// # use uno_db_core::nonblocking::{Client, Engine};
    /// # async fn demo(engine: &dyn Engine) -> Result<()> {
    /// let mut client = engine.multiplexed()?;
    /// let row = client.query_one("SELECT $1::int4 + 1", &[&41_i32]).await?;
    /// assert_eq!(row.get::<_, i32>(0), 42);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Unsupported`](crate::ErrorKind::Unsupported) when the engine has
    /// no multiplexed mode (this method's default, which the fake database
    /// keeps; the async backend with `multiplex_connections` 0);
    /// [`PoolClosed`](crate::ErrorKind::PoolClosed) after
    /// [`dispose`](Self::dispose).
    fn multiplexed(&self) -> Result<Box<dyn Client>> {
        Err(crate::error::Error::with_message(
            crate::ErrorKind::Unsupported,
            "this engine has no multiplexed mode",
        ))
    }

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

    /// Opens connections until `min_idle` are idle, waiting at most
    /// `pool_timeout`; `Ok(())` at once when `min_idle` is 0 or already
    /// met. The pool also refills to `min_idle` in the background after
    /// connections close.
    ///
    /// # Errors
    ///
    /// [`PoolTimeout`](crate::ErrorKind::PoolTimeout) carrying the last
    /// connect error when `min_idle` connections could not be opened in
    /// time, a permanent connect, auth or callback error at once, or
    /// [`PoolClosed`](crate::ErrorKind::PoolClosed) after
    /// [`dispose`](Self::dispose).
    async fn warm_up(&self) -> Result<()>;

    /// Drains the pool: new checkouts fail at once with
    /// [`PoolClosed`](crate::ErrorKind::PoolClosed) and idle connections
    /// close, then waits at most `deadline` for the checked-out
    /// connections to come back (each closes as it returns). Those still
    /// out at the deadline are ended on the server (their processes are
    /// terminated from a connection of the engine's own, and `close`
    /// returns once the server no longer lists them, within the connect
    /// and housekeeping timeouts): a statement running on one fails, and
    /// its holder's next use fails. Returns how many came back in time
    /// and how many were forced. [`dispose`](Self::dispose) is the form
    /// that does not wait. Behind PgBouncer the server processes are the
    /// bouncer's: forced connections close only when returned.
    async fn close(&self, deadline: std::time::Duration) -> CloseReport;

    /// Changes `pool_size` at runtime (1 to 1000, at least `min_idle`, with
    /// `max_overflow` at most 1000). Healthy connections stay open: when
    /// the pool shrinks, idle connections beyond the new maximum close and
    /// checked-out ones beyond it close when returned.
    /// [`status`](Self::status)`().max_size` follows.
    ///
    /// # Errors
    ///
    /// [`Config`](crate::ErrorKind::Config) naming the broken rule (nothing
    /// changes), [`PoolClosed`](crate::ErrorKind::PoolClosed) after
    /// [`dispose`](Self::dispose).
    fn set_pool_size(&self, pool_size: usize) -> Result<()>;

    /// Changes `max_overflow` at runtime (`pool_size + max_overflow` at
    /// most 1000), as [`set_pool_size`](Self::set_pool_size).
    ///
    /// # Errors
    ///
    /// As [`set_pool_size`](Self::set_pool_size).
    fn set_max_overflow(&self, max_overflow: usize) -> Result<()>;

    /// Opens a [`Listener`] for `LISTEN`/`NOTIFY`: a dedicated connection,
    /// opened like the pool's (same configuration, TLS, credentials, host
    /// selection, connect retry within `pool_timeout`, callbacks) but never
    /// pooled nor counted in [`status`](Self::status). It closes when the
    /// listener is dropped.
    ///
    /// # Errors
    ///
    /// [`PoolClosed`](crate::ErrorKind::PoolClosed) after
    /// [`dispose`](Self::dispose), or the connect, auth or callback error
    /// a checkout would give.
    async fn listener(&self) -> Result<Box<dyn Listener>>;
}

/// The statements a [`Connection`] and a [`Session`] both run, so that code
/// which only runs statements (a repository function, say) can take
/// `&mut dyn Client` or `&mut impl Client` and work the same outside and
/// inside a transaction:
///
/// ```no_run
/// use uno_db_core::Result;
/// use uno_db_core::nonblocking::{Client, Engine};
///
/// async fn add_user(client: &mut dyn Client, name: &str) -> Result<u64> {
///     client.execute("INSERT INTO users (name) VALUES ($1)", &[&name]).await
/// }
///
/// # async fn demo(engine: &dyn Engine) -> Result<()> {
/// let mut conn = engine.connect().await?;
/// add_user(&mut *conn, "alice").await?; // autocommitted
/// let mut session = engine.session(&Default::default()).await?;
/// add_user(&mut *session, "bob").await?; // part of the transaction
/// session.commit().await?;
/// # Ok(()) }
/// ```
///
/// Statements with parameters go through the connection's statement cache
/// (unless `statement_cache_size` is 0), so repeating the same SQL costs one
/// round trip. Every method that takes `sql` also takes a prepared
/// [`Statement`] (`&statement`); see [`Statement`] for why this is text.
// `async_trait` goes first so that mockall mocks the desugared methods:
// their mocks return `Box::pin(async { ... })`.
#[async_trait]
pub trait Client: Send {
    /// Runs a statement and returns the number of rows it affected.
    ///
    /// `sql` is SQL text or, for every statement method, `&statement` for a
    /// [`Statement`] this connection [prepared](Self::prepare), which runs
    /// its SQL as the text would.
    ///
    /// # Errors
    ///
    /// The server rejected the statement, a parameter did not encode, or
    /// the connection is broken;
    /// [`Unsupported`](crate::ErrorKind::Unsupported) when `sql` is a
    /// statement another connection prepared.
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
    /// it. The statement remembers this connection: pass `&statement` to
    /// this connection's statement methods (or to a session begun on it);
    /// other connections refuse it.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    async fn prepare(&mut self, sql: &str) -> Result<Statement>;

    /// Runs a query and returns its rows one at a time, with bounded
    /// memory, as the server sends them: for results too large to collect.
    /// See [`RowStream`] for what happens when it is dropped before its end.
    ///
    /// Both backends stream. The default collects [`query`](Self::query)'s
    /// rows, so that a test double answers it as it answers `query` (a mock
    /// set up with `expect_query` serves both).
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute); the stream's items report the errors
    /// that come later.
    async fn query_stream<'a>(
        &'a mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<RowStream<'a>> {
        Ok(RowStream::from_rows(self.query(sql, params).await?))
    }

    /// Starts `COPY ... FROM STDIN` (`sql`) and returns where its data
    /// goes. See [`CopyInSink`].
    ///
    /// # Errors
    ///
    /// `sql` is not a `COPY` statement
    /// ([`Unsupported`](crate::ErrorKind::Unsupported)), or as
    /// [`execute`](Self::execute). The default (the mocks') refuses with
    /// [`Unsupported`](crate::ErrorKind::Unsupported).
    async fn copy_in<'a>(&'a mut self, _sql: &str) -> Result<CopyInSink<'a>> {
        Err(crate::copy::not_supported())
    }

    /// Starts `COPY ... TO STDOUT` (`sql`) and returns its data as a
    /// stream. See [`CopyOutStream`].
    ///
    /// # Errors
    ///
    /// As [`copy_in`](Self::copy_in).
    async fn copy_out<'a>(&'a mut self, _sql: &str) -> Result<CopyOutStream<'a>> {
        Err(crate::copy::not_supported())
    }
}

/// What a [`CopyInSink`] sends into: a backend's `COPY ... FROM STDIN`,
/// or a test double. Dropped without [`finish`](Self::finish), the `COPY`
/// is aborted.
#[async_trait]
pub trait CopyIn: Send {
    /// Sends the next bytes of `COPY` data, waiting while the server is
    /// behind.
    ///
    /// # Errors
    ///
    /// The server rejected the data so far, or the connection broke.
    async fn send(&mut self, data: Bytes) -> Result<()>;

    /// Ends the `COPY`, returning the number of rows loaded.
    ///
    /// # Errors
    ///
    /// The server rejected the data; nothing was loaded.
    async fn finish(self: Box<Self>) -> Result<u64>;
}

/// Typed rows for every [`Client`] (`dyn Client` and the mocks included):
/// each row mapped through [`FromRow`], usually derived. Bring it into
/// scope to use it.
///
/// ```no_run
/// use uno_db_core::nonblocking::{Client, ClientExt};
/// use uno_db_core::{FromRow, Result, Row};
///
/// struct Todo {
///     id: i64,
///     title: String,
/// }
///
/// impl FromRow for Todo {
///     fn from_row(row: &Row) -> Result<Self> {
///         Ok(Self { id: row.try_get("id")?, title: row.try_get("title")? })
///     }
/// }
///
/// async fn open_todos(client: &mut dyn Client) -> Result<Vec<Todo>> {
///     client.query_as("SELECT id, title FROM todo WHERE NOT done", &[]).await
/// }
/// ```
#[async_trait]
pub trait ClientExt: Client {
    /// Runs a query and maps every row.
    ///
    /// # Errors
    ///
    /// As [`Client::query`], or a row that does not map
    /// ([`Decode`](crate::ErrorKind::Decode), naming the column).
    async fn query_as<T: FromRow>(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<T>> {
        map_rows(&self.query(sql, params).await?)
    }

    /// Runs a query that must return exactly one row, and maps it.
    ///
    /// # Errors
    ///
    /// As [`Client::query_one`] and [`query_as`](Self::query_as).
    async fn query_one_as<T: FromRow>(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<T> {
        T::from_row(&self.query_one(sql, params).await?)
    }

    /// Runs a query that returns at most one row, and maps it.
    ///
    /// # Errors
    ///
    /// As [`Client::query_opt`] and [`query_as`](Self::query_as).
    async fn query_opt_as<T: FromRow>(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<T>> {
        self.query_opt(sql, params)
            .await?
            .as_ref()
            .map(T::from_row)
            .transpose()
    }
}

#[async_trait]
impl<C: Client + ?Sized> ClientExt for C {}

/// A pooled connection, returned to its pool when dropped. Its statements
/// come from [`Client`].
#[async_trait]
pub trait Connection: Client + Send {
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
/// [`commit`](Self::commit), it is rolled back. Its statements come from
/// [`Client`] and run inside the transaction.
#[async_trait]
pub trait Session: Client + Send {
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

// A `Box<dyn Connection>` or `Box<dyn Session>` is a client too, so it can be
// handed to `&mut impl Client` as it is. Method calls on a box resolve to
// this impl, so it hands back the inner future itself: an `async fn` here
// would box and poll every statement's future twice (about 0.7 k more
// instructions per statement, callgrind).
impl<C: Client + ?Sized> Client for Box<C> {
    fn execute<'life0, 'life1, 'life2, 'life3, 'async_trait>(
        &'life0 mut self,
        sql: &'life1 str,
        params: &'life2 [&'life3 (dyn ToSql + Sync)],
    ) -> BoxFuture<'async_trait, Result<u64>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        'life3: 'async_trait,
        Self: 'async_trait,
    {
        (**self).execute(sql, params)
    }

    fn query<'life0, 'life1, 'life2, 'life3, 'async_trait>(
        &'life0 mut self,
        sql: &'life1 str,
        params: &'life2 [&'life3 (dyn ToSql + Sync)],
    ) -> BoxFuture<'async_trait, Result<Vec<Row>>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        'life3: 'async_trait,
        Self: 'async_trait,
    {
        (**self).query(sql, params)
    }

    fn query_one<'life0, 'life1, 'life2, 'life3, 'async_trait>(
        &'life0 mut self,
        sql: &'life1 str,
        params: &'life2 [&'life3 (dyn ToSql + Sync)],
    ) -> BoxFuture<'async_trait, Result<Row>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        'life3: 'async_trait,
        Self: 'async_trait,
    {
        (**self).query_one(sql, params)
    }

    fn query_opt<'life0, 'life1, 'life2, 'life3, 'async_trait>(
        &'life0 mut self,
        sql: &'life1 str,
        params: &'life2 [&'life3 (dyn ToSql + Sync)],
    ) -> BoxFuture<'async_trait, Result<Option<Row>>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        'life3: 'async_trait,
        Self: 'async_trait,
    {
        (**self).query_opt(sql, params)
    }

    fn batch_execute<'life0, 'life1, 'async_trait>(
        &'life0 mut self,
        sql: &'life1 str,
    ) -> BoxFuture<'async_trait, Result<()>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        (**self).batch_execute(sql)
    }

    fn prepare<'life0, 'life1, 'async_trait>(
        &'life0 mut self,
        sql: &'life1 str,
    ) -> BoxFuture<'async_trait, Result<Statement>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        (**self).prepare(sql)
    }

    fn query_stream<'a, 'life1, 'life2, 'life3, 'async_trait>(
        &'a mut self,
        sql: &'life1 str,
        params: &'life2 [&'life3 (dyn ToSql + Sync)],
    ) -> BoxFuture<'async_trait, Result<RowStream<'a>>>
    where
        'a: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        'life3: 'async_trait,
        Self: 'async_trait,
    {
        (**self).query_stream(sql, params)
    }

    fn copy_in<'a, 'life1, 'async_trait>(
        &'a mut self,
        sql: &'life1 str,
    ) -> BoxFuture<'async_trait, Result<CopyInSink<'a>>>
    where
        'a: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        (**self).copy_in(sql)
    }

    fn copy_out<'a, 'life1, 'async_trait>(
        &'a mut self,
        sql: &'life1 str,
    ) -> BoxFuture<'async_trait, Result<CopyOutStream<'a>>>
    where
        'a: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        (**self).copy_out(sql)
    }
}

// `automock` cannot mock a trait with a supertrait, nor a method whose
// result borrows `self` (`query_stream`, `copy_in`, `copy_out`, which keep
// their defaults): these spell the mocks out, with the methods as `async_trait` desugars them, so that they keep
// the names and expectations `automock` gave them (`expect_query_opt`,
// returning `Box::pin(async { ... })`).
// The desugared signatures are as complex as `async_trait` makes them.
#[cfg(feature = "mock")]
#[allow(clippy::type_complexity)]
mod mocks {
    use super::{Client, Connection, Result, Row, Session, Statement, ToSql, TransactionOptions};
    use std::{future::Future, pin::Pin};

    mockall::mock! {
        /// A mock [`Client`].
        pub Client {}

        impl Client for Client {
            fn execute<'life0, 'life1, 'life2, 'life3, 'async_trait>(&'life0 mut self, sql: &'life1 str, params: &'life2 [&'life3 (dyn ToSql + Sync)]) -> Pin<Box<dyn Future<Output = Result<u64>> + Send + 'async_trait>> where 'life0: 'async_trait, 'life1: 'async_trait, 'life2: 'async_trait, 'life3: 'async_trait, Self: 'async_trait;
            fn query<'life0, 'life1, 'life2, 'life3, 'async_trait>(&'life0 mut self, sql: &'life1 str, params: &'life2 [&'life3 (dyn ToSql + Sync)]) -> Pin<Box<dyn Future<Output = Result<Vec<Row>>> + Send + 'async_trait>> where 'life0: 'async_trait, 'life1: 'async_trait, 'life2: 'async_trait, 'life3: 'async_trait, Self: 'async_trait;
            fn query_one<'life0, 'life1, 'life2, 'life3, 'async_trait>(&'life0 mut self, sql: &'life1 str, params: &'life2 [&'life3 (dyn ToSql + Sync)]) -> Pin<Box<dyn Future<Output = Result<Row>> + Send + 'async_trait>> where 'life0: 'async_trait, 'life1: 'async_trait, 'life2: 'async_trait, 'life3: 'async_trait, Self: 'async_trait;
            fn query_opt<'life0, 'life1, 'life2, 'life3, 'async_trait>(&'life0 mut self, sql: &'life1 str, params: &'life2 [&'life3 (dyn ToSql + Sync)]) -> Pin<Box<dyn Future<Output = Result<Option<Row>>> + Send + 'async_trait>> where 'life0: 'async_trait, 'life1: 'async_trait, 'life2: 'async_trait, 'life3: 'async_trait, Self: 'async_trait;
            fn batch_execute<'life0, 'life1, 'async_trait>(&'life0 mut self, sql: &'life1 str) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'async_trait>> where 'life0: 'async_trait, 'life1: 'async_trait, Self: 'async_trait;
            fn prepare<'life0, 'life1, 'async_trait>(&'life0 mut self, sql: &'life1 str) -> Pin<Box<dyn Future<Output = Result<Statement>> + Send + 'async_trait>> where 'life0: 'async_trait, 'life1: 'async_trait, Self: 'async_trait;
        }
    }

    mockall::mock! {
        /// A mock [`Connection`]: its [`Client`] methods and its own.
        pub Connection {}

        impl Client for Connection {
            fn execute<'life0, 'life1, 'life2, 'life3, 'async_trait>(&'life0 mut self, sql: &'life1 str, params: &'life2 [&'life3 (dyn ToSql + Sync)]) -> Pin<Box<dyn Future<Output = Result<u64>> + Send + 'async_trait>> where 'life0: 'async_trait, 'life1: 'async_trait, 'life2: 'async_trait, 'life3: 'async_trait, Self: 'async_trait;
            fn query<'life0, 'life1, 'life2, 'life3, 'async_trait>(&'life0 mut self, sql: &'life1 str, params: &'life2 [&'life3 (dyn ToSql + Sync)]) -> Pin<Box<dyn Future<Output = Result<Vec<Row>>> + Send + 'async_trait>> where 'life0: 'async_trait, 'life1: 'async_trait, 'life2: 'async_trait, 'life3: 'async_trait, Self: 'async_trait;
            fn query_one<'life0, 'life1, 'life2, 'life3, 'async_trait>(&'life0 mut self, sql: &'life1 str, params: &'life2 [&'life3 (dyn ToSql + Sync)]) -> Pin<Box<dyn Future<Output = Result<Row>> + Send + 'async_trait>> where 'life0: 'async_trait, 'life1: 'async_trait, 'life2: 'async_trait, 'life3: 'async_trait, Self: 'async_trait;
            fn query_opt<'life0, 'life1, 'life2, 'life3, 'async_trait>(&'life0 mut self, sql: &'life1 str, params: &'life2 [&'life3 (dyn ToSql + Sync)]) -> Pin<Box<dyn Future<Output = Result<Option<Row>>> + Send + 'async_trait>> where 'life0: 'async_trait, 'life1: 'async_trait, 'life2: 'async_trait, 'life3: 'async_trait, Self: 'async_trait;
            fn batch_execute<'life0, 'life1, 'async_trait>(&'life0 mut self, sql: &'life1 str) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'async_trait>> where 'life0: 'async_trait, 'life1: 'async_trait, Self: 'async_trait;
            fn prepare<'life0, 'life1, 'async_trait>(&'life0 mut self, sql: &'life1 str) -> Pin<Box<dyn Future<Output = Result<Statement>> + Send + 'async_trait>> where 'life0: 'async_trait, 'life1: 'async_trait, Self: 'async_trait;
        }

        impl Connection for Connection {
            fn begin<'life0, 'async_trait>(self: Box<Self>, options: &'life0 TransactionOptions) -> Pin<Box<dyn Future<Output = Result<Box<dyn Session>>> + Send + 'async_trait>> where 'life0: 'async_trait, Self: 'async_trait;
            fn is_closed(&self) -> bool;
        }
    }

    mockall::mock! {
        /// A mock [`Session`]: its [`Client`] methods and its own.
        pub Session {}

        impl Client for Session {
            fn execute<'life0, 'life1, 'life2, 'life3, 'async_trait>(&'life0 mut self, sql: &'life1 str, params: &'life2 [&'life3 (dyn ToSql + Sync)]) -> Pin<Box<dyn Future<Output = Result<u64>> + Send + 'async_trait>> where 'life0: 'async_trait, 'life1: 'async_trait, 'life2: 'async_trait, 'life3: 'async_trait, Self: 'async_trait;
            fn query<'life0, 'life1, 'life2, 'life3, 'async_trait>(&'life0 mut self, sql: &'life1 str, params: &'life2 [&'life3 (dyn ToSql + Sync)]) -> Pin<Box<dyn Future<Output = Result<Vec<Row>>> + Send + 'async_trait>> where 'life0: 'async_trait, 'life1: 'async_trait, 'life2: 'async_trait, 'life3: 'async_trait, Self: 'async_trait;
            fn query_one<'life0, 'life1, 'life2, 'life3, 'async_trait>(&'life0 mut self, sql: &'life1 str, params: &'life2 [&'life3 (dyn ToSql + Sync)]) -> Pin<Box<dyn Future<Output = Result<Row>> + Send + 'async_trait>> where 'life0: 'async_trait, 'life1: 'async_trait, 'life2: 'async_trait, 'life3: 'async_trait, Self: 'async_trait;
            fn query_opt<'life0, 'life1, 'life2, 'life3, 'async_trait>(&'life0 mut self, sql: &'life1 str, params: &'life2 [&'life3 (dyn ToSql + Sync)]) -> Pin<Box<dyn Future<Output = Result<Option<Row>>> + Send + 'async_trait>> where 'life0: 'async_trait, 'life1: 'async_trait, 'life2: 'async_trait, 'life3: 'async_trait, Self: 'async_trait;
            fn batch_execute<'life0, 'life1, 'async_trait>(&'life0 mut self, sql: &'life1 str) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'async_trait>> where 'life0: 'async_trait, 'life1: 'async_trait, Self: 'async_trait;
            fn prepare<'life0, 'life1, 'async_trait>(&'life0 mut self, sql: &'life1 str) -> Pin<Box<dyn Future<Output = Result<Statement>> + Send + 'async_trait>> where 'life0: 'async_trait, 'life1: 'async_trait, Self: 'async_trait;
        }

        impl Session for Session {
            fn savepoint<'life0, 'life1, 'async_trait>(&'life0 mut self, name: &'life1 str) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'async_trait>> where 'life0: 'async_trait, 'life1: 'async_trait, Self: 'async_trait;
            fn rollback_to_savepoint<'life0, 'life1, 'async_trait>(&'life0 mut self, name: &'life1 str) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'async_trait>> where 'life0: 'async_trait, 'life1: 'async_trait, Self: 'async_trait;
            fn release_savepoint<'life0, 'life1, 'async_trait>(&'life0 mut self, name: &'life1 str) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'async_trait>> where 'life0: 'async_trait, 'life1: 'async_trait, Self: 'async_trait;
            fn commit<'async_trait>(self: Box<Self>) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'async_trait>> where Self: 'async_trait;
            fn rollback<'async_trait>(self: Box<Self>) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'async_trait>> where Self: 'async_trait;
        }
    }
}

#[cfg(feature = "mock")]
pub use mocks::{MockClient, MockConnection, MockSession};

/// Runs `work` in a session begun with `options` and commits it. When the
/// work or the commit fails with a serialization failure (40001) or a
/// deadlock (40P01) (see [`Error::is_serialization_failure`]), the session
/// is rolled back and the whole closure runs again in a new one, after a
/// delay from `policy` (whose attempts and deadline bound the retries).
/// Any other error returns at once; the session is rolled back.
///
/// `work` may run several times: it must not have effects outside the
/// transaction that cannot be repeated.
///
/// ```no_run
/// use uno_db_core::nonblocking::{Engine, transaction_with_retry};
/// use uno_db_core::{RetryPolicy, TransactionOptions};
///
/// # async fn demo(engine: &dyn Engine) -> uno_db_core::Result<()> {
/// let policy = RetryPolicy::default().max_attempts(5);
/// let moved: u64 = transaction_with_retry(engine, &TransactionOptions::new(), &policy, |session| {
///     Box::pin(async move {
///         session.execute("UPDATE account SET balance = balance - 10 WHERE id = 1", &[]).await?;
///         session.execute("UPDATE account SET balance = balance + 10 WHERE id = 2", &[]).await
///     })
/// })
/// .await?;
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// The first error that is not a serialization failure or deadlock, or the
/// last one when `policy` gives up.
///
/// [`Error::is_serialization_failure`]: crate::Error::is_serialization_failure
pub async fn transaction_with_retry<E, T, F>(
    engine: &E,
    options: &TransactionOptions,
    policy: &RetryPolicy,
    mut work: F,
) -> Result<T>
where
    E: Engine + ?Sized,
    T: Send,
    F: for<'s> FnMut(&'s mut dyn Session) -> BoxFuture<'s, Result<T>> + Send,
{
    let mut backoff = policy.backoff();
    loop {
        let error = match attempt(engine, options, &mut work).await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        match backoff.next_delay_if(error.is_serialization_failure()) {
            Some(delay) => {
                crate::backend::events::transaction_retry(backoff.attempt(), delay, &error);
                tokio::time::sleep(delay).await;
            }
            None => return Err(error),
        }
    }
}

async fn attempt<E, T, F>(engine: &E, options: &TransactionOptions, work: &mut F) -> Result<T>
where
    E: Engine + ?Sized,
    F: for<'s> FnMut(&'s mut dyn Session) -> BoxFuture<'s, Result<T>>,
{
    let mut session = engine.session(options).await?;
    // On error the session is dropped, which rolls it back.
    let value = work(&mut *session).await?;
    session.commit().await?;
    Ok(value)
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

impl std::fmt::Debug for dyn Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for dyn Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

/// Supplies the password (or token) of each new physical connection, for
/// credentials that change while the engine runs (rotated passwords, IAM
/// tokens, Vault leases). Awaited by the task that opens the connection,
/// within the attempt's `connect_timeout`.
///
/// Closures returning a future implement it:
///
/// ```
/// use uno_db_core::{CredentialRequest, SecretString};
/// use uno_db_core::nonblocking::CredentialProvider;
///
/// let provider = |request: CredentialRequest| async move {
///     // A real provider asks a secret store for `request.role()`.
///     Ok::<_, uno_db_core::BoxError>(SecretString::from(format!("token-for-{}", request.role())))
/// };
/// # fn takes(_: impl CredentialProvider) {}
/// takes(provider);
/// ```
#[async_trait]
pub trait CredentialProvider: Send + Sync + 'static {
    /// The password for `request`.
    ///
    /// # Errors
    ///
    /// Any error: the connect attempt fails with
    /// [`ErrorKind::Connect`](crate::ErrorKind::Connect) carrying it as
    /// its source, and is retried like a refused connection.
    async fn password(
        &self,
        request: &CredentialRequest,
    ) -> std::result::Result<SecretString, BoxError>;
}

#[async_trait]
impl<F, Fut> CredentialProvider for F
where
    F: Fn(CredentialRequest) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = std::result::Result<SecretString, BoxError>> + Send,
{
    async fn password(
        &self,
        request: &CredentialRequest,
    ) -> std::result::Result<SecretString, BoxError> {
        self(request.clone()).await
    }
}

/// A dedicated connection that receives `NOTIFY`s, from
/// [`Engine::listener`].
///
/// When its connection is lost, the listener opens a new one through the
/// engine's connect path (retry and host walk within `pool_timeout`),
/// listens again to every channel, and hands out
/// [`ListenerEvent::Reconnected`] before anything else: notifications sent
/// meanwhile may have been missed. If reconnecting fails,
/// [`next`](Self::next) returns that error and a later call tries again.
///
/// Channel names are quoted as identifiers, so any text is a channel name
/// and never SQL; they are case-sensitive, as `pg_notify` takes them.
// `async_trait` goes first so that mockall mocks the desugared methods:
// their mocks return `Box::pin(async { ... })`.
#[async_trait]
#[cfg_attr(feature = "mock", mockall::automock)]
pub trait Listener: Send {
    /// Subscribes to `channel` (`LISTEN`); listening twice is harmless.
    ///
    /// # Errors
    ///
    /// The name is empty, longer than 63 bytes or contains NUL
    /// ([`Config`](crate::ErrorKind::Config)), or the connection broke
    /// (the channel is then not subscribed; a later call reconnects).
    async fn listen(&mut self, channel: &str) -> Result<()>;

    /// Unsubscribes from `channel` (`UNLISTEN`). Notifications already
    /// received for it may still come out of [`next`](Self::next).
    ///
    /// # Errors
    ///
    /// As [`listen`](Self::listen), except a lost connection, which ended
    /// the subscription anyway.
    async fn unlisten(&mut self, channel: &str) -> Result<()>;

    /// The subscribed channels, in the order they were first listened to.
    fn channels(&self) -> Vec<String>;

    /// Waits for the next event: a notification, or
    /// [`ListenerEvent::Reconnected`] after a lost connection was replaced.
    /// Waits without bound while nothing arrives; wrap it in
    /// `tokio::time::timeout` for a bounded wait (dropping the future loses
    /// nothing).
    ///
    /// # Errors
    ///
    /// Reconnecting failed within `pool_timeout` (a transient error; the
    /// next call tries again), or the engine was disposed meanwhile.
    async fn next(&mut self) -> Result<ListenerEvent>;
}

impl std::fmt::Debug for dyn Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("channels", &self.channels())
            .finish()
    }
}
