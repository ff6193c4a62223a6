//! The log events and spans both backends emit, so that their messages,
//! spans and fields are identical.
//!
//! Events: target `uno_db`; fields `role`, `host`, `database`, `attempt`,
//! `delay_ms`, `error`, `sqlstate`. An error the library returns to its
//! caller is never logged at ERROR: a retried connect failure is a WARN the
//! first time in a checkout and DEBUG after, and the final error is
//! returned (logged at DEBUG only).
//!
//! Spans ([`Telemetry`]): target `uno_db::span`, named and attributed after
//! the OpenTelemetry database client conventions; the engine's span at INFO,
//! the others (checkout, connect, transaction, statement) at DEBUG, so that
//! a subscriber at INFO pays nothing for them. See docs/observability.md.
//!
//! The password is never logged: it is not a field, and configurations are
//! rendered with [`ConnectionConfig::to_url`] or
//! [`ConnectionConfig::target`], which leave it out.

use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tracing::Span;
use tracing::field::Empty;

use crate::config::{ConnectionConfig, Endpoint};
use crate::error::{Error, error_chain};
use crate::status::CloseReason;

/// The `tracing` target of every uno-db event.
pub const TARGET: &str = "uno_db";

/// The `tracing` target of every uno-db span: `uno_db::span=debug` turns the
/// spans on without the DEBUG events of [`TARGET`].
pub const SPAN_TARGET: &str = "uno_db::span";

/// `db.system.name` of every span.
pub const DB_SYSTEM: &str = "postgresql";

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The spans and per-statement measures of one engine, built once when the
/// engine is: its identity (pool name, database, servers) is computed here,
/// so that a span costs no formatting, and a disabled span (no subscriber,
/// or one below DEBUG for [`SPAN_TARGET`]) costs one callsite check and no
/// allocation.
///
/// Span names and fields follow the OpenTelemetry database client
/// conventions (`db.system.name`, `db.namespace`, `db.operation.name`,
/// `server.address`, `server.port`, `db.response.status_code`,
/// `error.type`, `db.query.text` when `trace_query_text` is on); `otel.name`
/// and `otel.kind` are the names `tracing-opentelemetry` reads.
#[derive(Debug)]
pub struct Telemetry {
    engine: Span,
    pool_name: String,
    database: String,
    /// Host and port of each server of the configuration, in its order.
    servers: Vec<(String, u16)>,
    query_text: bool,
    #[cfg(feature = "metrics")]
    operation: Option<metrics::Histogram>,
}

/// The pool name of `config` for metrics and spans
/// (`db.client.connection.pool.name`): its `application_name` when set,
/// else `role@host:port/database`. Never holds a secret.
#[must_use]
pub fn pool_name(config: &ConnectionConfig) -> String {
    config
        .application_name()
        .map_or_else(|| config.target(), ToOwned::to_owned)
}

impl Telemetry {
    /// The telemetry of the engine of `config`, whose statement durations
    /// go to `metrics` (with the `metrics` feature).
    #[must_use]
    pub fn new(config: &ConnectionConfig, metrics: &super::PoolMetrics) -> Self {
        let pool_name = pool_name(config);
        let engine = tracing::info_span!(
            target: SPAN_TARGET,
            "uno_db.engine",
            role = config.role(),
            host = %config.hosts().join(","),
            database = config.database(),
            db.system.name = DB_SYSTEM,
            db.client.connection.pool.name = %pool_name,
        );
        #[cfg(not(feature = "metrics"))]
        let _ = metrics;
        Self {
            engine,
            database: config.database().to_owned(),
            servers: config
                .endpoints()
                .iter()
                .map(|e| (e.host().to_owned(), e.port()))
                .collect(),
            query_text: config.trace_query_text(),
            #[cfg(feature = "metrics")]
            operation: metrics.operation_histogram(),
            pool_name,
        }
    }

    /// The engine's span (INFO, `uno_db.engine`): role, host, database and
    /// pool name, once. The async backend runs its background work (the
    /// driver's connection tasks, the idle reaper) in it.
    #[must_use]
    pub fn engine_span(&self) -> &Span {
        &self.engine
    }

    /// The pool name (see [`pool_name`]).
    #[must_use]
    pub fn pool_name(&self) -> &str {
        &self.pool_name
    }

    fn server(&self, index: usize) -> (&str, u16) {
        self.servers
            .get(index)
            .map_or(("", 0), |(host, port)| (host.as_str(), *port))
    }

