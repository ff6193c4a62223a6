//! [`Watchdog`]: the client-side `query_timeout` of the blocking backend.
//!
//! The `postgres` driver has no per-call timeout, and a statement blocks
//! its thread until the server answers. So each statement arms this
//! engine's watchdog with its deadline and its connection's cancel token;
//! a deadline that passes makes the watchdog send a cancel request (on a
//! short-lived thread, so that one silent server does not hold up the
//! others), which ends the statement with `57014` on a server that is
//! still there. The statement then fails with the kernel's time-out error
//! and its connection is discarded.
//!
//! Each connection has a [`StatementSlot`], registered with the watchdog
//! once: arming a statement stores its deadline in the slot (an atomic
//! store, no lock) and the watchdog looks at the slots when the earliest
//! deadline it knows of comes. Only a deadline earlier than the watchdog's
//! next look takes its lock, to wake it; with nothing armed it looks once
//! a second, so the usual limits (minutes) never do. The thread starts with
//! the first slot and ends with the engine.
//!
//! A streamed result (rows, `COPY`) is watched differently, since arming
//! per row would cost more than reading the row: the stream bumps the
//! [`RunMark`] of its [`StreamProgress`] when it starts and ends a wait for
//! the server (a load and a store each), and the watchdog looks at it
//! every [`look_period`] of the limit; a wait seen unchanged for the whole
//! limit is cancelled ([`Sighting`]). So each wait for the server is cut
//! after at least the limit and at most a tenth more, and the caller's own
//! time between rows is not counted.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use postgres::CancelToken;
use uno_db_core::backend::{MakeTls, RunMark, Sighting, look_period};

/// The per-engine watchdog.
#[derive(Debug)]
pub(crate) struct Watchdog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    changed: Condvar,
    /// Cancel requests go over TLS as the connections do.
    tls: MakeTls,
    /// What slot deadlines count from.
    epoch: Instant,
    /// When the watchdog looks next, after `epoch` in nanoseconds; `0`
    /// while it is looking. Set under the lock before it waits.
    next_look: AtomicU64,
}

/// How long the watchdog waits when nothing is armed: an armed deadline
/// later than that needs no wake-up.
const IDLE_LOOK: Duration = Duration::from_secs(1);

/// A slot's deadline while nothing is armed.
const IDLE: u64 = 0;
/// A slot's deadline once the watchdog cancelled its statement.
const FIRED: u64 = u64::MAX;

#[derive(Default)]
struct State {
    // Shared with the connection: arming a statement clones a pointer, not
    // the token (which holds the host name).
    armed: BTreeMap<(Instant, u64), Watched>,
    /// Every connection's statement slot.
    slots: Vec<Weak<StatementSlot>>,
    next_id: u64,
    thread_started: bool,
    stopped: bool,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("armed", &self.armed.len())
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

/// What a deadline of the map belongs to.
enum Watched {
    /// A streamed result, looked at each time its deadline passes.
    Stream(StreamWatch),
}

/// One connection's statement watch: the deadline of its running statement
/// (nanoseconds after the watchdog's epoch; [`IDLE`], or [`FIRED`] once
/// cancelled) and the token that cancels it.
pub(crate) struct StatementSlot {
    deadline: AtomicU64,
    token: Arc<CancelToken>,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for StatementSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatementSlot")
            .field("deadline", &self.deadline.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl StatementSlot {
    /// Watches the statement about to be sent: if it still runs after
    /// `limit`, the watchdog cancels it.
    pub(crate) fn arm(&self, limit: Duration) -> Armed<'_> {
        let inner = &self.inner;
        let at = Instant::now() + limit;
        let deadline = nanos_after(inner.epoch, at).clamp(1, FIRED - 1);
        self.deadline.store(deadline, Ordering::SeqCst);
        let next_look = inner.next_look.load(Ordering::SeqCst);
        if next_look == 0 || deadline < next_look {
            // Taken while the watchdog waits (or after it looked), so the
            // wake-up cannot be lost.
            let _state = inner.lock();
            inner.changed.notify_one();
        }
        Armed { slot: self }
    }
}

/// Nanoseconds from `epoch` to `at` (0 before it).
fn nanos_after(epoch: Instant, at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch).as_nanos()).unwrap_or(FIRED - 1)
}

