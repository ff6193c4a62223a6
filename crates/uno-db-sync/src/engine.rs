//! [`SyncEngine`]: the connection pool of one configuration.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use r2d2::{Pool, PooledConnection};
use scheduled_thread_pool::{OnPoolDropBehavior, ScheduledThreadPool};
use uno_db_core::backend::{CredentialSource, EngineCore};
use uno_db_core::blocking;
use uno_db_core::blocking::CredentialProvider;
use uno_db_core::{
    BlockingCallbacks, CloseReason, ConnectionConfig, Driver, PoolCounters, PoolStatus, Result,
    TransactionOptions,
};

use crate::connect;
use crate::connection::SyncConnection;
use crate::listener::SyncListener;
use crate::manager::{ConnManager, EventErrorHandler};
use crate::runtime_guard::ensure_blocking_context;
use crate::session::SyncSession;
use crate::shared::EngineShared;

/// How long the checkout at the head of the queue waits in r2d2 before
/// looking whether the engine was disposed (r2d2 does not wake waiters when
/// it is).
const WAIT_SLICE: Duration = Duration::from_millis(100);

/// A pool of blocking `PostgreSQL` connections for one [`ConnectionConfig`].
///
/// At most `pool_size + max_overflow` connections are open; overflow
/// connections close when returned while `pool_size` idle ones wait.
/// Connections open lazily, in the thread that checks them out, retrying
/// transient failures with the configuration's backoff within
/// `pool_timeout`; a permanent failure (wrong password, missing database,
/// failing callback) is returned at once with its real cause, and running
/// out of time returns [`PoolTimeout`](uno_db_core::ErrorKind::PoolTimeout)
/// carrying the last connect error. Waiting checkouts are served first
/// come, first served.
///
/// Every rule about a connection is the kernel's
/// ([`uno_db_core::backend`]), shared with the async backend.
///
/// Cloning shares the pool.
///
/// Called from inside an async runtime (an async task, or a `block_on`
/// body), checkouts and statements fail with
/// [`Unsupported`](uno_db_core::ErrorKind::Unsupported) rather than stall
/// the runtime: use uno-db-async there, or `tokio::task::spawn_blocking`,
/// or `tokio::task::block_in_place` on a multi-threaded runtime. Dropping
/// connections or engines works anywhere.
///
/// ```no_run
/// use uno_db_core::ConnectionConfig;
/// use uno_db_core::blocking::Client;
/// use uno_db_sync::SyncEngine;
///
/// let config: ConnectionConfig = "postgresql://postgres@127.0.0.1/test".parse()?;
/// let engine = SyncEngine::new(&config)?;
/// let mut conn = engine.checkout()?;
/// let row = conn.query_one("SELECT $1::int + 1", &[&41_i32])?;
/// assert_eq!(row.get::<_, i32>(0), 42);
/// # Ok::<(), uno_db_core::Error>(())
/// ```
#[derive(Clone)]
pub struct SyncEngine {
    shared: Arc<EngineShared>,
    pool: Pool<ConnManager>,
}

impl SyncEngine {
    /// An engine for `config` with no connection callbacks. Connects
    /// lazily, on the first checkout.
    ///
    /// # Errors
    ///
    /// The configuration names the async driver
    /// ([`Config`](uno_db_core::ErrorKind::Config)), or a TLS file changed
    /// since the configuration was built and is no longer usable (also
    /// `Config`).
    pub fn new(config: &ConnectionConfig) -> Result<Self> {
        Self::with_callbacks(config, BlockingCallbacks::new())
    }

    /// As [`new`](Self::new), running `callbacks` on every new physical
    /// connection (the registry is shared, not copied).
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_callbacks(config: &ConnectionConfig, callbacks: BlockingCallbacks) -> Result<Self> {
        Self::build(config, callbacks, None)
    }

    /// As [`with_callbacks`](Self::with_callbacks), asking `provider` for
    /// the password of every new physical connection (see
    /// [`CredentialProvider`]); the configuration must not hold a
    /// password.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new), and [`Config`](uno_db_core::ErrorKind::Config)
    /// when the configuration has a password.
    pub fn with_credential_provider(
        config: &ConnectionConfig,
        callbacks: BlockingCallbacks,
        provider: Arc<dyn CredentialProvider>,
    ) -> Result<Self> {
        Self::build(config, callbacks, Some(provider))
    }

