//! The blocking engine: an r2d2 pool of lazily connected slots.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use r2d2::{Pool, PooledConnection};
use scheduled_thread_pool::{OnPoolDropBehavior, ScheduledThreadPool};
use uno_db_core::blocking::{self, Connection as _};
use uno_db_core::{
    BlockingCallbacks, CloseReason, ConnectionConfig, Driver, Error, ErrorKind, PoolCounters,
    PoolStatus, Result, SqlState, TransactionOptions,
};

use crate::connection::SyncConnection;
use crate::connector::connect_within;
use crate::engine_state::EngineState;
use crate::physical::PhysicalConnection;
use crate::runtime_guard::ensure_blocking_context;
use crate::session::SyncSession;
use crate::slot_manager::{EventErrorHandler, Slot, SlotManager};

/// How long one wait on r2d2 lasts before checking whether the engine was
/// disposed meanwhile (r2d2 does not wake waiters when its pool goes away).
const WAIT_SLICE: Duration = Duration::from_millis(100);

/// The shortest connect attempt a checkout makes, even when `pool_timeout`
/// is nearly used up: a shorter one could not succeed anyway.
const MIN_ATTEMPT: Duration = Duration::from_millis(250);

/// A pool of blocking `PostgreSQL` connections for one configuration.
///
/// Built on r2d2 (`max_size = pool_size + max_overflow`) with connections
/// opened by the `postgres` crate through `r2d2_postgres`. Connections open
/// lazily, in the thread that checks them out: a checkout waits at most
/// `pool_timeout` for a free place in the pool and then connects, retrying
/// transient failures per the configuration's retry policy without going
/// past `pool_timeout`. A permanent failure (wrong password, missing
/// database, failing callback) is returned at once with its real cause;
/// running out of time returns [`ErrorKind::PoolTimeout`] carrying the last
/// connect error.
///
/// A returned connection is closed rather than kept when the pool already
/// holds `pool_size` idle ones (overflow), when it outlived `pool_recycle`
/// (with up to 10% jitter), or when it could not be cleaned. Idle ones are
/// also closed after `idle_timeout` (checked on checkout, and by r2d2's
/// reaper every 30 s).
///
/// Cloning shares the pool.
///
/// Checkouts and statements from a tokio runtime's `block_on` body
/// (`#[tokio::main]`, `#[tokio::test]`) fail with
/// [`ErrorKind::Unsupported`]: use uno-db-async there, or
/// `tokio::task::spawn_blocking`, where everything works. Inside an async
/// task, which tokio does not let us tell apart from `spawn_blocking`, calls
/// work but block a runtime worker. Driver calls on threads with a runtime
/// handle run on a short-lived helper thread, because the `postgres` crate
/// would panic there; dropping connections or engines never panics.
///
/// ```no_run
/// use uno_db_core::ConnectionConfig;
/// use uno_db_core::blocking::Connection;
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
    inner: Arc<EngineInner>,
}

pub(crate) struct EngineInner {
    pub(crate) state: Arc<EngineState>,
    callbacks: BlockingCallbacks,
    pool: RwLock<Option<Pool<SlotManager>>>,
    driver_config: postgres::Config,
    search_path_sql: Option<String>,
    pub(crate) reset_role: bool,
    set_role_sql: Option<String>,
    waiting: AtomicUsize,
    // The last failed connect attempt and when it failed; cleared by a
    // successful one.
    last_connect_error: Mutex<Option<(Instant, Error)>>,
}

impl SyncEngine {
    /// An engine for `config` with no connection callbacks.
    ///
    /// # Errors
    ///
    /// The configuration names the async driver, requires TLS (not compiled
    /// in), or has a schema or `set_role` that is not a valid identifier.
    pub fn new(config: &ConnectionConfig) -> Result<Self> {
        Self::with_callbacks(config, BlockingCallbacks::new())
    }

    /// An engine for `config` running `callbacks` on every new physical
    /// connection. The registry is shared: callbacks registered later apply
    /// to connections opened later.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new).
    pub fn with_callbacks(config: &ConnectionConfig, callbacks: BlockingCallbacks) -> Result<Self> {
        let driver_config = blocking_driver_config(config)?;
        let search_path_sql = config.search_path_statement();
        let set_role_sql = config.set_role_statement();
        let state = Arc::new(EngineState::new(config.clone()));
        let pool = build_pool(config, Arc::clone(&state));
        state.events().engine_created("postgres");
        Ok(Self {
            inner: Arc::new(EngineInner {
                state,
                callbacks,
                pool: RwLock::new(Some(pool)),
                driver_config,
                search_path_sql,
                reset_role: set_role_sql.is_some(),
                set_role_sql,
                waiting: AtomicUsize::new(0),
                last_connect_error: Mutex::new(None),
            }),
        })
    }

    /// The callbacks run on every new physical connection.
    #[must_use]
    pub fn callbacks(&self) -> &BlockingCallbacks {
        &self.inner.callbacks
    }

