//! [`Watchdog`]: the client-side `query_timeout` of the async backend.
//!
//! Arming a tokio timer for every statement costs a timer-wheel insertion
//! and removal each time (about 5 % of a `SELECT 1` round trip in
//! instructions). A statement instead writes its deadline on its
//! connection's [`StatementClock`] (an atomic store); one task per engine
//! looks at the clocks every tenth of the shortest limit in use (between
//! 10 ms and 1 s). For a statement past its deadline it sends a cancel
//! request to the server (on a separate connection) and ends the
//! connection's driver task, so the statement fails at once, however
//! silent the server or network; the statement then reports the kernel's
//! time-out error, and the closed connection is discarded.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::task::AbortHandle;
use tokio_postgres::CancelToken;
use uno_db_core::Endpoint;
use uno_db_core::backend::MakeTls;

use crate::cancel::cancel_and_wait;

/// The longest a watching task sleeps between looks.
const MAX_PERIOD: Duration = Duration::from_secs(1);
/// The shortest.
const MIN_PERIOD: Duration = Duration::from_millis(10);

/// One engine's statement clocks and the task that watches them.
#[derive(Debug, Default)]
pub(crate) struct Watchdog {
    shared: Arc<Watched>,
}

#[derive(Debug)]
struct Watched {
    epoch: Instant,
    clocks: Mutex<Vec<Weak<StatementClock>>>,
    started: AtomicBool,
    /// How often the task looks, in nanoseconds: a tenth of the shortest
    /// limit seen.
    period: AtomicU64,
}

impl Default for Watched {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            clocks: Mutex::default(),
            started: AtomicBool::new(false),
            period: AtomicU64::new(nanos(MAX_PERIOD)),
        }
    }
}

/// The deadline of the statement running on one connection, if one runs,
/// and how to stop it.
pub(crate) struct StatementClock {
    watched: Arc<Watched>,
    /// Nanoseconds since the epoch, plus one; 0 when no statement runs.
    deadline: AtomicU64,
    /// Set when the watchdog ended the connection for a late statement.
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
            .field("deadline", &self.deadline)
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
            deadline: AtomicU64::new(0),
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
        clocks.retain(|clock| clock.strong_count() > 0);
        clocks.push(Arc::downgrade(&clock));
        clock
    }
}

impl StatementClock {
    /// A statement limited to `limit` starts on this clock's connection.
    /// The first one starts the engine's watching task (it ends with the
    /// engine's last connection).
    pub(crate) fn start(&self, limit: Duration) {
        let watched = &self.watched;
        let deadline = nanos(watched.epoch.elapsed()).saturating_add(nanos(limit));
        self.deadline
            .store(deadline.saturating_add(1), Ordering::Release);
        // Limits of 10 s and more are watched at the longest period, the
        // one the task starts with: nothing to update on the common path.
        if limit < MAX_PERIOD * 10 {
            let period = nanos((limit / 10).max(MIN_PERIOD));
            watched.period.fetch_min(period, Ordering::Relaxed);
        }
        if !watched.started.load(Ordering::Acquire) && !watched.started.swap(true, Ordering::AcqRel)
        {
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
        self.deadline.store(0, Ordering::Release);
        self.expired.load(Ordering::Acquire)
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

/// Ends the statements past their deadline, looking every `period`, until
/// the engine and its connections are gone.
async fn watch(watched: Weak<Watched>) {
    loop {
        let period = match watched.upgrade() {
            Some(watched) => Duration::from_nanos(watched.period.load(Ordering::Relaxed)),
            None => return,
        };
        tokio::time::sleep(period).await;
        let Some(watched) = watched.upgrade() else {
            return;
        };
        let now = nanos(watched.epoch.elapsed());
        let clocks = watched
            .clocks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for clock in clocks.iter().filter_map(Weak::upgrade) {
            let deadline = clock.deadline.load(Ordering::Acquire);
            if deadline != 0 && now >= deadline - 1 {
                clock.expire();
            }
        }
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