struct StreamWatch {
    token: Arc<CancelToken>,
    progress: Arc<StreamProgress>,
    limit: Duration,
    /// The stream's waits as the last look saw them.
    sighting: Sighting,
}

/// What a streamed result tells the watchdog; written by the stream's
/// thread only.
#[derive(Debug, Default)]
pub(crate) struct StreamProgress {
    /// Running while the stream waits for the server.
    waits: RunMark,
    done: AtomicBool,
}

impl StreamProgress {
    /// The stream starts waiting for the server.
    pub(crate) fn wait_starts(&self) {
        self.waits.start();
    }

    /// The wait is over; whether the watchdog cancelled it.
    pub(crate) fn wait_ends(&self) -> bool {
        self.waits.stop()
    }
}

impl Drop for StreamProgressGuard {
    fn drop(&mut self) {
        self.0.done.store(true, Ordering::Release);
    }
}

/// A stream's progress, which tells the watchdog to stop looking when
/// dropped (the stream ended or was dropped).
#[derive(Debug)]
pub(crate) struct StreamProgressGuard(Arc<StreamProgress>);

impl std::ops::Deref for StreamProgressGuard {
    type Target = StreamProgress;

    fn deref(&self) -> &StreamProgress {
        &self.0
    }
}

/// One armed statement; [`disarm`](Self::disarm) it when the call returns.
pub(crate) struct Armed<'a> {
    slot: &'a StatementSlot,
}

impl Watchdog {
    /// A watchdog whose cancel requests use `tls`.
    pub(crate) fn new(tls: MakeTls) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::default(),
                changed: Condvar::new(),
                tls,
                epoch: Instant::now(),
                next_look: AtomicU64::new(0),
            }),
        }
    }

    /// The statement watch of a new connection whose statements `token`
    /// cancels, registered until the slot is dropped.
    pub(crate) fn slot(&self, token: Arc<CancelToken>) -> Arc<StatementSlot> {
        let slot = Arc::new(StatementSlot {
            deadline: AtomicU64::new(IDLE),
            token,
            inner: Arc::clone(&self.inner),
        });
        let mut state = self.inner.lock();
        state.slots.push(Arc::downgrade(&slot));
        self.wake(&mut state, false);
        slot
    }

    /// Watches a streamed result whose waits for the server are limited to
    /// `limit`: see the module's documentation.
    pub(crate) fn watch_stream(
        &self,
        limit: Duration,
        token: &Arc<CancelToken>,
    ) -> StreamProgressGuard {
        let progress = Arc::new(StreamProgress::default());
        let mut state = self.inner.lock();
        let key = (Instant::now() + stream_look_period(limit), state.next_id);
        state.next_id += 1;
        let earliest = state
            .armed
            .first_key_value()
            .is_none_or(|(first, _)| key < *first);
        state.armed.insert(
            key,
            Watched::Stream(StreamWatch {
                token: Arc::clone(token),
                progress: Arc::clone(&progress),
                limit,
                sighting: Sighting::new(Instant::now()),
            }),
        );
        self.wake(&mut state, earliest);
        StreamProgressGuard(progress)
    }

    /// Starts the thread, or wakes it when the earliest deadline moved.
    fn wake(&self, state: &mut State, earliest: bool) {
        if !state.thread_started {
            state.thread_started = true;
            let inner = Arc::clone(&self.inner);
            let spawned = std::thread::Builder::new()
                .name("uno-db-sync-watchdog".to_owned())
                .spawn(move || inner.run());
            // Without the thread nothing fires; statements then wait for
            // the server, as without a query_timeout.
            drop(spawned);
        } else if earliest {
            self.inner.changed.notify_one();
        }
    }
}

