//! [`AsyncEngine`]: the connection pool of one configuration.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use deadpool::managed::{Pool, PoolError, QueueMode};
use tracing::Instrument as _;
use uno_db_core::backend::{CredentialSource, EngineCore};
use uno_db_core::nonblocking::{Connection, CredentialProvider, Engine, Listener, Session};
use uno_db_core::{
    AsyncCallbacks, ConnectionConfig, Driver, Error, ErrorKind, PoolCounters, PoolStatus, Result,
    TransactionOptions,
};

use crate::connection::AsyncConnection;
use crate::listener::AsyncListener;
use crate::manager::ConnManager;
use crate::reaper;
use crate::session::AsyncSession;
use crate::shared::EngineShared;
use crate::watchdog::Watchdog;

/// A pool of tokio-postgres connections for one [`ConnectionConfig`].
///
/// At most `pool_size + max_overflow` connections are open; overflow
/// connections close when returned while `pool_size` idle ones wait.
/// Connections open lazily, retrying transient failures with the
/// configuration's backoff; a checkout waits at most `pool_timeout`, and
/// when it gives up while the server is unreachable the error carries the
/// last connection failure. Idle connections past `idle_timeout` or
/// `pool_recycle` (shortened by up to 10% of jitter) are closed by a
/// background task started on the first checkout.
///
/// ```no_run
/// use uno_db_async::AsyncEngine;
/// use uno_db_core::nonblocking::Client;
///
/// # async fn demo() -> uno_db_core::Result<()> {
/// let engine = AsyncEngine::new(&"postgresql://app@db/orders".parse()?)?;
/// let mut conn = engine.checkout().await?;
/// let row = conn.query_one("SELECT $1::int + 1", &[&41_i32]).await?;
/// assert_eq!(row.get::<_, i32>(0), 42);
/// # Ok(())
/// # }
/// ```
pub struct AsyncEngine {
    shared: Arc<EngineShared>,
    pool: Pool<ConnManager>,
}

impl std::fmt::Debug for AsyncEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncEngine")
            .field("config", &self.shared.core.config().to_url())
            .field("status", &self.status())
            .finish()
    }
}

impl AsyncEngine {
    /// An engine for `config` with no connection callbacks. Connects
    /// lazily, on the first checkout.
    ///
    /// # Errors
    ///
    /// The configuration names the blocking driver, or a TLS file changed
    /// since the configuration was built and is no longer usable
    /// ([`Config`](ErrorKind::Config)).
    pub fn new(config: &ConnectionConfig) -> Result<Self> {
        Self::with_callbacks(config, AsyncCallbacks::new())
    }

