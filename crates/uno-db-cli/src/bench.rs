//! `uno-db bench`: a workload through uno-db's engine (and, with
//! `--compare`, raw deadpool-postgres, uno-db's blocking engine and raw
//! `r2d2_postgres`, both pools on settings matching uno-db's), each for a
//! bounded time, then a table of throughput and latency.

use std::fmt::Write as _;
use std::future::Future;
use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use tokio::runtime::Runtime;
use uno_db::blocking::EngineFactory as _;
use uno_db::nonblocking::EngineFactory as _;
use uno_db::{
    AsyncEngineFactory, ConnectionConfig, Driver, SslMode, SyncEngineFactory, TransactionOptions,
};

use crate::check::{self, millis};
use crate::cli::{BenchArgs, Workload};
use crate::failure::{self, Failure};
use crate::histogram::Histogram;
use crate::prepared_manager::PreparedManager;
use crate::source;

/// uno-db's async engine.
const UNO: &str = "uno-db";
/// Raw deadpool-postgres, what uno-db's async engine wraps, on settings
/// matching uno-db's: statements prepared once per connection, checkouts
/// bounded by `pool_timeout`.
const DEADPOOL: &str = "deadpool-postgres (matching)";
/// uno-db's blocking engine.
const UNO_BLOCKING: &str = "uno-db (blocking)";
/// Raw `r2d2_postgres`, what uno-db's blocking engine wraps, on settings
/// matching uno-db's: statements prepared once per connection, no query on
/// checkout.
const R2D2: &str = "r2d2_postgres (matching)";

/// The longest a checkout waits (the configuration's `pool_timeout` when
/// shorter), so that an unreachable server fails the run soon.
const MAX_POOL_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the progress bar is redrawn.
const TICK: Duration = Duration::from_millis(100);

/// The `rows` workload's query: 100 rows of two columns.
const ROWS_SQL: &str = "SELECT g, 'row ' || g AS label FROM generate_series(1, 100) AS g";
/// The `tx` workload's query.
const TX_SQL: &str = "SELECT $1::int8";
/// The `tx` workload's table with `--allow-writes`: temporary, so private to
/// the session and gone with it; emptied at every commit.
const TX_TABLE_SQL: &str =
    "CREATE TEMPORARY TABLE IF NOT EXISTS uno_db_bench_tx (n int8) ON COMMIT DELETE ROWS";
/// The `tx` workload's write with `--allow-writes`.
const TX_INSERT_SQL: &str = "INSERT INTO uno_db_bench_tx VALUES ($1)";

/// What one contender did.
#[derive(Debug, Serialize)]
struct Measured {
    contender: &'static str,
    operations: u64,
    seconds: f64,
    ops_per_second: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
}

/// A ratio of two contenders' throughputs.
#[derive(Debug, Serialize)]
struct Ratio {
    name: String,
    value: f64,
}

/// The whole result, `--json`.
#[derive(Debug, Serialize)]
struct Results {
    configuration: String,
    workload: &'static str,
    tasks: usize,
    pool: usize,
    seconds_each: u64,
    read_only: bool,
    results: Vec<Measured>,
    ratios: Vec<Ratio>,
}

/// The run's settings, shared by every contender.
struct Plan {
    config: ConnectionConfig,
    workload: Workload,
    tasks: usize,
    pool: usize,
    length: Duration,
    allow_writes: bool,
    progress: bool,
}

