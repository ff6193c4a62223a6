//! Pool counters on the `metrics` facade (feature `metrics`).

use metrics::{Counter, Gauge, Histogram, Label};

use crate::config::ConnectionConfig;
use crate::status::CloseReason;

/// The label every OpenTelemetry-named metric carries.
pub(crate) const POOL_NAME: &str = "db.client.connection.pool.name";

/// Handles registered once per engine, so recording is one call each.
#[derive(Debug)]
pub(crate) struct MetricsExport {
    // The uno_db_* metrics, kept (see docs/observability.md).
    pub(crate) created: Counter,
    pub(crate) closed: [Counter; CloseReason::COUNT],
    pub(crate) acquired: Counter,
    pub(crate) acquire_timeouts: Counter,
    pub(crate) wait: Histogram,
    // The OpenTelemetry database client metrics.
    pub(crate) idle: Gauge,
    pub(crate) used: Gauge,
    pub(crate) pending: Gauge,
    pub(crate) timeouts: Counter,
    pub(crate) wait_time: Histogram,
    pub(crate) create_time: Histogram,
    pub(crate) use_time: Histogram,
    pub(crate) operation: Histogram,
}

impl MetricsExport {
    pub(crate) fn new(config: &ConnectionConfig) -> Self {
        let labels = vec![
            Label::new("role", config.role().to_owned()),
            Label::new("host", config.hosts().join(",")),
            Label::new("database", config.database().to_owned()),
        ];
        // Indexed like `PoolMetrics`' counters: `CloseReason::ALL` is in
        // slot order.
        let closed = std::array::from_fn(|slot| {
            let reason = CloseReason::ALL[slot];
            let mut with_reason = labels.clone();
            with_reason.push(Label::new("reason", reason.as_str()));
            metrics::counter!("uno_db_connections_closed_total", with_reason)
        });
        let pool = vec![Label::new(POOL_NAME, super::events::pool_name(config))];
        let with_state = |state: &'static str| {
            let mut labels = pool.clone();
            labels.push(Label::new("state", state));
            metrics::gauge!("db.client.connection.count", labels)
        };
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!("db.client.connection.max", pool.clone())
            .set(config.max_connections() as f64);
        Self {
            created: metrics::counter!("uno_db_connections_created_total", labels.clone()),
            closed,
            acquired: metrics::counter!("uno_db_checkouts_total", labels.clone()),
            acquire_timeouts: metrics::counter!("uno_db_checkout_timeouts_total", labels.clone()),
            wait: metrics::histogram!("uno_db_checkout_wait_seconds", labels),
            idle: with_state("idle"),
            used: with_state("used"),
            pending: metrics::gauge!("db.client.connection.pending_requests", pool.clone()),
            timeouts: metrics::counter!("db.client.connection.timeouts", pool.clone()),
            wait_time: metrics::histogram!("db.client.connection.wait_time", pool.clone()),
            create_time: metrics::histogram!("db.client.connection.create_time", pool.clone()),
            use_time: metrics::histogram!("db.client.connection.use_time", pool.clone()),
            operation: metrics::histogram!("db.client.operation.duration", pool),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use std::time::Duration;

    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use crate::backend::PoolMetrics;
    use crate::{CloseReason, ConnectionConfig};

    #[test]
    fn counters_reach_the_metrics_recorder_with_labels() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let config = ConnectionConfig::builder()
            .role("app")
            .database("orders")
            .password("hidden-pw")
            .build()
            .unwrap();
        metrics::with_local_recorder(&recorder, || {
            let metrics = PoolMetrics::for_config(&config);
            metrics.record_created();
            metrics.record_created();
            metrics.record_closed(CloseReason::Overflow);
            metrics.record_acquired(Duration::from_millis(5));
            metrics.record_acquire_timeout(Duration::from_millis(30));
        });
        let snapshot = snapshotter.snapshot().into_vec();
        let counter = |name: &str, reason: Option<&str>| {
            snapshot
                .iter()
                .find(|(key, _, _, _)| {
                    let key = key.key();
                    key.name() == name
                        && key
                            .labels()
                            .any(|l| l.key() == "database" && l.value() == "orders")
                        && key
                            .labels()
                            .any(|l| l.key() == "role" && l.value() == "app")
                        && reason.is_none_or(|r| {
                            key.labels().any(|l| l.key() == "reason" && l.value() == r)
                        })
                })
                .map(|(_, _, _, value)| value)
        };
        assert_eq!(
            counter("uno_db_connections_created_total", None),
            Some(&DebugValue::Counter(2))
        );
        assert_eq!(
            counter("uno_db_connections_closed_total", Some("overflow")),
            Some(&DebugValue::Counter(1))
        );
        assert_eq!(
            counter("uno_db_connections_closed_total", Some("broken")),
            Some(&DebugValue::Counter(0))
        );
        assert_eq!(
            counter("uno_db_checkouts_total", None),
            Some(&DebugValue::Counter(1))
        );
        assert_eq!(
            counter("uno_db_checkout_timeouts_total", None),
            Some(&DebugValue::Counter(1))
        );
        let Some(DebugValue::Histogram(waits)) = counter("uno_db_checkout_wait_seconds", None)
        else {
            panic!("no wait histogram");
        };
        assert_eq!(waits.len(), 2);
        let text = format!("{snapshot:?}");
        assert!(!text.contains("hidden-pw"), "the password is never a label");
    }
}
