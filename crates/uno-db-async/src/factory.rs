//! [`AsyncEngineFactory`]: one engine per distinct configuration.

use std::sync::Arc;

use uno_db_core::backend::EngineRegistry;
use uno_db_core::nonblocking::{CredentialProvider, Engine, EngineFactory};
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
    credentials: Option<Arc<dyn CredentialProvider>>,
}

impl std::fmt::Debug for AsyncEngineFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncEngineFactory")
            .field("engines", &self.inner.engines.len())
            .field("callbacks", &self.inner.callbacks)
            .field("credential_provider", &self.inner.credentials.is_some())
            .finish()
    }
}

impl AsyncEngineFactory {
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
    /// use uno_db_async::AsyncEngineFactory;
    /// use uno_db_core::nonblocking::EngineFactory;
    /// use uno_db_core::{CredentialRequest, SecretString};
    ///
    /// # async fn run() -> uno_db_core::Result<()> {
    /// let factory = AsyncEngineFactory::with_credential_provider(|request: CredentialRequest| async move {
    ///     // A real provider asks a secret store (Vault, an IAM token service).
    ///     let password = tokio::fs::read_to_string("/run/secrets/db-password").await?;
    ///     Ok::<_, uno_db_core::BoxError>(SecretString::from(password.trim().to_owned()))
    /// });
    /// let engine = factory.engine(&"postgresql://app@db.internal/orders".parse()?)?;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn with_credential_provider(provider: impl CredentialProvider) -> Self {
        Self {
            inner: Arc::new(Inner {
                credentials: Some(Arc::new(provider)),
                ..Inner::default()
            }),
        }
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
            let callbacks = self.inner.callbacks.clone();
            match &self.inner.credentials {
                Some(provider) => {
                    AsyncEngine::with_credential_provider(config, callbacks, Arc::clone(provider))
                }
                None => AsyncEngine::with_callbacks(config, callbacks),
            }
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