/// Runs the benchmark; returns the exit code.
pub(crate) fn run(runtime: &Runtime, args: &BenchArgs) -> Result<u8, Failure> {
    let plan = plan(args)?;
    runtime.block_on(preflight(&plan.config))?;
    if !args.json {
        outln!(
            "bench {}: workload {}, {} tasks, pool {}, {} s per contender, {}",
            plan.config,
            plan.workload.name(),
            plan.tasks,
            plan.pool,
            plan.length.as_secs(),
            if plan.allow_writes {
                "writes allowed"
            } else {
                "read-only"
            }
        );
    }
    let mut results = Vec::new();
    if plan.config.driver() == Driver::Postgres {
        // A `postgresql+postgres://` URL asks for the blocking backend.
        results.push(run_uno_blocking(&plan)?);
    } else {
        results.push(runtime.block_on(run_uno(&plan))?);
    }
    if args.compare {
        results.push(runtime.block_on(run_deadpool(&plan))?);
        // The blocking contenders run on plain threads, outside the runtime.
        results.push(run_uno_blocking(&plan)?);
        results.push(run_r2d2(&plan)?);
    }
    let ratios = ratios(&results);
    let output = Results {
        configuration: plan.config.to_url(),
        workload: plan.workload.name(),
        tasks: plan.tasks,
        pool: plan.pool,
        seconds_each: plan.length.as_secs(),
        read_only: !plan.allow_writes,
        results,
        ratios,
    };
    if args.json {
        let text = serde_json::to_string_pretty(&output)
            .map_err(|error| Failure::failed(format!("writing JSON: {error}")))?;
        outln!("{text}");
    } else {
        out!("{}", table(&output));
    }
    Ok(failure::OK)
}

/// Fails at once, with the socket's error, when no host of the
/// configuration answers (instead of waiting `pool_timeout` for the pool).
async fn preflight(config: &ConnectionConfig) -> Result<(), Failure> {
    let mut errors = Vec::new();
    for endpoint in config.endpoints() {
        match tokio::time::timeout(config.connect_timeout(), check::reach(&endpoint)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(error)) => errors.push(error),
            Err(_) => errors.push(format!(
                "no answer at {endpoint} within {}",
                check::human(config.connect_timeout())
            )),
        }
    }
    Err(Failure::failed(format!(
        "cannot reach the server: {}",
        errors.join("; ")
    )))
}

/// Checks the flags against the configuration and derives the contenders'
/// common configuration.
fn plan(args: &BenchArgs) -> Result<Plan, Failure> {
    let config = source::resolve(args.url.as_deref()).map_err(|rejected| {
        Failure::usage(format!("{} (given: {})", rejected.message, rejected.given))
    })?;
    let tasks = usize::try_from(args.tasks).map_err(Failure::usage)?;
    let pool = usize::try_from(args.pool).map_err(Failure::usage)?;
    if args.compare && config.ssl_mode().requires_tls() {
        return Err(Failure::usage(format!(
            "--compare runs the raw pools without TLS, and sslmode={} requires it; \
             use sslmode=prefer or disable",
            config.ssl_mode()
        )));
    }
    if args.compare && config.driver() != Driver::Any {
        return Err(Failure::usage(format!(
            "--compare runs both backends, and the URL names the `{}` driver; \
             use a bare postgresql:// scheme",
            config.driver()
        )));
    }
    let read_only_setting = config
        .options()
        .iter()
        .find(|(key, _)| key == "default_transaction_read_only");
    let mut builder = config
        .to_builder()
        .pool_size(pool)
        .max_overflow(0)
        .min_idle(0)
        .pool_timeout(config.pool_timeout().min(MAX_POOL_TIMEOUT));
    match read_only_setting {
        None if !args.allow_writes => {
            builder = builder.option("default_transaction_read_only", "on");
        }
        Some((_, value)) if !args.allow_writes && !value.eq_ignore_ascii_case("on") => {
            return Err(Failure::usage(format!(
                "the configuration sets default_transaction_read_only={value}; \
                 bench needs --allow-writes to run with it"
            )));
        }
        _ => {}
    }
    if args.compare {
        // The same settings for every contender: the raw pools have no TLS.
        builder = builder.ssl_mode(SslMode::Disable);
    }
    let config = builder
        .build()
        .map_err(|error| Failure::from_error("invalid benchmark configuration", &error))?;
    Ok(Plan {
        config,
        workload: args.workload,
        tasks,
        pool,
        length: Duration::from_secs(args.seconds),
        allow_writes: args.allow_writes,
        progress: std::io::stderr().is_terminal(),
    })
}

/// The ratios of uno-db's engines to the pools they wrap.
fn ratios(results: &[Measured]) -> Vec<Ratio> {
    let rate = |name: &str| {
        results
            .iter()
            .find(|measured| measured.contender == name)
            .map(|measured| measured.ops_per_second)
    };
    let mut ratios = Vec::new();
    for (ours, theirs) in [(UNO, DEADPOOL), (UNO_BLOCKING, R2D2)] {
        if let (Some(ours_rate), Some(theirs_rate)) = (rate(ours), rate(theirs))
            && theirs_rate > 0.0
        {
            ratios.push(Ratio {
                name: format!("{ours}/{theirs}"),
                value: ours_rate / theirs_rate,
            });
        }
    }
    ratios
}

