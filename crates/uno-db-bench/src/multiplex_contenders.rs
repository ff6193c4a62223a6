//! uno-db-async's multiplexed client against deadpool-postgres (on its
//! defaults and on settings matching ours: see `peers`) and uno-db-async's
//! pooled connections, on `SELECT 1` and on a query with a
//! parameter, at 64 tasks on a pool of 16 and 4 tasks on 4. All in
//! plaintext (uno-db with `sslmode=disable`, deadpool-postgres `NoTls`).

use std::sync::Arc;
use std::time::Duration;

use uno_db::nonblocking::Engine;
use uno_db::{AsyncEngineFactory, ConnectionConfig, SslMode};

use crate::args::Args;
use crate::async_contenders::measure;
use crate::peers::{self, Settings, WAIT};
use crate::report::Report;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// (tasks, pool size, shared connections of the multiplexed client): the
/// same two shared connections at both shapes, one per core of this
/// machine's server, as docs/multiplexing.md advises and as a service would
/// configure once; one connection left half the server idle at 4 tasks.
const SHAPES: [(usize, usize, usize); 2] = [(64, 16, 2), (4, 4, 2)];
/// The workloads: a name and its SQL (`$1` takes the task's number).
const WORKLOADS: [(&str, &str); 2] = [("select1", "SELECT 1"), ("param", "SELECT $1::int4 + 1")];
/// The multiplexed client through its concrete type (`MultiplexedClient`'s
/// inherent `query`: no future boxed).
const MUX: &str = "uno-db-async multiplexed";
/// The same through the traits (`Engine::multiplexed` on `Arc<dyn Engine>`:
/// a `Box<dyn Client>`, and every statement's future boxed).
const MUX_DYN: &str = "uno-db-async multiplexed dyn";
const POOLED: &str = "uno-db-async pooled";
const DEADPOOL_DEFAULTS: &str = "deadpool (defaults)";
const DEADPOOL_MATCHING: &str = "deadpool (matching)";
const CONTENDERS: [&str; 5] = [MUX, MUX_DYN, POOLED, DEADPOOL_DEFAULTS, DEADPOOL_MATCHING];

pub(crate) fn run(args: &Args) -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(args))
}

/// The contenders of one shape, every connection opened before measuring.
struct Contenders {
    /// Pooled checkouts and the multiplexed client, from one engine.
    uno: Arc<uno_db::r#async::AsyncEngine>,
    deadpool_defaults: deadpool_postgres::Pool,
    deadpool_matching: deadpool_postgres::Pool,
}

async fn build(args: &Args, pool: usize, shared: usize) -> Result<Contenders, BoxError> {
    let config = args
        .url
        .parse::<ConnectionConfig>()?
        .to_builder()
        .pool_size(pool)
        .max_overflow(0)
        .pool_timeout(WAIT)
        .multiplex_connections(shared)
        // deadpool-postgres runs `NoTls`: both in plaintext.
        .ssl_mode(SslMode::Disable)
        .build()?;
    let uno = AsyncEngineFactory::new().async_engine(&config)?;
    let deadpool =
        |settings| peers::deadpool(args.url.parse()?, tokio_postgres::NoTls, pool, settings);
    let (deadpool_defaults, deadpool_matching) =
        (deadpool(Settings::Defaults)?, deadpool(Settings::Matching)?);
    let mut held = (Vec::new(), Vec::new());
    for _ in 0..pool {
        held.0.push(uno.checkout().await?);
        held.1.push(deadpool_defaults.get().await?);
        held.1.push(deadpool_matching.get().await?);
    }
    drop(held);
    // Open every shared connection: several statements at once per
    // connection.
    let mut warm = Vec::new();
    for _ in 0..shared * 4 {
        let mut client = uno.multiplexed()?;
        warm.push(tokio::spawn(async move {
            client.query("SELECT pg_sleep(0.01)", &[]).await
        }));
    }
    for task in warm {
        task.await??;
    }
    Ok(Contenders {
        uno,
        deadpool_defaults,
        deadpool_matching,
    })
}

