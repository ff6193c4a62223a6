//! [`Watchdog`]: the client-side `query_timeout` of the async backend.
//!
//! Arming a tokio timer for every statement costs a timer-wheel insertion
//! and removal each time (about 5 % of a `SELECT 1` round trip in
//! instructions). A statement instead bumps its connection's
//! [`StatementClock`] (the kernel's [`RunMark`]: no clock read); one task
//! per engine looks at the clocks every [`LookPeriod`] (a twentieth of the
//! shortest limit in use, between 10 ms and a second) and ends the
//! statements it has seen running for their whole limit ([`Sighting`]),
//! claiming each first so that one ending that instant keeps its result.
//! For such a
//! statement it sends a cancel request to the server (on a separate
//! connection) and ends the connection's driver task, so the statement
//! fails at once, however silent the server or network; the statement then
//! reports the kernel's time-out error, and the closed connection is
//! discarded.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio_postgres::CancelToken;
use uno_db_core::Endpoint;
use uno_db_core::backend::{LookPeriod, MakeTls, RunMark, Sighting};

use crate::cancel::cancel_and_wait;

/// One engine's statement clocks and the task that watches them.
#[derive(Debug, Default)]
pub(crate) struct Watchdog {
    shared: Arc<Watched>,
}

#[derive(Debug)]
struct Watched {
    clocks: Mutex<Vec<Watching>>,
    started: AtomicBool,
    /// How often the task looks: for the shortest limit seen.
    period: LookPeriod,
    /// Wakes the task when the period got shorter: asleep for the old
    /// one, it would look too late for a statement under the new limit.
    /// The task holds this, not the engine's clocks, while it sleeps.
    shorter: Arc<Notify>,
}

impl Default for Watched {
    fn default() -> Self {
        Self {
            clocks: Mutex::default(),
            started: AtomicBool::new(false),
            period: LookPeriod::default(),
            shorter: Arc::default(),
        }
    }
}

/// One connection's clock, as the watching task last saw it.
#[derive(Debug)]
struct Watching {
    clock: Weak<StatementClock>,
    sighting: Sighting,
}

/// Whether a statement runs on one connection, under what limit, and how
/// to stop it.
pub(crate) struct StatementClock {
    watched: Arc<Watched>,
    /// Whether a statement runs, which, and its limit.
    running: RunMark,
    /// Set once the watchdog ended the connection for a late statement:
    /// later statements on the dead connection need no second cancel.
    expired: AtomicBool,
    cancel: CancelToken,
    /// Cancel requests go over TLS as the connection does.
    tls: MakeTls,
    driver_task: AbortHandle,
    /// When set, the driver task ends only once the cancel request was
    /// taken by the server it connected to (as [`cancel_and_wait`] waits),
    /// or after this long (the kernel's `cancel_before_closing`: PgBouncer
    /// drops the cancel request of a client that is gone).
    cancel_first: Option<(Duration, Endpoint)>,
    /// How long a cancel request through a
    /// [`CancelHandle`](crate::CancelHandle) may take (`connect_timeout`).
    cancel_bound: Duration,
}

impl std::fmt::Debug for StatementClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatementClock")
            .field("running", &self.running)
            .field("expired", &self.expired)
            .finish_non_exhaustive()
    }
}

impl Watchdog {
    /// A clock for a new connection, whose driver task and cancel token
    /// end a late statement.
    pub(crate) fn clock(
        &self,
        cancel: CancelToken,
        tls: MakeTls,
        driver_task: AbortHandle,
        cancel_first: Option<(Duration, Endpoint)>,
        cancel_bound: Duration,
    ) -> Arc<StatementClock> {
        let clock = Arc::new(StatementClock {
            watched: Arc::clone(&self.shared),
            running: RunMark::default(),
            expired: AtomicBool::new(false),
            cancel,
            tls,
            driver_task,
            cancel_first,
            cancel_bound,
        });
        let mut clocks = self
            .shared
            .clocks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        clocks.retain(|watching| watching.clock.strong_count() > 0);
        clocks.push(Watching {
            clock: Arc::downgrade(&clock),
            sighting: Sighting::new(Instant::now()),
        });
        clock
    }
}

impl StatementClock {
    /// A statement limited to `limit` starts on this clock's connection.
    /// The first one starts the engine's watching task (it ends with the
    /// engine's last connection).
    pub(crate) fn start(&self, limit: Duration) {
        // Only a new limit (the first statement, a transaction's own) has
        // anything to do beyond the bump.
        if self.running.start(limit) {
            self.new_limit(limit);
        }
    }

    #[cold]
    fn new_limit(&self, limit: Duration) {
        let watched = &self.watched;
        // The task reads the period before each sleep, and is woken to
        // read it again when it got shorter (a permit is kept if it is
        // not asleep).
        if watched.period.include(limit) {
            watched.shorter.notify_one();
        }
        if !watched.started.swap(true, Ordering::AcqRel) {
            tokio::spawn(watch(Arc::downgrade(watched)));
        }
    }

    /// A handle that sends this connection's cancel request on demand.
    pub(crate) fn cancel_handle(&self) -> crate::CancelHandle {
        // Without the `tls` feature the connector is `Copy`.
        #[allow(clippy::clone_on_copy)]
        crate::CancelHandle::new(
            self.cancel.clone(),
            self.tls.clone(),
            self.cancel_first.clone(),
            self.cancel_bound,
        )
    }

    /// Where and how long to wait for a cancel request before closing the
    /// connection, when that order matters (behind PgBouncer).
    pub(crate) fn cancel_first(&self) -> Option<(Duration, Endpoint)> {
        self.cancel_first.clone()
    }

    /// The statement on this clock ended; whether the watchdog ended it.
    pub(crate) fn stop(&self) -> bool {
        self.running.stop()
    }

    /// Ends a late statement: a cancel request for the server, then the
    /// driver task, which fails the statement and closes the connection.
    fn expire(&self) {
        if self.expired.swap(true, Ordering::AcqRel) {
            return;
        }
        let token = self.cancel.clone();
        // Without the `tls` feature the connector is `Copy`.
        #[allow(clippy::clone_on_copy)]
        let tls = self.tls.clone();
        let Some((wait, endpoint)) = self.cancel_first.clone() else {
            tokio::spawn(async move {
                let _ =
                    tokio::time::timeout(Duration::from_secs(10), token.cancel_query(tls)).await;
            });
            self.driver_task.abort();
            return;
        };
        let driver_task = self.driver_task.clone();
        tokio::spawn(async move {
            cancel_and_wait(token, tls, endpoint, wait).await;
            driver_task.abort();
        });
    }
}

/// Ends the statements seen running for their whole limit, looking every
/// `period`, until the engine and its connections are gone.
async fn watch(watched: Weak<Watched>) {
    loop {
        let (period, shorter) = match watched.upgrade() {
            Some(watched) => (watched.period.get(), Arc::clone(&watched.shorter)),
            None => return,
        };
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            // Sleeps the new period from now: a statement under the new
            // limit began at most a moment ago.
            () = shorter.notified() => continue,
        }
        let Some(watched) = watched.upgrade() else {
            return;
        };
        let now = Instant::now();
        let mut clocks = watched
            .clocks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for watching in clocks.iter_mut() {
            let Some(clock) = watching.clock.upgrade() else {
                continue;
            };
            if watching.sighting.claim_overdue(&clock.running, now) {
                clock.expire();
            }
        }
    }
}
