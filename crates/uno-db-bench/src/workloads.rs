//! The async family against deadpool-postgres on every workload the
//! pools are judged by, at three shapes, with deadpool twice: on its
//! defaults (no wait timeout: a checkout arms no timer) and on settings
//! matching uno-db's (a 30 s wait timeout, as uno-db's `pool_timeout`).
//! uno-db runs twice: through the concrete types (`AsyncEngine::checkout`
//! and `AsyncConnection`'s inherent methods: no future boxed), and through
//! the `dyn Engine` / `dyn Connection` traits (each `async_trait` call
//! boxes its future). Ends with one `ratio A/B = X (workload, shape)` line
//! per pair, each with the 95 % interval of its median, and one `verdict`
//! line per pair of contenders: how many cells are ahead, undecided or
//! behind by those intervals.

use std::sync::Arc;

use uno_db::r#async::AsyncEngine;
use uno_db::nonblocking::Engine;
use uno_db::{AsyncEngineFactory, ConnectionConfig, SslMode, TransactionOptions};

use crate::args::Args;
use crate::async_contenders::measure;
use crate::peers::{self, Settings, WAIT};
use crate::report::Report;
use crate::wakeups::Wakeups;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const SHAPES: [(usize, usize); 3] = [(64, 16), (16, 4), (4, 4)];
/// uno-db through its concrete types.
const UNO: &str = "uno-db-async";
/// uno-db through `Arc<dyn Engine>` and `Box<dyn Connection>`.
const UNO_DYN: &str = "uno-db-async dyn";
/// deadpool-postgres as its README builds it: no wait timeout.
const DEADPOOL_DEFAULTS: &str = "deadpool (defaults)";
/// deadpool-postgres given uno-db's settings: a 30 s wait timeout.
const DEADPOOL_MATCHING: &str = "deadpool (matching)";
const CONTENDERS: [&str; 4] = [UNO, UNO_DYN, DEADPOOL_DEFAULTS, DEADPOOL_MATCHING];
/// Rows the transaction workload updates, chosen at random.
const TX_ROWS: i32 = 1000;
const TX_TABLE: &str = "uno_db_bench_tx";

/// What one operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    /// Check a connection out and return it; no statement.
    Checkout,
    /// `SELECT 1`.
    Select1,
    /// `SELECT $1::int4 + 1`.
    Param,
    /// 100 rows of two columns, every value decoded.
    Rows,
    /// `BEGIN; UPDATE one row; COMMIT`.
    Tx,
}

const WORKLOADS: [(Workload, &str); 5] = [
    (Workload::Checkout, "checkout"),
    (Workload::Select1, "select1"),
    (Workload::Param, "param"),
    (Workload::Rows, "rows100"),
    (Workload::Tx, "tx"),
];

const ROWS_SQL: &str = "SELECT g, 'row ' || g FROM generate_series(1, 100) AS g";
const PARAM_SQL: &str = "SELECT $1::int4 + 1";
const TX_SQL: &str = "UPDATE uno_db_bench_tx SET n = n + 1 WHERE id = $1";

pub(crate) fn run(args: &Args) -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(args))
}

struct Pools {
    uno: Arc<AsyncEngine>,
    defaults: deadpool_postgres::Pool,
    matching: deadpool_postgres::Pool,
}

async fn build(args: &Args, pool: usize) -> Result<Pools, BoxError> {
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
    let uno = AsyncEngineFactory::new().async_engine(&config)?;
    let deadpool =
        |settings| peers::deadpool(args.url.parse()?, tokio_postgres::NoTls, pool, settings);
    let (defaults, matching) = (deadpool(Settings::Defaults)?, deadpool(Settings::Matching)?);
    // Open every connection before measuring, so no round pays for connects.
    let mut held = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..pool {
        held.0.push(uno.checkout().await?);
        held.1.push(defaults.get().await?);
        held.2.push(matching.get().await?);
    }
    drop(held);
    Ok(Pools {
        uno,
        defaults,
        matching,
    })
}

