//! [`AsyncSessionFactory`]: sessions from one engine with preset options.

use std::sync::Arc;

use uno_db_core::nonblocking::{Engine, EngineFactory, Session};
use uno_db_core::{BoxFuture, ConnectionConfig, Result, TransactionOptions};

/// Hands out [`Session`]s (units of work) from one engine, with default
/// transaction options.
///
/// ```no_run
/// use uno_db_async::{AsyncEngineFactory, AsyncSessionFactory};
///
/// # async fn demo() -> uno_db_core::Result<()> {
/// let factory = AsyncEngineFactory::new();
/// let sessions = AsyncSessionFactory::from_factory(&factory, &"postgresql://app@db/orders".parse()?)?;
/// let mut session = sessions.session().await?;
/// session.execute("UPDATE stock SET n = n - 1 WHERE id = $1", &[&7_i64]).await?;
/// session.commit().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct AsyncSessionFactory {
    engine: Arc<dyn Engine>,
    options: TransactionOptions,
}

impl std::fmt::Debug for AsyncSessionFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncSessionFactory")
            .field("config", &self.engine.config().to_url())
            .field("options", &self.options)
            .finish()
    }
}

impl AsyncSessionFactory {
    /// Sessions from `engine`, with default transaction options.
    #[must_use]
    pub fn new(engine: Arc<dyn Engine>) -> Self {
        Self {
            engine,
            options: TransactionOptions::default(),
        }
    }

    /// Sessions from `factory`'s engine for `config`.
    ///
    /// # Errors
    ///
    /// As [`EngineFactory::engine`].
    pub fn from_factory<F: EngineFactory + ?Sized>(
        factory: &F,
        config: &ConnectionConfig,
    ) -> Result<Self> {
        Ok(Self::new(factory.engine(config)?))
    }

    /// The same factory with `options` as the default transaction options.
    #[must_use]
    pub fn with_options(mut self, options: TransactionOptions) -> Self {
        self.options = options;
        self
    }

    /// The engine sessions come from.
    #[must_use]
    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    /// A new session with the default options.
    ///
    /// # Errors
    ///
    /// As [`Engine::session`].
    // Not `async fn`: the engine's `session` is called here, so that leak
    // detection names this method's caller (`#[track_caller]`).
    #[track_caller]
    pub fn session(&self) -> BoxFuture<'_, Result<Box<dyn Session>>> {
        self.engine.session(&self.options)
    }

    /// A new session with `options`.
    ///
    /// # Errors
    ///
    /// As [`Engine::session`].
    #[track_caller]
    pub fn session_with<'a>(
        &'a self,
        options: &'a TransactionOptions,
    ) -> BoxFuture<'a, Result<Box<dyn Session>>> {
        self.engine.session(options)
    }
}
