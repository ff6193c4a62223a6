//! [`AsyncEngineFactory`]: one engine per distinct configuration.

use std::sync::Arc;

use uno_db_core::backend::EngineRegistry;
use uno_db_core::nonblocking::{Engine, EngineFactory};
use uno_db_core::{AsyncCallbacks, ConnectionConfig, Result};

use crate::engine::AsyncEngine;

/// Creates [`AsyncEngine`]s, keeping one per distinct configuration (two
/// configurations are the same when their [`ConnectionConfig::key`]s,
/// password included, are). An engine not asked for in 10 minutes, with no
/// connection checked out and no `Arc` of it held outside the factory, is
/// disposed and dropped (see [`EngineRegistry`]).
///
/// Clones share the engines and the callback registry: callbacks registered
/// on the factory run on every new connection of every engine it made.
///
/// ```no_run
/// use uno_db_async::AsyncEngineFactory;
/// use uno_db_core::nonblocking::EngineFactory;
///
/// # async fn demo() -> uno_db_core::Result<()> {
/// let factory = AsyncEngineFactory::new();
/// factory.callbacks().register("utc", |conn| {
///     Box::pin(async move {
///         conn.batch_execute("SET TIME ZONE 'UTC'").await?;
///         Ok(())
///     })
/// });
/// let engine = factory.engine(&"postgresql://app@db/orders".parse()?)?;
/// let conn = engine.connect().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct AsyncEngineFactory {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    engines: EngineRegistry<AsyncEngine>,
    callbacks: AsyncCallbacks,
}

impl std::fmt::Debug for AsyncEngineFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncEngineFactory")
            .field("engines", &self.inner.engines.len())
            .field("callbacks", &self.inner.callbacks)
            .finish()
    }
}

impl AsyncEngineFactory {
    /// A factory with no engines and no callbacks.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The engine for `config`, created on first use; the concrete form of
    /// [`EngineFactory::engine`]. An engine disposed on its own is replaced
    /// by a fresh one.
    ///
    /// # Errors
    ///
    /// The configuration is unusable by this backend (see
    /// [`AsyncEngine::new`]), or the factory was disposed
    /// ([`PoolClosed`](uno_db_core::ErrorKind::PoolClosed)).
    pub fn async_engine(&self, config: &ConnectionConfig) -> Result<Arc<AsyncEngine>> {
        self.inner.engines.get_or_create(config, || {
            AsyncEngine::with_callbacks(config, self.inner.callbacks.clone())
        })
    }
}

impl EngineFactory for AsyncEngineFactory {
    fn engine(&self, config: &ConnectionConfig) -> Result<Arc<dyn Engine>> {
        let engine: Arc<dyn Engine> = self.async_engine(config)?;
        Ok(engine)
    }

    fn callbacks(&self) -> &AsyncCallbacks {
        &self.inner.callbacks
    }

    fn dispose(&self, config: &ConnectionConfig) -> bool {
        self.inner.engines.dispose(config)
    }

    fn dispose_all(&self) {
        self.inner.engines.dispose_all();
    }
}

impl uno_db_core::backend::RegisteredEngine for AsyncEngine {
    fn is_disposed(&self) -> bool {
        Engine::is_disposed(self)
    }

    fn dispose(&self) {
        Engine::dispose(self);
    }

    fn in_use(&self) -> usize {
        Engine::status(self).in_use
    }
}