async fn prepare_table(args: &Args) -> Result<(), BoxError> {
    let (client, connection) = tokio_postgres::connect(&args.url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {TX_TABLE}; \
             CREATE TABLE {TX_TABLE} (id int4 PRIMARY KEY, n int8 NOT NULL); \
             INSERT INTO {TX_TABLE} SELECT g, 0 FROM generate_series(1, {TX_ROWS}) AS g"
        ))
        .await?;
    Ok(())
}

async fn drop_table(args: &Args) -> Result<(), BoxError> {
    let (client, connection) = tokio_postgres::connect(&args.url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    client
        .batch_execute(&format!("DROP TABLE IF EXISTS {TX_TABLE}"))
        .await?;
    Ok(())
}

/// One operation of `$workload` on `$engine` with its checkout and
/// transaction methods: the same code for the concrete engine (whose
/// methods return unboxed futures) and for `dyn Engine` (boxed ones).
macro_rules! uno_operation {
    ($engine:ident, $workload:ident, $checkout:ident, $transaction:ident) => {{
        match $workload {
            Workload::Checkout => drop($engine.$checkout().await?),
            Workload::Select1 => {
                $engine.$checkout().await?.query("SELECT 1", &[]).await?;
            }
            Workload::Param => {
                let n = fastrand::i32(0..1_000_000);
                let row = $engine
                    .$checkout()
                    .await?
                    .query_one(PARAM_SQL, &[&n])
                    .await?;
                let _: i32 = row.try_get(0)?;
            }
            Workload::Rows => {
                let rows = $engine.$checkout().await?.query(ROWS_SQL, &[]).await?;
                for row in &rows {
                    let _: (i32, &str) = (row.try_get(0)?, row.try_get(1)?);
                }
            }
            Workload::Tx => {
                let id = fastrand::i32(1..=TX_ROWS);
                let mut session = $engine.$transaction(&TransactionOptions::new()).await?;
                session.execute(TX_SQL, &[&id]).await?;
                session.commit().await?;
            }
        }
        Ok(())
    }};
}

async fn uno_op(engine: Arc<AsyncEngine>, workload: Workload) -> Result<(), BoxError> {
    uno_operation!(engine, workload, checkout, transaction)
}

async fn uno_dyn_op(engine: Arc<dyn Engine>, workload: Workload) -> Result<(), BoxError> {
    uno_operation!(engine, workload, connect, session)
}

async fn deadpool_op(pool: deadpool_postgres::Pool, workload: Workload) -> Result<(), BoxError> {
    match workload {
        Workload::Checkout => drop(pool.get().await?),
        Workload::Select1 => {
            let client = pool.get().await?;
            let statement = client.prepare_cached("SELECT 1").await?;
            client.query(&statement, &[]).await?;
        }
        // The connection goes back before the rows are decoded, as in
        // uno-db's operations (where it is a temporary): the same work in
        // the same order for both.
        Workload::Param => {
            let n = fastrand::i32(0..1_000_000);
            let row = {
                let client = pool.get().await?;
                let statement = client.prepare_cached(PARAM_SQL).await?;
                client.query_one(&statement, &[&n]).await?
            };
            let _: i32 = row.try_get(0)?;
        }
        Workload::Rows => {
            let rows = {
                let client = pool.get().await?;
                let statement = client.prepare_cached(ROWS_SQL).await?;
                client.query(&statement, &[]).await?
            };
            for row in &rows {
                let _: (i32, &str) = (row.try_get(0)?, row.try_get(1)?);
            }
        }
        Workload::Tx => {
            let id = fastrand::i32(1..=TX_ROWS);
            let mut client = pool.get().await?;
            let transaction = client.transaction().await?;
            let statement = transaction.prepare_cached(TX_SQL).await?;
            transaction.execute(&statement, &[&id]).await?;
            transaction.commit().await?;
        }
    }
    Ok(())
}

async fn run_async(args: &Args) -> Result<(), BoxError> {
    println!(
        "workloads {:?}; {} interleaved rounds of {:?}; shapes (tasks x pool) {SHAPES:?}",
        WORKLOADS.map(|(_, name)| name),
        args.rounds,
        args.round
    );
    println!(
        "{DEADPOOL_DEFAULTS}: no wait timeout; {DEADPOOL_MATCHING}: wait_timeout = \
         uno-db's pool_timeout ({WAIT:?}); both recycle with RecyclingMethod::Fast and \
         prepare_cached, as uno-db caches statements; every contender in plaintext"
    );
    prepare_table(args).await?;
    let mut report = Report::default();
    let mut cases = Vec::new();
    for (tasks, pool) in SHAPES {
        if args
            .shape
            .as_deref()
            .is_some_and(|shape| shape != format!("{tasks}x{pool}"))
        {
            continue;
        }
        let pools = build(args, pool).await?;
        for (workload, name) in WORKLOADS {
            if args.workload.as_deref().is_some_and(|only| only != name) {
                continue;
            }
            let case = format!("{name}, {tasks}/{pool}");
            cases.push(case.clone());
            for round in 0..args.rounds {
                for slot in 0..CONTENDERS.len() {
                    let contender = CONTENDERS[(round + slot) % CONTENDERS.len()];
                    if !args.runs(contender) {
                        continue;
                    }
                    let wakeups = Wakeups::start();
                    let ops = match contender {
                        UNO => {
                            let engine = Arc::clone(&pools.uno);
                            measure(tasks, args.round, move || {
                                uno_op(Arc::clone(&engine), workload)
                            })
                            .await?
                        }
                        UNO_DYN => {
                            let engine: Arc<dyn Engine> = Arc::clone(&pools.uno) as _;
                            measure(tasks, args.round, move || {
                                uno_dyn_op(Arc::clone(&engine), workload)
                            })
                            .await?
                        }
                        _ => {
                            let pool = if contender == DEADPOOL_DEFAULTS {
                                pools.defaults.clone()
                            } else {
                                pools.matching.clone()
                            };
                            measure(tasks, args.round, move || {
                                deadpool_op(pool.clone(), workload)
                            })
                            .await?
                        }
                    };
                    let wakeups = wakeups.per(ops * args.round.as_secs_f64());
                    report.record_round(contender, &case, ops, wakeups);
                }
            }
            report.print_medians(&case, &CONTENDERS);
        }
        Engine::dispose(&*pools.uno);
        pools.defaults.close();
        pools.matching.close();
    }
    drop_table(args).await?;
    for ours in [UNO, UNO_DYN] {
        for theirs in [DEADPOOL_DEFAULTS, DEADPOOL_MATCHING] {
            let mut verdict = Verdict::default();
            for case in &cases {
                let ratio = report.round_ratio(ours, theirs, case);
                let spread = report.spread(ours, theirs, case);
                println!("ratio {ours}/{theirs} = {ratio:.3} ({case}; {spread})");
                verdict.add(report.round_ratio_interval(ours, theirs, case).1);
            }
            println!("verdict {ours}/{theirs}: {verdict}");
        }
    }
    Ok(())
}

/// How one pair's cells came out against 1.00, each by its 95 % interval.
#[derive(Debug, Default)]
struct Verdict {
    /// The interval lies at or above 1.00.
    ahead: usize,
    /// The interval spans 1.00: this run cannot tell.
    tied: usize,
    /// The interval lies below 1.00.
    behind: usize,
    /// Too few rounds for an interval.
    unknown: usize,
}

impl Verdict {
    fn add(&mut self, interval: Option<(f64, f64)>) {
        match interval {
            Some((low, _)) if low >= 1.0 => self.ahead += 1,
            Some((_, high)) if high < 1.0 => self.behind += 1,
            Some(_) => self.tied += 1,
            None => self.unknown += 1,
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} cells ahead (95 % interval at or above 1.00), {} undecided (interval spans 1.00), {} behind (interval below 1.00)",
            self.ahead, self.tied, self.behind
        )?;
        if self.unknown > 0 {
            write!(
                f,
                ", {} with too few rounds for an interval (6 at least)",
                self.unknown
            )?;
        }
        Ok(())
    }
}