/// The results as a plain table, then one line per ratio.
fn table(results: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<28} {:>12} {:>12} {:>12} {:>12}",
        "contender", "operations", "ops/s", "p50", "p99"
    );
    let ms = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |v| format!("{v:.3} ms"));
    for measured in &results.results {
        let _ = writeln!(
            out,
            "{:<28} {:>12} {:>12.1} {:>12} {:>12}",
            measured.contender,
            measured.operations,
            measured.ops_per_second,
            ms(measured.p50_ms),
            ms(measured.p99_ms)
        );
    }
    for ratio in &results.ratios {
        let _ = writeln!(
            out,
            "ratio {} = {:.3} ({}, {} tasks, pool {})",
            ratio.name, ratio.value, results.workload, results.tasks, results.pool
        );
    }
    out
}

/// A contender's progress bar on stderr when it is a terminal; hidden
/// otherwise.
fn progress_bar(plan: &Plan, contender: &'static str) -> ProgressBar {
    if !plan.progress {
        return ProgressBar::hidden();
    }
    let length = u64::try_from(plan.length.as_millis()).unwrap_or(u64::MAX);
    let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{prefix:<20} [{bar:30}] {elapsed:>4} {msg}")
        .map(|style| style.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(contender);
    bar
}

/// Leaves a finished bar on its line (the next output starts on a new one).
fn finish(plan: &Plan, bar: &ProgressBar) {
    bar.finish();
    if plan.progress {
        errln!();
    }
}

/// Shared by a contender's tasks: the stop flag, the operation count and
/// the first error.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    operations: AtomicU64,
    error: Mutex<Option<String>>,
}

impl Shared {
    /// Records the first error and stops every task.
    fn fail(&self, error: String) {
        let mut first = self.error.lock().unwrap_or_else(PoisonError::into_inner);
        if first.is_none() {
            *first = Some(error);
        }
        self.stop.store(true, Ordering::Relaxed);
    }