    fn build(
        config: &ConnectionConfig,
        callbacks: BlockingCallbacks,
        provider: Option<Arc<dyn CredentialProvider>>,
    ) -> Result<Self> {
        let source = match provider {
            Some(_) => CredentialSource::Provider,
            None => CredentialSource::Configuration,
        };
        let core = EngineCore::new(config, Driver::Postgres, source)?;
        let shared = Arc::new(EngineShared::new(core, provider, callbacks));
        let pool = build_pool(&shared);
        shared.core.events().engine_created("postgres");
        Ok(Self { shared, pool })
    }

    /// Checks out a connection, waiting at most `pool_timeout`; the
    /// concrete form of [`Engine::connect`](blocking::Engine::connect).
    ///
    /// # Errors
    ///
    /// [`PoolTimeout`](uno_db_core::ErrorKind::PoolTimeout) (with the last
    /// connection failure as its source when connecting is failing),
    /// [`PoolClosed`](uno_db_core::ErrorKind::PoolClosed) after
    /// [`dispose`](blocking::Engine::dispose),
    /// [`Unsupported`](uno_db_core::ErrorKind::Unsupported) inside an async
    /// runtime, or the connect, auth or callback error of a permanent
    /// failure.
    pub fn checkout(&self) -> Result<SyncConnection> {
        ensure_blocking_context()?;
        let core = &self.shared.core;
        if core.is_disposed() {
            return Err(core.disposed_error());
        }
        let checkout = core.checkout_started();
        let _in_span = checkout.span().enter();
        let started = checkout.started();
        let mut slot = self.wait_for_slot(started)?;
        if let Some(conn) = slot.0.as_mut() {
            let now = Instant::now();
            let closed = if core.checkout_looks_for_silent_close(&conn.state, now) {
                conn.poll_closed()
            } else {
                conn.is_closed()
            };
            let verdict = core.checkout_verdict(&conn.state, closed, now).or_else(|| {
                let probe = core.checkout_probe(&conn.state, now)?;
                match conn.probe_row(probe, core.housekeeping_timeout()) {
                    Ok(row) => {
                        let row: Vec<Option<&str>> = row.iter().map(Option::as_deref).collect();
                        core.probe_answered(&mut conn.state, probe, &row, now)
                    }
                    Err(_) => Some(CloseReason::Broken),
                }
            });
            if let Some(reason) = verdict {
                // Closed now; this checkout opens a fresh one in its place.
                conn.state.close_for(reason);
                slot.0 = None;
            }
        }
        if slot.0.is_none() {
            slot.0 = Some(Box::new(connect::open(&self.shared, started)?));
        }
        core.checkout_succeeded(started);
        if let Some(conn) = slot.0.as_mut() {
            core.handed_out(&mut conn.state);
        }
        Ok(SyncConnection::pooled(
            slot,
            Arc::clone(&self.shared),
            self.pool.clone(),
        ))
    }

    /// Checks out a connection and begins a transaction on it; the concrete
    /// form of [`Engine::session`](blocking::Engine::session).
    ///
    /// # Errors
    ///
    /// As [`checkout`](Self::checkout), or `BEGIN` failed.
    pub fn transaction(&self, options: &TransactionOptions) -> Result<SyncSession> {
        self.checkout()?.transaction(options)
    }

    /// The connection callbacks of this engine.
    #[must_use]
    pub fn callbacks(&self) -> &BlockingCallbacks {
        &self.shared.callbacks
    }

    /// Waits, first come first served, for a place in the pool until
    /// `pool_timeout` from `started`.
    fn wait_for_slot(&self, started: Instant) -> Result<PooledConnection<ConnManager>> {
        let core = &self.shared.core;
        // Nobody waits and a connection is idle: take it, no queueing.
        if self.shared.queue.len() == 0
            && let Some(slot) = self.pool.try_get()
        {
            return Ok(slot);
        }
        let deadline = started + core.config().pool_timeout();
        let place = self.shared.queue.join();
        let gave_up = |core: &EngineCore| {
            if core.is_disposed() {
                core.disposed_error()
            } else {
                core.checkout_timed_out(started, None)
            }
        };
        if !place.wait_turn(deadline, || core.is_disposed()) {
            return Err(gave_up(core));
        }
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if core.is_disposed() || remaining.is_zero() {
                return Err(gave_up(core));
            }
            // r2d2 rejects a zero timeout.
            let slice = remaining.min(WAIT_SLICE).max(Duration::from_millis(1));
            if let Ok(mut slot) = self.pool.get_timeout(slice) {
                if core.is_disposed() {
                    if let Some(conn) = slot.0.as_mut() {
                        conn.state.close_for(CloseReason::Disposed);
                    }
                    return Err(core.disposed_error());
                }
                return Ok(slot);
            }
        }
    }
}

