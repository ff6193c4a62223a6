//! One engine per distinct configuration.

use std::fmt;
use std::sync::Arc;

use uno_db_core::backend::EngineRegistry;
use uno_db_core::blocking;
use uno_db_core::blocking::CredentialProvider;
use uno_db_core::{BlockingCallbacks, ConnectionConfig, Result};

use crate::engine::SyncEngine;

/// Creates [`SyncEngine`]s, one per distinct configuration (compared by
/// [`ConnectionConfig::key`], password included), sharing one callback
/// registry.
///
/// Cloning shares the engines and the callbacks. After
/// [`dispose_all`](blocking::EngineFactory::dispose_all) the factory hands
/// out no more engines. An engine disposed on its own is replaced by a new
/// one on the next request for its configuration. An engine not asked for
/// in 10 minutes, with no connection checked out and no `Arc` of it held
/// outside the factory, is disposed and dropped (see [`EngineRegistry`]).
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
    engines: EngineRegistry<SyncEngine>,
    callbacks: BlockingCallbacks,
    credentials: Option<Arc<dyn CredentialProvider>>,
}

impl SyncEngineFactory {
    /// A factory with no engines and no callbacks.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A factory whose engines ask `provider` for the password of every
    /// new physical connection, so that rotated credentials need no new
    /// engine (see [`CredentialProvider`]). Configurations given to it
    /// must not hold a password.
    ///
    /// ```no_run
    /// use uno_db_core::blocking::EngineFactory;
    /// use uno_db_core::{BoxError, CredentialRequest, SecretString};
    /// use uno_db_sync::SyncEngineFactory;
    ///
    /// let factory = SyncEngineFactory::with_credential_provider(|request: &CredentialRequest| {
    ///     // A real provider asks a secret store (Vault, an IAM token service)
    ///     // for `request.role()`; `after_auth_failure` says the last one was refused.
    ///     let path = format!("/run/secrets/{}-password", request.role());
    ///     let password = std::fs::read_to_string(path)?;
    ///     Ok::<_, BoxError>(SecretString::from(password.trim().to_owned()))
    /// });
    /// let engine = factory.engine(&"postgresql://app@db.internal/orders".parse()?)?;
    /// # Ok::<(), uno_db_core::Error>(())
    /// ```
    #[must_use]
    pub fn with_credential_provider(provider: impl CredentialProvider) -> Self {
        Self {
            inner: Arc::new(FactoryInner {
                credentials: Some(Arc::new(provider)),
                ..FactoryInner::default()
            }),
        }
    }

    /// The engine for `config`, typed (see
    /// [`EngineFactory::engine`](blocking::EngineFactory::engine)).
    ///
    /// # Errors
    ///
    /// The factory was disposed ([`PoolClosed`](uno_db_core::ErrorKind::PoolClosed)), or the engine
    /// could not be created (see [`SyncEngine::new`]).
    pub fn sync_engine(&self, config: &ConnectionConfig) -> Result<Arc<SyncEngine>> {
        self.inner.engines.get_or_create(config, || {
            let callbacks = self.inner.callbacks.clone();
            match &self.inner.credentials {
                Some(provider) => {
                    SyncEngine::with_credential_provider(config, callbacks, Arc::clone(provider))
                }
                None => SyncEngine::with_callbacks(config, callbacks),
            }
        })
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

    fn dispose(&self, config: &ConnectionConfig) -> bool {
        self.inner.engines.dispose(config)
    }

    fn dispose_all(&self) {
        self.inner.engines.dispose_all();
    }
}

impl uno_db_core::backend::RegisteredEngine for SyncEngine {
    fn is_disposed(&self) -> bool {
        blocking::Engine::is_disposed(self)
    }

    fn dispose(&self) {
        blocking::Engine::dispose(self);
    }

    fn in_use(&self) -> usize {
        blocking::Engine::status(self).in_use
    }
}

impl fmt::Debug for SyncEngineFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncEngineFactory")
            .field("engines", &self.inner.engines.len())
            .field("callbacks", &self.inner.callbacks)
            .field("credential_provider", &self.inner.credentials.is_some())
            .field("disposed", &self.inner.engines.is_disposed())
            .finish()
    }
}
