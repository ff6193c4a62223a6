//! Cancelling a running statement from another thread (`CancelHandle`).

use std::time::{Duration, Instant};

use uno_db_core::blocking::{Client, Engine};
use uno_db_core::{ErrorKind, SqlState, TransactionOptions};
use uno_db_sync::{CancelHandle, SyncEngine};

use crate::support::{Fixture, LIMIT, backend_pid, eventually, within};

/// How long a cancelled statement may take to fail (it would run 30 s).
const CANCEL_BOUND: Duration = Duration::from_secs(5);

/// A statement that runs far longer than the test.
const LONG: &str = "SELECT pg_sleep(30)";

/// Cancels `pid`'s statement through `handle` once the server shows it
/// running (watched from a connection of its own), on a thread.
fn cancel_when_running(
    fx: &Fixture,
    pid: i32,
    handle: CancelHandle,
) -> std::thread::JoinHandle<uno_db_core::Result<()>> {
    let mut admin = fx.admin();
    std::thread::spawn(move || {
        eventually("the statement never started", CANCEL_BOUND, || {
            admin
                .query_one(
                    "SELECT count(*) > 0 FROM pg_stat_activity \
                     WHERE pid = $1 AND state = 'active' AND query LIKE '%pg_sleep(30)%'",
                    &[&pid],
                )
                .unwrap()
                .get(0)
        });
        handle.cancel()
    })
}

fn engine(fx: &Fixture) -> SyncEngine {
    // The client-side limit bounds the test should cancelling not work.
    let config = fx
        .builder()
        .pool_size(1)
        .query_timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    SyncEngine::new(&config).unwrap()
}

#[test]
fn a_cancel_handle_ends_a_running_statement_and_keeps_the_connection() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let engine = engine(&fx);
        let mut conn = engine.checkout().unwrap();
        let pid = backend_pid(&mut conn);
        let canceller = cancel_when_running(&fx, pid, conn.cancel_handle().unwrap());
        let started = Instant::now();
        let error = conn.execute(LONG, &[]).unwrap_err();
        let took = started.elapsed();
        canceller.join().unwrap().unwrap();
        assert_eq!(error.kind(), ErrorKind::QueryTimeout, "{error:?}");
        assert_eq!(error.sqlstate(), Some(&SqlState::QUERY_CANCELED));
        assert!(took < CANCEL_BOUND, "{took:?}");
        // Only the statement ended: the same connection goes on.
        let same = backend_pid(&mut conn);
        assert_eq!(same, pid);
        drop(conn);
        let mut conn = engine.checkout().unwrap();
        let again = backend_pid(&mut conn);
        assert_eq!(again, pid, "kept in the pool");
        assert_eq!(engine.counters().closed_total(), 0);
    });
}

#[test]
fn a_cancelled_statement_aborts_its_session() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let engine = engine(&fx);
        let mut session = engine.transaction(&TransactionOptions::new()).unwrap();
        let pid = backend_pid(&mut session);
        let canceller = cancel_when_running(&fx, pid, session.cancel_handle().unwrap());
        let error = session.execute(LONG, &[]).unwrap_err();
        canceller.join().unwrap().unwrap();
        assert_eq!(error.sqlstate(), Some(&SqlState::QUERY_CANCELED));
        let error = session.commit().unwrap_err();
        assert_eq!(error.sqlstate(), Some(&SqlState::IN_FAILED_SQL_TRANSACTION));
        let mut conn = engine.checkout().unwrap();
        let same = backend_pid(&mut conn);
        assert_eq!(same, pid, "rolled back and kept");
    });
}

#[test]
fn a_cancel_with_nothing_running_changes_nothing() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let engine = engine(&fx);
        let mut conn = engine.checkout().unwrap();
        let handle = conn.cancel_handle().unwrap();
        let started = Instant::now();
        handle.cancel().unwrap();
        assert!(started.elapsed() < CANCEL_BOUND);
        // Give a stray request time to arrive: nothing is cancelled.
        std::thread::sleep(Duration::from_millis(200));
        let row = conn.query_one("SELECT 1", &[]).unwrap();
        assert_eq!(row.get::<_, i32>(0), 1);
    });
}
