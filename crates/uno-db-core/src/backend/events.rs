//! The log events both backends emit, so that their messages and fields are
//! identical. Target `uno_db`; fields `role`, `host`, `database`,
//! `attempt`, `delay_ms`, `error`, `sqlstate`. The password is never logged: it is not
//! a field, and configurations are rendered with [`ConnectionConfig::to_url`],
//! which masks it.

use std::time::Duration;

use tokio_postgres::error::SqlState;

use crate::config::{ConnectionConfig, Endpoint};
use crate::error::{Error, error_chain};
use crate::status::CloseReason;

/// The `tracing` target of every uno-db event.
pub const TARGET: &str = "uno_db";

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Emits the events of one engine, tagged with its configuration.
#[derive(Debug, Clone, Copy)]
pub struct EngineEvents<'a> {
    config: &'a ConnectionConfig,
}

impl<'a> EngineEvents<'a> {
    /// Events about the engine built from `config`.
    #[must_use]
    pub fn new(config: &'a ConnectionConfig) -> Self {
        Self { config }
    }

    fn host(&self) -> String {
        self.config.hosts().join(",")
    }

    /// An engine was created.
    pub fn engine_created(&self, backend: &str) {
        tracing::info!(
            target: TARGET,
            role = self.config.role(),
            host = %self.host(),
            database = self.config.database(),
            backend,
            pool_size = self.config.pool_size(),
            max_overflow = self.config.max_overflow(),
            "engine created"
        );
    }

    /// An engine was disposed.
    pub fn engine_disposed(&self) {
        tracing::info!(
            target: TARGET,
            role = self.config.role(),
            host = %self.host(),
            database = self.config.database(),
            "engine disposed"
        );
    }

    /// A connection attempt starts.
    pub fn connect_attempt(&self, attempt: u32, endpoint: &Endpoint) {
        tracing::debug!(
            target: TARGET,
            role = self.config.role(),
            host = %endpoint,
            database = self.config.database(),
            attempt,
            "connecting"
        );
    }

    /// A connection attempt succeeded.
    pub fn connected(&self, attempt: u32, endpoint: &Endpoint, elapsed: Duration) {
        tracing::debug!(
            target: TARGET,
            role = self.config.role(),
            host = %endpoint,
            database = self.config.database(),
            attempt,
            elapsed_ms = millis(elapsed),
            "connected"
        );
    }

    /// A connection attempt failed and will be retried after `delay`.
    pub fn connect_retry(&self, attempt: u32, delay: Duration, error: &Error) {
        tracing::warn!(
            target: TARGET,
            role = self.config.role(),
            host = %self.host(),
            database = self.config.database(),
            attempt,
            delay_ms = millis(delay),
            error = %error_chain(error),
            "connection attempt failed; retrying"
        );
    }

    /// Connecting failed for good.
    pub fn connect_failed(&self, attempt: u32, error: &Error) {
        tracing::error!(
            target: TARGET,
            role = self.config.role(),
            host = %self.host(),
            database = self.config.database(),
            attempt,
            error = %error_chain(error),
            transient = error.is_transient(),
            "connection failed"
        );
    }

    /// A connection learned that `endpoint` may have changed role (it
    /// refused a write, or answered a role check as the wrong kind of
    /// server): the pool's other connections to it check their role before
    /// they are handed out again.
    pub fn host_suspected(&self, endpoint: &Endpoint) {
        tracing::info!(
            target: TARGET,
            role = self.config.role(),
            host = %endpoint,
            database = self.config.database(),
            target_session_attrs = %self.config.target_session_attrs(),
            "server role may have changed; rechecking its connections"
        );
    }

    /// A physical connection was closed.
    pub fn connection_closed(&self, reason: CloseReason) {
        tracing::debug!(
            target: TARGET,
            role = self.config.role(),
            host = %self.host(),
            database = self.config.database(),
            reason = reason.as_str(),
            "connection closed"
        );
    }

    /// A connection checked out at `location` has been held for `held`,
    /// past `leak_detection_threshold`; logged once per checkout.
    pub fn connection_leak_suspected(
        &self,
        location: &std::panic::Location<'_>,
        held: Duration,
        threshold: Duration,
    ) {
        tracing::warn!(
            target: TARGET,
            role = self.config.role(),
            host = %self.host(),
            database = self.config.database(),
            checked_out_at = %location,
            held_ms = millis(held),
            threshold_ms = millis(threshold),
            "connection held past leak_detection_threshold; possible leak"
        );
    }

