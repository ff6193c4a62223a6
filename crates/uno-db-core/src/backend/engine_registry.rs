//! One engine per distinct configuration: the bookkeeping both backends'
//! factories share.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use crate::config::{ConfigKey, ConnectionConfig};
use crate::error::{Error, ErrorKind, Result};

/// What an [`EngineRegistry`] needs from the engines it keeps.
///
/// Both backends' engines implement it from their `Engine` trait
/// (`in_use` is `status().in_use`).
pub trait RegisteredEngine {
    /// Whether the engine was disposed, by the registry or on its own. A
    /// disposed engine is replaced on the next request for its
    /// configuration.
    fn is_disposed(&self) -> bool;

    /// Disposes the engine: new checkouts fail, idle connections close,
    /// checked-out ones close when returned. The registry may call it on an
    /// engine that is already disposed; that must do nothing.
    fn dispose(&self);

    /// How many connections are checked out now. An engine with any is
    /// never disposed for being idle.
    fn in_use(&self) -> usize;
}

/// How long an engine nobody asked for is kept, unless changed with
/// [`EngineRegistry::with_idle_period`].
const DEFAULT_IDLE_PERIOD: Duration = Duration::from_secs(10 * 60);

/// The engines a factory made, one per distinct configuration (compared by
/// [`ConnectionConfig::key`], so no password is kept here), and whether the
/// factory was disposed.
///
/// - Looking up a kept engine takes a shared read lock and one hash lookup;
///   creating a new one never blocks lookups of others, and racing callers
///   for a new configuration get the same engine.
/// - An engine disposed on its own is replaced by a fresh one on the next
///   request; [`dispose`](Self::dispose) disposes and forgets one engine;
///   after [`dispose_all`](Self::dispose_all) nothing more is made, and an
///   engine whose creation raced with it is disposed too.
/// - Growth is bounded for factories fed many configurations (one per
///   tenant role, say): an engine that was not handed out for the
///   [idle period](Self::with_idle_period) (10 minutes by default), that
///   has no connection checked out and that no caller still holds is
///   disposed and dropped. The check runs now and then during
///   [`get_or_create`](Self::get_or_create); there is no background
///   thread.
pub struct EngineRegistry<E> {
    engines: RwLock<HashMap<ConfigKey, Kept<E>>>,
    // Held while an engine is created, so that racing creators of one
    // configuration make one engine; lookups never take it.
    creating: Mutex<()>,
    disposed: AtomicBool,
    idle_period: Duration,
    started: Instant,
    // When the next idle check is due, in nanoseconds since `started`.
    next_sweep: AtomicU64,
}

/// A kept engine and when it was last handed out.
struct Kept<E> {
    engine: Arc<E>,
    // Nanoseconds since the registry started; moved forward at most once
    // per tick, so that lookups of a busy engine rarely write to memory
    // other threads read.
    handed_out: AtomicU64,
}

impl<E> Default for EngineRegistry<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> fmt::Debug for EngineRegistry<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineRegistry")
            .field("engines", &self.len())
            .field("disposed", &self.is_disposed())
            .field("idle_period", &self.idle_period)
            .finish()
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn closed() -> Error {
    Error::with_message(
        ErrorKind::PoolClosed,
        "the engine factory is disposed; it creates no more engines",
    )
}

impl<E> EngineRegistry<E> {
    /// An empty registry that drops engines idle for 10 minutes.
    #[must_use]
    pub fn new() -> Self {
        Self::with_idle_period(DEFAULT_IDLE_PERIOD)
    }

    /// An empty registry that drops engines not handed out for `period`
    /// (and with nothing checked out, and held by no caller).
    /// `Duration::MAX` keeps them until disposed. The check runs at most
    /// every half period and takes the write lock, so a period close to
    /// zero makes nearly every request pay for it.
    #[must_use]
    pub fn with_idle_period(period: Duration) -> Self {
        let registry = Self {
            engines: RwLock::new(HashMap::new()),
            creating: Mutex::new(()),
            disposed: AtomicBool::new(false),
            idle_period: period,
            started: Instant::now(),
            next_sweep: AtomicU64::new(0),
        };
        registry
            .next_sweep
            .store(registry.sweep_interval(), Ordering::Relaxed);
        registry
    }

    /// How long an engine may go without being handed out before it is
    /// dropped.
    #[must_use]
    pub fn idle_period(&self) -> Duration {
        self.idle_period
    }

