//! Pool status snapshots and counters, filled in the same way by both
//! backends.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A snapshot of an engine's pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatus {
    /// The most connections the pool may hold: `pool_size + max_overflow`.
    pub max_size: usize,
    /// Open physical connections, idle or in use.
    pub size: usize,
    /// Open connections waiting in the pool.
    pub idle: usize,
    /// Connections checked out by callers.
    pub in_use: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
}

/// Why a physical connection was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// Older than `pool_recycle`.
    Expired,
    /// Idle longer than `idle_timeout`.
    Idle,
    /// Found broken (closed by the server, failed pre-ping, I/O error).
    Broken,
    /// Returned while the pool already held `pool_size` idle connections:
    /// an overflow connection is not kept.
    Overflow,
    /// Returned in a state that could not be cleaned (open transaction,
    /// cancelled query) and discarded rather than reused.
    Dirty,
    /// A connection callback failed on it.
    CallbackFailed,
    /// The engine was disposed.
    Disposed,
}

impl CloseReason {
    /// Every reason, in a fixed order. A slice rather than an array, so
    /// that adding a reason changes no public type.
    pub const ALL: &'static [CloseReason] = &[
        Self::Expired,
        Self::Idle,
        Self::Broken,
        Self::Overflow,
        Self::Dirty,
        Self::CallbackFailed,
        Self::Disposed,
    ];

    /// How many reasons there are: the size of the private per-reason
    /// counter arrays.
    pub(crate) const COUNT: usize = Self::ALL.len();

    /// The reason as a short lowercase word, as logged.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Idle => "idle",
            Self::Broken => "broken",
            Self::Overflow => "overflow",
            Self::Dirty => "dirty",
            Self::CallbackFailed => "callback_failed",
            Self::Disposed => "disposed",
        }
    }

    // The reason's index in `ALL` and in the counter arrays.
    pub(crate) fn slot(self) -> usize {
        match self {
            Self::Expired => 0,
            Self::Idle => 1,
            Self::Broken => 2,
            Self::Overflow => 3,
            Self::Dirty => 4,
            Self::CallbackFailed => 5,
            Self::Disposed => 6,
        }
    }
}

/// Cumulative counters of an engine since it was created.
///
/// Closed connections are counted per [`CloseReason`], read with
/// [`closed`](Self::closed), [`closed_total`](Self::closed_total) and
/// [`closed_by_reason`](Self::closed_by_reason); their storage is private
/// so that a new reason is not a breaking change. Test doubles start from
/// `PoolCounters::default()` and set counts with
/// [`with_closed`](Self::with_closed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolCounters {
    /// Physical connections opened.
    pub created: u64,
    // Physical connections closed, indexed by `CloseReason::slot`.
    closed: [u64; CloseReason::COUNT],
    /// Successful checkouts.
    pub acquired: u64,
    /// Checkouts that gave up after `pool_timeout`.
    pub acquire_timeouts: u64,
    /// Total time callers spent waiting for checkouts (successful or not).
    pub total_wait: Duration,
}

impl PoolCounters {
    /// Connections closed for `reason`.
    #[must_use]
    pub fn closed(&self, reason: CloseReason) -> u64 {
        self.closed[reason.slot()]
    }

    /// Connections closed for any reason.
    #[must_use]
    pub fn closed_total(&self) -> u64 {
        self.closed.iter().sum()
    }

    /// Connections closed for each reason, every reason of
    /// [`CloseReason::ALL`] in its order (zeros included).
    pub fn closed_by_reason(&self) -> impl Iterator<Item = (CloseReason, u64)> + '_ {
        CloseReason::ALL
            .iter()
            .map(|&reason| (reason, self.closed(reason)))
    }

    /// These counters with `count` connections closed for `reason`, for
    /// test doubles that report pool activity.
    #[must_use]
    pub fn with_closed(mut self, reason: CloseReason, count: u64) -> Self {
        self.closed[reason.slot()] = count;
        self
    }
}

/// Lock-free recorder behind [`PoolCounters`], shared by an engine's
/// threads or tasks. Backends record into it; `snapshot` reads it.
///
/// With the `metrics` feature, every record also reaches the `metrics`
/// facade (see [`PoolMetrics::for_config`]).
#[derive(Debug, Default)]
pub struct PoolMetrics {
    created: AtomicU64,
    closed: [AtomicU64; CloseReason::COUNT],
    acquired: AtomicU64,
    acquire_timeouts: AtomicU64,
    wait_nanos: AtomicU64,
    #[cfg(feature = "metrics")]
    export: Option<crate::metrics_export::MetricsExport>,
}

