//! [`AsyncEngine`]: the connection pool of one configuration.

use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use deadpool::managed::{Pool, QueueMode, Timeouts};
use uno_db_core::backend::{CredentialSource, DrainStep, EngineCore};
use uno_db_core::nonblocking::{Client, Connection, CredentialProvider, Engine, Listener, Session};
use uno_db_core::{
    AsyncCallbacks, CloseReason, CloseReport, ConnectionConfig, Driver, Error, ErrorKind,
    PoolCounters, PoolStatus, Result, TransactionOptions,
};

use crate::checkout::CheckoutFuture;
use crate::connect;
use crate::connection::AsyncConnection;
use crate::deadline_queue::DeadlineQueue;
use crate::listener::AsyncListener;
use crate::manager::ConnManager;
use crate::multiplexed::MultiplexedClient;
use crate::multiplexer::Multiplexer;
use crate::pool_ops;
use crate::reaper;
use crate::release::{self, Handover};
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
    /// The shared connections of the multiplexed mode, when
    /// `multiplex_connections` is above 0.
    multiplexer: Option<Arc<Multiplexer>>,
    /// The pool's checkout that does not wait: a checkout that finds
    /// nothing free waits in the engine's own queue instead (see
    /// [`DeadlineQueue`]).
    try_now: Timeouts,
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
            checkout_waits: DeadlineQueue::line(core.config().pool_timeout(), release::hand_on),
            watchdog: Watchdog::default(),
            credentials: provider,
            core,
            callbacks,
            reaper_started: AtomicBool::new(false),
            resizing: Mutex::new(()),
            filling: tokio::sync::Mutex::new(()),
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
        let multiplexer = match shared.core.config().multiplex_connections() {
            0 => None,
            count => Some(Arc::new(Multiplexer::new(Arc::clone(&shared), count))),
        };
        Ok(Self {
            try_now: Timeouts {
                wait: Some(Duration::ZERO),
                ..pool.timeouts()
            },
            shared,
            pool,
            multiplexer,
        })
    }

    /// Checks out a connection, waiting at most `pool_timeout`; the
    /// concrete form of [`Engine::connect`]. With
    /// `leak_detection_threshold` set, a leak report names the caller of
    /// this method (`#[track_caller]`, captured before the future starts).
    ///
    /// # Errors
    ///
    /// [`PoolTimeout`](ErrorKind::PoolTimeout) (with the last connection
    /// failure as its source when connecting is failing),
    /// [`PoolClosed`](ErrorKind::PoolClosed) after [`dispose`](Engine::dispose),
    /// or the connect, auth or callback error of a permanent failure.
    #[track_caller]
    pub fn checkout(&self) -> impl Future<Output = Result<AsyncConnection>> + Send + '_ {
        self.checkout_from(Location::caller())
    }

    fn checkout_from(
        &self,
        location: &'static Location<'static>,
    ) -> impl Future<Output = Result<AsyncConnection>> + Send + '_ {
        CheckoutFuture::new(
            self,
            location,
            self.pool.timeout_get(&self.try_now),
            |engine| engine.pool.timeout_get(&engine.try_now),
        )
    }

    pub(crate) fn shared(&self) -> &Arc<EngineShared> {
        &self.shared
    }

    pub(crate) fn checkout_waits(&self) -> &DeadlineQueue<Handover> {
        &self.shared.checkout_waits
    }

    /// Checks out a connection and begins a transaction; the concrete form
    /// of [`Engine::session`]. Leak reports name its caller, as for
    /// [`checkout`](Self::checkout).
    ///
    /// # Errors
    ///
    /// As [`checkout`](Self::checkout), or `BEGIN` failed.
    #[track_caller]
    pub fn transaction<'a>(
        &'a self,
        options: &'a TransactionOptions,
    ) -> impl Future<Output = Result<AsyncSession>> + Send + 'a {
        let location = Location::caller();
        async move {
            self.checkout_from(location)
                .await?
                .transaction(options)
                .await
        }
    }

    /// A client of the multiplexed mode: autocommit statements of many
    /// tasks pipelined over `multiplex_connections` shared connections,
    /// opened on first use besides the pool; the concrete form of
    /// [`Engine::multiplexed`]. See [`MultiplexedClient`] for what it
    /// refuses and how faults end.
    ///
    /// # Errors
    ///
    /// [`Unsupported`](ErrorKind::Unsupported) when `multiplex_connections`
    /// is 0 (the default), [`PoolClosed`](ErrorKind::PoolClosed) after
    /// [`dispose`](Engine::dispose).
    pub fn multiplexed(&self) -> Result<MultiplexedClient> {
        let core = &self.shared.core;
        if core.is_disposed() {
            return Err(core.disposed_error());
        }
        match &self.multiplexer {
            Some(multiplexer) => Ok(MultiplexedClient::new(Arc::clone(multiplexer))),
            None => Err(Error::with_message(
                ErrorKind::Unsupported,
                "the multiplexed mode is off: set multiplex_connections (for example \
                 ?multiplex_connections=4) to the number of shared connections",
            )),
        }
    }

    /// Opens connections until `min_idle` are idle, within `pool_timeout`;
    /// the concrete form of [`Engine::warm_up`].
    ///
    /// # Errors
    ///
    /// As [`Engine::warm_up`].
    pub async fn warm_up(&self) -> Result<()> {
        let core = &self.shared.core;
        if core.is_disposed() {
            return Err(core.disposed_error());
        }
        self.start_background();
        let started = Instant::now();
        pool_ops::fill(
            &self.pool,
            &self.shared,
            started,
            started + core.config().pool_timeout(),
        )
        .await
    }

    /// Drains the pool, waiting at most `deadline` for checked-out
    /// connections; the concrete form of [`Engine::close`].
    pub async fn close(&self, deadline: Duration) -> CloseReport {
        let core = &self.shared.core;
        Engine::dispose(self);
        // What is left in the pool is checked out (or being returned).
        let drain = core.drain(deadline, self.pool.status().size);
        loop {
            match core.drain_step(&drain, self.pool.status().size) {
                DrainStep::Done(report) => return report,
                DrainStep::Wait(wait) => tokio::time::sleep(wait).await,
                DrainStep::Force(forced) => {
                    let outcome = match forced.sql() {
                        None => Ok(()),
                        Some(sql) => tokio::time::timeout(
                            forced.limit(),
                            connect::run_detached(&self.shared, sql),
                        )
                        .await
                        .unwrap_or_else(|_| Err(forced.timed_out())),
                    };
                    return core.forced_close_ended(&forced, &outcome);
                }
            }
        }
    }

    /// Resizes deadpool to the kernel's new maximum; idle connections it
    /// drops beyond it are recorded as closed (`Overflow`).
    fn resize(&self, change: impl FnOnce(&EngineCore) -> Result<usize>) -> Result<()> {
        let _one_at_a_time = self
            .shared
            .resizing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let max = change(&self.shared.core)?;
        let before = self.pool.status();
        self.pool.resize(max);
        let after = self.pool.status().size;
        for _ in after..before.size {
            self.shared.core.record_closed(CloseReason::Overflow);
        }
        // Room for more: the waiting checkouts try the pool again.
        self.shared
            .checkout_waits
            .freed(max.saturating_sub(before.max_size));
        Ok(())
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

    /// Starts, once each, the engine's background tasks that its
    /// configuration asks for: the reaper, the `min_idle` refill and the
    /// leak watch.
    #[inline]
    pub(crate) fn start_background(&self) {
        // Every checkout asks; only the first needs to look further.
        if !self.shared.reaper_started.load(Ordering::Acquire) {
            self.start_background_once();
        }
    }

    #[inline(never)]
    fn start_background_once(&self) {
        if self.shared.reaper_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let config = self.shared.core.config();
        if let Some(period) = reaper::period(config.idle_timeout(), config.pool_recycle()) {
            tokio::spawn(reaper::run(
                self.pool.weak(),
                Arc::downgrade(&self.shared),
                period,
            ));
        }
        if config.min_idle() > 0 {
            tokio::spawn(pool_ops::refill(
                self.pool.weak(),
                Arc::downgrade(&self.shared),
            ));
        }
        if let Some(period) = self.shared.core.leak_scan_period() {
            tokio::spawn(pool_ops::watch_leaks(Arc::downgrade(&self.shared), period));
        }
    }
}