    /// Whether [`dispose_all`](Self::dispose_all) was called.
    #[must_use]
    pub fn is_disposed(&self) -> bool {
        self.disposed.load(Ordering::Acquire)
    }

    /// The number of engines kept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether no engine is kept.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> RwLockReadGuard<'_, HashMap<ConfigKey, Kept<E>>> {
        self.engines.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<ConfigKey, Kept<E>>> {
        self.engines.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> u64 {
        nanos(self.started.elapsed())
    }

    /// How stale a hand-out time may get before a lookup refreshes it.
    fn tick(&self) -> u64 {
        nanos(self.idle_period) / 16
    }

    fn sweep_interval(&self) -> u64 {
        (nanos(self.idle_period) / 2).max(1)
    }
}

impl<E: RegisteredEngine> EngineRegistry<E> {
    /// The live engine for `config`, or a new one from `create`.
    ///
    /// `create` runs without the registry's lock held (lookups of other
    /// configurations go on), one creation at a time; it must not call back
    /// into this registry.
    ///
    /// # Errors
    ///
    /// The registry was disposed, before or while `create` ran
    /// ([`ErrorKind::PoolClosed`]; an engine made meanwhile is disposed),
    /// or `create` failed.
    pub fn get_or_create(
        &self,
        config: &ConnectionConfig,
        create: impl FnOnce() -> Result<E>,
    ) -> Result<Arc<E>> {
        if self.is_disposed() {
            return Err(closed());
        }
        let now = self.now();
        self.sweep_if_due(now);
        let key = config.key();
        if let Some(engine) = self.live(key, now) {
            return Ok(engine);
        }
        let _creating = self.creating.lock().unwrap_or_else(PoisonError::into_inner);
        // Another caller may have made it while this one waited.
        if let Some(engine) = self.live(key, now) {
            return Ok(engine);
        }
        if self.is_disposed() {
            return Err(closed());
        }
        let engine = Arc::new(create()?);
        let mut engines = self.write();
        // `dispose_all` sets the flag before it drains under this lock:
        // either it drains this engine after us, or we see the flag here.
        if self.is_disposed() {
            drop(engines);
            engine.dispose();
            return Err(closed());
        }
        let kept = Kept {
            engine: Arc::clone(&engine),
            handed_out: AtomicU64::new(self.now()),
        };
        // A replaced entry held an engine disposed on its own.
        engines.insert(key, kept);
        Ok(engine)
    }

    /// Disposes the engine kept for `config` and forgets it: the next
    /// request for `config` creates a new one. Callers still holding the
    /// engine see it disposed. Returns whether an engine was kept.
    pub fn dispose(&self, config: &ConnectionConfig) -> bool {
        let removed = self.write().remove(&config.key());
        // Disposed outside the lock: disposing may close connections.
        removed.map(|kept| kept.engine.dispose()).is_some()
    }

    /// Marks the registry disposed and disposes every engine in it.
    pub fn dispose_all(&self) {
        self.disposed.store(true, Ordering::Release);
        let engines: Vec<Arc<E>> = self.write().drain().map(|(_, kept)| kept.engine).collect();
        for engine in engines {
            engine.dispose();
        }
    }

    /// The kept engine for `key` if it is live, marked as handed out.
    fn live(&self, key: ConfigKey, now: u64) -> Option<Arc<E>> {
        let engines = self.read();
        let kept = engines.get(&key)?;
        if kept.engine.is_disposed() {
            return None;
        }
        if now.saturating_sub(kept.handed_out.load(Ordering::Relaxed)) >= self.tick() {
            kept.handed_out.fetch_max(now, Ordering::Relaxed);
        }
        Some(Arc::clone(&kept.engine))
    }

    /// Runs [`dispose_idle`](Self::dispose_idle) when due, in one caller.
    fn sweep_if_due(&self, now: u64) {
        let due = self.next_sweep.load(Ordering::Relaxed);
        if now < due {
            return;
        }
        let next = now.saturating_add(self.sweep_interval());
        if self
            .next_sweep
            .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.dispose_idle(now);
        }
    }

