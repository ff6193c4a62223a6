//! TLS: `SELECT 1` through uno-db-async and raw deadpool-postgres (on its
//! defaults and on settings matching ours: see `peers`), all over TLS with
//! the same rustls connector (uno-db's), and the cold start
//! of a pool (16 connections opened at once) over TLS and in plaintext.
//!
//! The server must accept TLS (the Debian default cluster does, with its
//! snake-oil certificate); the certificate is not checked (`require`), as
//! the point is the cost of encryption, not of verification.

use std::sync::Arc;
use std::time::Instant;

use uno_db::nonblocking::EngineFactory as _;
use uno_db::{AsyncEngineFactory, ConnectionConfig, SslMode};
use uno_db_core::backend::{RustlsConnector, TlsSettings, Verification};

use crate::args::Args;
use crate::async_contenders::measure;
use crate::peers::{self, Settings, WAIT};
use crate::report::Report;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const SHAPES: [(usize, usize); 2] = [(64, 16), (16, 4)];
const UNO: &str = "uno-db-async+tls";
const DEADPOOL_DEFAULTS: &str = "deadpool+tls (defaults)";
const DEADPOOL_MATCHING: &str = "deadpool+tls (matching)";
const CONTENDERS: [&str; 3] = [UNO, DEADPOOL_DEFAULTS, DEADPOOL_MATCHING];
/// Connections a cold pool opens at once.
const COLD_POOL: usize = 16;

pub(crate) fn run(args: &Args) -> Result<(), BoxError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(args))
}

fn config(args: &Args, mode: SslMode, pool: usize) -> Result<ConnectionConfig, BoxError> {
    Ok(args
        .url
        .parse::<ConnectionConfig>()?
        .to_builder()
        .ssl_mode(mode)
        .pool_size(pool)
        .max_overflow(0)
        .pool_timeout(WAIT)
        .build()?)
}

fn deadpool(
    args: &Args,
    pool: usize,
    settings: Settings,
) -> Result<deadpool_postgres::Pool, BoxError> {
    let tls = RustlsConnector::new(&TlsSettings {
        verification: Verification::None,
        root_certs: None,
        client_cert: None,
        client_key: None,
    })
    .map_err(|problems| format!("{problems:?}"))?;
    let mut pg_config: tokio_postgres::Config = args.url.parse()?;
    pg_config.ssl_mode(tokio_postgres::config::SslMode::Require);
    peers::deadpool(pg_config, tls, pool, settings)
}

/// Milliseconds to open `COLD_POOL` connections at once on a new engine.
async fn cold_start(config: &ConnectionConfig) -> Result<f64, BoxError> {
    let engine = AsyncEngineFactory::new().engine(config)?;
    let started = Instant::now();
    let opening: Vec<_> = (0..COLD_POOL)
        .map(|_| {
            let engine = Arc::clone(&engine);
            tokio::spawn(async move { engine.connect().await })
        })
        .collect();
    let mut held = Vec::with_capacity(COLD_POOL);
    for handle in opening {
        held.push(handle.await??);
    }
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    drop(held);
    engine.dispose();
    Ok(elapsed)
}

async fn run_async(args: &Args) -> Result<(), BoxError> {
    println!(
        "TLS (sslmode=require, rustls): SELECT 1, prepared; {} interleaved rounds of {:?}; \
         shapes (tasks x pool) {SHAPES:?}",
        args.rounds, args.round
    );
    let mut report = Report::default();
    let mut shapes = Vec::new();
    for (tasks, pool) in SHAPES {
        let shape = format!("{tasks}x{pool}");
        shapes.push(shape.clone());
        let uno = AsyncEngineFactory::new().engine(&config(args, SslMode::Require, pool)?)?;
        let defaults = deadpool(args, pool, Settings::Defaults)?;
        let matching = deadpool(args, pool, Settings::Matching)?;
        let mut held_uno = Vec::new();
        let mut held_deadpool = Vec::new();
        for _ in 0..pool {
            let mut conn = uno.connect().await?;
            let row = conn
                .query_one(
                    "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                    &[],
                )
                .await?;
            if !row.try_get::<_, bool>(0)? {
                return Err("the server did not encrypt the session".into());
            }
            held_uno.push(conn);
            held_deadpool.push(defaults.get().await?);
            held_deadpool.push(matching.get().await?);
        }
        drop((held_uno, held_deadpool));
        for round in 0..args.rounds {
            for slot in 0..CONTENDERS.len() {
                let contender = CONTENDERS[(round + slot) % CONTENDERS.len()];
                if !args.runs(contender) {
                    continue;
                }
                let ops = if contender == UNO {
                    let engine = Arc::clone(&uno);
                    measure(tasks, args.round, move || {
                        let engine = Arc::clone(&engine);
                        async move {
                            let mut conn = engine.connect().await?;
                            conn.query("SELECT 1", &[]).await?;
                            Ok(())
                        }
                    })
                    .await?
                } else {
                    let pool = if contender == DEADPOOL_DEFAULTS {
                        defaults.clone()
                    } else {
                        matching.clone()
                    };
                    measure(tasks, args.round, move || {
                        let pool = pool.clone();
                        async move {
                            let client = pool.get().await?;
                            let statement = client.prepare_cached("SELECT 1").await?;
                            client.query(&statement, &[]).await?;
                            Ok(())
                        }
                    })
                    .await?
                };
                report.record(contender, &shape, ops);
            }
        }
        report.print_medians(&shape, &CONTENDERS);
        uno.dispose();
        defaults.close();
        matching.close();
    }
    for theirs in [DEADPOOL_DEFAULTS, DEADPOOL_MATCHING] {
        let worst = report.ratio(UNO, theirs, "select1 over TLS", &shapes);
        println!("ratio {UNO}/{theirs} = {worst:.3} (select1 over TLS, worst shape)");
    }

    // Cold start, interleaved: TLS then plaintext, each round.
    let tls = config(args, SslMode::Require, COLD_POOL)?;
    let plain = config(args, SslMode::Disable, COLD_POOL)?;
    let (mut with_tls, mut without) = (Vec::new(), Vec::new());
    for _ in 0..args.rounds {
        with_tls.push(cold_start(&tls).await?);
        without.push(cold_start(&plain).await?);
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let (tls_ms, plain_ms) = (median(&mut with_tls), median(&mut without));
    println!(
        "cold start of {COLD_POOL} connections (median of {}): TLS {tls_ms:.1} ms, \
         plaintext {plain_ms:.1} ms, ratio {:.2}",
        args.rounds,
        tls_ms / plain_ms
    );
    Ok(())
}
