//! Observability cases for the async family: spans, metrics and log
//! levels (see docs/observability.md), the same cases as
//! [`blocking_observability`](super::blocking_observability), awaited.
//! Named `observability_*`.
//!
//! Each case runs on a current-thread runtime inside
//! `tracing::subscriber::with_default` (see
//! [`nonblocking_observability_conformance!`](crate::nonblocking_observability_conformance)),
//! so that everything the engine does for it reaches its [`Capture`]
//! without a process-wide subscriber; the metrics case installs its
//! recorder with `metrics::with_local_recorder` while its engine is made
//! (the engine registers its metric handles then).
// Cases are tests: a failed expectation panics, and every case returns the
// first error an operation gave.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_errors_doc,
    clippy::missing_panics_doc
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use metrics_util::debugging::DebuggingRecorder;
use tokio_postgres::error::SqlState;
use tracing::Level;
use uno_db_core::backend::events::pool_name;
use uno_db_core::nonblocking::{Engine, EngineFactory};
use uno_db_core::{ConnectionConfig, ErrorKind, Result, RetryPolicy, TransactionOptions};

use super::free_port::closed_port;
use super::observability_shared::{
    Capture, MISSING_TABLE, PARAM_SQL, SECRET_PARAM, assert_statement_span, children, counter,
    gauge, histogram_count, metric_rows,
};
use super::unique_name::unique_application_name;

