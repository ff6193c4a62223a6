//! `SELECT 1` through uno-db-sync and raw `r2d2_postgres` on OS threads
//! (on its defaults and on settings matching ours: see `peers`), pgbench
//! (likewise), and two drivers alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use uno_db::blocking::{self, Client as _};
use uno_db::{ConnectionConfig, SslMode, SyncEngineFactory};

use crate::args::Args;
use crate::peers::{self, WAIT};
use crate::pgbench::{Pgbench, Protocol};
use crate::report::Report;
use crate::runtime_free::RuntimeFree;
use crate::wakeups::Wakeups;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const SHAPES: [(usize, usize); 2] = [(16, 16), (4, 4)];
/// uno-db-sync through the traits: `Arc<dyn Engine>`, `Box<dyn Connection>`.
const UNO: &str = "uno-db-sync";
/// uno-db-sync through its concrete types: `SyncEngine::checkout`, no box.
const UNO_CONCRETE: &str = "uno-db-sync (concrete)";
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
const CONTENDERS: [&str; 9] = [
    UNO,
    UNO_CONCRETE,
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
    let mut admin = postgres::Client::connect(&args.url, postgres::NoTls)?;
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
        // One engine for both of uno-db-sync's contenders (they never run
        // at once): its concrete type, and the same engine as `dyn Engine`.
        let uno_concrete = SyncEngineFactory::new().sync_engine(&config)?;
        let uno: Arc<dyn blocking::Engine> = uno_concrete.clone();
        // r2d2's `build` opens every connection before it returns.
        let r2d2_defaults = peers::r2d2_defaults(&args.url, pool)?;
        let r2d2_matching = peers::r2d2_matching(&args.url, pool, "SELECT 1")?;
        {
            let mut held = Vec::new();
            for _ in 0..pool {
                held.push(uno_concrete.checkout()?);
            }
        }
        // Every contender's connections are opened before the first round
        // and kept to the last (97 at 16 × 16 with pgbench's, of the 100
        // the server allows): a round that opened or closed connections
        // would leave the server ending backends during the next
        // contender's round.
        let driver = args
            .runs(DRIVER)
            .then(|| driver_clients(threads, &args.url))
            .transpose()?;
        let runtime_free = args
            .runs(RUNTIME_FREE)
            .then(|| runtime_free_clients(threads, &args.url))
            .transpose()?;
        let baseline = client_backends(&mut admin)?;
        for round in 0..args.rounds {
            for slot in 0..CONTENDERS.len() {
                let contender = CONTENDERS[(round + slot) % CONTENDERS.len()];
                if !args.runs(contender) {
                    continue;
                }
                let wakeups = Wakeups::start();
                let ops = match contender {
                    UNO => {
                        let engine = Arc::clone(&uno);
                        measure(threads, args.round, move || {
                            engine.connect()?.query("SELECT 1", &[])?;
                            Ok(())
                        })?
                    }
                    UNO_CONCRETE => {
                        let engine = Arc::clone(&uno_concrete);
                        measure(threads, args.round, move || {
                            engine.checkout()?.query("SELECT 1", &[])?;
                            Ok(())
                        })?
                    }
                    R2D2_DEFAULTS => {
                        let pool = r2d2_defaults.clone();
                        measure(threads, args.round, move || {
                            let mut client = pool.get()?;
                            client.query("SELECT 1", &[])?;
                            Ok(())
                        })?
                    }
                    R2D2_MATCHING => {
                        let pool = r2d2_matching.clone();
                        measure(threads, args.round, move || {
                            let mut conn = pool.get()?;
                            let (client, statement) = &mut *conn;
                            client.query(&*statement, &[])?;
                            Ok(())
                        })?
                    }
                    DRIVER => {
                        let clients = driver.as_ref().ok_or("no driver clients")?;
                        measure_pinned(threads, args.round, clients, |conn| {
                            let (client, statement) = conn;
                            client.query(&*statement, &[])?;
                            Ok(())
                        })?
                    }
                    RUNTIME_FREE => {
                        let clients = runtime_free.as_ref().ok_or("no runtime-free clients")?;
                        measure_pinned(threads, args.round, clients, RuntimeFree::select1)?
                    }
                    // pgbench opens its connections before it starts timing
                    // and closes them as it exits.
                    _ => {
                        let (protocol, pgbench_threads) = pgbench_mode(contender, pool)
                            .ok_or_else(|| format!("unknown contender {contender}"))?;
                        pgbench.run(protocol, pool, pgbench_threads, args.round)?
                    }
                };
                let wakeups = wakeups.per(ops * args.round.as_secs_f64());
                report.record_round(contender, &shape, ops, wakeups);
                if pgbench_mode(contender, pool).is_some() {
                    settle(&mut admin, baseline)?;
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
        (UNO_CONCRETE, R2D2_MATCHING),
        (UNO_CONCRETE, PGBENCH_TWO),
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

/// How pgbench runs as `contender` on a pool of `pool` (its protocol and
/// threads); `None` for a contender that is not pgbench.
fn pgbench_mode(contender: &str, pool: usize) -> Option<(Protocol, usize)> {
    match contender {
        PGBENCH_DEFAULTS => Some((Protocol::Simple, 1)),
        PGBENCH_MATCHING => Some((Protocol::Prepared, pool)),
        PGBENCH_TWO => Some((Protocol::Prepared, 2)),
        _ => None,
    }
}

/// One client per thread, kept for every round of a shape, each taken by
/// one thread of a round for itself; a client's lock is taken by that
/// thread only, so it is never contended.
type Pinned<C> = Arc<Vec<std::sync::Mutex<C>>>;

/// `threads` plaintext `postgres::Client`s, each with `SELECT 1` prepared
/// once.
fn driver_clients(
    threads: usize,
    url: &str,
) -> Result<Pinned<(postgres::Client, postgres::Statement)>, BoxError> {
    let mut clients = Vec::with_capacity(threads);
    for _ in 0..threads {
        let mut client = postgres::Client::connect(url, postgres::NoTls)?;
        let statement = client.prepare("SELECT 1")?;
        clients.push(std::sync::Mutex::new((client, statement)));
    }
    Ok(Arc::new(clients))
}

/// `threads` runtime-free clients.
fn runtime_free_clients(threads: usize, url: &str) -> Result<Pinned<RuntimeFree>, BoxError> {
    let mut clients = Vec::with_capacity(threads);
    for _ in 0..threads {
        clients.push(std::sync::Mutex::new(RuntimeFree::connect(url)?));
    }
    Ok(Arc::new(clients))
}

/// Runs `threads` threads for `length`, each taking one of `clients` for
/// itself on its first operation and running `operation` on it; returns
/// operations per second.
fn measure_pinned<C, F>(
    threads: usize,
    length: Duration,
    clients: &Pinned<C>,
    operation: F,
) -> Result<f64, BoxError>
where
    C: Send + 'static,
    F: Fn(&mut C) -> Result<(), BoxError> + Clone + Send + Sync + 'static,
{
    let clients = Arc::clone(clients);
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

/// After a pgbench run, which closes its connections as it exits: waits,
/// at most 2 s, until the server has no more client backends than
/// `baseline`, then [`SETTLE`] more, so that the backends' exits do not
/// run into the next contender's round. (A backend leaves
/// `pg_stat_activity` before its process has finished exiting.)
fn settle(admin: &mut postgres::Client, baseline: i64) -> Result<(), BoxError> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if client_backends(admin)? <= baseline || Instant::now() >= deadline {
            break;
        }
        thread::sleep(Duration::from_millis(10));
    }
    thread::sleep(SETTLE);
    Ok(())
}

/// The client backends the server runs now (`pg_stat_activity`).
fn client_backends(admin: &mut postgres::Client) -> Result<i64, BoxError> {
    Ok(admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'",
            &[],
        )?
        .get(0))
}

/// The pause after a pgbench run's backends have left `pg_stat_activity`.
const SETTLE: Duration = Duration::from_millis(250);

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
