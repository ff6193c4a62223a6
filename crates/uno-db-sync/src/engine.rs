//! [`SyncEngine`]: the connection pool of one configuration.

use std::fmt;
use std::panic::Location;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use r2d2::{Pool, PooledConnection};
use scheduled_thread_pool::{OnPoolDropBehavior, ScheduledThreadPool};
use uno_db_core::backend::{
    CredentialSource, DrainStep, EngineCore, ForcedClose, MAX_CONNECTIONS, Striped,
};
use uno_db_core::blocking;
use uno_db_core::blocking::CredentialProvider;
use uno_db_core::{
    BlockingCallbacks, CloseReason, CloseReport, ConnectionConfig, Driver, Error, ErrorKind,
    PoolCounters, PoolStatus, Result, TransactionOptions,
};

use crate::connect;
use crate::connection::{Home, SyncConnection};
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
    /// Held by every clone: the background threads end once it is gone.
    alive: Arc<()>,
    /// Where checked-out connections go back to, one per stripe.
    homes: Arc<Striped<Arc<Home>>>,
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
        let homes = Striped::from_fn(|_| {
            Arc::new(Home {
                shared: Arc::clone(&shared),
                pool: pool.clone(),
            })
        });
        Ok(Self {
            shared,
            pool,
            alive: Arc::new(()),
            homes: Arc::new(homes),
        })
    }

    /// Checks out a connection, waiting at most `pool_timeout`; the
    /// concrete form of [`Engine::connect`](blocking::Engine::connect).
    /// With `leak_detection_threshold` set, a leak report names the caller
    /// of this method (`#[track_caller]`).
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
    #[track_caller]
    pub fn checkout(&self) -> Result<SyncConnection> {
        self.checkout_from(Location::caller())
    }

    fn checkout_from(&self, location: &'static Location<'static>) -> Result<SyncConnection> {
        ensure_blocking_context()?;
        self.start_background();
        let core = &self.shared.core;
        if core.is_disposed() {
            return Err(core.disposed_error());
        }
        // The clock is read for the checkout's start only if it must wait.
        let mut checkout = core.checkout_begun();
        // Entered only when a subscriber wants spans: a `None` of
        // `Option<EnteredSpan>` still ran its drop glue (a call) every time.
        let _in_span;
        if let Some(span) = checkout.span() {
            _in_span = span.clone().entered();
        }
        let mut slot = self.slot(|| checkout.must_wait())?;
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
            match verdict {
                // Closed now; this checkout opens a fresh one in its place.
                Some(reason) => {
                    conn.state.close_for(reason);
                    slot.0 = None;
                }
                None => conn.state.vetted(now),
            }
        }
        if slot.0.is_none() {
            slot.0 = Some(Box::new(connect::open(&self.shared, checkout.must_wait())?));
        }
        let ticket = slot
            .0
            .as_mut()
            .and_then(|conn| core.handed_out(&mut conn.state, checkout.started(), location));
        let (_, home) = self.homes.local();
        Ok(SyncConnection::pooled(slot, Arc::clone(home), ticket))
    }

    /// Checks out a connection and begins a transaction on it; the concrete
    /// form of [`Engine::session`](blocking::Engine::session). Leak
    /// reports name its caller (`#[track_caller]`).
    ///
    /// # Errors
    ///
    /// As [`checkout`](Self::checkout), or `BEGIN` failed.
    #[track_caller]
    pub fn transaction(&self, options: &TransactionOptions) -> Result<SyncSession> {
        self.checkout_from(Location::caller())?.transaction(options)
    }

    /// The connection callbacks of this engine.
    #[must_use]
    pub fn callbacks(&self) -> &BlockingCallbacks {
        &self.shared.callbacks
    }

    /// A place in the pool: an idle connection at once when nobody waits
    /// for one (no queueing, and `started` is not asked), else the turn
    /// [`wait_for_slot`](Self::wait_for_slot) waits for, until
    /// `pool_timeout` from `started()`.
    fn slot(&self, started: impl FnOnce() -> Instant) -> Result<PooledConnection<ConnManager>> {
        if self.shared.queue.len() == 0
            && let Some(slot) = self.pool.try_get()
        {
            return Ok(slot);
        }
        self.wait_for_slot(started())
    }

    /// Waits, first come first served, for a place in the pool until
    /// `pool_timeout` from `started`.
    fn wait_for_slot(&self, started: Instant) -> Result<PooledConnection<ConnManager>> {
        let core = &self.shared.core;
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
            // An idle connection first; else a new slot while the pool is
            // below the kernel's maximum (r2d2's own is only a ceiling, so
            // that the pool can be resized); else wait for a return, which
            // wakes the head of the queue.
            let slot = match self.pool.try_get() {
                Some(slot) => Some(slot),
                None if (self.pool.state().connections as usize) < core.max_connections() => {
                    // One at a time, checking again: r2d2 adds the slot
                    // before `connections` counts it.
                    let _growing = self
                        .shared
                        .growing
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if (self.pool.state().connections as usize) < core.max_connections() {
                        self.pool.get_timeout(slice).ok()
                    } else {
                        None
                    }
                }
                None => {
                    std::thread::park_timeout(slice);
                    None
                }
            };
            // A slot r2d2 added late (its single worker lags under load)
            // may take the pool past the kernel's maximum: an empty one
            // beyond it is dropped (r2d2 discards empty slots), never
            // filled with a connection.
            let slot = slot.filter(|slot| {
                slot.0.is_some()
                    || (self.pool.state().connections as usize) <= core.max_connections()
            });
            if let Some(mut slot) = slot {
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

    /// Opens connections until the kernel sees `min_idle` idle ones (or
    /// the pool's maximum) by holding checkouts until enough are out, then
    /// returning them all; waits at most `pool_timeout` from `started`.
    fn fill(&self, started: Instant) -> Result<()> {
        let core = &self.shared.core;
        let _one_at_a_time = self
            .shared
            .filling
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut held = Vec::new();
        loop {
            if core.is_disposed() {
                return Err(core.disposed_error());
            }
            let state = self.pool.state();
            let idle = state.idle_connections as usize + held.len();
            if core.idle_deficit(state.connections as usize, idle) == 0 {
                // Fresh or idle, they are clean: straight back to the pool.
                drop(held);
                self.shared.queue.wake_head();
                return Ok(());
            }
            let mut slot = self.slot(|| started).map_err(|error| {
                if error.kind() == ErrorKind::PoolTimeout {
                    core.warm_up_failed(started, None)
                } else {
                    error
                }
            })?;
            if slot.0.is_none() {
                slot.0 = Some(Box::new(connect::open(&self.shared, started)?));
            }
            held.push(slot);
        }
    }

    /// Opens connections until `min_idle` are idle, within `pool_timeout`;
    /// the concrete form of [`Engine::warm_up`](blocking::Engine::warm_up).
    ///
    /// # Errors
    ///
    /// As [`Engine::warm_up`](blocking::Engine::warm_up), and
    /// [`Unsupported`](ErrorKind::Unsupported) inside an async runtime.
    pub fn warm_up(&self) -> Result<()> {
        ensure_blocking_context()?;
        let core = &self.shared.core;
        if core.is_disposed() {
            return Err(core.disposed_error());
        }
        self.start_background();
        self.fill(Instant::now())
    }

    /// Drains the pool, waiting at most `deadline` for checked-out
    /// connections; the concrete form of
    /// [`Engine::close`](blocking::Engine::close). Waiting works anywhere
    /// (also inside an async runtime, where it blocks the thread).
    pub fn close(&self, deadline: Duration) -> CloseReport {
        let core = &self.shared.core;
        blocking::Engine::dispose(self);
        let drain = core.drain(deadline, self.pool.state().connections as usize);
        loop {
            match core.drain_step(&drain, self.pool.state().connections as usize) {
                DrainStep::Done(report) => return report,
                DrainStep::Wait(wait) => std::thread::sleep(wait),
                DrainStep::Force(forced) => {
                    let outcome = self.end_on_server(&forced);
                    return core.forced_close_ended(&forced, &outcome);
                }
            }
        }
    }

    /// Ends on the server the connections a drain's deadline left open
    /// (their users hold the sockets): the kernel's statement, on a
    /// connection of its own, from a helper thread (the driver may not
    /// block inside an async runtime), waited for within the kernel's
    /// limit.
    fn end_on_server(&self, forced: &ForcedClose) -> Result<()> {
        let Some(sql) = forced.sql().map(str::to_owned) else {
            return Ok(());
        };
        let shared = Arc::clone(&self.shared);
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("uno-db-sync-close".to_owned())
            .spawn(move || drop(sender.send(connect::run_detached(&shared, &sql))))
            .map_err(|error| {
                Error::with_message(
                    ErrorKind::Connect,
                    "could not start a thread to end the remaining connections",
                )
                .with_source(error)
            })?;
        receiver
            .recv_timeout(forced.limit())
            .unwrap_or_else(|_| Err(forced.timed_out()))
    }

    /// Applies the kernel's new limits: idle connections beyond the new
    /// maximum close now (`Overflow`), checked-out ones when returned.
    fn resize(&self, change: impl FnOnce(&EngineCore) -> Result<usize>) -> Result<()> {
        let core = &self.shared.core;
        let max = change(core)?;
        while self.pool.state().connections as usize > max {
            let Some(mut idle) = self.pool.try_get() else {
                break;
            };
            match idle.0.as_mut() {
                Some(conn) => conn.state.close_for(CloseReason::Overflow),
                None => idle.0 = None,
            }
        }
        // A larger pool may serve the checkout waiting at the head.
        self.shared.queue.wake_head();
        Ok(())
    }

    /// Starts, once, the background threads the configuration asks for:
    /// the `min_idle` refill and the leak watch. Each ends soon after the
    /// engine (every clone) is dropped or disposed.
    fn start_background(&self) {
        if self.shared.background_started.load(Ordering::Acquire)
            || self.shared.background_started.swap(true, Ordering::AcqRel)
        {
            return;
        }
        if let Some(period) = self.shared.core.leak_scan_period() {
            let shared = Arc::downgrade(&self.shared);
            let alive = Arc::downgrade(&self.alive);
            drop(
                std::thread::Builder::new()
                    .name("uno-db-sync-leaks".to_owned())
                    .spawn(move || {
                        while alive.strong_count() > 0 {
                            std::thread::sleep(period);
                            let Some(shared) = shared.upgrade() else {
                                return;
                            };
                            shared.core.leak_scan(Instant::now());
                        }
                    }),
            );
        }
        if self.shared.core.config().min_idle() > 0 {
            let engine = Self {
                shared: Arc::clone(&self.shared),
                pool: self.pool.clone(),
                // The refill must not keep the engine alive.
                alive: Arc::new(()),
                homes: Arc::clone(&self.homes),
            };
            let alive = Arc::downgrade(&self.alive);
            drop(
                std::thread::Builder::new()
                    .name("uno-db-sync-min-idle".to_owned())
                    .spawn(move || {
                        let mut backoff = None;
                        loop {
                            let core = &engine.shared.core;
                            if alive.strong_count() == 0 || core.is_disposed() {
                                return;
                            }
                            let failed = engine.fill(Instant::now()).is_err();
                            std::thread::sleep(core.refill_delay(&mut backoff, failed));
                        }
                    }),
            );
        }
    }
}

fn build_pool(shared: &Arc<EngineShared>) -> Pool<ConnManager> {
    let config = shared.core.config();
    // A ceiling only: checkouts keep to the kernel's maximum, which
    // `set_pool_size`/`set_max_overflow` change (r2d2 cannot be resized).
    let max_size = u32::try_from(MAX_CONNECTIONS).unwrap_or(u32::MAX);
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

    #[track_caller]
    fn connect(&self) -> Result<Box<dyn blocking::Connection>> {
        Ok(Box::new(self.checkout_from(Location::caller())?))
    }

    #[track_caller]
    fn session(&self, options: &TransactionOptions) -> Result<Box<dyn blocking::Session>> {
        Ok(Box::new(
            self.checkout_from(Location::caller())?
                .transaction(options)?,
        ))
    }

    fn warm_up(&self) -> Result<()> {
        SyncEngine::warm_up(self)
    }

    fn close(&self, deadline: Duration) -> CloseReport {
        SyncEngine::close(self, deadline)
    }

    fn set_pool_size(&self, pool_size: usize) -> Result<()> {
        self.resize(|core| core.set_limits(Some(pool_size), None))
    }

    fn set_max_overflow(&self, max_overflow: usize) -> Result<()> {
        self.resize(|core| core.set_limits(None, Some(max_overflow)))
    }

    fn config(&self) -> &ConnectionConfig {
        self.shared.core.config()
    }

    fn status(&self) -> PoolStatus {
        let state = self.pool.state();
        let size = state.connections as usize;
        let idle = state.idle_connections as usize;
        PoolStatus {
            max_size: self.shared.core.max_connections(),
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

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use uno_db_core::ConnectionConfig;
    use uno_db_testkit::TestDb;
    use uno_db_testkit::conformance::run_with_timeout;

    use super::*;

    #[test]
    fn checkouts_count_through_their_threads_home_not_the_engines_shared_state() {
        run_with_timeout(Duration::from_secs(60), || {
            let db = TestDb::new().expect("a test database");
            let config = db
                .url()
                .parse::<ConnectionConfig>()
                .expect("the test URL parses")
                .to_builder()
                .pool_size(4)
                .max_overflow(0)
                .pool_timeout(Duration::from_secs(5))
                .connect_timeout(Duration::from_secs(5))
                .build()
                .expect("a valid configuration");
            let engine = SyncEngine::new(&config).expect("an engine");
            // Open the four connections first: each holds the shared
            // state for its life, which is not what is counted here.
            let opened: Vec<_> = (0..4)
                .map(|_| engine.checkout().expect("a checkout"))
                .collect();
            drop(opened);
            let shared_before = Arc::strong_count(&engine.shared);
            let (_, home) = engine.homes.local();
            let home_before = Arc::strong_count(home);

            let held: Vec<_> = (0..3)
                .map(|_| engine.checkout().expect("a checkout"))
                .collect();
            assert_eq!(
                Arc::strong_count(&engine.shared),
                shared_before,
                "a checkout took a reference to the engine's shared state"
            );
            assert_eq!(Arc::strong_count(home), home_before + 3);

            // Another thread's checkout counts on its own stripe's home.
            let other = engine.clone();
            let elsewhere = std::thread::spawn(move || {
                let (_, home) = other.homes.local();
                let before = Arc::strong_count(home);
                let conn = other.checkout().expect("a checkout elsewhere");
                let during = Arc::strong_count(home);
                drop(conn);
                during - before
            })
            .join()
            .expect("the other thread");
            assert_eq!(elsewhere, 1);
            // Back from the other thread (whichever stripe it took).
            assert_eq!(Arc::strong_count(home), home_before + 3);
            drop(held);
            assert_eq!(Arc::strong_count(home), home_before);
            assert_eq!(Arc::strong_count(&engine.shared), shared_before);
        });
    }
}