    fn error(&self) -> Option<String> {
        self.error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Ticks the progress bar until the run's length has passed or a task
/// failed; returns when the tasks should stop.
fn tick(bar: &ProgressBar, shared: &Shared, started: Instant) -> bool {
    let elapsed = started.elapsed();
    let operations = shared.operations.load(Ordering::Relaxed);
    bar.set_position(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
    #[allow(clippy::cast_precision_loss)]
    let rate = operations as f64 / elapsed.as_secs_f64().max(1e-9);
    bar.set_message(format!("{operations} ops, {rate:.0} ops/s"));
    shared.stop.load(Ordering::Relaxed)
}

/// The measurement of `contender` from its merged histogram.
fn measured(contender: &'static str, histogram: &Histogram, elapsed: Duration) -> Measured {
    let operations = histogram.count();
    #[allow(clippy::cast_precision_loss)]
    let ops_per_second = operations as f64 / elapsed.as_secs_f64().max(1e-9);
    Measured {
        contender,
        operations,
        seconds: elapsed.as_secs_f64(),
        ops_per_second,
        p50_ms: histogram.quantile(0.5).map(millis),
        p99_ms: histogram.quantile(0.99).map(millis),
    }
}

/// Runs `operation` in `plan.tasks` tokio tasks for `plan.length`.
async fn measure_async<F, Fut>(
    plan: &Plan,
    contender: &'static str,
    operation: F,
) -> Result<Measured, Failure>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let bar = progress_bar(plan, contender);
    let shared = Arc::new(Shared::default());
    let started = Instant::now();
    let mut handles = Vec::with_capacity(plan.tasks);
    for _ in 0..plan.tasks {
        let (shared, operation) = (Arc::clone(&shared), operation.clone());
        handles.push(tokio::spawn(async move {
            let mut histogram = Histogram::default();
            while !shared.stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                match operation().await {
                    Ok(()) => {
                        histogram.record(sent.elapsed());
                        shared.operations.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(error) => shared.fail(error),
                }
            }
            histogram
        }));
    }
    while started.elapsed() < plan.length {
        if tick(&bar, &shared, started) {
            break;
        }
        tokio::time::sleep(TICK.min(plan.length.saturating_sub(started.elapsed()))).await;
    }
    shared.stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let mut histogram = Histogram::default();
    for handle in handles {
        match handle.await {
            Ok(part) => histogram.merge(&part),
            Err(error) => shared.fail(format!("a benchmark task failed: {error}")),
        }
    }
    finish(plan, &bar);
    if let Some(error) = shared.error() {
        return Err(Failure::failed(format!("{contender}: {error}")));
    }
    Ok(measured(contender, &histogram, elapsed))
}

/// Runs `operation` on `plan.tasks` threads for `plan.length`.
fn measure_blocking<F>(
    plan: &Plan,
    contender: &'static str,
    operation: F,
) -> Result<Measured, Failure>
where
    F: Fn() -> Result<(), String> + Sync,
{
    let bar = progress_bar(plan, contender);
    let shared = Shared::default();
    let started = Instant::now();
    let mut histogram = Histogram::default();
    std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(plan.tasks);
        for _ in 0..plan.tasks {
            let (shared, operation) = (&shared, &operation);
            let spawned = std::thread::Builder::new().spawn_scoped(scope, move || {
                let mut histogram = Histogram::default();
                while !shared.stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    match operation() {
                        Ok(()) => {
                            histogram.record(sent.elapsed());
                            shared.operations.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(error) => shared.fail(error),
                    }
                }
                histogram
            });
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(error) => {
                    shared.fail(format!("starting a benchmark thread: {error}"));
                    break;
                }
            }
        }
        while started.elapsed() < plan.length {
            if tick(&bar, &shared, started) {
                break;
            }
            std::thread::sleep(TICK.min(plan.length.saturating_sub(started.elapsed())));
        }
        shared.stop.store(true, Ordering::Relaxed);
        for handle in handles {
            match handle.join() {
                Ok(part) => histogram.merge(&part),
                Err(_) => shared.fail("a benchmark thread panicked".to_owned()),
            }
        }
    });
    let elapsed = started.elapsed();
    finish(plan, &bar);
    if let Some(error) = shared.error() {
        return Err(Failure::failed(format!("{contender}: {error}")));
    }
    Ok(measured(contender, &histogram, elapsed))
}

/// An error with its cause chain, on one line.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    uno_db::error_chain(error)
}

/// uno-db's async engine.
async fn run_uno(plan: &Plan) -> Result<Measured, Failure> {
    let engine = AsyncEngineFactory::new()
        .engine(&plan.config)
        .map_err(|error| Failure::from_error(UNO, &error))?;
    // Open the whole pool before measuring, so that no operation pays for a
    // connect.
    let mut held = Vec::with_capacity(plan.pool);
    for _ in 0..plan.pool {
        held.push(
            engine
                .connect()
                .await
                .map_err(|error| Failure::from_error(&format!("{UNO}: connecting"), &error))?,
        );
    }
    drop(held);
    let (workload, allow_writes) = (plan.workload, plan.allow_writes);
    let shared_engine = Arc::clone(&engine);
    let result = measure_async(plan, UNO, move || {
        let engine = Arc::clone(&shared_engine);
        async move {
            uno_operation(&*engine, workload, allow_writes)
                .await
                .map_err(|error| chain(&error))
        }
    })
    .await;
    engine.dispose();
    result
}

/// One operation through uno-db's async engine.
async fn uno_operation(
    engine: &dyn uno_db::nonblocking::Engine,
    workload: Workload,
    allow_writes: bool,
) -> uno_db::Result<()> {
    match workload {
        Workload::Select1 => {
            engine.connect().await?.query("SELECT 1", &[]).await?;
        }
        Workload::Param => {
            engine
                .connect()
                .await?
                .query("SELECT $1::int8 + 1", &[&42_i64])
                .await?;
        }
        Workload::Rows => {
            engine.connect().await?.query(ROWS_SQL, &[]).await?;
        }
        Workload::Tx => {
            let options = TransactionOptions::new().read_only(!allow_writes);
            let mut session = engine.session(&options).await?;
            session.query(TX_SQL, &[&1_i64]).await?;
            if allow_writes {
                session.batch_execute(TX_TABLE_SQL).await?;
                session.execute(TX_INSERT_SQL, &[&1_i64]).await?;
            }
            session.commit().await?;
        }
        Workload::Checkout => drop(engine.connect().await?),
    }
    Ok(())
}