    /// Checks out a connection (see [`blocking::Engine::connect`]), typed.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::PoolTimeout`] (carrying the last connect error),
    /// [`ErrorKind::PoolClosed`], [`ErrorKind::Unsupported`] inside an async
    /// runtime, or the connect, auth or callback error that made connecting
    /// fail for good.
    pub fn checkout(&self) -> Result<SyncConnection> {
        ensure_blocking_context()?;
        let started = Instant::now();
        let deadline = started + self.inner.state.config.pool_timeout();
        loop {
            let (mut conn, fresh) = self.acquire(started, deadline)?;
            if let Some(sql) = &self.inner.set_role_sql
                && let Err(error) = conn.batch_execute(sql)
            {
                // Without pre_ping an idle connection may have died
                // unnoticed; this round trip noticed: take another one.
                if !fresh && conn.is_closed() {
                    continue;
                }
                return Err(error);
            }
            self.inner.state.metrics.record_acquired(started.elapsed());
            return Ok(conn);
        }
    }

    /// A connection from the pool, connected and initialised, and whether
    /// it was opened just now.
    fn acquire(&self, started: Instant, deadline: Instant) -> Result<(SyncConnection, bool)> {
        let mut pooled = self.wait_for_slot(started, deadline)?;
        if let Some(physical) = &mut pooled.0
            && let Some(reason) = physical.staleness(Instant::now())
        {
            physical.mark_for_close(reason);
            // Closes it; the slot is refilled below.
            pooled.0 = None;
        }
        let fresh = pooled.0.is_none();
        if fresh {
            pooled.0 = Some(self.open(started, deadline)?);
        }
        let mut conn = SyncConnection::new(pooled, Arc::clone(&self.inner));
        if fresh
            && !self.inner.callbacks.is_empty()
            && let Err(error) = self.inner.callbacks.run(&mut conn)
        {
            conn.discard(CloseReason::CallbackFailed, Some(&error));
            return Err(error);
        }
        Ok((conn, fresh))
    }

    /// Checks out a connection and begins a transaction on it, typed.
    ///
    /// # Errors
    ///
    /// As [`checkout`](Self::checkout), or `BEGIN` failed.
    pub fn begin(&self, options: &TransactionOptions) -> Result<SyncSession> {
        SyncSession::begin(self.checkout()?, options)
    }

    fn pool(&self) -> Result<Pool<SlotManager>> {
        self.inner
            .pool
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| Error::new(ErrorKind::PoolClosed))
    }

    /// Waits for a place in the pool until `deadline`.
    fn wait_for_slot(
        &self,
        started: Instant,
        deadline: Instant,
    ) -> Result<PooledConnection<SlotManager>> {
        let pool = self.pool()?;
        let _waiting = WaitingGuard::new(&self.inner.waiting);
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            // r2d2 rejects a zero timeout; give the last slice a moment.
            let slice = remaining.min(WAIT_SLICE).max(Duration::from_millis(1));
            if let Ok(mut pooled) = pool.get_timeout(slice) {
                if self.inner.state.is_disposed() {
                    if let Some(physical) = &mut pooled.0 {
                        physical.mark_for_close(CloseReason::Disposed);
                    }
                    return Err(Error::new(ErrorKind::PoolClosed));
                }
                return Ok(pooled);
            }
            if self.inner.state.is_disposed() {
                return Err(Error::new(ErrorKind::PoolClosed));
            }
            if Instant::now() >= deadline {
                return Err(self.timed_out(started));
            }
        }
    }

    fn timed_out(&self, started: Instant) -> Error {
        let waited = started.elapsed();
        let last = self
            .inner
            .last_connect_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            // Only a failure while this caller waited explains its wait.
            .filter(|(at, _)| *at >= started)
            .map(|(_, error)| error.clone());
        self.timeout_error(waited, last)
    }

    fn timeout_error(&self, waited: Duration, last: Option<Error>) -> Error {
        let error = Error::pool_timeout(waited, last);
        self.inner.state.metrics.record_acquire_timeout(waited);
        self.inner.state.events().acquire_timeout(waited, &error);
        error
    }

    /// Opens a physical connection, retrying transient failures per the
    /// retry policy but not past `deadline`.
    fn open(&self, started: Instant, deadline: Instant) -> Result<PhysicalConnection> {
        let state = &self.inner.state;
        let events = state.events();
        let mut backoff = state.config.retry().backoff();
        loop {
            let attempt = backoff.attempt();
            events.connect_attempt(attempt);
            let attempt_started = Instant::now();
            match self.connect_once(deadline) {
                Ok(physical) => {
                    events.connected(attempt, attempt_started.elapsed());
                    *self
                        .inner
                        .last_connect_error
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = None;
                    return Ok(physical);
                }
                Err(error) => {
                    let delay = backoff.next_delay(&error);
                    *self
                        .inner
                        .last_connect_error
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) =
                        Some((Instant::now(), error.clone()));
                    match delay {
                        Some(delay) if Instant::now() + delay < deadline => {
                            events.connect_retry(attempt, delay, &error);
                            std::thread::sleep(delay);
                        }
                        Some(_) => {
                            events.connect_failed(attempt, &error);
                            return Err(self.timeout_error(started.elapsed(), Some(error)));
                        }
                        None => {
                            events.connect_failed(attempt, &error);
                            return Err(error);
                        }
                    }
                }
            }
        }
    }

    /// One connect attempt, bounded by `connect_timeout` and, beyond
    /// [`MIN_ATTEMPT`], by `deadline`; then `SET search_path`.
    fn connect_once(&self, deadline: Instant) -> Result<PhysicalConnection> {
        let config = &self.inner.state.config;
        let limit = deadline
            .saturating_duration_since(Instant::now())
            .max(MIN_ATTEMPT)
            .min(config.connect_timeout());
        let client = connect_within(&self.inner.driver_config, limit, &config.target())?;
        let mut physical = PhysicalConnection::new(client, Arc::clone(&self.inner.state));
        if let Some(sql) = &self.inner.search_path_sql
            && let Err(error) = physical.batch_execute(sql)
        {
            physical.mark_for_close(CloseReason::Broken);
            return Err(error);
        }
        Ok(physical)
    }
}

