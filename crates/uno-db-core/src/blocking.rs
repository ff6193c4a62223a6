//! The blocking family of traits: the same names, methods and semantics as
//! [`nonblocking`](crate::nonblocking), without `async`.
//!
//! Inject `F: EngineFactory` into services, and write code that only runs
//! statements against [`Client`], which both [`Connection`] and [`Session`]
//! are; in tests use the mocks (`MockEngineFactory`, `MockEngine`,
//! `MockConnection`, `MockSession`, `MockClient`, feature `mock`) or the
//! scripted fake database of both families (`fake::FakeDatabase`, same
//! feature).

use std::sync::Arc;

use postgres_types::ToSql;

use crate::callbacks::BlockingCallbacks;
use secrecy::SecretString;

use crate::config::ConnectionConfig;
pub use crate::copy::{CopyInWriter, CopyOutReader};
use crate::credentials::CredentialRequest;
use crate::error::BoxError;
use crate::error::Result;
use crate::from_row::{FromRow, map_rows};
use crate::listener_event::ListenerEvent;
pub use crate::listener_stream::ListenerIter;
use crate::retry::RetryPolicy;
use crate::row::Row;
pub use crate::row_stream::RowIter;
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
    /// # use uno_db_core::blocking::EngineFactory;
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
    fn callbacks(&self) -> &BlockingCallbacks;

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
    fn connect(&self) -> Result<Box<dyn Connection>>;

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
    fn session(&self, options: &TransactionOptions) -> Result<Box<dyn Session>>;

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
    fn warm_up(&self) -> Result<()>;

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
    fn close(&self, deadline: std::time::Duration) -> CloseReport;

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
    fn listener(&self) -> Result<Box<dyn Listener>>;
}

/// The statements a [`Connection`] and a [`Session`] both run, so that code
/// which only runs statements (a repository function, say) can take
/// `&mut dyn Client` or `&mut impl Client` and work the same outside and
/// inside a transaction:
///
/// ```no_run
/// use uno_db_core::Result;
/// use uno_db_core::blocking::{Client, Engine};
///
/// fn add_user(client: &mut dyn Client, name: &str) -> Result<u64> {
///     client.execute("INSERT INTO users (name) VALUES ($1)", &[&name])
/// }
///
/// # fn demo(engine: &dyn Engine) -> Result<()> {
/// let mut conn = engine.connect()?;
/// add_user(&mut *conn, "alice")?; // autocommitted
/// let mut session = engine.session(&Default::default())?;
/// add_user(&mut *session, "bob")?; // part of the transaction
/// session.commit()?;
/// # Ok(()) }
/// ```
///
/// Statements with parameters go through the connection's statement cache
/// (unless `statement_cache_size` is 0), so repeating the same SQL costs one
/// round trip. Every method that takes `sql` also takes a prepared
/// [`Statement`] (`&statement`); see [`Statement`] for why this is text.
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
    fn execute<'a>(&mut self, sql: &str, params: &'a [&'a (dyn ToSql + Sync)]) -> Result<u64>;

    /// Runs a query and returns all its rows.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    fn query<'a>(&mut self, sql: &str, params: &'a [&'a (dyn ToSql + Sync)]) -> Result<Vec<Row>>;

    /// Runs a query that must return exactly one row.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute), or
    /// [`RowNotFound`](crate::ErrorKind::RowNotFound) /
    /// [`TooManyRows`](crate::ErrorKind::TooManyRows).
    fn query_one<'a>(&mut self, sql: &str, params: &'a [&'a (dyn ToSql + Sync)]) -> Result<Row>;

    /// Runs a query that returns at most one row.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute), or
    /// [`TooManyRows`](crate::ErrorKind::TooManyRows).
    fn query_opt<'a>(
        &mut self,
        sql: &str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> Result<Option<Row>>;

    /// Runs one or more statements separated by `;`, without parameters,
    /// using the simple query protocol.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    fn batch_execute(&mut self, sql: &str) -> Result<()>;

    /// Prepares `sql` (or takes it from the statement cache) and describes
    /// it. The statement remembers this connection: pass `&statement` to
    /// this connection's statement methods (or to a session begun on it);
    /// other connections refuse it.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    fn prepare(&mut self, sql: &str) -> Result<Statement>;

    /// Runs a query and returns its rows one at a time, with bounded
    /// memory, as the server sends them: for results too large to collect.
    /// See [`RowIter`] for what happens when it is dropped before its end.
    ///
    /// Both backends stream. The default collects [`query`](Self::query)'s
    /// rows, so that a test double answers it as it answers `query` (a mock
    /// set up with `expect_query` serves both).
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute); the iterator's items report the
    /// errors that come later.
    fn query_stream<'a>(
        &'a mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<RowIter<'a>> {
        Ok(RowIter::from_rows(self.query(sql, params)?))
    }

    /// Starts `COPY ... FROM STDIN` (`sql`) and returns where its data
    /// goes. See [`CopyInWriter`].
    ///
    /// # Errors
    ///
    /// `sql` is not a `COPY` statement
    /// ([`Unsupported`](crate::ErrorKind::Unsupported)), or as
    /// [`execute`](Self::execute). The default (the mocks') refuses with
    /// [`Unsupported`](crate::ErrorKind::Unsupported).
    fn copy_in<'a>(&'a mut self, _sql: &str) -> Result<CopyInWriter<'a>> {
        Err(crate::copy::not_supported())
    }

    /// Starts `COPY ... TO STDOUT` (`sql`) and returns its data as a
    /// reader. See [`CopyOutReader`].
    ///
    /// # Errors
    ///
    /// As [`copy_in`](Self::copy_in).
    fn copy_out<'a>(&'a mut self, _sql: &str) -> Result<CopyOutReader<'a>> {
        Err(crate::copy::not_supported())
    }
}

