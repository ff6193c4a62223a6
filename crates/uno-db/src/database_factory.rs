//! The facade of the origin design: one object that hands out the engine
//! factories and the session factory for a default configuration.

use std::sync::Arc;

use uno_db_core::{ConnectionConfig, Result};

/// Entry point: the sync engine factory, the async engine factory and the
/// async session factory, sharing one default [`ConnectionConfig`].
///
/// Cloning is cheap and shares the factories (and so their engines and
/// callbacks).
///
/// ```no_run
/// # #[cfg(all(feature = "sync", feature = "async"))]
/// # async fn demo() -> Result<(), uno_db::Error> {
/// use uno_db::{ConnectionConfig, DatabaseFactory};
///
/// let db = DatabaseFactory::new(ConnectionConfig::from_env()?);
/// let engine = db.async_engine()?;
/// let mut conn = engine.connect().await?;
/// conn.execute("SELECT 1", &[]).await?;
/// let sessions = db.get_async_session_factory()?;
/// let mut session = sessions.session().await?;
/// session.execute("INSERT INTO log (msg) VALUES ($1)", &[&"hi"]).await?;
/// session.commit().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct DatabaseFactory {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ConnectionConfig,
    #[cfg(feature = "sync")]
    sync: uno_db_sync::SyncEngineFactory,
    #[cfg(feature = "async")]
    nonblocking: uno_db_async::AsyncEngineFactory,
}

impl DatabaseFactory {
    /// A factory whose engines default to `config`.
    #[must_use]
    pub fn new(config: ConnectionConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                #[cfg(feature = "sync")]
                sync: uno_db_sync::SyncEngineFactory::new(),
                #[cfg(feature = "async")]
                nonblocking: uno_db_async::AsyncEngineFactory::new(),
            }),
        }
    }

    /// A factory configured from the environment (`DATABASE_URL`,
    /// `UNO_DB_*`, `PG*`; see `docs/configuration.md`).
    ///
    /// # Errors
    ///
    /// A variable is malformed or the result is invalid
    /// ([`ErrorKind::Config`](crate::ErrorKind::Config)).
    pub fn from_env() -> Result<Self> {
        Ok(Self::new(ConnectionConfig::from_env()?))
    }

    /// The default configuration.
    #[must_use]
    pub fn config(&self) -> &ConnectionConfig {
        &self.inner.config
    }

    /// The blocking engine factory.
    #[cfg(feature = "sync")]
    #[must_use]
    pub fn get_sync_engine_factory(&self) -> &uno_db_sync::SyncEngineFactory {
        &self.inner.sync
    }

    /// The async engine factory.
    #[cfg(feature = "async")]
    #[must_use]
    pub fn get_async_engine_factory(&self) -> &uno_db_async::AsyncEngineFactory {
        &self.inner.nonblocking
    }

    /// An async session factory on the default configuration's engine.
    ///
    /// # Errors
    ///
    /// As [`async_engine`](Self::async_engine).
    #[cfg(feature = "async")]
    pub fn get_async_session_factory(&self) -> Result<uno_db_async::AsyncSessionFactory> {
        Ok(uno_db_async::AsyncSessionFactory::new(self.async_engine()?))
    }

    /// The blocking engine for the default configuration.
    ///
    /// # Errors
    ///
    /// The factory cannot make an engine for the configuration (for example
    /// it names the async driver).
    #[cfg(feature = "sync")]
    pub fn sync_engine(&self) -> Result<Arc<dyn uno_db_core::blocking::Engine>> {
        use uno_db_core::blocking::EngineFactory as _;
        self.inner.sync.engine(&self.inner.config)
    }

    /// The async engine for the default configuration.
    ///
    /// # Errors
    ///
    /// The factory cannot make an engine for the configuration (for example
    /// it names the blocking driver).
    #[cfg(feature = "async")]
    pub fn async_engine(&self) -> Result<Arc<dyn uno_db_core::nonblocking::Engine>> {
        use uno_db_core::nonblocking::EngineFactory as _;
        self.inner.nonblocking.engine(&self.inner.config)
    }

    /// The blocking engine for read-only work on the default
    /// configuration's servers (see
    /// [`EngineFactory::reader`](uno_db_core::blocking::EngineFactory::reader)):
    /// a standby when one answers, else the primary unless
    /// `read_target_session_attrs=standby`.
    ///
    /// # Errors
    ///
    /// As [`sync_engine`](Self::sync_engine).
    #[cfg(feature = "sync")]
    pub fn sync_reader(&self) -> Result<Arc<dyn uno_db_core::blocking::Engine>> {
        use uno_db_core::blocking::EngineFactory as _;
        self.inner.sync.reader(&self.inner.config)
    }

    /// The async engine for read-only work on the default configuration's
    /// servers (see
    /// [`EngineFactory::reader`](uno_db_core::nonblocking::EngineFactory::reader)).
    ///
    /// # Errors
    ///
    /// As [`async_engine`](Self::async_engine).
    #[cfg(feature = "async")]
    pub fn async_reader(&self) -> Result<Arc<dyn uno_db_core::nonblocking::Engine>> {
        use uno_db_core::nonblocking::EngineFactory as _;
        self.inner.nonblocking.reader(&self.inner.config)
    }

    /// Disposes every engine of both factories: automatic disposal at
    /// shutdown, when called from the application's exit path.
    pub fn dispose(&self) {
        #[cfg(feature = "sync")]
        uno_db_core::blocking::EngineFactory::dispose_all(&self.inner.sync);
        #[cfg(feature = "async")]
        uno_db_core::nonblocking::EngineFactory::dispose_all(&self.inner.nonblocking);
    }
}