#[async_trait]
impl Engine for AsyncEngine {
    // Written out as `async_trait` would desugar them, so that the
    // caller's location is captured (`#[track_caller]`) before the boxed
    // future starts.
    #[track_caller]
    fn connect<'life0, 'async_trait>(
        &'life0 self,
    ) -> Pin<Box<dyn Future<Output = Result<Box<dyn Connection>>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let location = Location::caller();
        Box::pin(async move {
            let conn: Box<dyn Connection> = Box::new(self.checkout_from(location).await?);
            Ok(conn)
        })
    }

    #[track_caller]
    fn session<'life0, 'life1, 'async_trait>(
        &'life0 self,
        options: &'life1 TransactionOptions,
    ) -> Pin<Box<dyn Future<Output = Result<Box<dyn Session>>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        let location = Location::caller();
        Box::pin(async move {
            let conn = self.checkout_from(location).await?;
            let session: Box<dyn Session> = Box::new(conn.transaction(options).await?);
            Ok(session)
        })
    }

    async fn warm_up(&self) -> Result<()> {
        AsyncEngine::warm_up(self).await
    }

    fn multiplexed(&self) -> Result<Box<dyn Client>> {
        Ok(Box::new(AsyncEngine::multiplexed(self)?))
    }

    async fn close(&self, deadline: Duration) -> CloseReport {
        AsyncEngine::close(self, deadline).await
    }

    fn set_pool_size(&self, pool_size: usize) -> Result<()> {
        self.resize(|core| core.set_limits(Some(pool_size), None))
    }

    fn set_max_overflow(&self, max_overflow: usize) -> Result<()> {
        self.resize(|core| core.set_limits(None, Some(max_overflow)))
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
            max_size: self.shared.core.max_connections(),
            size: status.size,
            idle: status.available,
            in_use: status.size - status.available,
            // Checkouts wait in the engine's queue (the pool's own
            // waiters are `warm_up` and the `min_idle` refill).
            waiting: status.waiting + self.shared.checkout_waits.waiting(),
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
        // Every waiting checkout tries the closed pool, and fails.
        self.shared.checkout_waits.freed(usize::MAX);
        if let Some(multiplexer) = &self.multiplexer {
            multiplexer.dispose();
        }
    }

    fn is_disposed(&self) -> bool {
        self.shared.core.is_disposed()
    }
}
