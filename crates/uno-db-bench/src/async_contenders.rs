//! `SELECT 1` through uno-db-async, raw deadpool-postgres and sqlx, and
//! uno-db-async with `discard_on_return` for the cost of a full reset.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use uno_db::nonblocking::EngineFactory as _;
use uno_db::{AsyncEngineFactory, ConnectionConfig, SslMode};

use crate::args::Args;
use crate::report::Report;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const SHAPES: [(usize, usize); 2] = [(64, 16), (16, 4)];
const UNO: &str = "uno-db-async";
const DEADPOOL: &str = "deadpool-postgres";
const SQLX: &str = "sqlx";
/// uno-db-async resetting every returned connection with `DISCARD ALL`
/// (`discard_on_return`): what a full reset costs.
const UNO_DISCARD: &str = "uno-db-async+discard";
const CONTENDERS: [&str; 4] = [UNO, DEADPOOL, SQLX, UNO_DISCARD];

pub(crate) fn run(args: &Args) -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(args))
}

/// The three pools of one shape, built with the same settings: `pool`
/// connections, all opened before measuring.
struct Contenders {
    uno: Arc<dyn uno_db::nonblocking::Engine>,
    uno_discard: Arc<dyn uno_db::nonblocking::Engine>,
    deadpool: deadpool_postgres::Pool,
    sqlx: sqlx::PgPool,
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
        .pool_timeout(Duration::from_secs(30))
        .build()?;
    let uno = AsyncEngineFactory::new().engine(&config)?;
    let uno_discard =
        AsyncEngineFactory::new().engine(&config.to_builder().discard_on_return(true).build()?)?;

    let pg_config: tokio_postgres::Config = args.url.parse()?;
    let manager = deadpool_postgres::Manager::from_config(
        pg_config,
        tokio_postgres::NoTls,
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    let deadpool = deadpool_postgres::Pool::builder(manager)
        .max_size(pool)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(30)))
        .build()?;

    let sqlx = sqlx::postgres::PgPoolOptions::new()
        .max_connections(u32::try_from(pool)?)
        .min_connections(u32::try_from(pool)?)
        .acquire_timeout(Duration::from_secs(30))
        .connect(&args.url)
        .await?;

    // Open every connection before measuring, so no round pays for connects.
    let mut uno_held = Vec::new();
    let mut deadpool_held = Vec::new();
    for _ in 0..pool {
        uno_held.push(uno.connect().await?);
        uno_held.push(uno_discard.connect().await?);
        deadpool_held.push(deadpool.get().await?);
    }
    drop((uno_held, deadpool_held));
    Ok(Contenders {
        uno,
        uno_discard,
        deadpool,
        sqlx,
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
                    DEADPOOL => {
                        let pool = contenders.deadpool.clone();
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
                        report.record(DEADPOOL, &shape, ops);
                    }
                    _ => {
                        let pool = contenders.sqlx.clone();
                        let ops = measure(tasks, args.round, move || {
                            let pool = pool.clone();
                            async move {
                                sqlx::query("SELECT 1").fetch_all(&pool).await?;
                                Ok(())
                            }
                        })
                        .await?;
                        report.record(SQLX, &shape, ops);
                    }
                }
            }
        }
        report.print_medians(&shape, &CONTENDERS);
        contenders.uno.dispose();
        contenders.uno_discard.dispose();
        contenders.deadpool.close();
        contenders.sqlx.close().await;
    }
    report.ratio(UNO, SQLX, "select1", &shapes);
    report.ratio(UNO_DISCARD, UNO, "select1", &shapes);
    let worst = report.ratio(UNO, DEADPOOL, "select1", &shapes);
    println!("ratio {UNO}/{DEADPOOL} = {worst:.3} (select1, worst shape)");
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