    /// As [`new`](Self::new), running `callbacks` on every new physical
    /// connection (the registry is shared, not copied).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_callbacks(config: &ConnectionConfig, callbacks: AsyncCallbacks) -> Result<Self> {
        Self::build(config, callbacks, None)
    }

    /// As [`with_callbacks`](Self::with_callbacks), asking `provider` for
    /// the password of every new physical connection (see
    /// [`CredentialProvider`]); the configuration must not hold a
    /// password.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new), and [`Config`](ErrorKind::Config) when the
    /// configuration has a password.
    pub fn with_credential_provider(
        config: &ConnectionConfig,
        callbacks: AsyncCallbacks,
        provider: Arc<dyn CredentialProvider>,
    ) -> Result<Self> {
        Self::build(config, callbacks, Some(provider))
    }

    fn build(
        config: &ConnectionConfig,
        callbacks: AsyncCallbacks,
        provider: Option<Arc<dyn CredentialProvider>>,
    ) -> Result<Self> {
        let source = match provider {
            Some(_) => CredentialSource::Provider,
            None => CredentialSource::Configuration,
        };
        let core = EngineCore::new(config, Driver::TokioPostgres, source)?;
        let shared = Arc::new(EngineShared {
            watchdog: Watchdog::default(),
            credentials: provider,
            core,
            callbacks,
            reaper_started: AtomicBool::new(false),
        });
        let manager = ConnManager {
            shared: Arc::clone(&shared),
        };
        // LIFO keeps the most recently used connections busy, so surplus
        // ones go idle and are reaped by `idle_timeout`.
        let pool = Pool::builder(manager)
            .max_size(shared.core.config().max_connections())
            .queue_mode(QueueMode::Lifo)
            .build()
            .map_err(|e| {
                Error::with_message(ErrorKind::Config, "could not build the pool").with_source(e)
            })?;
        shared.core.events().engine_created("tokio-postgres");
        Ok(Self { shared, pool })
    }

    /// Checks out a connection, waiting at most `pool_timeout`; the
    /// concrete form of [`Engine::connect`].
    ///
    /// # Errors
    ///
    /// [`PoolTimeout`](ErrorKind::PoolTimeout) (with the last connection
    /// failure as its source when connecting is failing),
    /// [`PoolClosed`](ErrorKind::PoolClosed) after [`dispose`](Engine::dispose),
    /// or the connect, auth or callback error of a permanent failure.
    pub async fn checkout(&self) -> Result<AsyncConnection> {
        let core = &self.shared.core;
        if core.is_disposed() {
            return Err(core.disposed_error());
        }
        self.start_reaper();
        let checkout = core.checkout_started();
        let started = checkout.started();
        let span = checkout.span().clone();
        async {
            let mut get = std::pin::pin!(self.pool.get());
            let got = tokio::time::timeout(core.config().pool_timeout(), get.as_mut()).await;
            self.checked_out(got, started)
        }
        .instrument(span)
        .await
    }

    /// The outcome of a checkout that began at `started`.
    fn checked_out(
        &self,
        got: std::result::Result<
            std::result::Result<deadpool::managed::Object<ConnManager>, PoolError<Error>>,
            tokio::time::error::Elapsed,
        >,
        started: Instant,
    ) -> Result<AsyncConnection> {
        let core = &self.shared.core;
        match got {
            Ok(Ok(mut object)) => {
                core.checkout_succeeded(started);
                core.handed_out(&mut object.state);
                Ok(AsyncConnection::pooled(object, Arc::clone(&self.shared)))
            }
            Ok(Err(PoolError::Backend(error))) => Err(error),
            Ok(Err(PoolError::Closed)) => Err(core.disposed_error()),
            Ok(Err(PoolError::Timeout(_))) | Err(_) => Err(core.checkout_timed_out(started, None)),
            Ok(Err(PoolError::NoRuntimeSpecified | PoolError::PostCreateHook(_))) => {
                Err(Error::with_message(
                    ErrorKind::Unsupported,
                    "the pool is configured with a timeout but no runtime",
                ))
            }
        }
    }

    /// Checks out a connection and begins a transaction; the concrete form
    /// of [`Engine::session`].
    ///
    /// # Errors
    ///
    /// As [`checkout`](Self::checkout), or `BEGIN` failed.
    pub async fn transaction(&self, options: &TransactionOptions) -> Result<AsyncSession> {
        self.checkout().await?.transaction(options).await
    }

    /// Opens a listener on a dedicated connection; the concrete form of
    /// [`Engine::listener`].
    ///
    /// # Errors
    ///
    /// [`PoolClosed`](ErrorKind::PoolClosed) after
    /// [`dispose`](Engine::dispose), or the connect, auth or callback
    /// error a checkout would give.
    pub async fn open_listener(&self) -> Result<AsyncListener> {
        AsyncListener::open(Arc::clone(&self.shared)).await
    }

    /// The connection callbacks of this engine.
    #[must_use]
    pub fn callbacks(&self) -> &AsyncCallbacks {
        &self.shared.callbacks
    }

    fn start_reaper(&self) {
        // Every checkout asks; only the first needs to look further.
        if self.shared.reaper_started.load(Ordering::Acquire) {
            return;
        }
        let config = self.shared.core.config();
        let Some(period) = reaper::period(config.idle_timeout(), config.pool_recycle()) else {
            return;
        };
        if self.shared.reaper_started.swap(true, Ordering::AcqRel) {
            return;
        }
        tokio::spawn(reaper::run(
            self.pool.weak(),
            Arc::downgrade(&self.shared),
            period,
        ));
    }
}

#[async_trait]
impl Engine for AsyncEngine {
    async fn connect(&self) -> Result<Box<dyn Connection>> {
        Ok(Box::new(self.checkout().await?))
    }

    async fn session(&self, options: &TransactionOptions) -> Result<Box<dyn Session>> {
        Ok(Box::new(self.transaction(options).await?))
    }

    async fn listener(&self) -> Result<Box<dyn Listener>> {
        Ok(Box::new(self.open_listener().await?))
    }

    fn config(&self) -> &ConnectionConfig {
        self.shared.core.config()
    }

    fn status(&self) -> PoolStatus {
        // deadpool counts a connection as in use from the moment a caller
        // starts checking it out until its return (cleanup included) ends.
        let status = self.pool.status();
        PoolStatus {
            max_size: self.shared.core.config().max_connections(),
            size: status.size,
            idle: status.available,
            in_use: status.size - status.available,
            waiting: status.waiting,
        }
    }

    fn counters(&self) -> PoolCounters {
        self.shared.core.metrics().snapshot()
    }

    fn dispose(&self) {
        if !self.shared.core.dispose() {
            return;
        }
        // Idle connections close now (recorded through `detach`); checked-out
        // ones close when returned.
        drop(self.pool.retain(|_, _| false));
        self.pool.close();
    }

    fn is_disposed(&self) -> bool {
        self.shared.core.is_disposed()
    }
}
