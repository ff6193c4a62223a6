//! One engine per distinct configuration.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use uno_db_core::blocking::{self, Engine as _};
use uno_db_core::{BlockingCallbacks, ConnectionConfig, Error, ErrorKind, Result};

use crate::engine::SyncEngine;

/// Creates [`SyncEngine`]s, one per distinct configuration (compared by
/// its full URL, password included), sharing one callback registry.
///
/// Cloning shares the engines and the callbacks. After
/// [`dispose_all`](blocking::EngineFactory::dispose_all) the factory hands
/// out no more engines. An engine disposed on its own is replaced by a new
/// one on the next request for its configuration.
///
/// ```no_run
/// use uno_db_core::blocking::EngineFactory;
/// use uno_db_sync::SyncEngineFactory;
///
/// let factory = SyncEngineFactory::new();
/// factory.callbacks().register("utc", |conn| {
///     conn.batch_execute("SET TIME ZONE 'UTC'")?;
///     Ok(())
/// });
/// let engine = factory.engine(&"postgresql://postgres@127.0.0.1/test".parse()?)?;
/// let mut conn = engine.connect()?;
/// conn.execute("SELECT 1", &[])?;
/// # Ok::<(), uno_db_core::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct SyncEngineFactory {
    inner: Arc<FactoryInner>,
}

#[derive(Default)]
struct FactoryInner {
    engines: Mutex<HashMap<String, Arc<SyncEngine>>>,
    callbacks: BlockingCallbacks,
    disposed: AtomicBool,
}

impl SyncEngineFactory {
    /// A factory with no engines and no callbacks.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The engine for `config`, typed (see
    /// [`EngineFactory::engine`](blocking::EngineFactory::engine)).
    ///
    /// # Errors
    ///
    /// The factory was disposed ([`ErrorKind::PoolClosed`]), or the engine
    /// could not be created (see [`SyncEngine::new`]).
    pub fn sync_engine(&self, config: &ConnectionConfig) -> Result<Arc<SyncEngine>> {
        if self.inner.disposed.load(Ordering::Acquire) {
            return Err(Error::with_message(
                ErrorKind::PoolClosed,
                "the engine factory is disposed",
            ));
        }
        let key = config.to_url_with_password();
        let mut engines = self
            .inner
            .engines
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(engine) = engines.get(&key)
            && !engine.is_disposed()
        {
            return Ok(Arc::clone(engine));
        }
        let engine = Arc::new(SyncEngine::with_callbacks(
            config,
            self.inner.callbacks.clone(),
        )?);
        engines.insert(key, Arc::clone(&engine));
        Ok(engine)
    }
}

impl blocking::EngineFactory for SyncEngineFactory {
    fn engine(&self, config: &ConnectionConfig) -> Result<Arc<dyn blocking::Engine>> {
        let engine: Arc<dyn blocking::Engine> = self.sync_engine(config)?;
        Ok(engine)
    }

    fn callbacks(&self) -> &BlockingCallbacks {
        &self.inner.callbacks
    }

    fn dispose_all(&self) {
        self.inner.disposed.store(true, Ordering::Release);
        let engines: Vec<Arc<SyncEngine>> = self
            .inner
            .engines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, engine)| engine)
            .collect();
        for engine in engines {
            engine.dispose();
        }
    }
}

impl fmt::Debug for SyncEngineFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let engines = self
            .inner
            .engines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("SyncEngineFactory")
            .field("engines", &engines)
            .field("callbacks", &self.inner.callbacks)
            .field("disposed", &self.inner.disposed.load(Ordering::Acquire))
            .finish()
    }
}
