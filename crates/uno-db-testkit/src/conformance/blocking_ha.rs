//! High-availability conformance cases for the blocking family, against a
//! [`TestReplicaSet`](crate::TestReplicaSet) (a primary and two streaming standbys) of their own:
//! host selection by `target_session_attrs`, read routing, a promoted
//! standby leaving standby pools, and failover under load. The same cases
//! as [`nonblocking_ha`](super::nonblocking_ha), blocking.
// Cases are tests: a failed expectation panics.
#![allow(
    clippy::err_expect,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_errors_doc,
    clippy::missing_panics_doc
)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::free_port::closed_port;
use super::ha_shared::{
    FAILOVER_WORKERS, FailoverLog, HA_RECHECK, Modes, ha_config, member_url, replica_set,
};
use uno_db_core::blocking::{Connection, Engine, EngineFactory};
use uno_db_core::{CloseReason, Result, SqlState, error_chain};

/// Which member served `conn`: its port, and whether it is in recovery.
fn served_by(conn: &mut dyn Connection) -> Result<(u16, bool)> {
    let row = conn.query_one("SELECT inet_server_port(), pg_is_in_recovery()", &[])?;
    let port: i32 = row.get(0);
    Ok((u16::try_from(port).unwrap(), row.get(1)))
}

/// Each `target_session_attrs` reaches the server libpq would, with the
/// first host down; when no host qualifies, the error names every host and
/// why it was passed over.
pub fn ha_target_session_attrs_pick_the_right_server(factory: &dyn EngineFactory) -> Result<()> {
    let set = replica_set();
    let [primary, standby1, standby2] = [0, 1, 2].map(|i| set.member(i).port());
    let dead = closed_port();
    for (order, modes) in [
        ([dead, standby1, primary, standby2], Modes::STANDBY_FIRST),
        ([dead, primary, standby1, standby2], Modes::PRIMARY_FIRST),
    ] {
        for (mode, expected) in modes {
            let expected = [primary, standby1, standby2][expected];
            let config = ha_config(&member_url(&set, &order), &[("target_session_attrs", mode)]);
            let engine = factory.engine(&config)?;
            let (port, in_recovery) = served_by(&mut *engine.connect()?)?;
            assert_eq!(
                port, expected,
                "target_session_attrs={mode} over {order:?} reached the wrong server"
            );
            assert_eq!(in_recovery, port != primary, "{mode}");
            engine.dispose();
        }
    }
    // Only standbys (and a dead host) for a primary: nobody qualifies.
    let config = ha_config(
        &member_url(&set, &[dead, standby1, standby2]),
        &[("target_session_attrs", "primary"), ("pool_timeout", "2s")],
    );
    let engine = factory.engine(&config)?;
    let error = engine.connect().err().expect("no server qualifies");
    let text = error_chain(&error);
    for port in [dead, standby1, standby2] {
        assert!(
            text.contains(&format!("127.0.0.1:{port}")),
            "{port} missing: {text}"
        );
    }
    assert!(text.contains("is a standby"), "{text}");
    assert!(text.contains("refused"), "{text}");
    engine.dispose();
    Ok(())
}

/// The reader of a primary configuration reads from standbys and cannot
/// write; the engine writes on the primary. When every standby is gone,
/// reads fall back to the primary, unless `read_target_session_attrs=standby`.
pub fn ha_reads_go_to_standbys_and_fall_back(factory: &dyn EngineFactory) -> Result<()> {
    let set = replica_set();
    let config = ha_config(&set.url("postgres"), &[("target_session_attrs", "primary")]);
    let writer = factory.engine(&config)?;
    let reader = factory.reader(&config)?;
    let mut conn = writer.connect()?;
    assert!(!served_by(&mut *conn)?.1, "writes go to the primary");
    conn.batch_execute("CREATE TABLE IF NOT EXISTS routed (v int)")?;
    conn.execute("INSERT INTO routed VALUES (1)", &[])?;
    drop(conn);
    set.wait_until_replayed(Duration::from_secs(10))
        .expect("the standbys replay the table");
    let mut conn = reader.connect()?;
    assert!(served_by(&mut *conn)?.1, "reads go to a standby");
    let refused = conn
        .execute("INSERT INTO routed VALUES (2)", &[])
        .unwrap_err();
    assert_eq!(
        refused.sqlstate(),
        Some(&SqlState::READ_ONLY_SQL_TRANSACTION)
    );
    drop(conn);
    reader.dispose();

    set.stop(1).expect("stop standby 1");
    set.stop(2).expect("stop standby 2");
    let reader = factory.reader(&config)?;
    let (_, in_recovery) = served_by(&mut *reader.connect()?)?;
    assert!(
        !in_recovery,
        "without standbys, reads fall back to the primary"
    );
    let strict = ha_config(
        &set.url("postgres"),
        &[
            ("target_session_attrs", "primary"),
            ("read_target_session_attrs", "standby"),
            ("pool_timeout", "2s"),
        ],
    );
    let error = factory
        .reader(&strict)?
        .connect()
        .err()
        .expect("a standby-only reader without standbys");
    let text = error_chain(&error);
    assert!(text.contains("is a primary"), "{text}");
    assert!(text.contains(&set.member(1).port().to_string()), "{text}");
    writer.dispose();
    reader.dispose();
    Ok(())
}

