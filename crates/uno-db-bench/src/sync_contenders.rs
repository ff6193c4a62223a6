//! `SELECT 1` through uno-db-sync and raw `r2d2_postgres` on OS threads, and
//! pgbench.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use uno_db::blocking::EngineFactory as _;
use uno_db::{ConnectionConfig, SyncEngineFactory};

use crate::args::Args;
use crate::pgbench::Pgbench;
use crate::report::Report;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const SHAPES: [(usize, usize); 2] = [(16, 16), (4, 4)];
const UNO: &str = "uno-db-sync";
const R2D2: &str = "r2d2_postgres";
const PGBENCH: &str = "pgbench";

pub(crate) fn run(args: &Args) -> Result<(), BoxError> {
    println!(
        "SELECT 1; {} interleaved rounds of {:?}; shapes (threads x pool) {SHAPES:?}",
        args.rounds, args.round
    );
    let pgbench = Pgbench::new(&args.url)?;
    let mut report = Report::default();
    let mut shapes = Vec::new();
    for (threads, pool) in SHAPES {
        let shape = format!("{threads}x{pool}");
        shapes.push(shape.clone());
        let config = args
            .url
            .parse::<ConnectionConfig>()?
            .to_builder()
            .pool_size(pool)
            .max_overflow(0)
            .pool_timeout(Duration::from_secs(30))
            .build()?;
        let uno = SyncEngineFactory::new().engine(&config)?;
        // r2d2_postgres the way its documentation shows it: SQL text per call.
        let manager =
            r2d2_postgres::PostgresConnectionManager::new(args.url.parse()?, postgres::NoTls);
        let r2d2 = r2d2::Pool::builder()
            .max_size(u32::try_from(pool)?)
            .connection_timeout(Duration::from_secs(30))
            .build(manager)?;
        {
            let mut held = Vec::new();
            for _ in 0..pool {
                held.push(uno.connect()?);
            }
        }
        for round in 0..args.rounds {
            for slot in 0..3 {
                let contender = [UNO, R2D2, PGBENCH][(round + slot) % 3];
                if !args.runs(contender) {
                    continue;
                }
                match (round + slot) % 3 {
                    0 => {
                        let engine = Arc::clone(&uno);
                        let ops = measure(threads, args.round, move || {
                            engine.connect()?.query("SELECT 1", &[])?;
                            Ok(())
                        })?;
                        report.record(UNO, &shape, ops);
                    }
                    1 => {
                        let pool = r2d2.clone();
                        let ops = measure(threads, args.round, move || {
                            let mut client = pool.get()?;
                            client.query("SELECT 1", &[])?;
                            Ok(())
                        })?;
                        report.record(R2D2, &shape, ops);
                    }
                    _ => {
                        let ops = pgbench.run(pool, args.round)?;
                        report.record(PGBENCH, &shape, ops);
                    }
                }
            }
        }
        report.print_medians(&shape, &[UNO, R2D2, PGBENCH]);
        uno.dispose();
    }
    let versus_r2d2 = report.ratio(UNO, R2D2, &shapes);
    let versus_pgbench = report.ratio(UNO, PGBENCH, &shapes);
    println!("ratio {UNO}/{R2D2} = {versus_r2d2:.3}");
    println!("ratio {UNO}/{PGBENCH} = {versus_pgbench:.3}");
    Ok(())
}

/// Runs `threads` threads that repeat `operation` for `length`; returns
/// operations per second.
fn measure<F>(threads: usize, length: Duration, operation: F) -> Result<f64, BoxError>
where
    F: Fn() -> Result<(), BoxError> + Clone + Send + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (stop, done, operation) = (Arc::clone(&stop), Arc::clone(&done), operation.clone());
            thread::spawn(move || -> Result<(), BoxError> {
                while !stop.load(Ordering::Relaxed) {
                    operation()?;
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect();
    thread::sleep(length);
    stop.store(true, Ordering::Relaxed);
    for handle in handles {
        handle.join().map_err(|_| "a benchmark thread panicked")??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}
