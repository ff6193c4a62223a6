//! `SELECT 1` through uno-db-async, raw deadpool-postgres and sqlx (each on
//! its defaults and on settings matching ours: see `peers`), and
//! uno-db-async with `discard_on_return` for the cost of a full reset.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use uno_db::nonblocking::EngineFactory as _;
use uno_db::{AsyncEngineFactory, ConnectionConfig, SslMode};

use crate::args::Args;
use crate::peers::{self, Settings, WAIT};
use crate::report::Report;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const SHAPES: [(usize, usize); 2] = [(64, 16), (16, 4)];
const UNO: &str = "uno-db-async";
const DEADPOOL_DEFAULTS: &str = "deadpool (defaults)";
const DEADPOOL_MATCHING: &str = "deadpool (matching)";
const SQLX_DEFAULTS: &str = "sqlx (defaults)";
const SQLX_MATCHING: &str = "sqlx (matching)";
/// uno-db-async resetting every returned connection with `DISCARD ALL`
/// (`discard_on_return`): what a full reset costs.
const UNO_DISCARD: &str = "uno-db-async+discard";
const CONTENDERS: [&str; 6] = [
    UNO,
    DEADPOOL_DEFAULTS,
    DEADPOOL_MATCHING,
    SQLX_DEFAULTS,
    SQLX_MATCHING,
    UNO_DISCARD,
];

pub(crate) fn run(args: &Args) -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(args))
}

/// The pools of one shape, each of `pool` connections, all opened before
/// measuring.
struct Contenders {
    uno: Arc<dyn uno_db::nonblocking::Engine>,
    uno_discard: Arc<dyn uno_db::nonblocking::Engine>,
    deadpool_defaults: deadpool_postgres::Pool,
    deadpool_matching: deadpool_postgres::Pool,
    sqlx_defaults: sqlx::PgPool,
    sqlx_matching: sqlx::PgPool,
}

async fn build(args: &Args, pool: usize) -> Result<Contenders, BoxError> {
    let config = args
        .url
        .parse::<ConnectionConfig>()?
        .to_builder()
        .pool_size(pool)
        .max_overflow(0)
        // Plaintext, as the raw pools here (`NoTls`) and pgbench run.
        .ssl_mode(SslMode::Disable)
        .pool_timeout(WAIT)
        .build()?;
    let uno = AsyncEngineFactory::new().engine(&config)?;
    let uno_discard =
        AsyncEngineFactory::new().engine(&config.to_builder().discard_on_return(true).build()?)?;
    let deadpool =
        |settings| peers::deadpool(args.url.parse()?, tokio_postgres::NoTls, pool, settings);
    let (deadpool_defaults, deadpool_matching) =
        (deadpool(Settings::Defaults)?, deadpool(Settings::Matching)?);
    let sqlx_defaults = peers::sqlx(&args.url, pool, Settings::Defaults).await?;
    let sqlx_matching = peers::sqlx(&args.url, pool, Settings::Matching).await?;

    // Open every connection before measuring, so no round pays for connects.
    let mut held = (Vec::new(), Vec::new());
    for _ in 0..pool {
        held.0.push(uno.connect().await?);
        held.0.push(uno_discard.connect().await?);
        held.1.push(deadpool_defaults.get().await?);
        held.1.push(deadpool_matching.get().await?);
    }
    drop(held);
    Ok(Contenders {
        uno,
        uno_discard,
        deadpool_defaults,
        deadpool_matching,
        sqlx_defaults,
        sqlx_matching,
    })
}