/// What a [`CopyInWriter`] writes into: a backend's `COPY ... FROM STDIN`,
/// or a test double. Dropped without [`finish`](Self::finish), the `COPY`
/// is aborted.
pub trait CopyIn: Send {
    /// Sends the next bytes of `COPY` data.
    ///
    /// # Errors
    ///
    /// The server rejected the data so far, or the connection broke.
    fn send(&mut self, data: &[u8]) -> Result<()>;

    /// Ends the `COPY`, returning the number of rows loaded.
    ///
    /// # Errors
    ///
    /// The server rejected the data; nothing was loaded.
    fn finish(self: Box<Self>) -> Result<u64>;
}

/// Typed rows for every [`Client`] (`dyn Client` and the mocks included):
/// each row mapped through [`FromRow`], usually derived. Bring it into
/// scope to use it.
///
/// ```no_run
/// use uno_db_core::blocking::{Client, ClientExt};
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
/// fn open_todos(client: &mut dyn Client) -> Result<Vec<Todo>> {
///     client.query_as("SELECT id, title FROM todo WHERE NOT done", &[])
/// }
/// ```
pub trait ClientExt: Client {
    /// Runs a query and maps every row.
    ///
    /// # Errors
    ///
    /// As [`Client::query`], or a row that does not map
    /// ([`Decode`](crate::ErrorKind::Decode), naming the column).
    fn query_as<T: FromRow>(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<T>> {
        map_rows(&self.query(sql, params)?)
    }

    /// Runs a query that must return exactly one row, and maps it.
    ///
    /// # Errors
    ///
    /// As [`Client::query_one`] and [`query_as`](Self::query_as).
    fn query_one_as<T: FromRow>(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<T> {
        T::from_row(&self.query_one(sql, params)?)
    }

    /// Runs a query that returns at most one row, and maps it.
    ///
    /// # Errors
    ///
    /// As [`Client::query_opt`] and [`query_as`](Self::query_as).
    fn query_opt_as<T: FromRow>(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<T>> {
        self.query_opt(sql, params)?
            .as_ref()
            .map(T::from_row)
            .transpose()
    }
}

impl<C: Client + ?Sized> ClientExt for C {}

/// A pooled connection, returned to its pool when dropped. Its statements
/// come from [`Client`].
pub trait Connection: Client + Send {
    /// Begins a transaction, turning this connection into a [`Session`].
    ///
    /// # Errors
    ///
    /// `BEGIN` failed.
    fn begin(self: Box<Self>, options: &TransactionOptions) -> Result<Box<dyn Session>>;

    /// Whether the connection is known to be broken.
    fn is_closed(&self) -> bool;
}

/// A unit of work: one connection inside one transaction. Dropped without
/// [`commit`](Self::commit), it is rolled back. Its statements come from
/// [`Client`] and run inside the transaction.
pub trait Session: Client + Send {
    /// Sets a savepoint called `name`, for nested units of work.
    ///
    /// # Errors
    ///
    /// `name` is not a valid identifier, or the server refused.
    fn savepoint(&mut self, name: &str) -> Result<()>;

    /// Rolls back to the savepoint `name`, keeping the transaction open.
    ///
    /// # Errors
    ///
    /// No such savepoint, or the server refused.
    fn rollback_to_savepoint(&mut self, name: &str) -> Result<()>;

    /// Releases the savepoint `name`, keeping its work.
    ///
    /// # Errors
    ///
    /// No such savepoint, or the server refused.
    fn release_savepoint(&mut self, name: &str) -> Result<()>;

    /// Commits and returns the connection to its pool.
    ///
    /// # Errors
    ///
    /// The commit failed (for example a serialization failure, 40001); the
    /// work was rolled back.
    fn commit(self: Box<Self>) -> Result<()>;

    /// Rolls back and returns the connection to its pool.
    ///
    /// # Errors
    ///
    /// The connection broke; the server rolls back on its own.
    fn rollback(self: Box<Self>) -> Result<()>;
}

// A `Box<dyn Connection>` or `Box<dyn Session>` is a client too, so it can be
// handed to `&mut impl Client` as it is.
impl<C: Client + ?Sized> Client for Box<C> {
    fn execute<'a>(&mut self, sql: &str, params: &'a [&'a (dyn ToSql + Sync)]) -> Result<u64> {
        (**self).execute(sql, params)
    }

    fn query<'a>(&mut self, sql: &str, params: &'a [&'a (dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        (**self).query(sql, params)
    }

    fn query_one<'a>(&mut self, sql: &str, params: &'a [&'a (dyn ToSql + Sync)]) -> Result<Row> {
        (**self).query_one(sql, params)
    }

    fn query_opt<'a>(
        &mut self,
        sql: &str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        (**self).query_opt(sql, params)
    }

    fn batch_execute(&mut self, sql: &str) -> Result<()> {
        (**self).batch_execute(sql)
    }

    fn prepare(&mut self, sql: &str) -> Result<Statement> {
        (**self).prepare(sql)
    }

    fn query_stream<'a>(
        &'a mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<RowIter<'a>> {
        (**self).query_stream(sql, params)
    }

    fn copy_in<'a>(&'a mut self, sql: &str) -> Result<CopyInWriter<'a>> {
        (**self).copy_in(sql)
    }