    /// A connection reported by
    /// [`connection_leak_suspected`](Self::connection_leak_suspected) was
    /// returned after `held`.
    pub fn leaked_connection_returned(&self, location: &std::panic::Location<'_>, held: Duration) {
        tracing::info!(
            target: TARGET,
            role = self.config.role(),
            host = %self.host(),
            database = self.config.database(),
            checked_out_at = %location,
            held_ms = millis(held),
            "connection reported as a possible leak was returned"
        );
    }

    /// `set_pool_size` / `set_max_overflow` changed the pool's limits.
    pub fn pool_resized(&self, pool_size: usize, max_overflow: usize) {
        tracing::info!(
            target: TARGET,
            role = self.config.role(),
            host = %self.host(),
            database = self.config.database(),
            pool_size,
            max_overflow,
            "pool resized"
        );
    }

    /// A drain (`close(deadline)`) ended: `returned` connections came back
    /// in time, `forced` were still checked out at the deadline.
    pub fn engine_closed(&self, returned: usize, forced: usize) {
        tracing::info!(
            target: TARGET,
            role = self.config.role(),
            host = %self.host(),
            database = self.config.database(),
            returned,
            forced,
            "engine closed"
        );
    }

    /// A checkout gave up after `waited`.
    pub fn acquire_timeout(&self, waited: Duration, error: &Error) {
        tracing::warn!(
            target: TARGET,
            role = self.config.role(),
            host = %self.host(),
            database = self.config.database(),
            waited_ms = millis(waited),
            error = %error_chain(error),
            "timed out waiting for a pooled connection"
        );
    }

    /// A returned connection was discarded instead of reused.
    pub fn connection_discarded(&self, reason: CloseReason, error: Option<&Error>) {
        let error = error.map(|e| error_chain(e));
        tracing::warn!(
            target: TARGET,
            role = self.config.role(),
            host = %self.host(),
            database = self.config.database(),
            reason = reason.as_str(),
            error = error.as_deref(),
            "connection discarded"
        );
    }

    /// The async driver's connection task (the future that owns the socket
    /// and reads the server's messages) ended with `error`. The backend
    /// calls this instead of dropping the task's outcome, so that a
    /// connection the server killed says why; the pool itself finds the
    /// connection broken at its next use (reason `broken`).
    ///
    /// WARN, with the server's SQLSTATE as the `sqlstate` field when it sent
    /// a report: the server terminated the session (`FATAL 57P01
    /// admin_shutdown` from `pg_terminate_backend` or a shutdown, `57P05
    /// idle_session_timeout`...), the socket failed (reset, timeout), or the
    /// server sent something the driver could not follow. DEBUG for the
    /// expected close: the server or a proxy closed the socket without a
    /// report (the driver's `is_closed`), which says nothing beyond the
    /// `connection closed` event. A task that ends without an error (its
    /// client was dropped) is not reported at all.
    pub fn connection_task_failed(&self, error: &tokio_postgres::Error) {
        let sqlstate = error.code().map(SqlState::code);
        if error.is_closed() {
            tracing::debug!(
                target: TARGET,
                role = self.config.role(),
                host = %self.host(),
                database = self.config.database(),
                error = %error_chain(error),
                "connection closed by the server"
            );
        } else {
            tracing::warn!(
                target: TARGET,
                role = self.config.role(),
                host = %self.host(),
                database = self.config.database(),
                sqlstate,
                error = %error_chain(error),
                "connection task failed"
            );
        }
    }
}

