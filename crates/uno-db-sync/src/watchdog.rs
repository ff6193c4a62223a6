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
//! once: arming a statement bumps the slot's [`RunMark`] (a load and a
//! store, no clock read, no lock), and the watchdog looks at the slots
//! every [`LookPeriod`] (a twentieth of the shortest limit in use, between
//! 10 ms and a second), cancelling a statement it has seen running for its
//! whole limit ([`Sighting`]): after at least the limit and at most a tenth
//! more, as in uno-db-async. Only a statement with a limit new to its slot takes the
//! watchdog's lock, to shorten its looks. The thread starts with the first
//! slot and ends with the engine.
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use postgres::CancelToken;
use uno_db_core::backend::{LookPeriod, MakeTls, RunMark, Sighting, look_period};

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
    /// How often the watchdog looks at the slots: for the shortest limit
    /// armed.
    period: LookPeriod,
}

#[derive(Default)]
struct State {
    // Shared with the connection: arming a statement clones a pointer, not
    // the token (which holds the host name).
    armed: BTreeMap<(Instant, u64), Watched>,
    /// Every connection's statement slot, as the last look saw it.
    slots: Vec<(Weak<StatementSlot>, Sighting)>,
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

/// One connection's statement watch: whether a statement runs, under what
/// limit, and the token that cancels it.
pub(crate) struct StatementSlot {
    running: RunMark,
    token: Arc<CancelToken>,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for StatementSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatementSlot")
            .field("running", &self.running)
            .finish_non_exhaustive()
    }
}

impl StatementSlot {
    /// Watches the statement about to be sent: if it still runs after
    /// `limit`, the watchdog cancels it.
    pub(crate) fn arm(&self, limit: Duration) -> Armed<'_> {
        // Only a limit new to the slot (the first statement, a
        // transaction's own) may shorten the watchdog's looks.
        if self.running.start(limit) && self.inner.period.include(limit) {
            self.inner.looks_shortened();
        }
        Armed { slot: self }
    }
}

struct StreamWatch {
    token: Arc<CancelToken>,
    progress: Arc<StreamProgress>,
    /// The stream's waits as the last look saw them.
    sighting: Sighting,
}

/// What a streamed result tells the watchdog; written by the stream's
/// thread only.
#[derive(Debug)]
pub(crate) struct StreamProgress {
    /// Running while the stream waits for the server.
    waits: RunMark,
    /// How long each wait may take.
    limit: Duration,
    done: AtomicBool,
}

impl StreamProgress {
    /// The stream starts waiting for the server.
    pub(crate) fn wait_starts(&self) {
        let _ = self.waits.start(self.limit);
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
                period: LookPeriod::default(),
            }),
        }
    }

    /// The statement watch of a new connection whose statements `token`
    /// cancels, registered until the slot is dropped.
    pub(crate) fn slot(&self, token: Arc<CancelToken>) -> Arc<StatementSlot> {
        let slot = Arc::new(StatementSlot {
            running: RunMark::default(),
            token,
            inner: Arc::clone(&self.inner),
        });
        let mut state = self.inner.lock();
        state
            .slots
            .push((Arc::downgrade(&slot), Sighting::new(Instant::now())));
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
        let progress = Arc::new(StreamProgress {
            waits: RunMark::default(),
            limit,
            done: AtomicBool::new(false),
        });
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
        self.slot.running.stop()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The look period got shorter: a watchdog asleep for the old one
    /// wakes and waits the new one. Taken while it waits (or after it
    /// looked), so the wake-up cannot be lost.
    #[cold]
    fn looks_shortened(&self) {
        let _state = self.lock();
        self.changed.notify_one();
    }

    fn run(&self) {
        let mut state = self.lock();
        loop {
            if state.stopped {
                return;
            }
            let now = Instant::now();
            self.look_at_slots(&mut state, now);
            let mut next = now + self.period.get();
            // Streams: the map's first deadline.
            if let Some((&(deadline, _), _)) = state.armed.first_key_value() {
                if deadline <= now {
                    // Without the `tls` feature the connector is `Copy`.
                    #[allow(clippy::clone_on_copy)]
                    let tls = self.tls.clone();
                    if let Some((_, Watched::Stream(watch))) = state.armed.pop_first()
                        && let Some(watch) = look(watch, now, tls)
                    {
                        let key = (
                            now + stream_look_period(watch.progress.limit),
                            state.next_id,
                        );
                        state.next_id += 1;
                        state.armed.insert(key, Watched::Stream(watch));
                    }
                    continue;
                }
                next = next.min(deadline);
            }
            state = self
                .changed
                .wait_timeout(state, next.saturating_duration_since(now))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Cancels the statements seen running for their whole limit at `now`
    /// and forgets the slots of dropped connections.
    fn look_at_slots(&self, state: &mut State, now: Instant) {
        state.slots.retain_mut(|(slot, sighting)| {
            let Some(slot) = slot.upgrade() else {
                return false;
            };
            if sighting.claim_overdue(&slot.running, now) {
                // Without the `tls` feature the connector is `Copy`.
                #[allow(clippy::clone_on_copy)]
                cancel(Arc::clone(&slot.token), self.tls.clone());
            }
            true
        });
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
    if watch.sighting.claim_overdue(&progress.waits, now) {
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