/// How often a stream is looked at.
fn stream_look_period(limit: Duration) -> Duration {
    look_period(limit).max(Duration::from_millis(1))
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.inner.lock().stopped = true;
        self.inner.changed.notify_one();
    }
}

impl Armed<'_> {
    /// The call returned; whether the deadline passed first (the statement
    /// was cancelled).
    pub(crate) fn disarm(self) -> bool {
        self.slot.deadline.swap(IDLE, Ordering::SeqCst) == FIRED
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn run(&self) {
        let mut state = self.lock();
        loop {
            if state.stopped {
                return;
            }
            self.next_look.store(0, Ordering::SeqCst);
            let now = Instant::now();
            let mut next = self.look_at_slots(&mut state, now);
            // Streams: the map's first deadline.
            if let Some((&(deadline, _), _)) = state.armed.first_key_value() {
                if deadline <= now {
                    // Without the `tls` feature the connector is `Copy`.
                    #[allow(clippy::clone_on_copy)]
                    let tls = self.tls.clone();
                    if let Some((_, Watched::Stream(watch))) = state.armed.pop_first()
                        && let Some(watch) = look(watch, now, tls)
                    {
                        let key = (now + stream_look_period(watch.limit), state.next_id);
                        state.next_id += 1;
                        state.armed.insert(key, Watched::Stream(watch));
                    }
                    continue;
                }
                next = next.min(deadline);
            }
            self.next_look
                .store(nanos_after(self.epoch, next).max(1), Ordering::SeqCst);
            state = self
                .changed
                .wait_timeout(state, next.saturating_duration_since(now))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Cancels the statements whose deadline passed at `now` and forgets
    /// the slots of dropped connections; returns when to look next (at
    /// most [`IDLE_LOOK`] away).
    fn look_at_slots(&self, state: &mut State, now: Instant) -> Instant {
        let mut next = now + IDLE_LOOK;
        let due = nanos_after(self.epoch, now);
        state.slots.retain(|slot| {
            let Some(slot) = slot.upgrade() else {
                return false;
            };
            let deadline = slot.deadline.load(Ordering::SeqCst);
            if deadline == IDLE || deadline == FIRED {
                return true;
            }
            if deadline <= due {
                if slot
                    .deadline
                    .compare_exchange(deadline, FIRED, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                {
                    // Without the `tls` feature the connector is `Copy`.
                    #[allow(clippy::clone_on_copy)]
                    cancel(Arc::clone(&slot.token), self.tls.clone());
                }
            } else {
                next = next.min(self.epoch + Duration::from_nanos(deadline));
            }
            true
        });
        next
    }
}

/// Looks at a stream: cancels a wait seen unchanged for its whole limit.
/// Returns the watch to look at again, unless the stream is over or was
/// cancelled.
fn look(mut watch: StreamWatch, now: Instant, tls: MakeTls) -> Option<StreamWatch> {
    let progress = &watch.progress;
    if progress.done.load(Ordering::Acquire) {
        return None;
    }
    let waits = progress.waits.load();
    // Claimed first, so that a wait ending this instant either goes on
    // (and is not cancelled) or reports the time-out (and is).
    if watch.sighting.overdue(waits, now, watch.limit) && progress.waits.claim(waits) {
        cancel(watch.token, tls);
        return None;
    }
    Some(watch)
}

/// Sends a cancel request on a thread of its own: it connects to the
/// server, which may be as silent as the statement's connection.
fn cancel(token: Arc<CancelToken>, tls: MakeTls) {
    let spawned = std::thread::Builder::new()
        .name("uno-db-sync-cancel".to_owned())
        .spawn(move || drop(token.cancel_query(tls)));
    drop(spawned);
}