/// Raw deadpool-postgres, with the driver configuration uno-db uses.
async fn run_deadpool(plan: &Plan) -> Result<Measured, Failure> {
    let mut pg = plan.config.driver_config();
    pg.ssl_mode(tokio_postgres::config::SslMode::Disable);
    let manager = deadpool_postgres::Manager::from_config(
        pg,
        tokio_postgres::NoTls,
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    let pool = deadpool_postgres::Pool::builder(manager)
        .max_size(plan.pool)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(plan.config.pool_timeout()))
        .create_timeout(Some(plan.config.connect_timeout()))
        .build()
        .map_err(|error| Failure::failed(format!("{DEADPOOL}: {}", chain(&error))))?;
    let mut held = Vec::with_capacity(plan.pool);
    for _ in 0..plan.pool {
        held.push(pool.get().await.map_err(|error| {
            Failure::failed(format!("{DEADPOOL}: connecting: {}", chain(&error)))
        })?);
    }
    drop(held);
    let (workload, allow_writes) = (plan.workload, plan.allow_writes);
    let shared_pool = pool.clone();
    let result = measure_async(plan, DEADPOOL, move || {
        let pool = shared_pool.clone();
        async move { deadpool_operation(&pool, workload, allow_writes).await }
    })
    .await;
    pool.close();
    result
}

