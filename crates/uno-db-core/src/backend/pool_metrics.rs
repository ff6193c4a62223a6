//! [`PoolMetrics`]: the lock-free counters behind an engine's
//! [`PoolCounters`].

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::striped_counter::StripedCounter;
use crate::status::{CloseReason, PoolCounters};

/// Lock-free recorder behind [`PoolCounters`], shared by an engine's
/// threads or tasks. Backends record into it; `snapshot` reads it.
///
/// With the `metrics` feature, every record also reaches the `metrics`
/// facade (see [`PoolMetrics::for_config`]).
#[derive(Debug, Default)]
pub struct PoolMetrics {
    created: AtomicU64,
    closed: [AtomicU64; CloseReason::COUNT],
    /// Created minus closed, kept apart so that a return reads one word
    /// (written only when a connection opens or closes).
    open: AtomicI64,
    /// Written by every checkout from every thread: striped, so that
    /// checkouts on different cores do not contend for one cache line.
    acquired: StripedCounter,
    acquire_timeouts: AtomicU64,
    wait_nanos: StripedCounter,
    #[cfg(feature = "metrics")]
    export: Option<super::metrics_export::MetricsExport>,
}

impl PoolMetrics {
    /// A recorder with every counter at zero, exported nowhere.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A recorder for the engine of `config`. With the `metrics` feature its
    /// counters also go to the `metrics` recorder installed now: the
    /// OpenTelemetry database client metrics, labelled
    /// `db.client.connection.pool.name` (see
    /// [`pool_name`](super::events::pool_name)):
    /// `db.client.connection.count` (gauge, label `state` = `idle`/`used`),
    /// `db.client.connection.max`, `db.client.connection.pending_requests`,
    /// `db.client.connection.timeouts`, and the histograms (seconds)
    /// `db.client.connection.wait_time`, `db.client.connection.create_time`,
    /// `db.client.connection.use_time`, `db.client.operation.duration`;
    /// and, labelled with the role, host and database, the earlier
    /// `uno_db_connections_created_total`,
    /// `uno_db_connections_closed_total` (label `reason`),
    /// `uno_db_checkouts_total`, `uno_db_checkout_timeouts_total` and the
    /// histogram `uno_db_checkout_wait_seconds`.
    #[must_use]
    pub fn for_config(config: &crate::ConnectionConfig) -> Self {
        #[cfg(feature = "metrics")]
        {
            Self {
                export: Some(super::metrics_export::MetricsExport::new(config)),
                ..Self::default()
            }
        }
        #[cfg(not(feature = "metrics"))]
        {
            let _ = config;
            Self::default()
        }
    }

    /// The `db.client.operation.duration` histogram, for the statements'
    /// measures (none without a `metrics` export).
    #[cfg(feature = "metrics")]
    pub(crate) fn operation_histogram(&self) -> Option<metrics::Histogram> {
        self.export.as_ref().map(|export| export.operation.clone())
    }

    /// Records a new physical connection.
    pub fn record_created(&self) {
        self.created.fetch_add(1, Ordering::Relaxed);
        self.open.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        if let Some(export) = &self.export {
            export.created.increment(1);
            export.idle.increment(1.0);
        }
    }

    /// Records a closed physical connection.
    pub fn record_closed(&self, reason: CloseReason) {
        self.closed[reason.slot()].fetch_add(1, Ordering::Relaxed);
        self.open.fetch_sub(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        if let Some(export) = &self.export {
            export.closed[reason.slot()].increment(1);
            export.idle.decrement(1.0);
        }
    }

    /// Records a successful checkout that waited `waited`.
    #[inline]
    pub fn record_acquired(&self, waited: Duration) {
        self.acquired.increment();
        self.add_wait(waited);
        #[cfg(feature = "metrics")]
        if let Some(export) = &self.export {
            export.acquired.increment(1);
            export.wait.record(waited.as_secs_f64());
            export.wait_time.record(waited.as_secs_f64());
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
            export.timeouts.increment(1);
            export.wait_time.record(waited.as_secs_f64());
        }
    }

    /// Records a connection handed to its user (idle → used).
    #[inline]
    pub fn record_handed_out(&self) {
        #[cfg(feature = "metrics")]
        if let Some(export) = &self.export {
            export.idle.decrement(1.0);
            export.used.increment(1.0);
        }
    }

    /// Records a connection its user checked out at `at` and returned at
    /// `now` (used → idle, whatever then happens to it). The time in use
    /// is worked out only when it is exported.
    #[inline]
    pub fn record_returned(&self, at: Instant, now: Instant) {
        #[cfg(feature = "metrics")]
        if let Some(export) = &self.export {
            export.used.decrement(1.0);
            export.idle.increment(1.0);
            export
                .use_time
                .record(now.saturating_duration_since(at).as_secs_f64());
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (at, now);
    }

    /// Records a physical connection that took `took` to open (connect,
    /// authentication and the open steps).
    pub fn record_create_time(&self, took: Duration) {
        #[cfg(feature = "metrics")]
        if let Some(export) = &self.export {
            export.create_time.record(took.as_secs_f64());
        }
        #[cfg(not(feature = "metrics"))]
        let _ = took;
    }

    /// Records a checkout that starts waiting (`true`) or stops (`false`).
    #[inline]
    pub fn record_pending(&self, waiting: bool) {
        #[cfg(feature = "metrics")]
        if let Some(export) = &self.export {
            if waiting {
                export.pending.increment(1.0);
            } else {
                export.pending.decrement(1.0);
            }
        }
        #[cfg(not(feature = "metrics"))]
        let _ = waiting;
    }

    #[inline]
    fn add_wait(&self, waited: Duration) {
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        // A checkout served at once adds nothing: no write to share.
        if nanos != 0 {
            self.wait_nanos.add(nanos);
        }
    }

    /// Physical connections opened and not closed yet (created minus
    /// closed), read without locking the pool.
    #[must_use]
    #[inline]
    pub fn open_connections(&self) -> u64 {
        u64::try_from(self.open.load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// The counters now.
    #[must_use]
    pub fn snapshot(&self) -> PoolCounters {
        PoolCounters {
            created: self.created.load(Ordering::Relaxed),
            closed: std::array::from_fn(|slot| self.closed[slot].load(Ordering::Relaxed)),
            acquired: self.acquired.sum(),
            acquire_timeouts: self.acquire_timeouts.load(Ordering::Relaxed),
            total_wait: Duration::from_nanos(self.wait_nanos.sum()),
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
}
