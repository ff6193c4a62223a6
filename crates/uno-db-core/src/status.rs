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
    /// Every reason, in a fixed order.
    pub const ALL: [CloseReason; 7] = [
        Self::Expired,
        Self::Idle,
        Self::Broken,
        Self::Overflow,
        Self::Dirty,
        Self::CallbackFailed,
        Self::Disposed,
    ];

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

    fn slot(self) -> usize {
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolCounters {
    /// Physical connections opened.
    pub created: u64,
    /// Physical connections closed, by [`CloseReason::ALL`] order.
    pub closed_by_reason: [u64; 7],
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
        self.closed_by_reason[reason.slot()]
    }

    /// Connections closed for any reason.
    #[must_use]
    pub fn closed_total(&self) -> u64 {
        self.closed_by_reason.iter().sum()
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
    closed: [AtomicU64; 7],
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
            closed_by_reason: std::array::from_fn(|i| self.closed[i].load(Ordering::Relaxed)),
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
        assert_eq!(slots, (0..7).collect::<Vec<_>>());
    }
}