async fn run_async(args: &Args) -> Result<(), BoxError> {
    println!(
        "SELECT 1, prepared; {} interleaved rounds of {:?}; shapes (tasks x pool) {SHAPES:?}",
        args.rounds, args.round
    );
    let mut report = Report::default();
    let mut shapes = Vec::new();
    for (tasks, pool) in SHAPES {
        let shape = format!("{tasks}x{pool}");
        shapes.push(shape.clone());
        let contenders = build(args, pool).await?;
        for round in 0..args.rounds {
            // Rotate the order each round so no contender always goes first.
            for slot in 0..CONTENDERS.len() {
                let contender = CONTENDERS[(round + slot) % CONTENDERS.len()];
                if !args.runs(contender) {
                    continue;
                }
                match contender {
                    UNO | UNO_DISCARD => {
                        let engine = if contender == UNO {
                            Arc::clone(&contenders.uno)
                        } else {
                            Arc::clone(&contenders.uno_discard)
                        };
                        let ops = measure(tasks, args.round, move || {
                            let engine = Arc::clone(&engine);
                            async move {
                                let mut conn = engine.connect().await?;
                                conn.query("SELECT 1", &[]).await?;
                                Ok(())
                            }
                        })
                        .await?;
                        report.record(contender, &shape, ops);
                    }
                    DEADPOOL_DEFAULTS | DEADPOOL_MATCHING => {
                        let pool = if contender == DEADPOOL_DEFAULTS {
                            contenders.deadpool_defaults.clone()
                        } else {
                            contenders.deadpool_matching.clone()
                        };
                        let ops = measure(tasks, args.round, move || {
                            let pool = pool.clone();
                            async move {
                                let client = pool.get().await?;
                                let statement = client.prepare_cached("SELECT 1").await?;
                                client.query(&statement, &[]).await?;
                                Ok(())
                            }
                        })
                        .await?;
                        report.record(contender, &shape, ops);
                    }
                    _ => {
                        let pool = if contender == SQLX_DEFAULTS {
                            contenders.sqlx_defaults.clone()
                        } else {
                            contenders.sqlx_matching.clone()
                        };
                        let ops = measure(tasks, args.round, move || {
                            let pool = pool.clone();
                            async move {
                                sqlx::query("SELECT 1").fetch_all(&pool).await?;
                                Ok(())
                            }
                        })
                        .await?;
                        report.record(contender, &shape, ops);
                    }
                }
            }
        }
        report.print_medians(&shape, &CONTENDERS);
        contenders.uno.dispose();
        contenders.uno_discard.dispose();
        contenders.deadpool_defaults.close();
        contenders.deadpool_matching.close();
        contenders.sqlx_defaults.close().await;
        contenders.sqlx_matching.close().await;
    }
    // One line per pair and shape; then each pair's worst shape.
    for (ours, theirs) in [
        (UNO, DEADPOOL_DEFAULTS),
        (UNO, DEADPOOL_MATCHING),
        (UNO, SQLX_DEFAULTS),
        (UNO, SQLX_MATCHING),
        (UNO_DISCARD, UNO),
    ] {
        let worst = report.ratio(ours, theirs, "select1", &shapes);
        println!("ratio {ours}/{theirs} = {worst:.3} (select1, worst shape)");
    }
    Ok(())
}

/// Runs `tasks` tasks that repeat `operation` for `length`; returns
/// operations per second.
///
/// Each task counts its own operations and hands the count back at the
/// end: one counter shared by all tasks was a cache line written by every
/// operation from both cores, a contended write the contenders' own
/// operations do not make, which the checkout-only cells measured as much
/// as the pools.
pub(crate) async fn measure<F, Fut>(
    tasks: usize,
    length: Duration,
    operation: F,
) -> Result<f64, BoxError>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), BoxError>> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut handles = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        let (stop, operation) = (Arc::clone(&stop), operation.clone());
        handles.push(tokio::spawn(async move {
            let mut done = 0_u64;
            while !stop.load(Ordering::Relaxed) {
                operation().await?;
                done += 1;
            }
            Ok::<u64, BoxError>(done)
        }));
    }
    tokio::time::sleep(length).await;
    stop.store(true, Ordering::Relaxed);
    let mut done = 0_u64;
    for handle in handles {
        done += handle.await??;
    }
    Ok(done as f64 / started.elapsed().as_secs_f64())
}
