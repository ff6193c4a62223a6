//! Pool operations for the blocking family (issue 13): leak detection,
//! `min_idle` with `warm_up`, draining with `close(deadline)` and resizing
//! at runtime. The same cases as [`nonblocking_ops`](super::nonblocking_ops),
//! on the calling thread. Named `ops_*`.
// Cases are tests: a failed expectation panics, and every case returns the
// first error an operation gave.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_errors_doc
)]

use std::thread;
use std::time::{Duration, Instant};

use super::ops_shared::{
    LEAK_HOLD, LEAK_RETURNED, LEAK_THRESHOLD, LEAK_WARNING, OPS_WAIT, SHORT_POOL_TIMEOUT, logged,
    named,
};
use super::shared::{ALIVE_OF, BACKENDS_OF_APPLICATION, POLL, TIMEOUT_SLACK};
use super::unique_name::unique_application_name;
use crate::LogCapture;
use uno_db_core::backend::DYN_ENGINE_TRACKS_CALLER;
use uno_db_core::blocking::{Engine, EngineFactory};
use uno_db_core::{CloseReason, CloseReport, ConnectionConfig, ErrorKind, Result};

/// Waits (bounded by [`OPS_WAIT`]) until `done` holds; whether it did.
fn eventually(mut done: impl FnMut() -> Result<bool>) -> Result<bool> {
    let until = Instant::now() + OPS_WAIT;
    loop {
        if done()? {
            return Ok(true);
        }
        if Instant::now() >= until {
            return Ok(false);
        }
        thread::sleep(POLL);
    }
}

/// How many server backends carry `name` as their `application_name`,
/// asked through `admin` (an engine of another name).
fn backends(admin: &dyn Engine, name: &str) -> Result<usize> {
    let pids: Vec<i32> = admin
        .connect()?
        .query_one(BACKENDS_OF_APPLICATION, &[&name])?
        .get(0);
    Ok(pids.len())
}

/// Pins: a connection held past `leak_detection_threshold` gives exactly
/// one `WARN` naming the line that checked it out (through `dyn Engine`)
/// and how long it was held, and one `INFO` when it is returned; a
/// connection returned in time gives neither.
pub fn ops_leak_reported_once_then_on_return(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    LogCapture::global(); // before the first event
    let config = config
        .to_builder()
        .leak_detection_threshold(LEAK_THRESHOLD)
        .build()?;
    let engine = factory.engine(&config)?;
    drop(engine.connect()?); // returned in time: no report
    let line = line!() + 1;
    let conn = engine.connect()?;
    thread::sleep(LEAK_HOLD);
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
    thread::sleep(LEAK_THRESHOLD * 2);
    assert_eq!(logged(&config, LEAK_WARNING).len(), 1, "still one warning");
    Ok(())
}

/// Pins: `warm_up` opens `min_idle` connections; with `min_idle =
/// pool_size` the first `pool_size` checkouts open none (`created` does
/// not rise); `min_idle` above `pool_size` is refused by validation.
pub fn ops_warm_up_serves_checkouts_without_connecting(
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
    engine.warm_up()?;
    assert_eq!(engine.status().idle, 2, "{:?}", engine.status());
    let created = engine.counters().created;
    assert_eq!(created, 2);
    let first = engine.connect()?;
    let second = engine.connect()?;
    assert_eq!(
        engine.counters().created,
        created,
        "served from the warm pool"
    );
    drop((first, second));
    engine.warm_up()?; // already met: opens nothing
    assert_eq!(engine.counters().created, created);
    Ok(())
}

/// Pins: after a connection is lost the pool opens another in the
/// background to keep `min_idle` idle, without any checkout.
pub fn ops_min_idle_refills_in_background(
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
    engine.warm_up()?;
    {
        let mut conn = engine.connect()?;
        // The server ends this backend: the connection is lost.
        let _ = conn.execute("SELECT pg_terminate_backend(pg_backend_pid())", &[]);
    }
    assert!(
        eventually(|| Ok(engine.counters().closed(CloseReason::Broken) >= 1))?,
        "the lost connection was not closed: {:?}",
        engine.counters()
    );
    assert!(
        eventually(|| Ok(engine.status().idle == 2 && engine.counters().created == 3))?,
        "not refilled: {:?} {:?}",
        engine.status(),
        engine.counters()
    );
    Ok(())
}

/// Pins: `warm_up` against a server that does not answer gives up within
/// `pool_timeout`, with a transient error.
pub fn ops_warm_up_gives_up_in_time(
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
    let error = engine.warm_up().unwrap_err();
    let took = started.elapsed();
    assert!(error.is_transient(), "{error:?}");
    assert!(took < SHORT_POOL_TIMEOUT + TIMEOUT_SLACK * 4, "{took:?}");
    Ok(())
}