    /// The span of one checkout (`db.client.connection.acquire`, DEBUG):
    /// from its start to a connection handed out or an error; fields
    /// `wait_ms` and, on failure, `error.type`. Connect attempts made for
    /// it are its children. `None` when no subscriber wants the span: a
    /// disabled `Span` still costs its drop on every checkout.
    #[must_use]
    #[inline]
    pub fn acquire_span(&self) -> Option<Span> {
        if !spans_enabled() {
            return None;
        }
        Some(self.enabled_acquire_span())
    }

    // Out of line: inlined into every checkout, the span's construction
    // would weigh on the common case, where no subscriber wants it.
    #[inline(never)]
    fn enabled_acquire_span(&self) -> Span {
        tracing::debug_span!(
            target: SPAN_TARGET,
            "db.client.connection.acquire",
            otel.kind = "client",
            db.system.name = DB_SYSTEM,
            db.client.connection.pool.name = %self.pool_name,
            wait_ms = Empty,
            error.type = Empty,
        )
    }

    /// The span of one physical connect attempt
    /// (`db.client.connection.create`, DEBUG) to server `index`: fields
    /// `server.address`, `server.port`, `attempt`, then `outcome`
    /// (`connected`, `failed`, or `cancelled` for an attempt abandoned
    /// half-way because its checkout gave up or was dropped) and, on
    /// failure, `error.type` and
    /// `db.response.status_code`.
    #[must_use]
    pub fn connect_span(&self, index: usize, attempt: u32) -> Span {
        if !spans_enabled() {
            return Span::none();
        }
        let (address, port) = self.server(index);
        tracing::debug_span!(
            target: SPAN_TARGET,
            "db.client.connection.create",
            otel.kind = "client",
            db.system.name = DB_SYSTEM,
            db.namespace = %self.database,
            server.address = address,
            server.port = port,
            attempt,
            outcome = Empty,
            error.type = Empty,
            db.response.status_code = Empty,
        )
    }

    /// The span of one session's transaction (`db.transaction`, DEBUG) on
    /// server `index`: from `BEGIN` to its `COMMIT` or `ROLLBACK`, field
    /// `outcome` (`commit`, `rollback`). Its statements are its children.
    #[must_use]
    pub fn transaction_span(&self, index: usize) -> Span {
        if !spans_enabled() {
            return Span::none();
        }
        let (address, port) = self.server(index);
        tracing::debug_span!(
            target: SPAN_TARGET,
            "db.transaction",
            otel.name = "TRANSACTION",
            otel.kind = "client",
            db.system.name = DB_SYSTEM,
            db.namespace = %self.database,
            server.address = address,
            server.port = port,
            outcome = Empty,
        )
    }

    /// The span of one user statement (`postgresql`, DEBUG; `otel.name` is
    /// its `db.operation.name`) on server `index`, child of `transaction`
    /// when that span is enabled, else of the caller's current span.
    /// `None` when no subscriber wants the span, as for
    /// [`acquire_span`](Self::acquire_span).
    #[must_use]
    pub fn statement_span(&self, index: usize, sql: &str, transaction: &Span) -> Option<Span> {
        if !spans_enabled() {
            return None;
        }
        macro_rules! statement_span {
            ($($parent:tt)*) => {
                tracing::debug_span!(
                    target: SPAN_TARGET,
                    $($parent)*
                    "postgresql",
                    otel.name = super::sql_effects::operation_name(sql).unwrap_or(DB_SYSTEM),
                    otel.kind = "client",
                    db.system.name = DB_SYSTEM,
                    db.namespace = %self.database,
                    db.operation.name = super::sql_effects::operation_name(sql),
                    server.address = self.server(index).0,
                    server.port = self.server(index).1,
                    db.query.text = Empty,
                    db.response.status_code = Empty,
                    error.type = Empty,
                )
            };
        }
        let span = if transaction.is_disabled() {
            statement_span!()
        } else {
            statement_span!(parent: transaction,)
        };
        if self.query_text && !span.is_disabled() {
            span.record("db.query.text", sql);
        }
        Some(span)
    }

    /// A statement begins: the instant its duration is measured from,
    /// when anything measures it.
    #[must_use]
    pub fn statement_clock(&self) -> Option<Instant> {
        #[cfg(feature = "metrics")]
        if self.operation.is_some() {
            return Some(Instant::now());
        }
        None
    }