async fn run_async(args: &Args) -> Result<(), BoxError> {
    println!(
        "multiplexed mode; {} interleaved rounds of {:?}; shapes (tasks x pool, shared \
         connections) {SHAPES:?}; workloads {WORKLOADS:?}",
        args.rounds, args.round
    );
    let mut report = Report::default();
    let mut keys = Vec::new();
    for (tasks, pool, shared) in SHAPES {
        let shared = args.shared.unwrap_or(shared);
        let shape = format!("{tasks}x{pool}");
        let contenders = build(args, pool, shared).await?;
        for (workload, sql) in WORKLOADS {
            let key = format!("{workload} {shape}");
            keys.push((workload, shape.clone(), key.clone()));
            for round in 0..args.rounds {
                for slot in 0..CONTENDERS.len() {
                    let contender = CONTENDERS[(round + slot) % CONTENDERS.len()];
                    if !args.runs(contender) {
                        continue;
                    }
                    let ops = run_one(&contenders, contender, tasks, sql, args.round).await?;
                    report.record(contender, &key, ops);
                }
            }
            report.print_medians(&key, &CONTENDERS);
        }
        contenders.uno.dispose();
        contenders.deadpool_defaults.close();
        contenders.deadpool_matching.close();
    }
    for (ours, theirs) in [
        (MUX, DEADPOOL_DEFAULTS),
        (MUX, DEADPOOL_MATCHING),
        (MUX_DYN, DEADPOOL_DEFAULTS),
        (MUX, POOLED),
        (POOLED, DEADPOOL_DEFAULTS),
        (POOLED, DEADPOOL_MATCHING),
    ] {
        for (workload, shape, key) in &keys {
            let ratio = report.round_ratio(ours, theirs, key);
            let spread = report.spread(ours, theirs, key);
            println!("ratio {ours}/{theirs} = {ratio:.3} ({workload}, {shape}; {spread})");
        }
    }
    Ok(())
}

/// `$tasks` tasks running `$sql` (with `$value` when `$takes_param`) on
/// `$engine`'s multiplexed client for `$length`.
macro_rules! multiplexed_rounds {
    ($engine:expr, $tasks:ident, $length:ident, $sql:ident, $takes_param:ident, $value:ident) => {{
        let engine = $engine;
        measure($tasks, $length, move || {
            let client = engine.multiplexed();
            async move {
                let mut client = client?;
                if $takes_param {
                    client.query($sql, &[&$value]).await?;
                } else {
                    client.query($sql, &[]).await?;
                }
                Ok(())
            }
        })
        .await
    }};
}

/// One round of `contender`: `tasks` tasks running `sql` (with the task's
/// number as `$1` when it takes one) for `length`.
async fn run_one(
    contenders: &Contenders,
    contender: &str,
    tasks: usize,
    sql: &'static str,
    length: Duration,
) -> Result<f64, BoxError> {
    let takes_param = sql.contains("$1");
    let value = 41_i32;
    match contender {
        // The same loop on the concrete engine (a `MultiplexedClient`, its
        // inherent `query`) and on `dyn Engine` (a `Box<dyn Client>`).
        MUX => multiplexed_rounds!(
            Arc::clone(&contenders.uno),
            tasks,
            length,
            sql,
            takes_param,
            value
        ),
        MUX_DYN => multiplexed_rounds!(
            Arc::clone(&contenders.uno) as Arc<dyn Engine>,
            tasks,
            length,
            sql,
            takes_param,
            value
        ),
        POOLED => {
            let engine = Arc::clone(&contenders.uno);
            measure(tasks, length, move || {
                let engine = Arc::clone(&engine);
                async move {
                    let mut conn = engine.checkout().await?;
                    if takes_param {
                        conn.query(sql, &[&value]).await?;
                    } else {
                        conn.query(sql, &[]).await?;
                    }
                    Ok(())
                }
            })
            .await
        }
        _ => {
            let pool = if contender == DEADPOOL_DEFAULTS {
                contenders.deadpool_defaults.clone()
            } else {
                contenders.deadpool_matching.clone()
            };
            measure(tasks, length, move || {
                let pool = pool.clone();
                async move {
                    let client = pool.get().await?;
                    let statement = client.prepare_cached(sql).await?;
                    if takes_param {
                        client.query(&statement, &[&value]).await?;
                    } else {
                        client.query(&statement, &[]).await?;
                    }
                    Ok(())
                }
            })
            .await
        }
    }
}
