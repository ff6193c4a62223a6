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

use std::collections::BTreeMap;
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
    armed: BTreeMap<(Instant, u64), Arc<CancelToken>>,
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
        state.armed.insert(key, Arc::clone(token));
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
        Armed {
            watchdog: self,
            key,
        }
    }
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
                    if let Some((_, token)) = state.armed.pop_first() {
                        // Without the `tls` feature the connector is `Copy`.
                        #[allow(clippy::clone_on_copy)]
                        let tls = self.tls.clone();
                        cancel(token, tls);
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

/// Sends a cancel request on a thread of its own: it connects to the
/// server, which may be as silent as the statement's connection.
fn cancel(token: Arc<CancelToken>, tls: MakeTls) {
    let spawned = std::thread::Builder::new()
        .name("uno-db-sync-cancel".to_owned())
        .spawn(move || drop(token.cancel_query(tls)));
    drop(spawned);
}