    /// A statement that began at `started` (see
    /// [`statement_clock`](Self::statement_clock)) under `span` ended with
    /// `error` (`None`: it succeeded): the span gets the error's fields and
    /// `db.client.operation.duration` the time.
    pub fn statement_ended(&self, span: &Span, started: Option<Instant>, error: Option<&Error>) {
        #[cfg(feature = "metrics")]
        if let (Some(started), Some(histogram)) = (started, &self.operation) {
            histogram.record(started.elapsed().as_secs_f64());
        }
        #[cfg(not(feature = "metrics"))]
        let _ = started;
        if let Some(error) = error {
            record_error(span, error);
        }
    }
}

/// Whether a subscriber wants the kernel's DEBUG spans. Checked before
/// building one: a disabled span still costs its fields and, when
/// `tracing`'s `log` feature is on (another crate may switch it on),
/// a `log` check at each creation, entry, exit and drop: about a tenth of
/// a pooled checkout. `Span::none()` costs nothing to carry around.
fn spans_enabled() -> bool {
    tracing::enabled!(target: SPAN_TARGET, tracing::Level::DEBUG)
}

/// Records `error` on `span` (when enabled): `error.type` (the error's
/// kind, or its SQLSTATE for a server error) and
/// `db.response.status_code` (the SQLSTATE).
pub fn record_error(span: &Span, error: &Error) {
    if span.is_disabled() {
        return;
    }
    match error.sqlstate() {
        Some(code) => {
            span.record("db.response.status_code", code.code());
            span.record("error.type", code.code());
        }
        None => {
            span.record("error.type", tracing::field::debug(error.kind()));
        }
    }
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

    /// A connection attempt failed and will be retried after `delay`:
    /// WARN for the `first` failure of a checkout, DEBUG for the next ones
    /// (a server that stays down warns once per checkout, not once per
    /// attempt).
    pub fn connect_retry(&self, first: bool, attempt: u32, delay: Duration, error: &Error) {
        if first {
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
        } else {
            tracing::debug!(
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
    }

    /// Connecting failed for good. DEBUG: the error is returned to the
    /// caller (as itself, or inside a pool time-out), who decides whether
    /// it is worth logging; the library does not log it a second time.
    pub fn connect_failed(&self, attempt: u32, error: &Error) {
        tracing::debug!(
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

    /// A drain past its deadline ended the remaining connections' server
    /// processes (`error` unset) or could not (a WARN: they end when their
    /// users drop them, or by the server's own timeouts).
    pub fn forced_close_done(&self, error: Option<&Error>) {
        match error {
            None => tracing::info!(
                target: TARGET,
                role = self.config.role(),
                host = %self.host(),
                database = self.config.database(),
                "connections still checked out at the deadline were ended on the server"
            ),
            Some(error) => tracing::warn!(
                target: TARGET,
                role = self.config.role(),
                host = %self.host(),
                database = self.config.database(),
                error = %error_chain(error),
                "could not end the connections still checked out at the deadline on the server"
            ),
        }
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

    /// Replacing a shared connection of the multiplexed mode in the
    /// background failed with `error` (WARN); the next statement that finds
    /// no shared connection open tries again.
    pub fn shared_connection_failed(&self, error: &Error) {
        tracing::warn!(
            target: TARGET,
            role = self.config.role(),
            host = %self.host(),
            database = self.config.database(),
            error = %error_chain(error),
            "could not replace a shared connection"
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
    fn a_retried_connect_warns_once_and_the_final_error_is_debug() {
        let error = Error::with_message(ErrorKind::Connect, "could not connect to x");
        let events = captured(|events| {
            events.connect_retry(true, 1, Duration::from_millis(5), &error);
            events.connect_retry(false, 2, Duration::from_millis(5), &error);
            events.connect_failed(3, &error);
        });
        let levels: Vec<Level> = events.iter().map(|e| e.level).collect();
        assert_eq!(
            levels,
            [Level::WARN, Level::DEBUG, Level::DEBUG],
            "{events:?}"
        );
    }

    #[test]
    fn error_chain_joins_other_causes() {
        let error = Error::with_message(ErrorKind::Connect, "could not connect to x")
            .with_source(std::io::Error::other("refused"));
        assert_eq!(error_chain(&error), "could not connect to x: refused");
    }
}