impl EngineInner {
    /// The pool's idle count, to decide whether a returned connection is
    /// overflow.
    pub(crate) fn idle_connections(&self) -> Option<usize> {
        let pool = self.pool.read().unwrap_or_else(PoisonError::into_inner);
        pool.as_ref().map(|p| p.state().idle_connections as usize)
    }
}

/// `SET search_path` for a schema or comma-separated list of schemas.
/// The `postgres` driver's configuration for `config`.
fn blocking_driver_config(config: &ConnectionConfig) -> Result<postgres::Config> {
    config.ensure_backend_without_tls(Driver::Postgres)?;
    let mut pg = postgres::Config::from(config.driver_config());
    // ROLLBACK on return may warn "no transaction in progress" when a
    // connection only looked like it might hold one; that warning is noise.
    // Every other notice keeps the driver's default handling.
    pg.notice_callback(|notice| {
        if notice.code() != &SqlState::NO_ACTIVE_SQL_TRANSACTION {
            log::info!("{}: {}", notice.severity(), notice.message());
        }
    });
    Ok(pg)
}

fn build_pool(config: &ConnectionConfig, state: Arc<EngineState>) -> Pool<SlotManager> {
    let max_size = u32::try_from(config.pool_size().saturating_add(config.max_overflow()))
        .unwrap_or(u32::MAX)
        .max(1);
    let non_zero = |d: Option<Duration>| d.filter(|d| !d.is_zero());
    Pool::builder()
        .max_size(max_size)
        // Slots are filled on checkout; nothing to open ahead of time.
        .min_idle(Some(0))
        .test_on_check_out(config.pre_ping())
        .max_lifetime(non_zero(config.pool_recycle()))
        .idle_timeout(non_zero(config.idle_timeout()))
        .connection_timeout(config.pool_timeout().max(Duration::from_millis(1)))
        .error_handler(Box::new(EventErrorHandler::new(config.clone())))
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
        .build_unchecked(SlotManager::new(state))
}

/// Counts a caller as waiting for as long as it lives.
struct WaitingGuard<'a>(&'a AtomicUsize);

impl<'a> WaitingGuard<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl blocking::Engine for SyncEngine {
    fn connect(&self) -> Result<Box<dyn blocking::Connection>> {
        Ok(Box::new(self.checkout()?))
    }

    fn session(&self, options: &TransactionOptions) -> Result<Box<dyn blocking::Session>> {
        Ok(Box::new(self.begin(options)?))
    }

    fn config(&self) -> &ConnectionConfig {
        &self.inner.state.config
    }

    fn status(&self) -> PoolStatus {
        let config = &self.inner.state.config;
        let max_size = config.pool_size().saturating_add(config.max_overflow());
        let waiting = self.inner.waiting.load(Ordering::Relaxed);
        let pool = self
            .inner
            .pool
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        match pool.as_ref() {
            Some(pool) => {
                let state = pool.state();
                let size = state.connections as usize;
                let idle = state.idle_connections as usize;
                PoolStatus {
                    max_size,
                    size,
                    idle,
                    in_use: size.saturating_sub(idle),
                    waiting,
                }
            }
            None => PoolStatus {
                max_size,
                waiting,
                ..PoolStatus::default()
            },
        }
    }

    fn counters(&self) -> PoolCounters {
        self.inner.state.metrics.snapshot()
    }

    fn dispose(&self) {
        if self.inner.state.mark_disposed() {
            return;
        }
        let pool = self
            .inner
            .pool
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(pool) = pool {
            // Close the idle connections now; checked-out ones close when
            // they come back (their connection sees the disposed flag).
            while let Some(mut idle) = pool.try_get() {
                let slot: &mut Slot = &mut idle;
                if let Some(physical) = &mut slot.0 {
                    physical.mark_for_close(CloseReason::Disposed);
                }
            }
        }
        self.inner.state.events().engine_disposed();
    }

    fn is_disposed(&self) -> bool {
        self.inner.state.is_disposed()
    }
}

impl fmt::Debug for SyncEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncEngine")
            .field("config", &self.inner.state.config.to_url())
            .field("disposed", &self.inner.state.is_disposed())
            .finish_non_exhaustive()
    }
}
