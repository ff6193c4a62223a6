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
//! Arming costs a map insertion under a mutex: no thread hop per
//! statement. The thread starts with the first armed statement and ends
//! with the engine.
//!
//! A streamed result (rows, `COPY`) is watched differently, since arming
//! per row would cost more than reading the row: the stream marks on its
//! [`StreamProgress`] (two relaxed stores) when it waits for the server
//! and how many waits it has made, and the watchdog looks at it every
//! eighth of the limit; a wait seen unchanged for the whole limit is
//! cancelled. So each wait for the server is cut after at least the limit
//! and at most a quarter more, and the caller's own time between rows is
//! not counted.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use postgres::CancelToken;
use uno_db_core::backend::MakeTls;

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
}

#[derive(Default)]
struct State {
    // Shared with the connection: arming a statement clones a pointer, not
    // the token (which holds the host name).
    armed: BTreeMap<(Instant, u64), Watched>,
    next_id: u64,
    thread_started: bool,
    stopped: bool,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("armed", &self.armed.len())
            .finish_non_exhaustive()
    }
}

/// One armed statement; [`disarm`](Self::disarm) it when the call returns.
/// What a deadline belongs to.
enum Watched {
    /// A statement: cancelled when its deadline passes.
    Statement(Arc<CancelToken>),
    /// A streamed result, looked at each time its deadline passes.
    Stream(StreamWatch),
}

struct StreamWatch {
    token: Arc<CancelToken>,
    progress: Arc<StreamProgress>,
    limit: Duration,
    /// The wait seen under way at the last look (its number), and since
    /// when.
    seen: Option<(u64, Instant)>,
}

/// What a streamed result tells the watchdog; written by the stream's
/// thread only.
#[derive(Debug, Default)]
pub(crate) struct StreamProgress {
    waiting: AtomicBool,
    waits: AtomicU64,
    done: AtomicBool,
    expired: AtomicBool,
}

impl StreamProgress {
    /// The stream starts waiting for the server.
    pub(crate) fn wait_starts(&self) {
        let waits = self.waits.load(Ordering::Relaxed);
        self.waits.store(waits.wrapping_add(1), Ordering::Relaxed);
        self.waiting.store(true, Ordering::Release);
    }

    /// The wait is over; whether the watchdog cancelled it.
    pub(crate) fn wait_ends(&self) -> bool {
        self.waiting.store(false, Ordering::Release);
        self.expired.load(Ordering::Acquire)
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

pub(crate) struct Armed<'a> {
    watchdog: &'a Watchdog,
    key: (Instant, u64),
}

impl Watchdog {
    /// A watchdog whose cancel requests use `tls`.
    pub(crate) fn new(tls: MakeTls) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::default(),
                changed: Condvar::new(),
                tls,
            }),
        }
    }

    /// Watches a statement about to be sent: if it still runs after
    /// `limit`, `token` cancels it.
    pub(crate) fn arm(&self, limit: Duration, token: &Arc<CancelToken>) -> Armed<'_> {
        let mut state = self.inner.lock();
        let key = (Instant::now() + limit, state.next_id);
        state.next_id += 1;
        let earliest = state
            .armed
            .first_key_value()
            .is_none_or(|(first, _)| key < *first);
        state
            .armed
            .insert(key, Watched::Statement(Arc::clone(token)));
        self.wake(&mut state, earliest);
        Armed {
            watchdog: self,
            key,
        }
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
        let key = (Instant::now() + look_period(limit), state.next_id);
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
                seen: None,
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
fn look_period(limit: Duration) -> Duration {
    (limit / 8).max(Duration::from_millis(1))
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
        self.watchdog.inner.lock().armed.remove(&self.key).is_none()
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
            let now = Instant::now();
            let next = state.armed.first_key_value().map(|(key, _)| key.0);
            state = match next {
                None => self
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) if deadline <= now => {
                    // Without the `tls` feature the connector is `Copy`.
                    #[allow(clippy::clone_on_copy)]
                    let tls = self.tls.clone();
                    match state.armed.pop_first() {
                        Some((_, Watched::Statement(token))) => cancel(token, tls),
                        Some((_, Watched::Stream(watch))) => {
                            if let Some(watch) = look(watch, now, tls) {
                                let key = (now + look_period(watch.limit), state.next_id);
                                state.next_id += 1;
                                state.armed.insert(key, Watched::Stream(watch));
                            }
                        }
                        None => {}
                    }
                    state
                }
                Some(deadline) => {
                    self.changed
                        .wait_timeout(state, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
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
    if !progress.waiting.load(Ordering::Acquire) {
        watch.seen = None;
        return Some(watch);
    }
    let wait = progress.waits.load(Ordering::Relaxed);
    match watch.seen {
        Some((seen, since)) if seen == wait => {
            if now.duration_since(since) >= watch.limit {
                progress.expired.store(true, Ordering::Release);
                cancel(watch.token, tls);
                return None;
            }
        }
        _ => watch.seen = Some((wait, now)),
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
