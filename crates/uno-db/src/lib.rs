#![doc = include_str!("../../../README.md")]

mod database_factory;

pub use database_factory::DatabaseFactory;
// What applications use, named one by one: the backend-author kit
// (`uno_db_core::backend`) stays out of the facade.
pub use uno_db_core::{
    AsyncCallback, AsyncCallbacks, Backoff, BlockingCallback, BlockingCallbacks, BoxError,
    BoxFuture, CallbackRegistry, ChannelBinding, CloseReason, Column, ColumnIndex, ConfigKey,
    ConfigViolation, ConnectionConfig, ConnectionConfigBuilder, CredentialRequest, Driver,
    EnvSource, Error, ErrorKind, ExposeSecret, FromSql, IsolationLevel, PoolCounters, PoolStatus,
    ProcessEnv, Result, RetryPolicy, Row, RowBuilder, SecretString, SqlState, SslMode,
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
