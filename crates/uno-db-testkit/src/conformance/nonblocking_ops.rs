//! Pool operations for the async family (issue 13): the same cases as
//! [`blocking_ops`](super::blocking_ops), awaited. Named `ops_*`.
// Cases are tests: a failed expectation panics, and every case returns the
// first error an operation gave.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_errors_doc
)]

use std::future::Future;
use std::time::{Duration, Instant};

use super::ops_shared::{
    LEAK_HOLD, LEAK_RETURNED, LEAK_THRESHOLD, LEAK_WARNING, OPS_WAIT, SHORT_POOL_TIMEOUT, logged,
    named,
};
use super::shared::{ALIVE_OF, BACKENDS_OF_APPLICATION, POLL, TIMEOUT_SLACK};
use super::unique_name::unique_application_name;
use crate::LogCapture;
use uno_db_core::backend::DYN_ENGINE_TRACKS_CALLER;
use uno_db_core::nonblocking::{Engine, EngineFactory};
use uno_db_core::{CloseReason, CloseReport, ConnectionConfig, ErrorKind, Result};

/// Waits (bounded by [`OPS_WAIT`]) until `done` holds; whether it did.
async fn eventually<F: Future<Output = Result<bool>>>(mut done: impl FnMut() -> F) -> Result<bool> {
    let until = Instant::now() + OPS_WAIT;
    loop {
        if done().await? {
            return Ok(true);
        }
        if Instant::now() >= until {
            return Ok(false);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// How many server backends carry `name` as their `application_name`,
/// asked through `admin` (an engine of another name).
async fn backends(admin: &dyn Engine, name: &str) -> Result<usize> {
    let pids: Vec<i32> = admin
        .connect()
        .await?
        .query_one(BACKENDS_OF_APPLICATION, &[&name])
        .await?
        .get(0);
    Ok(pids.len())
}

/// Pins: a connection held past `leak_detection_threshold` gives exactly
/// one `WARN` naming the line that checked it out (through `dyn Engine`)
/// and how long it was held, and one `INFO` when it is returned; a
/// connection returned in time gives neither.
pub async fn ops_leak_reported_once_then_on_return(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    LogCapture::global(); // before the first event
    let config = config
        .to_builder()
        .leak_detection_threshold(LEAK_THRESHOLD)
        .build()?;
    let engine = factory.engine(&config)?;
    drop(engine.connect().await?); // returned in time: no report
    let line = line!() + 1;
    let conn = engine.connect().await?;
    tokio::time::sleep(LEAK_HOLD).await;
    let warnings = logged(&config, LEAK_WARNING);
    assert_eq!(warnings.len(), 1, "exactly one warning: {warnings:#?}");
    let warning = &warnings[0];
    assert!(warning.starts_with("WARN uno_db:"), "{warning}");
    let at = if DYN_ENGINE_TRACKS_CALLER {
        format!("checked_out_at={}:{line}:", file!())
    } else {
        "checked_out_at=".to_owned()
    };
    assert!(warning.contains(&at), "{warning} does not contain {at}");
    let held: u64 = warning
        .split("held_ms=")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|ms| ms.parse().ok())
        .expect("a held_ms field");
    assert!(
        held >= u64::try_from(LEAK_THRESHOLD.as_millis()).unwrap(),
        "{warning}"
    );
    assert!(logged(&config, LEAK_RETURNED).is_empty());
    drop(conn);
    let returned = logged(&config, LEAK_RETURNED);
    assert_eq!(returned.len(), 1, "{returned:#?}");
    assert!(returned[0].contains(&at), "{}", returned[0]);
    tokio::time::sleep(LEAK_THRESHOLD * 2).await;
    assert_eq!(logged(&config, LEAK_WARNING).len(), 1, "still one warning");
    Ok(())
}

/// Pins: `warm_up` opens `min_idle` connections; with `min_idle =
/// pool_size` the first `pool_size` checkouts open none (`created` does
/// not rise); `min_idle` above `pool_size` is refused by validation.
pub async fn ops_warm_up_serves_checkouts_without_connecting(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let error = config
        .to_builder()
        .pool_size(2)
        .min_idle(3)
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config);
    assert!(error.to_string().contains("min_idle"), "{error}");
    let config = config
        .to_builder()
        .pool_size(2)
        .max_overflow(1)
        .min_idle(2)
        .build()?;
    let engine = factory.engine(&config)?;
    engine.warm_up().await?;
    assert_eq!(engine.status().idle, 2, "{:?}", engine.status());
    let created = engine.counters().created;
    assert_eq!(created, 2);
    let first = engine.connect().await?;
    let second = engine.connect().await?;
    assert_eq!(
        engine.counters().created,
        created,
        "served from the warm pool"
    );
    drop((first, second));
    engine.warm_up().await?; // already met: opens nothing
    assert_eq!(engine.counters().created, created);
    Ok(())
}

/// Pins: after a connection is lost the pool opens another in the
/// background to keep `min_idle` idle, without any checkout.
pub async fn ops_min_idle_refills_in_background(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let config = config
        .to_builder()
        .pool_size(2)
        .max_overflow(0)
        .min_idle(2)
        .build()?;
    let engine = factory.engine(&config)?;
    engine.warm_up().await?;
    let e: &dyn Engine = &*engine;
    {
        let mut conn = engine.connect().await?;
        // The server ends this backend: the connection is lost.
        let _ = conn
            .execute("SELECT pg_terminate_backend(pg_backend_pid())", &[])
            .await;
    }
    assert!(
        eventually(|| async move { Ok(e.counters().closed(CloseReason::Broken) >= 1) }).await?,
        "the lost connection was not closed: {:?}",
        engine.counters()
    );
    assert!(
        eventually(|| async move { Ok(e.status().idle == 2 && e.counters().created == 3) }).await?,
        "not refilled: {:?} {:?}",
        engine.status(),
        engine.counters()
    );
    Ok(())
}

/// Pins: `warm_up` against a server that does not answer gives up within
/// `pool_timeout`, with a transient error.
pub async fn ops_warm_up_gives_up_in_time(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let port = super::free_port::closed_port();
    let config = config
        .to_builder()
        .hosts(["127.0.0.1"])
        .ports([port])
        .min_idle(1)
        .pool_timeout(SHORT_POOL_TIMEOUT)
        .build()?;
    let engine = factory.engine(&config)?;
    let started = Instant::now();
    let error = engine.warm_up().await.unwrap_err();
    let took = started.elapsed();
    assert!(error.is_transient(), "{error:?}");
    assert!(took < SHORT_POOL_TIMEOUT + TIMEOUT_SLACK * 4, "{took:?}");
    Ok(())
}

/// Pins: `close(deadline)` refuses new checkouts at once, waits for the
/// checked-out connections returned before the deadline (returning early
/// once all are back), and when it returns the engine has no backend left
/// on the server.
pub async fn ops_close_drains_then_reports(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let name = unique_application_name("drain");
    let engine = factory.engine(&named(config, &name)?)?;
    let admin = factory.engine(&named(config, &unique_application_name("admin"))?)?;
    let idle = engine.connect().await?;
    let (a, b) = (engine.connect().await?, engine.connect().await?);
    drop(idle);
    assert_eq!(backends(&*admin, &name).await?, 3);
    let returner = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(a);
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(b);
    });
    let started = Instant::now();
    let report = engine.close(OPS_WAIT).await;
    let (a, n): (&dyn Engine, &str) = (&*admin, &name);
    let took = started.elapsed();
    returner.await.expect("the returning task");
    assert_eq!(
        report,
        CloseReport {
            returned: 2,
            forced: 0
        }
    );
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < OPS_WAIT, "it returned once all were back: {took:?}");
    assert_eq!(
        engine.connect().await.err().map(|e| e.kind()),
        Some(ErrorKind::PoolClosed)
    );
    assert!(
        eventually(|| async move { Ok(backends(a, n).await? == 0) }).await?,
        "backends left: {}",
        backends(&*admin, &name).await?
    );
    Ok(())
}