fn build_pool(shared: &Arc<EngineShared>) -> Pool<ConnManager> {
    let config = shared.core.config();
    let max_size = u32::try_from(shared.core.config().max_connections())
        .unwrap_or(u32::MAX)
        .max(1);
    let non_zero = |d: Option<Duration>| d.filter(|d| !d.is_zero());
    Pool::builder()
        .max_size(max_size)
        // Slots are filled on checkout; nothing to open ahead of time.
        .min_idle(Some(0))
        // Checkout checks are the kernel's, run by `checkout`.
        .test_on_check_out(false)
        // r2d2's reaper closes what idles or lives too long between
        // checkouts; checkouts apply the same rules exactly.
        .max_lifetime(non_zero(config.pool_recycle()))
        .idle_timeout(non_zero(config.idle_timeout()))
        .connection_timeout(config.pool_timeout().max(Duration::from_millis(1)))
        .error_handler(Box::new(EventErrorHandler(Arc::clone(shared))))
        // One worker per engine makes slots and reaps; it stops with the pool.
        .thread_pool(Arc::new(
            ScheduledThreadPool::builder()
                .num_threads(1)
                .thread_name_pattern("uno-db-sync-pool-{}")
                // The 30 s reaper tick must not keep the thread alive after
                // the pool is gone.
                .on_drop_behavior(OnPoolDropBehavior::DiscardPendingScheduled)
                .build(),
        ))
        .build_unchecked(ConnManager {
            shared: Arc::clone(shared),
        })
}

impl SyncEngine {
    /// Opens a listener on a dedicated connection; the concrete form of
    /// [`Engine::listener`](blocking::Engine::listener).
    ///
    /// # Errors
    ///
    /// [`PoolClosed`](uno_db_core::ErrorKind::PoolClosed) after
    /// [`dispose`](blocking::Engine::dispose),
    /// [`Unsupported`](uno_db_core::ErrorKind::Unsupported) inside an async
    /// runtime, or the connect, auth or callback error a checkout would
    /// give.
    pub fn open_listener(&self) -> Result<SyncListener> {
        SyncListener::open(Arc::clone(&self.shared))
    }
}

impl blocking::Engine for SyncEngine {
    fn listener(&self) -> Result<Box<dyn blocking::Listener>> {
        Ok(Box::new(self.open_listener()?))
    }

    fn connect(&self) -> Result<Box<dyn blocking::Connection>> {
        Ok(Box::new(self.checkout()?))
    }

    fn session(&self, options: &TransactionOptions) -> Result<Box<dyn blocking::Session>> {
        Ok(Box::new(self.transaction(options)?))
    }

    fn config(&self) -> &ConnectionConfig {
        self.shared.core.config()
    }

    fn status(&self) -> PoolStatus {
        let state = self.pool.state();
        let size = state.connections as usize;
        let idle = state.idle_connections as usize;
        PoolStatus {
            max_size: self.shared.core.config().max_connections(),
            size,
            idle,
            in_use: size.saturating_sub(idle),
            waiting: self.shared.queue.len(),
        }
    }

    fn counters(&self) -> PoolCounters {
        self.shared.core.metrics().snapshot()
    }

    fn dispose(&self) {
        if !self.shared.core.dispose() {
            return;
        }
        self.shared.queue.wake_all();
        // Close the idle connections now; checked-out ones close when
        // returned (the kernel's return plan sees the engine disposed).
        while let Some(mut idle) = self.pool.try_get() {
            match idle.0.as_mut() {
                Some(conn) => conn.state.close_for(CloseReason::Disposed),
                None => idle.0 = None,
            }
        }
    }

    fn is_disposed(&self) -> bool {
        self.shared.core.is_disposed()
    }
}

impl fmt::Debug for SyncEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncEngine")
            .field("config", &self.shared.core.config().to_url())
            .field("status", &blocking::Engine::status(self))
            .finish()
    }
}