/// Pins: `close(deadline)` refuses new checkouts at once, waits for the
/// checked-out connections returned before the deadline (returning early
/// once all are back), and when it returns the engine has no backend left
/// on the server.
pub fn ops_close_drains_then_reports(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let name = unique_application_name("drain");
    let engine = factory.engine(&named(config, &name)?)?;
    let admin = factory.engine(&named(config, &unique_application_name("admin"))?)?;
    let idle = engine.connect()?;
    let (a, b) = (engine.connect()?, engine.connect()?);
    drop(idle);
    assert_eq!(backends(&*admin, &name)?, 3);
    let returner = thread::spawn(move || {
        thread::sleep(Duration::from_millis(200));
        drop(a);
        thread::sleep(Duration::from_millis(100));
        drop(b);
    });
    let started = Instant::now();
    let report = engine.close(OPS_WAIT);
    let took = started.elapsed();
    returner.join().expect("the returning thread");
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
        engine.connect().err().map(|e| e.kind()),
        Some(ErrorKind::PoolClosed)
    );
    assert!(
        eventually(|| Ok(backends(&*admin, &name)? == 0))?,
        "backends left: {}",
        backends(&*admin, &name)?
    );
    Ok(())
}

/// Pins: connections still checked out at the deadline (one idle in its
/// user's hands, one running a long statement) are reported as forced and
/// ended on the server: `close` returns soon after the deadline with
/// their server processes gone, the running statement fails at once
/// instead of running on, and the idle one fails on its next use.
pub fn ops_close_forces_past_deadline(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let name = unique_application_name("force");
    let engine = factory.engine(&named(config, &name)?)?;
    let admin = factory.engine(&named(config, &unique_application_name("admin"))?)?;
    let mut held = engine.connect()?;
    let mut busy = engine.connect()?;
    let pids: Vec<i32> = [&mut held, &mut busy]
        .into_iter()
        .map(|conn| Ok(conn.query_one("SELECT pg_backend_pid()", &[])?.get(0)))
        .collect::<Result<_>>()?;
    let sleeper = thread::spawn(move || {
        let started = Instant::now();
        let result = busy.execute("SELECT pg_sleep(60)", &[]);
        (result.err(), started.elapsed())
    });
    thread::sleep(Duration::from_millis(100));
    let deadline = Duration::from_millis(300);
    let started = Instant::now();
    let report = engine.close(deadline);
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
    let alive: i64 = admin.connect()?.query_one(ALIVE_OF, &[&pids])?.get(0);
    assert_eq!(alive, 0, "close returned with server processes left");
    let (error, slept) = sleeper.join().expect("the sleeping thread");
    assert!(error.is_some(), "the long statement was not ended");
    assert!(slept < OPS_WAIT, "{slept:?}");
    assert!(held.execute("SELECT 1", &[]).is_err());
    drop(held);
    assert!(eventually(|| Ok(backends(&*admin, &name)? == 0))?);
    Ok(())
}

/// Pins: `set_pool_size`/`set_max_overflow` change the pool's maximum at
/// runtime (`status().max_size` follows) without closing connections in
/// use; surplus ones retire when returned; bad sizes are refused with a
/// `Config` error naming the setting, changing nothing.
pub fn ops_resize_at_runtime(factory: &dyn EngineFactory, config: &ConnectionConfig) -> Result<()> {
    let config = config
        .to_builder()
        .pool_size(1)
        .max_overflow(0)
        .pool_timeout(SHORT_POOL_TIMEOUT)
        .build()?;
    let engine = factory.engine(&config)?;
    assert_eq!(engine.status().max_size, 1);
    let mut first = engine.connect()?;
    let pid: i32 = first.query_one("SELECT pg_backend_pid()", &[])?.get(0);
    let Err(error) = engine.connect() else {
        panic!("the pool is full: the checkout must time out")
    };
    assert_eq!(error.kind(), ErrorKind::PoolTimeout);

    engine.set_pool_size(3)?;
    assert_eq!(engine.status().max_size, 3);
    let (second, third) = (engine.connect()?, engine.connect()?);
    let same: i32 = first.query_one("SELECT pg_backend_pid()", &[])?.get(0);
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
    assert!(
        eventually(|| Ok(engine.status().size == 1))?,
        "{:?}",
        engine.status()
    );
    assert_eq!(engine.counters().closed(CloseReason::Overflow), 2);
    let mut again = engine.connect()?;
    let _: i32 = again.query_one("SELECT 1", &[])?.get(0);
    assert_eq!(engine.counters().created, 3, "the kept connection serves");
    Ok(())
}

/// Defines one `#[test]` per blocking pool-operation case, each with a
/// fresh database and an outer timeout, as
/// [`blocking_conformance!`](crate::blocking_conformance).
#[macro_export]
macro_rules! blocking_ops_conformance {
    ($factory:expr) => {
        $crate::blocking_ops_conformance!(@cases $factory;
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
                    let factory = $factory;
                    $crate::conformance::blocking_ops::$case(&factory, &config)
                        .expect(stringify!($case));
                    $crate::conformance::uno_db_core::blocking::EngineFactory::dispose_all(&factory);
                });
            }
        )*
    };
}