/// Pins: connections still checked out at the deadline (one idle in its
/// user's hands, one running a long statement) are reported as forced and
/// ended on the server: `close` returns soon after the deadline with
/// their server processes gone, the running statement fails at once
/// instead of running on, and the idle one fails on its next use.
pub async fn ops_close_forces_past_deadline(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let name = unique_application_name("force");
    let engine = factory.engine(&named(config, &name)?)?;
    let admin = factory.engine(&named(config, &unique_application_name("admin"))?)?;
    let mut held = engine.connect().await?;
    let mut busy = engine.connect().await?;
    let mut pids: Vec<i32> = Vec::new();
    for conn in [&mut held, &mut busy] {
        pids.push(conn.query_one("SELECT pg_backend_pid()", &[]).await?.get(0));
    }
    let sleeper = tokio::spawn(async move {
        let started = Instant::now();
        let result = busy.execute("SELECT pg_sleep(60)", &[]).await;
        (result.err(), started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let deadline = Duration::from_millis(300);
    let started = Instant::now();
    let report = engine.close(deadline).await;
    let took = started.elapsed();
    assert_eq!(
        report,
        CloseReport {
            returned: 0,
            forced: 2
        }
    );
    assert!(
        took >= deadline && took < deadline + TIMEOUT_SLACK * 4,
        "{took:?}"
    );
    let alive: i64 = admin
        .connect()
        .await?
        .query_one(ALIVE_OF, &[&pids])
        .await?
        .get(0);
    assert_eq!(alive, 0, "close returned with server processes left");
    let (error, slept) = tokio::time::timeout(OPS_WAIT, sleeper)
        .await
        .expect("the long statement ended")
        .expect("the sleeping task");
    assert!(error.is_some(), "the long statement was not ended");
    assert!(slept < OPS_WAIT, "{slept:?}");
    assert!(held.execute("SELECT 1", &[]).await.is_err());
    drop(held);
    let (a, n): (&dyn Engine, &str) = (&*admin, &name);
    assert!(eventually(|| async move { Ok(backends(a, n).await? == 0) }).await?);
    Ok(())
}

/// Pins: `set_pool_size`/`set_max_overflow` change the pool's maximum at
/// runtime (`status().max_size` follows) without closing connections in
/// use; surplus ones retire when returned; bad sizes are refused with a
/// `Config` error naming the setting, changing nothing.
pub async fn ops_resize_at_runtime(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let config = config
        .to_builder()
        .pool_size(1)
        .max_overflow(0)
        .pool_timeout(SHORT_POOL_TIMEOUT)
        .build()?;
    let engine = factory.engine(&config)?;
    assert_eq!(engine.status().max_size, 1);
    let mut first = engine.connect().await?;
    let pid: i32 = first
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .get(0);
    let Err(error) = engine.connect().await else {
        panic!("the pool is full: the checkout must time out")
    };
    assert_eq!(error.kind(), ErrorKind::PoolTimeout);

    engine.set_pool_size(3)?;
    assert_eq!(engine.status().max_size, 3);
    let (second, third) = (engine.connect().await?, engine.connect().await?);
    let same: i32 = first
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .get(0);
    assert_eq!(same, pid, "the connection in use was kept");
    engine.set_max_overflow(2)?;
    assert_eq!(engine.status().max_size, 5);

    for (bad, setting) in [
        (engine.set_pool_size(0), "pool_size"),
        (engine.set_pool_size(1001), "pool_size"),
        (engine.set_max_overflow(998), "max_overflow"),
    ] {
        let error = bad.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config, "{error}");
        assert!(error.to_string().contains(setting), "{error}");
    }
    assert_eq!(engine.status().max_size, 5, "refused sizes change nothing");

    engine.set_max_overflow(0)?;
    engine.set_pool_size(1)?;
    assert_eq!(engine.status().max_size, 1);
    assert_eq!(engine.status().size, 3, "connections in use stay open");
    drop((second, third));
    drop(first);
    let e: &dyn Engine = &*engine;
    assert!(
        eventually(|| async move { Ok(e.status().size == 1) }).await?,
        "{:?}",
        engine.status()
    );
    assert_eq!(engine.counters().closed(CloseReason::Overflow), 2);
    let mut again = engine.connect().await?;
    let _: i32 = again.query_one("SELECT 1", &[]).await?.get(0);
    assert_eq!(engine.counters().created, 3, "the kept connection serves");
    Ok(())
}

/// Defines one `#[test]` per async pool-operation case, each with a
/// fresh database, its own tokio runtime and an outer timeout, as
/// [`nonblocking_conformance!`](crate::nonblocking_conformance).
#[macro_export]
macro_rules! nonblocking_ops_conformance {
    ($factory:expr) => {
        $crate::nonblocking_ops_conformance!(@cases $factory;
            ops_leak_reported_once_then_on_return,
            ops_warm_up_serves_checkouts_without_connecting,
            ops_min_idle_refills_in_background,
            ops_warm_up_gives_up_in_time,
            ops_close_drains_then_reports,
            ops_close_forces_past_deadline,
            ops_resize_at_runtime,
        );
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::run_with_timeout($crate::conformance::case_timeout(&[30]), || {
                    let db = $crate::TestDb::new().expect("a test database");
                    let config = $crate::conformance::case_config(db.url()).expect("a valid config");
                    let runtime = $crate::conformance::tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .enable_all()
                        .build()
                        .expect("a tokio runtime");
                    runtime.block_on(async {
                        let factory = $factory;
                        $crate::conformance::nonblocking_ops::$case(&factory, &config)
                            .await
                            .expect(stringify!($case));
                        $crate::conformance::uno_db_core::nonblocking::EngineFactory::dispose_all(&factory);
                    });
                    // Let the connection tasks close before the database is dropped.
                    runtime.shutdown_timeout(::std::time::Duration::from_secs(5));
                });
            }
        )*
    };
}