    fn copy_out<'a>(&'a mut self, sql: &str) -> Result<CopyOutReader<'a>> {
        (**self).copy_out(sql)
    }
}

// `automock` cannot mock a trait with a supertrait, nor a method whose
// result borrows `self` (`query_stream`, `copy_in`, `copy_out`): these spell
// the mocks out, keeping the names and expectations (`expect_query_opt`,
// ...) that `automock` gave them; those three methods keep their defaults.
#[cfg(feature = "mock")]
mockall::mock! {
    /// A mock [`Client`].
    pub Client {}

    impl Client for Client {
        fn execute<'a>(&mut self, sql: &str, params: &'a [&'a (dyn ToSql + Sync)]) -> Result<u64>;
        fn query<'a>(&mut self, sql: &str, params: &'a [&'a (dyn ToSql + Sync)]) -> Result<Vec<Row>>;
        fn query_one<'a>(&mut self, sql: &str, params: &'a [&'a (dyn ToSql + Sync)]) -> Result<Row>;
        fn query_opt<'a>(&mut self, sql: &str, params: &'a [&'a (dyn ToSql + Sync)]) -> Result<Option<Row>>;
        fn batch_execute(&mut self, sql: &str) -> Result<()>;
        fn prepare(&mut self, sql: &str) -> Result<Statement>;
    }
}

#[cfg(feature = "mock")]
mockall::mock! {
    /// A mock [`Connection`]: its [`Client`] methods and its own.
    pub Connection {}

    impl Client for Connection {
        fn execute<'a>(&mut self, sql: &str, params: &'a [&'a (dyn ToSql + Sync)]) -> Result<u64>;
        fn query<'a>(&mut self, sql: &str, params: &'a [&'a (dyn ToSql + Sync)]) -> Result<Vec<Row>>;
        fn query_one<'a>(&mut self, sql: &str, params: &'a [&'a (dyn ToSql + Sync)]) -> Result<Row>;
        fn query_opt<'a>(&mut self, sql: &str, params: &'a [&'a (dyn ToSql + Sync)]) -> Result<Option<Row>>;
        fn batch_execute(&mut self, sql: &str) -> Result<()>;
        fn prepare(&mut self, sql: &str) -> Result<Statement>;
    }

    impl Connection for Connection {
        fn begin(self: Box<Self>, options: &TransactionOptions) -> Result<Box<dyn Session>>;
        fn is_closed(&self) -> bool;
    }
}

#[cfg(feature = "mock")]
mockall::mock! {
    /// A mock [`Session`]: its [`Client`] methods and its own.
    pub Session {}

    impl Client for Session {
        fn execute<'a>(&mut self, sql: &str, params: &'a [&'a (dyn ToSql + Sync)]) -> Result<u64>;
        fn query<'a>(&mut self, sql: &str, params: &'a [&'a (dyn ToSql + Sync)]) -> Result<Vec<Row>>;
        fn query_one<'a>(&mut self, sql: &str, params: &'a [&'a (dyn ToSql + Sync)]) -> Result<Row>;
        fn query_opt<'a>(&mut self, sql: &str, params: &'a [&'a (dyn ToSql + Sync)]) -> Result<Option<Row>>;
        fn batch_execute(&mut self, sql: &str) -> Result<()>;
        fn prepare(&mut self, sql: &str) -> Result<Statement>;
    }

    impl Session for Session {
        fn savepoint(&mut self, name: &str) -> Result<()>;
        fn rollback_to_savepoint(&mut self, name: &str) -> Result<()>;
        fn release_savepoint(&mut self, name: &str) -> Result<()>;
        fn commit(self: Box<Self>) -> Result<()>;
        fn rollback(self: Box<Self>) -> Result<()>;
    }
}

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
/// use uno_db_core::blocking::{Engine, transaction_with_retry};
/// use uno_db_core::{IsolationLevel, RetryPolicy, TransactionOptions};
///
/// # fn demo(engine: &dyn Engine) -> uno_db_core::Result<()> {
/// let options = TransactionOptions::new().isolation(IsolationLevel::Serializable);
/// let total: i64 = transaction_with_retry(engine, &options, &RetryPolicy::default(), |session| {
///     session.execute("UPDATE accounts SET balance = balance - 10 WHERE id = 1", &[])?;
///     session.execute("UPDATE accounts SET balance = balance + 10 WHERE id = 2", &[])?;
///     Ok(session.query_one("SELECT sum(balance)::int8 FROM accounts", &[])?.get(0))
/// })?;
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
pub fn transaction_with_retry<E, T, F>(
    engine: &E,
    options: &TransactionOptions,
    policy: &RetryPolicy,
    mut work: F,
) -> Result<T>
where
    E: Engine + ?Sized,
    F: FnMut(&mut dyn Session) -> Result<T>,
{
    let mut backoff = policy.backoff();
    loop {
        let mut session = engine.session(options)?;
        let error = match work(&mut *session) {
            Ok(value) => match session.commit() {
                Ok(()) => return Ok(value),
                Err(error) => error,
            },
            // The session rolls back as it drops.
            Err(error) => error,
        };
        match backoff.next_delay_if(error.is_serialization_failure()) {
            Some(delay) => {
                crate::backend::events::transaction_retry(backoff.attempt(), delay, &error);
                std::thread::sleep(delay);
            }
            None => return Err(error),
        }
    }
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
/// tokens, Vault leases). Called on the thread of the connect attempt,
/// within its `connect_timeout`: a call that takes longer fails the
/// attempt (the call itself cannot be interrupted and keeps that thread
/// until it returns), so keep it quick, and cache.
///
/// Closures implement it:
///
/// ```
/// use uno_db_core::{CredentialRequest, SecretString};
/// use uno_db_core::blocking::CredentialProvider;
///
/// let provider = |request: &CredentialRequest| -> Result<SecretString, uno_db_core::BoxError> {
///     // A real provider asks a secret store for `request.role()`.
///     Ok(SecretString::from(format!("token-for-{}", request.role())))
/// };
/// # fn takes(_: impl CredentialProvider) {}
/// takes(provider);
/// ```
pub trait CredentialProvider: Send + Sync + 'static {
    /// The password for `request`.
    ///
    /// # Errors
    ///
    /// Any error: the connect attempt fails with
    /// [`ErrorKind::Connect`](crate::ErrorKind::Connect) carrying it as
    /// its source, and is retried like a refused connection.
    fn password(&self, request: &CredentialRequest) -> std::result::Result<SecretString, BoxError>;
}

impl<F> CredentialProvider for F
where
    F: Fn(&CredentialRequest) -> std::result::Result<SecretString, BoxError>
        + Send
        + Sync
        + 'static,
{
    fn password(&self, request: &CredentialRequest) -> std::result::Result<SecretString, BoxError> {
        self(request)
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
/// [`next_timeout`](Self::next_timeout) returns that error and a later
/// call tries again.
///
/// Channel names are quoted as identifiers, so any text is a channel name
/// and never SQL; they are case-sensitive, as `pg_notify` takes them.
#[cfg_attr(feature = "mock", mockall::automock)]
pub trait Listener: Send {
    /// Subscribes to `channel` (`LISTEN`); listening twice is harmless.
    ///
    /// # Errors
    ///
    /// The name is empty, longer than 63 bytes or contains NUL
    /// ([`Config`](crate::ErrorKind::Config)), or the connection broke
    /// (the channel is then not subscribed; a later call reconnects).
    fn listen(&mut self, channel: &str) -> Result<()>;

    /// Unsubscribes from `channel` (`UNLISTEN`). Notifications already
    /// received for it may still come out of
    /// [`next_timeout`](Self::next_timeout).
    ///
    /// # Errors
    ///
    /// As [`listen`](Self::listen), except a lost connection, which ended
    /// the subscription anyway.
    fn unlisten(&mut self, channel: &str) -> Result<()>;

    /// The subscribed channels, in the order they were first listened to.
    fn channels(&self) -> Vec<String>;

    /// Waits at most `timeout` for the next event: a notification, or
    /// [`ListenerEvent::Reconnected`] after a lost connection was replaced;
    /// `None` when nothing came. A connection found lost is replaced
    /// within the call, which may then take up to `pool_timeout` longer.
    ///
    /// # Errors
    ///
    /// Reconnecting failed within `pool_timeout` (a transient error; the
    /// next call tries again), the engine was disposed meanwhile, or the
    /// call came from inside an async runtime
    /// ([`Unsupported`](crate::ErrorKind::Unsupported)).
    fn next_timeout(&mut self, timeout: std::time::Duration) -> Result<Option<ListenerEvent>>;
}

impl std::fmt::Debug for dyn Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("channels", &self.channels())
            .finish()
    }
}
