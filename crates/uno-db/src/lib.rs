#![doc = include_str!("../../../README.md")]

mod database_factory;

pub use database_factory::DatabaseFactory;
// What applications use, named one by one: the backend-author kit
// (`uno_db_core::backend`) stays out of the facade.
pub use uno_db_core::{
    AsyncCallback, AsyncCallbacks, Backoff, BlockingCallback, BlockingCallbacks, BoxError,
    BoxFuture, CallbackRegistry, ChannelBinding, CloseReason, CloseReport, Column, ColumnIndex,
    ConfigKey, ConfigViolation, ConnectionConfig, ConnectionConfigBuilder, CredentialRequest,
    Driver, EnvSource, Error, ErrorKind, ExposeSecret, FromSql, IsolationLevel, PoolCounters,
    PoolStatus, ProcessEnv, Result, RetryPolicy, Row, RowBuilder, SecretString, SqlState, SslMode,
    SslNegotiation, Statement, TlsError, ToSql, TransactionOptions, Type, blocking, defaults,
    error_chain, is_transient_sqlstate, limits, nonblocking, quote_identifier, sqlstate_name,
};
// What a `LISTEN`/`NOTIFY` listener hands out (`Engine::listener`).
pub use uno_db_core::{ListenerEvent, Notification};
// Several hosts, failover and PgBouncer (docs/high-availability.md).
pub use uno_db_core::{Endpoint, LoadBalanceHosts, PgBouncerMode, ServerRole, TargetSessionAttrs};
// Rows as values: the trait, and its derive (feature `derive`).
pub use uno_db_core::FromRow;
/// `#[derive(FromRow)]`: see [`uno_db_macros::FromRow`].
#[cfg(feature = "derive")]
pub use uno_db_macros::FromRow;

/// A test with a fresh database of its own and an engine on it (feature
/// `test`, for dev-dependencies), like `#[sqlx::test]`. The function takes
/// its engine, or nothing: `Arc<dyn blocking::Engine>` for a plain `fn`,
/// `Arc<dyn nonblocking::Engine>` for an `async fn` (which runs on a tokio
/// runtime of its own). The database comes from `uno-db-testkit`
/// (`UNO_DB_TEST_URL`, else the local server at 127.0.0.1:5432, else a
/// throwaway cluster from the local PostgreSQL binaries) and is dropped
/// afterwards, also when the test panics. The function may return `()` or
/// a `Result`.
///
/// ```no_run
/// use std::sync::Arc;
/// use uno_db::blocking::Engine;
/// use uno_db::nonblocking::Engine as AsyncEngine;
///
/// #[uno_db::test]
/// fn counts_users(engine: Arc<dyn Engine>) -> uno_db::Result<()> {
///     let mut conn = engine.connect()?;
///     conn.batch_execute("CREATE TABLE users (name text)")?;
///     let count: i64 = conn.query_one("SELECT count(*) FROM users", &[])?.get(0);
///     assert_eq!(count, 0);
///     Ok(())
/// }
///
/// #[uno_db::test]
/// async fn counts_users_async(engine: Arc<dyn AsyncEngine>) -> uno_db::Result<()> {
///     let mut conn = engine.connect().await?;
///     conn.batch_execute("CREATE TABLE users (name text)").await?;
///     Ok(())
/// }
/// ```
#[cfg(feature = "test")]
pub use uno_db_macros::test;

// What `#[uno_db::test]` expands to calls.
#[cfg(feature = "test")]
#[doc(hidden)]
#[path = "test_attr.rs"]
pub mod __test;

/// A scripted fake database for unit tests, for both families (feature
/// `mock`): [`fake::FakeDatabase`] answers statements from a script and
/// records what it was sent. See docs/testing.md.
#[cfg(feature = "mock")]
pub use uno_db_core::fake;

/// The `mockall` crate the mocks are made with (feature `mock`), so that
/// tests reach `Sequence`, `predicate` and the rest without a dependency
/// of their own at a version that could differ.
#[cfg(feature = "mock")]
pub use mockall;

/// The blocking backend (feature `sync`): postgres + r2d2.
#[cfg(feature = "sync")]
pub use uno_db_sync as sync;
#[cfg(feature = "sync")]
pub use uno_db_sync::SyncEngineFactory;

/// The async backend (feature `async`): tokio-postgres + deadpool.
#[cfg(feature = "async")]
pub use uno_db_async as r#async;
#[cfg(feature = "async")]
pub use uno_db_async::{AsyncEngineFactory, AsyncSessionFactory};

// The guides' examples are compiled and run as doc tests too.
#[cfg(all(doctest, feature = "mock"))]
#[doc = include_str!("../../../docs/testing.md")]
struct TestingGuide;

#[cfg(doctest)]
#[doc = include_str!("../../../docs/errors.md")]
struct ErrorsGuide;

#[cfg(all(doctest, feature = "async"))]
#[doc = include_str!("../../../docs/high-availability.md")]
struct HighAvailabilityGuide;

#[cfg(all(doctest, feature = "async"))]
#[doc = include_str!("../../../docs/streaming-and-copy.md")]
struct StreamingAndCopyGuide;

#[cfg(doctest)]
#[doc = include_str!("../../../docs/observability.md")]
struct ObservabilityGuide;

#[cfg(all(doctest, feature = "sync"))]
#[doc = include_str!("../../../docs/backends.md")]
struct BackendsGuide;

#[cfg(all(doctest, feature = "async"))]
#[doc = include_str!("../../../docs/multiplexing.md")]
struct MultiplexingGuide;
