//! Killed backends never reach callers twice.

use uno_db_core::blocking::{Client, Engine};
use uno_db_core::{CloseReason, ErrorKind};
use uno_db_sync::SyncEngine;

use crate::support::{Fixture, LIMIT, backend_pid, eventually, within};

fn pids(engine: &SyncEngine, n: usize) -> Vec<i32> {
    let mut conns: Vec<_> = (0..n).map(|_| engine.checkout().unwrap()).collect();
    conns.iter_mut().map(backend_pid).collect()
}

fn terminate(fx: &Fixture, pids: &[i32]) {
    let mut admin = fx.admin();
    for pid in pids {
        let killed: bool = admin
            .query_one("SELECT pg_terminate_backend($1)", &[pid])
            .unwrap()
            .get(0);
        assert!(killed);
    }
    eventually(
        "the terminated backends are still there",
        std::time::Duration::from_secs(5),
        || {
            let left: i64 = admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)",
                    &[&pids],
                )
                .unwrap()
                .get(0);
            left == 0
        },
    );
}

/// Sleeps until connections returned at `returned` have been idle for the
/// kernel's alive-bypass window: idleness is what these tests are about.
fn wait_out_the_alive_window(returned: std::time::Instant) {
    let until = returned + uno_db_core::backend::ALIVE_BYPASS_WINDOW;
    std::thread::sleep(until.saturating_duration_since(std::time::Instant::now()));
}

#[test]
fn with_pre_ping_terminated_backends_are_replaced_on_checkout() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let engine =
            SyncEngine::new(&fx.builder().pool_size(2).pre_ping(true).build().unwrap()).unwrap();
        let before = pids(&engine, 2);
        terminate(&fx, &before);
        let after = pids(&engine, 2);
        for pid in &after {
            assert!(!before.contains(pid), "a dead backend was handed out");
        }
        assert_eq!(engine.counters().closed(CloseReason::Broken), 2);
        assert_eq!(engine.status().size, 2);
    });
}

#[test]
fn without_pre_ping_a_connection_that_died_idle_is_never_handed_out() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let engine =
            SyncEngine::new(&fx.builder().pool_size(1).pre_ping(false).build().unwrap()).unwrap();
        let before = pids(&engine, 1);
        let returned = std::time::Instant::now();
        terminate(&fx, &before);
        // Idleness is what is under test: past the alive-bypass window the
        // checkout reads the server's FATAL without a round trip and opens
        // a fresh connection in its place.
        wait_out_the_alive_window(returned);
        let mut conn = engine.checkout().unwrap();
        conn.execute("SELECT 1", &[]).unwrap();
        drop(conn);
        let after = pids(&engine, 1);
        assert_ne!(before, after);
        assert_eq!(engine.counters().closed(CloseReason::Broken), 1);
    });
}

#[test]
fn a_connection_lost_mid_use_is_never_pooled_again() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let engine =
            SyncEngine::new(&fx.builder().pool_size(1).pre_ping(false).build().unwrap()).unwrap();
        let mut conn = engine.checkout().unwrap();
        let pid = backend_pid(&mut conn);
        terminate(&fx, &[pid]);
        let error = conn.execute("SELECT 1", &[]).unwrap_err();
        assert!(
            matches!(error.kind(), ErrorKind::Closed | ErrorKind::Database),
            "{error:?}"
        );
        assert!(error.is_transient(), "{error:?}");
        drop(conn);
        let after = pids(&engine, 1);
        assert_ne!(vec![pid], after);
        assert_eq!(engine.counters().closed(CloseReason::Broken), 1);
    });
}

#[test]
fn with_set_role_a_dead_idle_connection_is_replaced_during_checkout() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let role = format!("uno_sync_resilience_{}", std::process::id());
        let mut admin = fx.admin();
        admin
            .batch_execute(&format!(
                "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} NOLOGIN"
            ))
            .unwrap();
        let config = fx
            .builder()
            .pool_size(1)
            .pre_ping(false)
            .set_role(&role)
            .build()
            .unwrap();
        let engine = SyncEngine::new(&config).unwrap();
        let before = pids(&engine, 1);
        let returned = std::time::Instant::now();
        terminate(&fx, &before);
        wait_out_the_alive_window(returned);
        // The checkout finds the connection dead and takes a new one.
        let after = pids(&engine, 1);
        assert_ne!(before, after);
        assert_eq!(engine.counters().closed(CloseReason::Broken), 1);
        drop(engine);
        admin.batch_execute(&format!("DROP ROLE {role}")).unwrap();
    });
}
