#![doc = include_str!("../../../README.md")]

mod database_factory;

pub use database_factory::DatabaseFactory;
pub use uno_db_core::*;

/// The blocking backend (feature `sync`): postgres + r2d2.
#[cfg(feature = "sync")]
pub use uno_db_sync as sync;
#[cfg(feature = "sync")]
pub use uno_db_sync::SyncEngineFactory;

/// The async backend (feature `async`): tokio-postgres + deadpool-postgres.
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
