//! `SELECT 1` through uno-db-sync and raw `r2d2_postgres` on OS threads
//! (on its defaults and on settings matching ours: see `peers`), pgbench
//! (likewise), and two drivers alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use uno_db::blocking::EngineFactory as _;
use uno_db::{ConnectionConfig, SslMode, SyncEngineFactory};

use crate::args::Args;
use crate::peers::{self, WAIT};
use crate::pgbench::{Pgbench, Protocol};
use crate::report::Report;
use crate::runtime_free::RuntimeFree;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const SHAPES: [(usize, usize); 2] = [(16, 16), (4, 4)];
const UNO: &str = "uno-db-sync";
/// `r2d2_postgres` the way its documentation shows it: its defaults (an
/// empty query on every checkout), the SQL text sent on every call.
const R2D2_DEFAULTS: &str = "r2d2_postgres (defaults)";
/// `r2d2_postgres` on settings matching ours: no query on checkout, the
/// statement prepared once per connection.
const R2D2_MATCHING: &str = "r2d2_postgres (matching)";
/// pgbench on its defaults: the simple query protocol, one thread.
const PGBENCH_DEFAULTS: &str = "pgbench (defaults)";
/// pgbench on settings matching ours: statements prepared (`-M prepared`),
/// a thread per client as uno-db-sync has a thread per connection.
const PGBENCH_MATCHING: &str = "pgbench (matching)";
/// pgbench at its fastest here: prepared, on two threads, one per core of
/// the machines measured here.
const PGBENCH_TWO: &str = "pgbench -j 2";
/// The Rust driver alone, no pool: a `postgres::Client` per thread with
/// its statement prepared once. What uno-db-sync cannot beat; the gap
/// from here to pgbench is the driver's (and its per-client runtime).
const DRIVER: &str = "postgres (client per thread)";
/// The same protocol code without the per-client runtime: a
/// `tokio_postgres` client per thread, polled on that thread, which waits
/// in `poll(2)` on its socket (see `runtime_free`).
const RUNTIME_FREE: &str = "tokio-postgres (no runtime)";
const CONTENDERS: [&str; 8] = [
    UNO,
    R2D2_DEFAULTS,
    R2D2_MATCHING,
    PGBENCH_DEFAULTS,
    PGBENCH_MATCHING,
    PGBENCH_TWO,
    DRIVER,
    RUNTIME_FREE,
];

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
            .pool_timeout(WAIT)
            .build()?;
        let uno = SyncEngineFactory::new().engine(&config)?;
        // r2d2's `build` opens every connection before it returns.
        let r2d2_defaults = peers::r2d2_defaults(&args.url, pool)?;
        let r2d2_matching = peers::r2d2_matching(&args.url, pool, "SELECT 1")?;
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
                    R2D2_DEFAULTS => {
                        let pool = r2d2_defaults.clone();
                        let ops = measure(threads, args.round, move || {
                            let mut client = pool.get()?;
                            client.query("SELECT 1", &[])?;
                            Ok(())
                        })?;
                        report.record(contender, &shape, ops);
                    }
                    R2D2_MATCHING => {
                        let pool = r2d2_matching.clone();
                        let ops = measure(threads, args.round, move || {
                            let mut conn = pool.get()?;
                            let (client, statement) = &mut *conn;
                            client.query(&*statement, &[])?;
                            Ok(())
                        })?;
                        report.record(contender, &shape, ops);
                    }
                    DRIVER => {
                        let ops = measure_driver(threads, &args.url, args.round)?;
                        report.record(DRIVER, &shape, ops);
                    }
                    RUNTIME_FREE => {
                        let ops = measure_runtime_free(threads, &args.url, args.round)?;
                        report.record(RUNTIME_FREE, &shape, ops);
                    }
                    PGBENCH_DEFAULTS => {
                        let ops = pgbench.run(Protocol::Simple, pool, 1, args.round)?;
                        report.record(contender, &shape, ops);
                    }
                    PGBENCH_MATCHING => {
                        let ops = pgbench.run(Protocol::Prepared, pool, pool, args.round)?;
                        report.record(contender, &shape, ops);
                    }
                    _ => {
                        let ops = pgbench.run(Protocol::Prepared, pool, 2, args.round)?;
                        report.record(contender, &shape, ops);
                    }
                }
            }
        }
        report.print_medians(&shape, &CONTENDERS);
        uno.dispose();
    }
    // One line per pair and shape above; then each pair's worst shape.
    for (ours, theirs) in [
        (UNO, R2D2_DEFAULTS),
        (UNO, R2D2_MATCHING),
        (UNO, PGBENCH_DEFAULTS),
        (UNO, PGBENCH_MATCHING),
        (UNO, PGBENCH_TWO),
        (UNO, DRIVER),
        (R2D2_MATCHING, DRIVER),
        (DRIVER, PGBENCH_TWO),
        (RUNTIME_FREE, PGBENCH_TWO),
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
        clients.push((client, statement));
    }
    measure_pinned(threads, length, clients, |(client, statement)| {
        client.query(&*statement, &[])?;
        Ok(())
    })
}

/// `threads` threads, each with a runtime-free client of its own, for
/// `length`; returns operations per second.
fn measure_runtime_free(threads: usize, url: &str, length: Duration) -> Result<f64, BoxError> {
    let mut clients = Vec::with_capacity(threads);
    for _ in 0..threads {
        clients.push(RuntimeFree::connect(url)?);
    }
    measure_pinned(threads, length, clients, RuntimeFree::select1)
}

/// Runs `threads` threads for `length`, each taking one of `clients` for
/// itself on its first operation and running `operation` on it; returns
/// operations per second. Each client's lock is taken by its one thread
/// only, so it is never contended.
fn measure_pinned<C, F>(
    threads: usize,
    length: Duration,
    clients: Vec<C>,
    operation: F,
) -> Result<f64, BoxError>
where
    C: Send + 'static,
    F: Fn(&mut C) -> Result<(), BoxError> + Clone + Send + Sync + 'static,
{
    let clients: Arc<Vec<_>> = Arc::new(clients.into_iter().map(std::sync::Mutex::new).collect());
    let next = Arc::new(AtomicU64::new(0));
    measure(threads, length, move || {
        // `measure` starts fresh threads on every call: a thread's index
        // is from this call's `next`.
        thread_local!(static MINE: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) });
        let index = MINE.with(|mine| {
            mine.get().unwrap_or_else(|| {
                let index = usize::try_from(next.fetch_add(1, Ordering::Relaxed)).unwrap_or(0);
                mine.set(Some(index));
                index
            })
        });
        let mut client = clients[index % clients.len()]
            .lock()
            .map_err(|_| "a benchmark client lock was poisoned")?;
        operation(&mut client)
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