/// A standby promoted while a standby pool holds connections to it: once
/// the role re-check interval has passed, no checkout hands out a
/// connection to it, and one connection's discovery retires the others
/// (they are re-checked, not each used once more).
pub fn ha_promoted_standby_leaves_standby_pools(factory: &dyn EngineFactory) -> Result<()> {
    let set = replica_set();
    let [standby1, standby2] = [1, 2].map(|i| set.member(i).port());
    let config = ha_config(
        &member_url(&set, &[standby1, standby2]),
        &[("target_session_attrs", "standby")],
    );
    let engine = factory.engine(&config)?;
    // Fill the pool: every connection goes to the first standby.
    let mut held = Vec::new();
    for _ in 0..config.pool_size() {
        let mut conn = engine.connect()?;
        assert_eq!(served_by(&mut *conn)?.0, standby1);
        held.push(conn);
    }
    drop(held);
    set.promote(1).expect("promote standby 1");
    std::thread::sleep(HA_RECHECK + HA_RECHECK / 2);
    for round in 0..(3 * config.pool_size()) {
        let mut conn = engine.connect()?;
        let (port, in_recovery) = served_by(&mut *conn)?;
        assert!(
            in_recovery && port == standby2,
            "checkout {round} after the promotion reached {port} (in recovery: {in_recovery})"
        );
    }
    let counters = engine.counters();
    assert!(counters.closed(CloseReason::WrongRole) >= 1, "{counters:?}");
    assert_eq!(counters.acquire_timeouts, 0, "{counters:?}");
    engine.dispose();
    Ok(())
}

/// Failover under load: 16 threads write and read while the
/// primary is killed and a standby promoted, and the old primary then
/// comes back as a standby (first in the host list). Writes resume within
/// 2 s of the promotion plus the re-check interval, and no write reaches a
/// standby after it. The figures are printed for the docs.
pub fn ha_failover_under_load(factory: &dyn EngineFactory) -> Result<()> {
    let set = replica_set();
    let config = ha_config(
        &set.url("postgres"),
        &[
            ("target_session_attrs", "primary"),
            ("pool_size", "8"),
            ("max_overflow", "8"),
            ("pool_timeout", "2s"),
        ],
    );
    let engine = factory.engine(&config)?;
    engine
        .connect()?
        .batch_execute("CREATE TABLE failover (worker int, at timestamptz DEFAULT now())")?;
    let log = Arc::new(Mutex::new(FailoverLog::default()));
    let started = Instant::now();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for worker in 0..FAILOVER_WORKERS {
        let (engine, log, stop) = (Arc::clone(&engine), Arc::clone(&log), Arc::clone(&stop));
        workers.push(std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let outcome = write_and_read(&*engine, worker);
                log.lock().unwrap().record(started.elapsed(), outcome.err());
                std::thread::sleep(Duration::from_millis(5));
            }
        }));
    }
    std::thread::sleep(Duration::from_secs(1));
    set.kill(0).expect("kill the primary");
    let killed = started.elapsed();
    // A failover manager notices after a moment.
    std::thread::sleep(Duration::from_millis(500));
    set.promote(1).expect("promote standby 1");
    let promoted = started.elapsed();
    // The old primary comes back as a standby, first in the host list.
    std::thread::sleep(Duration::from_secs(1));
    set.demote(0).expect("demote the old primary");
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for worker in workers {
        worker.join().expect("a worker");
    }
    let figures = log.lock().unwrap().figures(killed, promoted, HA_RECHECK);
    figures.check("blocking");
    engine.dispose();
    Ok(())
}

fn write_and_read(engine: &dyn Engine, worker: i32) -> Result<()> {
    let mut conn = engine.connect()?;
    conn.execute("INSERT INTO failover (worker) VALUES ($1)", &[&worker])?;
    conn.query_one(
        "SELECT count(*) FROM failover WHERE worker = $1",
        &[&worker],
    )?;
    Ok(())
}

/// Every high-availability case as a `#[test]` with an outer timeout, each
/// starting its own replica set.
#[macro_export]
macro_rules! blocking_ha_conformance {
    ($factory:expr) => {
        $crate::blocking_ha_conformance!(@cases $factory;
            ha_target_session_attrs_pick_the_right_server,
            ha_reads_go_to_standbys_and_fall_back,
            ha_promoted_standby_leaves_standby_pools,
            ha_failover_under_load,
        );
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::run_with_timeout($crate::conformance::HA_CASE_TIMEOUT, || {
                    let factory = $factory;
                    $crate::conformance::blocking_ha::$case(&factory).expect(stringify!($case));
                });
            }
        )*
    };
}