    /// Drops engines disposed on their own, and disposes and drops idle
    /// ones: not handed out for the idle period, nothing checked out, held
    /// by no caller. Returns how many were dropped.
    fn dispose_idle(&self, now: u64) -> usize {
        // A hand-out time may lag by up to a tick.
        let idle_after = nanos(self.idle_period).saturating_add(self.tick());
        let mut dropped = Vec::new();
        self.write().retain(|_, kept| {
            let engine = &kept.engine;
            let idle = now.saturating_sub(kept.handed_out.load(Ordering::Relaxed)) >= idle_after
                // Only the registry holds it, and nobody can take it while
                // the lock is held: no caller can use it any more.
                && Arc::strong_count(engine) == 1
                && engine.in_use() == 0;
            let drop_it = idle || engine.is_disposed();
            if drop_it {
                dropped.push(Arc::clone(engine));
            }
            !drop_it
        });
        for engine in &dropped {
            engine.dispose();
        }
        dropped.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::mpsc;
    use std::thread;

    use super::*;

    #[derive(Default)]
    struct FakeEngine {
        disposed: AtomicBool,
        in_use: AtomicUsize,
    }

    impl RegisteredEngine for FakeEngine {
        fn is_disposed(&self) -> bool {
            self.disposed.load(Ordering::Acquire)
        }

        fn dispose(&self) {
            self.disposed.store(true, Ordering::Release);
        }

        fn in_use(&self) -> usize {
            self.in_use.load(Ordering::Acquire)
        }
    }

    fn fake() -> Result<FakeEngine> {
        Ok(FakeEngine::default())
    }

    /// An engine the test keeps a handle on, to see what happened to it
    /// after the registry let go.
    struct Shared(Arc<FakeEngine>);

    impl RegisteredEngine for Shared {
        fn is_disposed(&self) -> bool {
            self.0.is_disposed()
        }

        fn dispose(&self) {
            self.0.dispose();
        }

        fn in_use(&self) -> usize {
            self.0.in_use()
        }
    }

    fn config(database: &str) -> ConnectionConfig {
        ConnectionConfig::builder()
            .role("app")
            .password("Zebra-Quux-9137")
            .database(database)
            .build()
            .unwrap()
    }

    #[test]
    fn one_engine_per_config_and_fresh_after_its_dispose() {
        let registry = EngineRegistry::new();
        let a: ConnectionConfig = "postgresql://app@db/a".parse().unwrap();
        let b = a.to_builder().pool_size(3).build().unwrap();
        let first = registry.get_or_create(&a, fake).unwrap();
        let again: ConnectionConfig = "postgresql://app@db/a".parse().unwrap();
        assert!(Arc::ptr_eq(
            &first,
            &registry.get_or_create(&again, fake).unwrap()
        ));
        assert!(!Arc::ptr_eq(
            &first,
            &registry.get_or_create(&b, fake).unwrap()
        ));
        assert_eq!(registry.len(), 2);
        first.dispose();
        let fresh = registry.get_or_create(&a, fake).unwrap();
        assert!(!Arc::ptr_eq(&first, &fresh) && !fresh.is_disposed());
        assert_eq!(registry.len(), 2);
    }

    #[test]
    fn the_password_is_part_of_the_identity_and_never_kept_in_text() {
        let registry = EngineRegistry::new();
        let one = config("orders");
        let other = one
            .to_builder()
            .password("Other-Secret-42")
            .build()
            .unwrap();
        let a = registry.get_or_create(&one, fake).unwrap();
        let b = registry.get_or_create(&other, fake).unwrap();
        assert!(!Arc::ptr_eq(&a, &b));
        let same = one.to_builder().build().unwrap();
        assert!(Arc::ptr_eq(
            &a,
            &registry.get_or_create(&same, fake).unwrap()
        ));
        let debug = format!("{registry:?}");
        assert!(
            !debug.contains("Zebra") && !debug.contains("Other-Secret"),
            "{debug}"
        );
    }

    #[test]
    fn a_failed_creation_keeps_nothing() {
        let registry: EngineRegistry<FakeEngine> = EngineRegistry::new();
        let config = ConnectionConfig::default();
        let error = registry
            .get_or_create(&config, || Err(Error::new(ErrorKind::Tls)))
            .err()
            .unwrap();
        assert_eq!(error.kind(), ErrorKind::Tls);
        assert!(registry.is_empty());
    }

    #[test]
    fn dispose_all_disposes_and_refuses_more() {
        let registry = EngineRegistry::new();
        let config = ConnectionConfig::default();
        let engine = registry.get_or_create(&config, fake).unwrap();
        registry.dispose_all();
        assert!(engine.is_disposed());
        assert!(registry.is_disposed() && registry.is_empty());
        let error = registry.get_or_create(&config, fake).err().unwrap();
        assert_eq!(error.kind(), ErrorKind::PoolClosed);
    }

    #[test]
    fn dispose_disposes_and_forgets_one_engine() {
        let registry = EngineRegistry::new();
        let (a, b) = (config("a"), config("b"));
        let engine_a = registry.get_or_create(&a, fake).unwrap();
        let engine_b = registry.get_or_create(&b, fake).unwrap();
        assert!(registry.dispose(&a));
        assert!(engine_a.is_disposed() && !engine_b.is_disposed());
        assert_eq!(registry.len(), 1);
        assert!(!registry.dispose(&a), "nothing is kept for `a` any more");
        let fresh = registry.get_or_create(&a, fake).unwrap();
        assert!(!Arc::ptr_eq(&engine_a, &fresh) && !fresh.is_disposed());
        assert!(!registry.is_disposed());
    }

    /// `dispose_all` between the disposed check and the insertion: the
    /// engine just made must be disposed, not kept or returned.
    #[test]
    fn dispose_all_while_creating_disposes_the_new_engine() {
        let registry = EngineRegistry::new();
        let made = Arc::new(FakeEngine::default());
        let error = registry
            .get_or_create(&ConnectionConfig::default(), || {
                registry.dispose_all();
                Ok(Shared(Arc::clone(&made)))
            })
            .err()
            .unwrap();
        assert_eq!(error.kind(), ErrorKind::PoolClosed);
        assert!(registry.is_empty());
        assert!(made.is_disposed(), "made during disposal and left live");
    }

    /// Threads keep asking for engines while another disposes the
    /// registry: every engine ever made ends up disposed.
    #[test]
    fn dispose_all_racing_get_or_create_leaves_no_engine_live() {
        let configs: Vec<ConnectionConfig> = (0..8).map(|i| config(&format!("db{i}"))).collect();
        for round in 0..50 {
            let registry = EngineRegistry::new();
            let made = Mutex::new(Vec::new());
            thread::scope(|s| {
                for worker in 0..4 {
                    let (registry, made, configs) = (&registry, &made, &configs);
                    s.spawn(move || {
                        for i in 0.. {
                            let config = &configs[(i + worker) % configs.len()];
                            let result = registry.get_or_create(config, || {
                                thread::yield_now();
                                let engine = Arc::new(FakeEngine::default());
                                made.lock().unwrap().push(Arc::clone(&engine));
                                Ok(Shared(engine))
                            });
                            if result.is_err() {
                                break;
                            }
                            // Some engines go away on their own, so that
                            // creations keep happening.
                            if i % 3 == 0 {
                                result.unwrap().dispose();
                            }
                        }
                    });
                }
                s.spawn(|| {
                    // Once engines exist, at a varying point of the race.
                    while made.lock().unwrap().is_empty() {
                        thread::yield_now();
                    }
                    thread::sleep(Duration::from_micros(100 * (round % 5)));
                    registry.dispose_all();
                });
            });
            assert!(registry.is_empty());
            let made = made.into_inner().unwrap();
            assert!(!made.is_empty());
            let live = made.iter().filter(|e| !e.is_disposed()).count();
            assert_eq!(live, 0, "round {round}: {live} of {} live", made.len());
        }
    }

    #[test]
    fn racing_callers_for_a_new_config_get_one_engine() {
        let registry = EngineRegistry::new();
        let created = AtomicUsize::new(0);
        let config = config("orders");
        let engines: Vec<Arc<FakeEngine>> = thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        registry
                            .get_or_create(&config, || {
                                created.fetch_add(1, Ordering::SeqCst);
                                thread::sleep(Duration::from_millis(20));
                                fake()
                            })
                            .unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(created.load(Ordering::SeqCst), 1);
        assert!(engines.iter().all(|e| Arc::ptr_eq(e, &engines[0])));
    }

    /// A lookup of a kept engine does not wait for a slow creation of
    /// another one.
    #[test]
    fn lookups_do_not_wait_for_a_creation() {
        let registry = EngineRegistry::new();
        let kept = config("kept");
        registry.get_or_create(&kept, fake).unwrap();
        let (release, released) = mpsc::channel::<()>();
        let (started, creation_started) = mpsc::channel::<()>();
        let (done, lookup_done) = mpsc::channel::<()>();
        let (registry, kept) = (&registry, &kept);
        thread::scope(|s| {
            s.spawn(move || {
                registry
                    .get_or_create(&config("slow"), || {
                        started.send(()).unwrap();
                        // Until released (or the test gave up and dropped
                        // the sender).
                        let _ = released.recv();
                        fake()
                    })
                    .unwrap();
            });
            creation_started.recv().unwrap();
            s.spawn(move || {
                registry.get_or_create(kept, fake).unwrap();
                done.send(()).unwrap();
            });
            let waited = lookup_done.recv_timeout(Duration::from_secs(5));
            drop(release);
            assert!(waited.is_ok(), "the lookup waited for the creation");
        });
        assert_eq!(registry.len(), 2);
    }

    #[test]
    fn idle_engines_are_disposed_and_dropped_on_access() {
        let period = Duration::from_millis(100);
        let registry = EngineRegistry::with_idle_period(period);
        assert_eq!(registry.idle_period(), period);
        let unused = Arc::downgrade(&registry.get_or_create(&config("unused"), fake).unwrap());
        let held = registry.get_or_create(&config("held"), fake).unwrap();
        // Only the registry holds it once the block ends.
        let busy = {
            let engine = registry.get_or_create(&config("busy"), fake).unwrap();
            engine.in_use.store(1, Ordering::Release);
            Arc::downgrade(&engine)
        };
        // Disposed on its own, still held by a caller: not idle, but dead.
        let gone = registry.get_or_create(&config("gone"), fake).unwrap();
        gone.dispose();
        thread::sleep(period * 3);

        registry.get_or_create(&config("other"), fake).unwrap();
        assert!(unused.upgrade().is_none(), "idle engine kept");
        assert!(!held.is_disposed(), "an engine a caller holds is kept");
        let busy = busy.upgrade().expect("an engine in use is kept");
        assert!(!busy.is_disposed());
        // held, busy and other: the disposed one is dropped though held.
        assert_eq!(registry.len(), 3);

        // Released, unused and unheld: dropped on a later access.
        busy.in_use.store(0, Ordering::Release);
        drop((held, busy, gone));
        thread::sleep(period * 3);
        registry.get_or_create(&config("other"), fake).unwrap();
        assert_eq!(registry.len(), 1);
    }

    #[test]
    fn idle_engines_are_disposed_when_dropped() {
        let period = Duration::from_millis(100);
        let registry = EngineRegistry::with_idle_period(period);
        let handle = Arc::new(FakeEngine::default());
        let shared = Arc::clone(&handle);
        registry
            .get_or_create(&config("a"), || Ok(Shared(shared)))
            .unwrap();
        thread::sleep(period * 3);
        registry
            .get_or_create(&config("b"), || Ok(Shared(Arc::default())))
            .unwrap();
        assert!(handle.is_disposed());
    }

    #[test]
    fn an_engine_handed_out_within_the_period_is_kept() {
        // The period leaves room for scheduling stalls between requests.
        let period = Duration::from_millis(400);
        let registry = EngineRegistry::with_idle_period(period);
        let first = Arc::downgrade(&registry.get_or_create(&config("a"), fake).unwrap());
        // Asked for every 50 ms, for three periods.
        for _ in 0..24 {
            thread::sleep(Duration::from_millis(50));
            let again = registry.get_or_create(&config("a"), fake).unwrap();
            assert!(Arc::ptr_eq(&again, &first.upgrade().unwrap()));
            assert!(!again.is_disposed());
        }
    }

    #[test]
    fn growth_is_bounded_by_the_idle_period() {
        let period = Duration::from_millis(50);
        let registry = EngineRegistry::with_idle_period(period);
        for tenant in 0..200 {
            registry
                .get_or_create(&config(&format!("t{tenant}")), fake)
                .unwrap();
        }
        assert_eq!(registry.len(), 200);
        thread::sleep(period * 4);
        registry.get_or_create(&config("t0"), fake).unwrap();
        assert_eq!(registry.len(), 1);
    }

    #[test]
    fn debug_shows_no_configuration() {
        let registry = EngineRegistry::new();
        registry.get_or_create(&config("orders"), fake).unwrap();
        let debug = format!("{registry:?}");
        assert_eq!(
            debug,
            "EngineRegistry { engines: 1, disposed: false, idle_period: 600s }"
        );
    }
}