/// A whole transaction failed to serialize (or deadlocked) and is about to
/// run again after `delay` (attempt `attempt` failed).
pub fn transaction_retry(attempt: u32, delay: Duration, error: &Error) {
    tracing::debug!(
        target: TARGET,
        attempt,
        delay_ms = millis(delay),
        sqlstate = error.sqlstate().map(|c| c.code()),
        "transaction failed to serialize; retrying"
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::fmt::Write as _;
    use std::sync::{Arc, Mutex};

    use tokio_postgres::NoTls;
    use tracing::field::{Field, Visit};
    use tracing::{Event, Level, Metadata, Subscriber, span};

    use super::*;
    use crate::error::ErrorKind;
    use crate::fake_server::{self, Report, Script};

    /// One captured event: its level and its fields, `name=value` each.
    #[derive(Debug, Clone)]
    struct Captured {
        level: Level,
        fields: String,
    }

    /// The least `tracing` subscriber that keeps every event, so that the
    /// tests see levels and fields without a subscriber crate.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<Captured>>>);

    struct Fields(String);

    impl Visit for Fields {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            let _ = write!(self.0, "{}={value:?} ", field.name());
        }

        fn record_str(&mut self, field: &Field, value: &str) {
            let _ = write!(self.0, "{}={value} ", field.name());
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
            span::Id::from_u64(1)
        }
        fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
        fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut fields = Fields(String::new());
            event.record(&mut fields);
            self.0.lock().unwrap().push(Captured {
                level: *event.metadata().level(),
                fields: fields.0,
            });
        }
        fn enter(&self, _: &span::Id) {}
        fn exit(&self, _: &span::Id) {}
    }

    fn config() -> ConnectionConfig {
        ConnectionConfig::builder()
            .role("app")
            .database("orders")
            .hosts(["db1"])
            .build()
            .unwrap()
    }

    fn captured(emit: impl FnOnce(&EngineEvents<'_>)) -> Vec<Captured> {
        let capture = Capture::default();
        let config = config();
        tracing::subscriber::with_default(capture.clone(), || emit(&EngineEvents::new(&config)));
        capture.0.lock().unwrap().clone()
    }

    async fn connection_task_error(script: Script) -> tokio_postgres::Error {
        let (_client, connection) = fake_server::start(script)
            .await
            .connect(NoTls)
            .await
            .unwrap();
        connection.await.unwrap_err()
    }

    #[tokio::test]
    async fn a_connection_task_killed_by_the_server_is_a_warning_naming_the_report() {
        let error = connection_task_error(Script::TerminateAfterReady(
            Report::fatal(
                "57P01",
                "terminating connection due to administrator command",
            )
            .with_detail("secret-detail"),
        ))
        .await;
        let events = captured(|events| events.connection_task_failed(&error));
        assert_eq!(events.len(), 1, "{events:?}");
        let event = &events[0];
        assert_eq!(event.level, Level::WARN, "{event:?}");
        assert!(event.fields.contains("sqlstate=57P01"), "{event:?}");
        assert!(
            event.fields.contains(
                "database error 57P01 admin_shutdown: terminating connection due to administrator command"
            ),
            "{event:?}"
        );
        assert!(event.fields.contains("role=app"), "{event:?}");
        assert!(!event.fields.contains("secret-detail"), "{event:?}");
    }

    #[tokio::test]
    async fn a_reset_connection_task_is_a_warning() {
        let error = connection_task_error(Script::ResetAfterReady).await;
        let events = captured(|events| events.connection_task_failed(&error));
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].level, Level::WARN, "{events:?}");
        assert!(!events[0].fields.contains("sqlstate"), "{events:?}");
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_without_a_report_is_debug() {
        let error = connection_task_error(Script::HangUpAfterReady).await;
        assert!(error.is_closed());
        let events = captured(|events| events.connection_task_failed(&error));
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].level, Level::DEBUG, "{events:?}");
    }

    #[tokio::test]
    async fn error_chain_tells_a_server_report_once_and_never_its_detail() {
        let (client, connection) = fake_server::start(Script::FailQueries(
            Report::error(
                "23505",
                "duplicate key value violates unique constraint \"u_pkey\"",
            )
            .with_detail("Key (email)=(secret@example.com) already exists."),
        ))
        .await
        .connect(NoTls)
        .await
        .unwrap();
        tokio::spawn(connection);
        let driver = client.batch_execute("INSERT").await.unwrap_err();
        // The driver's own rendering would print the DETAIL.
        assert!(error_chain(&driver).starts_with("db error: database error 23505"));
        assert!(!error_chain(&driver).contains("secret@example.com"));

        let ours = Error::from_driver(driver);
        let wrapped = Error::callback("init", ours.clone());
        assert_eq!(
            error_chain(&ours),
            "database error 23505 unique_violation: duplicate key value violates unique constraint \"u_pkey\""
        );
        assert_eq!(
            error_chain(&wrapped),
            "connection callback `init` failed; the connection was discarded: database error 23505 unique_violation: duplicate key value violates unique constraint \"u_pkey\""
        );
    }

    #[test]
    fn error_chain_joins_other_causes() {
        let error = Error::with_message(ErrorKind::Connect, "could not connect to x")
            .with_source(std::io::Error::other("refused"));
        assert_eq!(error_chain(&error), "could not connect to x: refused");
    }
}