/// One operation through raw deadpool-postgres (statements prepared once
/// per connection, as uno-db's statement cache does).
async fn deadpool_operation(
    pool: &deadpool_postgres::Pool,
    workload: Workload,
    allow_writes: bool,
) -> Result<(), String> {
    let text = |error: &(dyn std::error::Error + 'static)| chain(error);
    let mut client = pool.get().await.map_err(|error| text(&error))?;
    let query = async |sql: &str, params: &[&(dyn tokio_postgres::types::ToSql + Sync)]| {
        let statement = client.prepare_cached(sql).await?;
        client.query(&statement, params).await.map(drop)
    };
    match workload {
        Workload::Select1 => query("SELECT 1", &[]).await.map_err(|e| text(&e))?,
        Workload::Param => query("SELECT $1::int8 + 1", &[&42_i64])
            .await
            .map_err(|e| text(&e))?,
        Workload::Rows => query(ROWS_SQL, &[]).await.map_err(|e| text(&e))?,
        Workload::Checkout => {}
        Workload::Tx => {
            let transaction = client
                .build_transaction()
                .read_only(!allow_writes)
                .start()
                .await
                .map_err(|e| text(&e))?;
            let statement = transaction
                .prepare_cached(TX_SQL)
                .await
                .map_err(|e| text(&e))?;
            transaction
                .query(&statement, &[&1_i64])
                .await
                .map_err(|e| text(&e))?;
            if allow_writes {
                transaction
                    .batch_execute(TX_TABLE_SQL)
                    .await
                    .map_err(|e| text(&e))?;
                transaction
                    .execute(TX_INSERT_SQL, &[&1_i64])
                    .await
                    .map_err(|e| text(&e))?;
            }
            transaction.commit().await.map_err(|e| text(&e))?;
        }
    }
    Ok(())
}

/// uno-db's blocking engine, on plain threads.
fn run_uno_blocking(plan: &Plan) -> Result<Measured, Failure> {
    let engine = SyncEngineFactory::new()
        .engine(&plan.config)
        .map_err(|error| Failure::from_error(UNO_BLOCKING, &error))?;
    let mut held = Vec::with_capacity(plan.pool);
    for _ in 0..plan.pool {
        held.push(engine.connect().map_err(|error| {
            Failure::from_error(&format!("{UNO_BLOCKING}: connecting"), &error)
        })?);
    }
    drop(held);
    let (workload, allow_writes) = (plan.workload, plan.allow_writes);
    let result = measure_blocking(plan, UNO_BLOCKING, || {
        uno_blocking_operation(&*engine, workload, allow_writes).map_err(|error| chain(&error))
    });
    engine.dispose();
    result
}

/// One operation through uno-db's blocking engine.
fn uno_blocking_operation(
    engine: &dyn uno_db::blocking::Engine,
    workload: Workload,
    allow_writes: bool,
) -> uno_db::Result<()> {
    match workload {
        Workload::Select1 => {
            engine.connect()?.query("SELECT 1", &[])?;
        }
        Workload::Param => {
            engine.connect()?.query("SELECT $1::int8 + 1", &[&42_i64])?;
        }
        Workload::Rows => {
            engine.connect()?.query(ROWS_SQL, &[])?;
        }
        Workload::Tx => {
            let options = TransactionOptions::new().read_only(!allow_writes);
            let mut session = engine.session(&options)?;
            session.query(TX_SQL, &[&1_i64])?;
            if allow_writes {
                session.batch_execute(TX_TABLE_SQL)?;
                session.execute(TX_INSERT_SQL, &[&1_i64])?;
            }
            session.commit()?;
        }
        Workload::Checkout => drop(engine.connect()?),
    }
    Ok(())
}

/// The `r2d2_postgres` pool type.
type R2d2Pool = r2d2::Pool<PreparedManager>;

/// Raw `r2d2_postgres`, with the driver configuration uno-db uses, on plain
/// threads: no validity query on checkout (r2d2's default runs one on every
/// checkout; uno-db checks a connection only when the kernel says so), and
/// statements prepared once per connection.
fn run_r2d2(plan: &Plan) -> Result<Measured, Failure> {
    let mut pg = plan.config.driver_config();
    pg.ssl_mode(tokio_postgres::config::SslMode::Disable);
    let size = u32::try_from(plan.pool).map_err(Failure::usage)?;
    let pool: R2d2Pool = r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(0))
        .test_on_check_out(false)
        .connection_timeout(plan.config.pool_timeout())
        .build(PreparedManager::new(pg.into()))
        .map_err(|error| Failure::failed(format!("{R2D2}: {}", chain(&error))))?;
    let mut held = Vec::with_capacity(plan.pool);
    for _ in 0..plan.pool {
        held.push(
            pool.get().map_err(|error| {
                Failure::failed(format!("{R2D2}: connecting: {}", chain(&error)))
            })?,
        );
    }
    drop(held);
    let (workload, allow_writes) = (plan.workload, plan.allow_writes);
    measure_blocking(plan, R2D2, || r2d2_operation(&pool, workload, allow_writes))
}

/// One operation through raw `r2d2_postgres`.
fn r2d2_operation(pool: &R2d2Pool, workload: Workload, allow_writes: bool) -> Result<(), String> {
    let text = |error: &(dyn std::error::Error + 'static)| chain(error);
    let mut conn = pool.get().map_err(|e| text(&e))?;
    let mut query = |sql: &'static str, params: &[&(dyn postgres::types::ToSql + Sync)]| {
        let statement = conn.statement(sql)?;
        conn.client.query(&statement, params).map(drop)
    };
    match workload {
        Workload::Select1 => query("SELECT 1", &[]).map_err(|e| text(&e))?,
        Workload::Param => query("SELECT $1::int8 + 1", &[&42_i64]).map_err(|e| text(&e))?,
        Workload::Rows => query(ROWS_SQL, &[]).map_err(|e| text(&e))?,
        Workload::Checkout => {}
        Workload::Tx => {
            let statement = conn.statement(TX_SQL).map_err(|e| text(&e))?;
            let mut transaction = conn
                .client
                .build_transaction()
                .read_only(!allow_writes)
                .start()
                .map_err(|e| text(&e))?;
            transaction
                .query(&statement, &[&1_i64])
                .map_err(|e| text(&e))?;
            if allow_writes {
                transaction
                    .batch_execute(TX_TABLE_SQL)
                    .map_err(|e| text(&e))?;
                transaction
                    .execute(TX_INSERT_SQL, &[&1_i64])
                    .map_err(|e| text(&e))?;
            }
            transaction.commit().map_err(|e| text(&e))?;
        }
    }
    Ok(())
}
