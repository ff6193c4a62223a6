//! `SELECT 1` through uno-db-sync and raw `r2d2_postgres` on OS threads, and
//! pgbench.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use uno_db::blocking::EngineFactory as _;
use uno_db::{ConnectionConfig, SslMode, SyncEngineFactory};

use crate::args::Args;
use crate::pgbench::Pgbench;
use crate::report::Report;
use crate::runtime_free::RuntimeFree;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const SHAPES: [(usize, usize); 2] = [(16, 16), (4, 4)];
const UNO: &str = "uno-db-sync";
const R2D2: &str = "r2d2_postgres";
/// pgbench on two threads, one per core of the machines measured here.
const PGBENCH: &str = "pgbench";
/// pgbench with a thread per client, as uno-db-sync has a thread per
/// connection.
const PGBENCH_THREADS: &str = "pgbench -j clients";
/// The Rust driver alone, no pool: a `postgres::Client` per thread with
/// its statement prepared once. What uno-db-sync cannot beat; the gap
/// from here to pgbench is the driver's (and its per-client runtime).
const DRIVER: &str = "postgres (client per thread)";
/// The same protocol code without the per-client runtime: a
/// `tokio_postgres` client per thread, polled on that thread, which waits
/// in `poll(2)` on its socket (see `runtime_free`).
const RUNTIME_FREE: &str = "tokio-postgres (no runtime)";
const CONTENDERS: [&str; 6] = [UNO, R2D2, PGBENCH, PGBENCH_THREADS, DRIVER, RUNTIME_FREE];

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
            // Plaintext, as the raw pools here (`NoTls`) and pgbench run.
            .ssl_mode(SslMode::Disable)
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
            for slot in 0..CONTENDERS.len() {
                let contender = CONTENDERS[(round + slot) % CONTENDERS.len()];
                if !args.runs(contender) {
                    continue;
                }
                match contender {
                    UNO => {
                        let engine = Arc::clone(&uno);
                        let ops = measure(threads, args.round, move || {
                            engine.connect()?.query("SELECT 1", &[])?;
                            Ok(())
                        })?;
                        report.record(UNO, &shape, ops);
                    }
                    R2D2 => {
                        let pool = r2d2.clone();
                        let ops = measure(threads, args.round, move || {
                            let mut client = pool.get()?;
                            client.query("SELECT 1", &[])?;
                            Ok(())
                        })?;
                        report.record(R2D2, &shape, ops);
                    }
                    DRIVER => {
                        let ops = measure_driver(threads, &args.url, args.round)?;
                        report.record(DRIVER, &shape, ops);
                    }
                    RUNTIME_FREE => {
                        let ops = measure_runtime_free(threads, &args.url, args.round)?;
                        report.record(RUNTIME_FREE, &shape, ops);
                    }
                    PGBENCH => {
                        let ops = pgbench.run(pool, 2, args.round)?;
                        report.record(PGBENCH, &shape, ops);
                    }
                    _ => {
                        let ops = pgbench.run(pool, pool, args.round)?;
                        report.record(PGBENCH_THREADS, &shape, ops);
                    }
                }
            }
        }
        report.print_medians(&shape, &CONTENDERS);
        uno.dispose();
    }
    // One line per pair and shape above; then each pair's worst shape.
    for (ours, theirs) in [
        (UNO, R2D2),
        (UNO, PGBENCH),
        (UNO, PGBENCH_THREADS),
        (UNO, DRIVER),
        (DRIVER, PGBENCH),
        (RUNTIME_FREE, PGBENCH),
        (RUNTIME_FREE, DRIVER),
    ] {
        let worst = report.ratio(ours, theirs, "select1", &shapes);
        println!("ratio {ours}/{theirs} = {worst:.3} (select1, worst shape)");
    }
    Ok(())
}

/// `threads` threads, each with a plaintext `postgres::Client` of its own
/// and `SELECT 1` prepared once, for `length`; returns operations per
/// second.
fn measure_driver(threads: usize, url: &str, length: Duration) -> Result<f64, BoxError> {
    let mut clients = Vec::with_capacity(threads);
    for _ in 0..threads {
        let mut client = postgres::Client::connect(url, postgres::NoTls)?;
        let statement = client.prepare("SELECT 1")?;
        clients.push(std::sync::Mutex::new((client, statement)));
    }
    let clients = Arc::new(clients);
    let next = Arc::new(AtomicU64::new(0));
    measure(threads, length, move || {
        // Each thread takes its own client once and keeps it: the lock is
        // never contended.
        thread_local!(static MINE: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) });
        let index = MINE.with(|mine| {
            mine.get().unwrap_or_else(|| {
                let index = usize::try_from(next.fetch_add(1, Ordering::Relaxed)).unwrap_or(0);
                mine.set(Some(index));
                index
            })
        });
        let mut guard = clients[index % clients.len()]
            .lock()
            .map_err(|_| "a benchmark client lock was poisoned")?;
        let (client, statement) = &mut *guard;
        client.query(&*statement, &[])?;
        Ok(())
    })
}

/// `threads` threads, each with a runtime-free client of its own, for
/// `length`; returns operations per second.
fn measure_runtime_free(threads: usize, url: &str, length: Duration) -> Result<f64, BoxError> {
    let mut clients = Vec::with_capacity(threads);
    for _ in 0..threads {
        clients.push(std::sync::Mutex::new(RuntimeFree::connect(url)?));
    }
    let clients = Arc::new(clients);
    let next = Arc::new(AtomicU64::new(0));
    measure(threads, length, move || {
        thread_local!(static MINE: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) });
        let index = MINE.with(|mine| {
            mine.get().unwrap_or_else(|| {
                let index = usize::try_from(next.fetch_add(1, Ordering::Relaxed)).unwrap_or(0);
                mine.set(Some(index));
                index
            })
        });
        clients[index % clients.len()]
            .lock()
            .map_err(|_| "a benchmark client lock was poisoned")?
            .select1()
    })
}

/// Runs `threads` threads that repeat `operation` for `length`; returns
/// operations per second. Each thread counts its own operations (see the
/// async harness's `measure`: no counter written from every thread).
fn measure<F>(threads: usize, length: Duration, operation: F) -> Result<f64, BoxError>
where
    F: Fn() -> Result<(), BoxError> + Clone + Send + 'static,
{
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (stop, operation) = (Arc::clone(&stop), operation.clone());
            thread::spawn(move || -> Result<u64, BoxError> {
                let mut done = 0_u64;
                while !stop.load(Ordering::Relaxed) {
                    operation()?;
                    done += 1;
                }
                Ok(done)
            })
        })
        .collect();
    thread::sleep(length);
    stop.store(true, Ordering::Relaxed);
    let mut done = 0_u64;
    for handle in handles {
        done += handle.join().map_err(|_| "a benchmark thread panicked")??;
    }
    Ok(done as f64 / started.elapsed().as_secs_f64())
}
