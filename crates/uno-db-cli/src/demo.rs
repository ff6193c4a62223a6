//! `uno-db demo`: a short tour of the API on the configured server, or on a
//! throwaway PostgreSQL started from the local binaries (the test kit's
//! `TestCluster`) and removed on exit, on Ctrl-C and on SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::runtime::Runtime;
use uno_db::nonblocking::transaction_with_retry;
use uno_db::{
    ConnectionConfig, DatabaseFactory, EnvSource, ProcessEnv, RetryPolicy, TransactionOptions,
};
use uno_db_testkit::TestCluster;

use crate::check;
use crate::cli::DemoArgs;
use crate::failure::{self, Failure};
use crate::source;

/// How long the configured server has to answer before the demo starts its
/// own.
const ANSWER_WAIT: Duration = Duration::from_secs(3);

/// The server the tour runs on.
struct Target {
    config: ConnectionConfig,
    /// The throwaway server, when the demo started one.
    cluster: Option<TestCluster>,
}

/// A termination signal, registered before anything is started so that
/// none is missed.
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn register() -> Result<Self, Failure> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let failure =
                |error: std::io::Error| Failure::cannot_run(format!("handling signals: {error}"));
            Ok(Self {
                interrupt: signal(SignalKind::interrupt()).map_err(failure)?,
                terminate: signal(SignalKind::terminate()).map_err(failure)?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    /// Waits for Ctrl-C (SIGINT) or SIGTERM; returns the signal's name.
    async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => "Ctrl-C",
                _ = self.terminate.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

/// Runs the demo; returns the exit code.
pub(crate) fn run(runtime: &Runtime, args: &DemoArgs) -> Result<u8, Failure> {
    runtime.block_on(demo(args))
}

async fn demo(args: &DemoArgs) -> Result<u8, Failure> {
    let mut signals = Signals::register()?;
    let target = tokio::select! {
        target = choose(args) => target?,
        signal = signals.recv() => {
            // A cluster being started is removed as soon as its start ends
            // (the runtime waits for it before the process exits).
            outln!("interrupted by {signal}: stopping");
            return Ok(failure::INTERRUPTED);
        }
    };
    let outcome = tokio::select! {
        outcome = tour(&target.config) => outcome.map(|()| failure::OK),
        signal = signals.recv() => {
            outln!("interrupted by {signal}");
            Ok(failure::INTERRUPTED)
        }
    };
    let outcome = match (outcome, &target.cluster) {
        (Ok(failure::OK), Some(cluster)) if args.hold => {
            outln!(
                "holding: the throwaway PostgreSQL stays up at {} until Ctrl-C",
                cluster.admin_url()
            );
            let signal = signals.recv().await;
            outln!("{signal}: stopping");
            Ok(failure::OK)
        }
        (Ok(failure::OK), None) if args.hold => {
            outln!("--hold: nothing to hold, the tour ran on a configured server");
            Ok(failure::OK)
        }
        (outcome, _) => outcome,
    };
    if let Some(cluster) = target.cluster {
        let dir = cluster_dir(&cluster);
        outln!("removing the throwaway PostgreSQL");
        let removed = tokio::task::spawn_blocking(move || drop(cluster)).await;
        match removed {
            Ok(()) if !dir.exists() => outln!("removed {}", dir.display()),
            _ => errln!(
                "warning: {} is still there; its watchdog removes it when this process exits",
                dir.display()
            ),
        }
    }
    outcome
}

/// The cluster's own directory (its data directory's parent).
fn cluster_dir(cluster: &TestCluster) -> PathBuf {
    let data = cluster.data_dir();
    data.parent().map_or(data.clone(), PathBuf::from)
}

/// The URL argument; else `DATABASE_URL`; else the server the environment
/// names, when it answers; else a throwaway PostgreSQL.
async fn choose(args: &DemoArgs) -> Result<Target, Failure> {
    if !args.throwaway {
        let configured = source::resolve(args.url.as_deref()).map_err(|rejected| {
            Failure::usage(format!("{} (given: {})", rejected.message, rejected.given))
        })?;
        let named = args.url.is_some()
            || ProcessEnv
                .var("DATABASE_URL")
                .is_some_and(|url| !url.trim().is_empty());
        if named || answers(&configured).await {
            outln!("using the configured server {configured}");
            return Ok(Target {
                config: configured,
                cluster: None,
            });
        }
        outln!("no server answers at {configured}: starting a throwaway PostgreSQL");
    } else {
        outln!("starting a throwaway PostgreSQL");
    }
    let cluster = tokio::task::spawn_blocking(TestCluster::new)
        .await
        .map_err(|error| Failure::cannot_run(format!("starting a throwaway PostgreSQL: {error}")))?
        .map_err(|error| {
            Failure::cannot_run(format!(
                "could not start a throwaway PostgreSQL from the local binaries \
                 (set DATABASE_URL to use a server instead): {}",
                uno_db::error_chain(&error)
            ))
        })?;
    outln!(
        "started PostgreSQL {} at {} (directory {})",
        cluster.pg_version(),
        cluster.admin_url(),
        cluster_dir(&cluster).display()
    );
    let config = cluster
        .admin_url()
        .parse()
        .map_err(|error| Failure::from_error("the throwaway server's URL", &error))?;
    Ok(Target {
        config,
        cluster: Some(cluster),
    })
}

/// Whether some host of `config` accepts TCP connections within
/// [`ANSWER_WAIT`].
async fn answers(config: &ConnectionConfig) -> bool {
    for endpoint in config.endpoints() {
        if let Ok(Ok(())) = tokio::time::timeout(ANSWER_WAIT, check::reach(&endpoint)).await {
            return true;
        }
    }
    false
}

/// The tour: engine, connect, checkout and pool status, session (commit
/// and rollback), retry of a serialization failure, counters, the blocking
/// backend.
async fn tour(config: &ConnectionConfig) -> Result<(), Failure> {
    let fail = |step: &str| {
        let step = step.to_owned();
        move |error: uno_db::Error| Failure::from_error(&step, &error)
    };
    let db = DatabaseFactory::new(config.clone());
    outln!("\n== engine: DatabaseFactory::new(config).async_engine()");
    outln!("config (password masked): {}", db.config());
    let engine = db.async_engine().map_err(fail("creating the engine"))?;

    outln!("\n== connect: engine.connect() and a query with a parameter");
    let mut conn = engine.connect().await.map_err(fail("connecting"))?;
    let row = conn
        .query_one(
            "SELECT $1::text || current_database() AS hello, \
                    current_setting('server_version') AS version",
            &[&"hello from "],
        )
        .await
        .map_err(fail("querying"))?;
    let hello: String = row.try_get("hello").map_err(fail("decoding"))?;
    let version: String = row.try_get("version").map_err(fail("decoding"))?;
    outln!("{hello} (PostgreSQL {version})");

    outln!("\n== checkout: connections come from a pool; engine.status()");
    let second = engine.connect().await.map_err(fail("connecting"))?;
    let status = engine.status();
    outln!(
        "two checked out: size {}, in use {}, idle {}, max {}",
        status.size,
        status.in_use,
        status.idle,
        status.max_size
    );
    drop(second);
    drop(conn);
    let status = engine.status();
    outln!(
        "both returned:   size {}, in use {}, idle {}",
        status.size,
        status.in_use,
        status.idle
    );

    outln!("\n== session: engine.session(options), commit and rollback");
    let mut session = engine
        .session(&TransactionOptions::new())
        .await
        .map_err(fail("starting a session"))?;
    session
        .batch_execute("CREATE TEMPORARY TABLE uno_db_demo (name text) ON COMMIT DROP")
        .await
        .map_err(fail("creating a temporary table"))?;
    let inserted = session
        .execute(
            "INSERT INTO uno_db_demo SELECT unnest($1::text[])",
            &[&vec!["ada", "grace", "edsger"]],
        )
        .await
        .map_err(fail("inserting"))?;
    let row = session
        .query_one("SELECT count(*) AS n FROM uno_db_demo", &[])
        .await
        .map_err(fail("counting"))?;
    let count: i64 = row.try_get("n").map_err(fail("decoding"))?;
    outln!("inserted {inserted} rows into a temporary table, counted {count}");
    session.commit().await.map_err(fail("committing"))?;
    outln!("committed (the temporary table goes with the transaction)");
    let mut session = engine
        .session(&TransactionOptions::new().read_only(true))
        .await
        .map_err(fail("starting a session"))?;
    let row = session
        .query_one("SELECT count(*) AS n FROM pg_stat_activity", &[])
        .await
        .map_err(fail("querying"))?;
    let sessions: i64 = row.try_get("n").map_err(fail("decoding"))?;
    outln!("a read-only session sees {sessions} server sessions; rolling it back");
    session.rollback().await.map_err(fail("rolling back"))?;

    outln!("\n== retry: transaction_with_retry re-runs a serialization failure");
    let attempts = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&attempts);
    let policy = RetryPolicy::default().max_attempts(3);
    let answer: i32 = transaction_with_retry(
        &*engine,
        &TransactionOptions::new(),
        &policy,
        move |session| {
            let attempt = counter.fetch_add(1, Ordering::Relaxed) + 1;
            Box::pin(async move {
                if attempt == 1 {
                    // What a conflicting writer would cause (SQLSTATE 40001).
                    session
                        .batch_execute(
                            "DO $$ BEGIN RAISE EXCEPTION USING \
                             ERRCODE = 'serialization_failure', \
                             MESSAGE = 'uno-db demo: a simulated conflict'; END $$",
                        )
                        .await?;
                }
                session
                    .query_one("SELECT 40 + 2 AS n", &[])
                    .await?
                    .try_get::<_, i32>("n")
            })
        },
    )
    .await
    .map_err(fail("the retried transaction"))?;
    outln!(
        "the transaction committed on attempt {} and returned {answer}",
        attempts.load(Ordering::Relaxed)
    );

    outln!("\n== status: engine.status() and engine.counters()");
    let status = engine.status();
    let counters = engine.counters();
    outln!(
        "pool: size {}, idle {}, in use {}, waiting {}",
        status.size,
        status.idle,
        status.in_use,
        status.waiting
    );
    outln!(
        "counters: {} connections opened, {} closed, {} checkouts, {} timed out, {:.3} ms waited",
        counters.created,
        counters.closed_total(),
        counters.acquired,
        counters.acquire_timeouts,
        check::millis(counters.total_wait)
    );

    outln!("\n== blocking: the same configuration through db.sync_engine()");
    let sync_engine = db
        .sync_engine()
        .map_err(fail("creating the blocking engine"))?;
    let n = tokio::task::spawn_blocking(move || {
        sync_engine
            .connect()?
            .query_one("SELECT 6 * 7 AS n", &[])?
            .try_get::<_, i32>("n")
    })
    .await
    .map_err(|error| Failure::failed(format!("the blocking backend: {error}")))?
    .map_err(fail("the blocking backend"))?;
    outln!("the blocking backend says {n}");

    db.dispose();
    outln!("\n== done: db.dispose() closed every pool");
    Ok(())
}