/// Runs `case` for the engines of `factory` against `config`, on a
/// current-thread runtime inside a thread-local [`Capture`] subscriber.
pub fn run<F, C>(factory: &F, config: &ConnectionConfig, case: C)
where
    F: EngineFactory,
    C: for<'a> FnOnce(
        &'a dyn EngineFactory,
        &'a ConnectionConfig,
        &'a Capture,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + 'a>>,
{
    let capture = Capture::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    tracing::subscriber::with_default(capture.clone(), || {
        super::observability_shared::capture_every_callsite();
        runtime.block_on(async {
            case(factory, config, &capture).await.expect("the case");
            factory.dispose_all();
        });
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
}

/// Pins: a checkout is a `db.client.connection.acquire` span whose child
/// is the physical connect (`db.client.connection.create`, outcome, host
/// and port); each statement is a closed `postgresql` span named by its
/// operation with the OpenTelemetry fields; a failed one carries its
/// SQLSTATE as `db.response.status_code` and `error.type`; neither the SQL
/// text (off by default) nor a parameter value is recorded.
pub async fn observability_statement_spans(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
    capture: &Capture,
) -> Result<()> {
    let engine = factory.engine(config)?;
    let mut conn = engine.connect().await?;
    let row = conn.query_one(PARAM_SQL, &[&SECRET_PARAM]).await?;
    assert_eq!(row.get::<_, &str>(0), SECRET_PARAM);
    let error = conn.execute(MISSING_TABLE, &[]).await.unwrap_err();
    assert_eq!(error.sqlstate(), Some(&SqlState::UNDEFINED_TABLE));
    drop(conn);

    let endpoint = &config.endpoints()[0];
    let acquires = capture.spans_named("db.client.connection.acquire");
    assert_eq!(acquires.len(), 1, "{acquires:?}");
    let acquire = &acquires[0];
    assert!(acquire.closed, "{acquire:?}");
    assert!(acquire.field("wait_ms").is_some(), "{acquire:?}");
    assert_eq!(
        acquire.field("db.client.connection.pool.name"),
        Some(pool_name(config).as_str())
    );
    let creates = children(capture, acquire.id, "db.client.connection.create");
    assert_eq!(creates.len(), 1, "connect inside the checkout: {creates:?}");
    let create = &creates[0];
    assert_eq!(create.field("outcome"), Some("connected"), "{create:?}");
    assert_eq!(create.field("server.address"), Some(endpoint.host()));
    assert_eq!(
        create.field("server.port"),
        Some(endpoint.port().to_string().as_str())
    );

    let statements = capture.spans_named("postgresql");
    assert_eq!(statements.len(), 2, "{statements:?}");
    for span in &statements {
        assert_statement_span(span, "SELECT", config.database(), endpoint.host());
        assert_eq!(span.field("db.query.text"), None, "off by default");
    }
    assert_eq!(statements[0].field("error.type"), None);
    assert_eq!(
        statements[1].field("db.response.status_code"),
        Some("42P01")
    );
    assert_eq!(statements[1].field("error.type"), Some("42P01"));
    assert!(!capture.all_text().contains(SECRET_PARAM));
    Ok(())
}

/// Pins: a statement of the multiplexed client is a `postgresql` span with
/// the same fields as a pooled connection's (its failure's SQLSTATE
/// included, no parameter value), and no checkout span.
pub async fn observability_multiplexed_statement_spans(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
    capture: &Capture,
) -> Result<()> {
    let config = config.to_builder().multiplex_connections(1).build()?;
    let engine = factory.engine(&config)?;
    let mut client = engine.multiplexed()?;
    let row = client.query_one(PARAM_SQL, &[&SECRET_PARAM]).await?;
    assert_eq!(row.get::<_, &str>(0), SECRET_PARAM);
    let error = client.execute(MISSING_TABLE, &[]).await.unwrap_err();
    assert_eq!(error.sqlstate(), Some(&SqlState::UNDEFINED_TABLE));

    let endpoint = &config.endpoints()[0];
    assert!(
        capture
            .spans_named("db.client.connection.acquire")
            .is_empty(),
        "a multiplexed statement checks nothing out"
    );
    let statements = capture.spans_named("postgresql");
    assert_eq!(statements.len(), 2, "{statements:?}");
    for span in &statements {
        assert_statement_span(span, "SELECT", config.database(), endpoint.host());
    }
    assert_eq!(statements[0].field("error.type"), None);
    assert_eq!(
        statements[1].field("db.response.status_code"),
        Some("42P01")
    );
    assert!(!capture.all_text().contains(SECRET_PARAM));
    Ok(())
}

/// Pins: a session is one `db.transaction` span from `BEGIN` to its end,
/// with its outcome (`commit`, `rollback`, and `rollback` for a session
/// dropped without commit), and its statements are its children.
pub async fn observability_transaction_spans(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
    capture: &Capture,
) -> Result<()> {
    let engine = factory.engine(config)?;
    let mut session = engine.session(&TransactionOptions::new()).await?;
    session.query_one("SELECT 1", &[]).await?;
    session.execute("SELECT 2", &[]).await?;
    session.commit().await?;
    let mut session = engine.session(&TransactionOptions::new()).await?;
    session.batch_execute("CREATE TEMP TABLE t (x int)").await?;
    session.rollback().await?;
    let mut session = engine.session(&TransactionOptions::new()).await?;
    session.query_one("SELECT 3", &[]).await?;
    drop(session); // rolled back by the return
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while engine.status().in_use != 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let transactions = capture.spans_named("db.transaction");
    assert_eq!(transactions.len(), 3, "{transactions:?}");
    let dropped = &transactions[2];
    assert_eq!(dropped.field("outcome"), Some("rollback"), "{dropped:?}");
    assert!(dropped.closed, "{dropped:?}");
    let (committed, rolled_back) = (&transactions[0], &transactions[1]);
    assert_eq!(committed.field("outcome"), Some("commit"), "{committed:?}");
    assert_eq!(rolled_back.field("outcome"), Some("rollback"));
    assert!(committed.closed && rolled_back.closed);
    assert_eq!(committed.field("db.namespace"), Some(config.database()));
    let inside = children(capture, committed.id, "postgresql");
    assert_eq!(inside.len(), 2, "{inside:?}");
    let inside = children(capture, rolled_back.id, "postgresql");
    assert_eq!(inside.len(), 1, "{inside:?}");
    assert_eq!(inside[0].field("db.operation.name"), Some("CREATE"));
    Ok(())
}

/// Pins: with `trace_query_text` on, a statement span holds its SQL as
/// `db.query.text`, still without parameter values.
pub async fn observability_query_text_when_enabled(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
    capture: &Capture,
) -> Result<()> {
    let config = config.to_builder().trace_query_text(true).build()?;
    let engine = factory.engine(&config)?;
    let mut conn = engine.connect().await?;
    conn.query_one(PARAM_SQL, &[&SECRET_PARAM]).await?;
    let statements = capture.spans_named("postgresql");
    assert_eq!(statements.len(), 1, "{statements:?}");
    assert_eq!(statements[0].field("db.query.text"), Some(PARAM_SQL));
    assert!(!capture.all_text().contains(SECRET_PARAM));
    Ok(())
}

/// Pins: a server that refuses connections is one WARN per checkout (the
/// first failed attempt), the repeats are DEBUG, nothing is logged at
/// ERROR, and the checkout's span carries the error it returned.
pub async fn observability_refused_connect_warns_once(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
    capture: &Capture,
) -> Result<()> {
    let config = config
        .to_builder()
        .hosts(["127.0.0.1"])
        .port(closed_port())
        .pool_timeout(Duration::from_millis(900))
        .connect_timeout(Duration::from_millis(300))
        .retry(
            RetryPolicy::default()
                .initial_delay(Duration::from_millis(20))
                .max_delay(Duration::from_millis(40)),
        )
        .build()?;
    let engine = factory.engine(&config)?;
    let Err(error) = engine.connect().await else {
        panic!("nothing answers")
    };
    assert_eq!(error.kind(), ErrorKind::PoolTimeout, "{error}");
    let events: Vec<_> = capture
        .events()
        .into_iter()
        .filter(|e| e.target == "uno_db")
        .collect();
    let retries: Vec<_> = events
        .iter()
        .filter(|e| e.message == "connection attempt failed; retrying")
        .collect();
    assert!(retries.len() >= 2, "several attempts: {events:?}");
    assert_eq!(
        retries.iter().filter(|e| e.level == Level::WARN).count(),
        1,
        "{retries:?}"
    );
    assert!(
        events.iter().all(|e| e.level != Level::ERROR),
        "an error returned is not logged at ERROR: {events:?}"
    );
    let acquire = &capture.spans_named("db.client.connection.acquire")[0];
    assert!(acquire.field("error.type").is_some(), "{acquire:?}");
    let creates = children(capture, acquire.id, "db.client.connection.create");
    assert!(
        // Every attempt failed, bar the last one, which the checkout's
        // pool_timeout may cut off half-way.
        creates.split_last().is_some_and(|(last, earlier)| {
            earlier.iter().all(|c| c.field("outcome") == Some("failed"))
                && matches!(last.field("outcome"), Some("failed" | "cancelled"))
        }),
        "{creates:?}"
    );
    Ok(())
}

/// Pins: a connect attempt abandoned half-way (the checkout waiting on it
/// was dropped while the server did not answer) closes its
/// `db.client.connection.create` span with `outcome` = `cancelled`, not
/// without an outcome.
pub async fn observability_abandoned_connect_is_cancelled(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
    capture: &Capture,
) -> Result<()> {
    let host = config.hosts().first().map_or("127.0.0.1", String::as_str);
    let upstream = std::net::ToSocketAddrs::to_socket_addrs(&(host, config.port()))
        .ok()
        .and_then(|mut addrs| addrs.next())
        .expect("the case's server is reachable over TCP");
    let proxy = crate::FaultProxy::start(upstream).expect("a fault proxy");
    proxy.black_hole().expect("the proxy black-holes traffic");
    let config = config
        .to_builder()
        .hosts(["127.0.0.1"])
        .port(proxy.port())
        .pool_timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(10))
        .build()?;
    let engine = factory.engine(&config)?;
    // The attempt hangs on the black hole; the caller stops waiting.
    let gave_up = tokio::time::timeout(Duration::from_millis(300), engine.connect()).await;
    assert!(gave_up.is_err(), "nothing answers behind the black hole");
    let acquire = &capture.spans_named("db.client.connection.acquire")[0];
    let creates = children(capture, acquire.id, "db.client.connection.create");
    assert_eq!(creates.len(), 1, "{creates:?}");
    assert_eq!(
        creates[0].field("outcome"),
        Some("cancelled"),
        "{creates:?}"
    );
    engine.dispose();
    Ok(())
}

/// Pins: the OpenTelemetry pool metrics, labelled with the pool name
/// (`application_name`), agree with `Engine::status()` and the counters
/// once concurrent checkouts are over, one connection still held.
pub async fn observability_metrics_match_the_pool_status(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
    _capture: &Capture,
) -> Result<()> {
    let name = unique_application_name("observability");
    let config = config
        .to_builder()
        .application_name(name.as_str())
        .build()?;
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let engine: Arc<dyn Engine> =
        metrics::with_local_recorder(&recorder, || factory.engine(&config))?;
    const TASKS: usize = 8;
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let engine = Arc::clone(&engine);
        tasks.push(tokio::spawn(async move {
            let mut conn = engine.connect().await?;
            conn.query_one("SELECT pg_sleep(0.05)", &[]).await?;
            Ok::<(), uno_db_core::Error>(())
        }));
    }
    for task in tasks {
        task.await.expect("a task")?;
    }
    let mut held = engine.connect().await?;
    held.query_one("SELECT 1", &[]).await?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while engine.status().in_use != 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = engine.status();
    let counters = engine.counters();
    let rows = metric_rows(&snapshotter);
    let pool = [("db.client.connection.pool.name", name.as_str())];
    let with_state = |state: &'static str| {
        [
            ("db.client.connection.pool.name", name.as_str()),
            ("state", state),
        ]
    };
    #[allow(clippy::cast_precision_loss)]
    {
        assert_eq!(
            gauge(&rows, "db.client.connection.count", &with_state("used")),
            status.in_use as f64,
            "{status:?}"
        );
        assert_eq!(
            gauge(&rows, "db.client.connection.count", &with_state("idle")),
            status.idle as f64,
            "{status:?}"
        );
        assert_eq!(
            gauge(&rows, "db.client.connection.max", &pool),
            status.max_size as f64
        );
        assert_eq!(
            gauge(&rows, "db.client.connection.pending_requests", &pool),
            status.waiting as f64
        );
    }
    let checkouts = TASKS + 1;
    assert_eq!(
        histogram_count(&rows, "db.client.connection.wait_time", &pool),
        checkouts
    );
    assert_eq!(
        histogram_count(&rows, "db.client.connection.use_time", &pool),
        TASKS
    );
    assert_eq!(
        histogram_count(&rows, "db.client.connection.create_time", &pool) as u64,
        counters.created
    );
    assert_eq!(
        histogram_count(&rows, "db.client.operation.duration", &pool),
        checkouts
    );
    assert_eq!(counter(&rows, "db.client.connection.timeouts", &pool), 0);
    assert_eq!(
        counter(
            &rows,
            "uno_db_checkouts_total",
            &[("database", config.database())]
        ),
        checkouts as u64,
        "the uno_db_* metrics are kept"
    );
    drop(held);
    Ok(())
}

/// Runs the async observability cases (named `observability_*`) against
/// a backend's factory, each on a database of its own.
#[macro_export]
macro_rules! nonblocking_observability_conformance {
    ($factory:expr) => {
        $crate::nonblocking_observability_conformance!(@cases $factory;
            observability_statement_spans,
            observability_multiplexed_statement_spans,
            observability_transaction_spans,
            observability_query_text_when_enabled,
            observability_refused_connect_warns_once,
            observability_abandoned_connect_is_cancelled,
            observability_metrics_match_the_pool_status,
        );
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::run_with_timeout($crate::conformance::case_timeout(&[30]), || {
                    let db = $crate::TestDb::new().expect("a test database");
                    let config = $crate::conformance::case_config(db.url()).expect("a valid config");
                    let factory = $factory;
                    $crate::conformance::nonblocking_observability::run(
                        &factory,
                        &config,
                        |factory, config, capture| {
                            ::std::boxed::Box::pin(
                                $crate::conformance::nonblocking_observability::$case(
                                    factory, config, capture,
                                ),
                            )
                        },
                    );
                });
            }
        )*
    };
}