impl PoolMetrics {
    /// A recorder with every counter at zero, exported nowhere.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A recorder for the engine of `config`. With the `metrics` feature its
    /// counters also go to the `metrics` recorder installed now, labelled
    /// with the role, host and database: `uno_db_connections_created_total`,
    /// `uno_db_connections_closed_total` (label `reason`),
    /// `uno_db_checkouts_total`, `uno_db_checkout_timeouts_total` and the
    /// histogram `uno_db_checkout_wait_seconds`.
    #[must_use]
    pub fn for_config(config: &crate::ConnectionConfig) -> Self {
        #[cfg(feature = "metrics")]
        {
            Self {
                export: Some(crate::metrics_export::MetricsExport::new(config)),
                ..Self::default()
            }
        }
        #[cfg(not(feature = "metrics"))]
        {
            let _ = config;
            Self::default()
        }
    }

    /// Records a new physical connection.
    pub fn record_created(&self) {
        self.created.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        if let Some(export) = &self.export {
            export.created.increment(1);
        }
    }

    /// Records a closed physical connection.
    pub fn record_closed(&self, reason: CloseReason) {
        self.closed[reason.slot()].fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        if let Some(export) = &self.export {
            export.closed[reason.slot()].increment(1);
        }
    }

    /// Records a successful checkout that waited `waited`.
    pub fn record_acquired(&self, waited: Duration) {
        self.acquired.fetch_add(1, Ordering::Relaxed);
        self.add_wait(waited);
        #[cfg(feature = "metrics")]
        if let Some(export) = &self.export {
            export.acquired.increment(1);
            export.wait.record(waited.as_secs_f64());
        }
    }

    /// Records a checkout that timed out after `waited`.
    pub fn record_acquire_timeout(&self, waited: Duration) {
        self.acquire_timeouts.fetch_add(1, Ordering::Relaxed);
        self.add_wait(waited);
        #[cfg(feature = "metrics")]
        if let Some(export) = &self.export {
            export.acquire_timeouts.increment(1);
            export.wait.record(waited.as_secs_f64());
        }
    }

    fn add_wait(&self, waited: Duration) {
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        self.wait_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Physical connections opened and not closed yet (created minus
    /// closed), read without locking the pool.
    #[must_use]
    pub fn open_connections(&self) -> u64 {
        let closed: u64 = self.closed.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        self.created.load(Ordering::Relaxed).saturating_sub(closed)
    }

    /// The counters now.
    #[must_use]
    pub fn snapshot(&self) -> PoolCounters {
        PoolCounters {
            created: self.created.load(Ordering::Relaxed),
            closed: std::array::from_fn(|slot| self.closed[slot].load(Ordering::Relaxed)),
            acquired: self.acquired.load(Ordering::Relaxed),
            acquire_timeouts: self.acquire_timeouts.load(Ordering::Relaxed),
            total_wait: Duration::from_nanos(self.wait_nanos.load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_accumulate_per_reason() {
        let metrics = PoolMetrics::new();
        metrics.record_created();
        metrics.record_created();
        metrics.record_closed(CloseReason::Overflow);
        metrics.record_closed(CloseReason::Broken);
        metrics.record_closed(CloseReason::Broken);
        metrics.record_acquired(Duration::from_millis(3));
        metrics.record_acquire_timeout(Duration::from_millis(7));
        let counters = metrics.snapshot();
        assert_eq!(counters.created, 2);
        assert_eq!(counters.closed(CloseReason::Broken), 2);
        assert_eq!(counters.closed(CloseReason::Overflow), 1);
        assert_eq!(counters.closed(CloseReason::Idle), 0);
        assert_eq!(counters.closed_total(), 3);
        let by_reason: Vec<(CloseReason, u64)> = counters.closed_by_reason().collect();
        assert_eq!(by_reason.len(), CloseReason::ALL.len());
        assert_eq!(by_reason[0], (CloseReason::Expired, 0));
        assert_eq!(by_reason[2], (CloseReason::Broken, 2));
        assert_eq!(by_reason[3], (CloseReason::Overflow, 1));
        assert_eq!(by_reason.iter().map(|(_, n)| n).sum::<u64>(), 3);
        assert_eq!(metrics.open_connections(), 0, "never below zero");
        metrics.record_created();
        metrics.record_created();
        assert_eq!(metrics.open_connections(), 1);
        assert_eq!(counters.acquired, 1);
        assert_eq!(counters.acquire_timeouts, 1);
        assert_eq!(counters.total_wait, Duration::from_millis(10));
    }

    #[test]
    fn reasons_have_distinct_slots() {
        let mut slots: Vec<usize> = CloseReason::ALL.iter().map(|r| r.slot()).collect();
        slots.dedup();
        assert_eq!(slots, (0..CloseReason::COUNT).collect::<Vec<_>>());
    }

    #[test]
    fn test_doubles_set_closed_counts() {
        let counters = PoolCounters::default()
            .with_closed(CloseReason::Idle, 4)
            .with_closed(CloseReason::Dirty, 1);
        assert_eq!(counters.closed(CloseReason::Idle), 4);
        assert_eq!(counters.closed(CloseReason::Dirty), 1);
        assert_eq!(counters.closed(CloseReason::Broken), 0);
        assert_eq!(counters.closed_total(), 5);
    }
}
