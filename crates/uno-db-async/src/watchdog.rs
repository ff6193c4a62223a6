//! [`Watchdog`]: the client-side `query_timeout` of the async backend.
//!
//! Arming a tokio timer for every statement costs a timer-wheel insertion
//! and removal each time (about 5 % of a `SELECT 1` round trip in
//! instructions). A statement instead marks its start on its connection's
//! [`StatementClock`] (an atomic store); one task per engine looks at the
//! clocks every tenth of `query_timeout` (between 10 ms and 1 s). For a
//! statement past the limit it sends a cancel request to the server (on a
//! separate connection) and ends the connection's driver task, so the
//! statement fails at once, however silent the server or network; the
//! statement then reports the kernel's time-out error, and the closed
//! connection is discarded.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::task::AbortHandle;
use tokio_postgres::{CancelToken, NoTls};

/// One engine's statement clocks and the task that watches them.
#[derive(Debug)]
pub(crate) struct Watchdog {
    limit: Option<Duration>,
    epoch: Instant,
    clocks: Arc<Mutex<Vec<Weak<StatementClock>>>>,
    started: AtomicBool,
}

/// When the statement running on one connection started, if one runs,
/// and how to stop it.
pub(crate) struct StatementClock {
    epoch: Instant,
    /// Nanoseconds since `epoch`, plus one; 0 when idle.
    since: AtomicU64,
    /// Set when the watchdog ended the connection for a late statement.
    expired: AtomicBool,
    cancel: CancelToken,
    driver_task: AbortHandle,
}

impl Watchdog {
    /// A watchdog for statements limited to `limit` (`None`: no limit).
    pub(crate) fn new(limit: Option<Duration>) -> Self {
        Self {
            limit,
            epoch: Instant::now(),
            clocks: Arc::default(),
            started: AtomicBool::new(false),
        }
    }

    /// A clock for a new connection; `None` without a limit. Starts the
    /// watching task with the first one (it ends with the engine).
    pub(crate) fn clock(
        &self,
        cancel: CancelToken,
        driver_task: AbortHandle,
    ) -> Option<Arc<StatementClock>> {
        let limit = self.limit?;
        let clock = Arc::new(StatementClock {
            epoch: self.epoch,
            since: AtomicU64::new(0),
            expired: AtomicBool::new(false),
            cancel,
            driver_task,
        });
        let mut clocks = self.clocks.lock().unwrap_or_else(PoisonError::into_inner);
        clocks.retain(|clock| clock.strong_count() > 0);
        clocks.push(Arc::downgrade(&clock));
        drop(clocks);
        if !self.started.swap(true, Ordering::AcqRel) {
            let period = (limit / 10).clamp(Duration::from_millis(10), Duration::from_secs(1));
            tokio::spawn(watch(
                Arc::downgrade(&self.clocks),
                self.epoch,
                limit,
                period,
            ));
        }
        Some(clock)
    }
}

impl std::fmt::Debug for StatementClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatementClock")
            .field("since", &self.since)
            .field("expired", &self.expired)
            .finish_non_exhaustive()
    }
}

impl StatementClock {
    /// A statement starts on this clock's connection.
    pub(crate) fn start(&self) {
        let nanos = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
        self.since.store(nanos + 1, Ordering::Release);
    }

    /// The statement on this clock ended; whether the watchdog ended it.
    pub(crate) fn stop(&self) -> bool {
        self.since.store(0, Ordering::Release);
        self.expired.load(Ordering::Acquire)
    }

    /// Ends a late statement: a cancel request for the server, then the
    /// driver task, which fails the statement and closes the connection.
    fn expire(&self, cancel_within: Duration) {
        if self.expired.swap(true, Ordering::AcqRel) {
            return;
        }
        let token = self.cancel.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(cancel_within, token.cancel_query(NoTls)).await;
        });
        self.driver_task.abort();
    }
}

/// Rings the clocks whose statement has run past `limit`, every `period`,
/// until the engine (which owns the clock list) is gone.
async fn watch(
    clocks: Weak<Mutex<Vec<Weak<StatementClock>>>>,
    epoch: Instant,
    limit: Duration,
    period: Duration,
) {
    let cancel_within = limit.min(Duration::from_secs(10));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let limit = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
    loop {
        ticker.tick().await;
        let Some(clocks) = clocks.upgrade() else {
            return;
        };
        let now = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let clocks = clocks.lock().unwrap_or_else(PoisonError::into_inner);
        for clock in clocks.iter().filter_map(Weak::upgrade) {
            let since = clock.since.load(Ordering::Acquire);
            if since != 0 && now.saturating_sub(since - 1) >= limit {
                clock.expire(cancel_within);
            }
        }
    }
}
