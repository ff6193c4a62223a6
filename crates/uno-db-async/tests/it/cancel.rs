//! Cancelling a running statement from another task (`CancelHandle`).

use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use uno_db_async::{AsyncEngine, CancelHandle};
use uno_db_core::nonblocking::Engine;
use uno_db_core::{ErrorKind, SqlState, TransactionOptions};

use crate::support::{engine, test_db, within};

/// How long a cancelled statement may take to fail (it would run 30 s).
const CANCEL_BOUND: Duration = Duration::from_secs(5);

/// A statement that runs far longer than the test.
const LONG: &str = "SELECT pg_sleep(30)";

/// Cancels `pid`'s statement through `handle` once the server shows it
/// running (watched from another connection of `watcher`), in a task.
fn cancel_when_running(
    watcher: AsyncEngine,
    pid: i32,
    handle: CancelHandle,
) -> JoinHandle<uno_db_core::Result<()>> {
    tokio::spawn(async move {
        let mut admin = watcher.checkout().await?;
        let deadline = Instant::now() + CANCEL_BOUND;
        loop {
            let running: bool = admin
                .query_one(
                    "SELECT count(*) > 0 FROM pg_stat_activity \
                     WHERE pid = $1 AND state = 'active' AND query LIKE '%pg_sleep(30)%'",
                    &[&pid],
                )
                .await?
                .get(0);
            if running {
                break;
            }
            assert!(Instant::now() < deadline, "the statement never started");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        handle.cancel().await
    })
}

#[tokio::test]
async fn a_cancel_handle_ends_a_running_statement_and_keeps_the_connection() {
    within(async {
        let db = test_db().await;
        // The client-side limit bounds the test should cancelling not work.
        let engine = engine(&db, |b| {
            b.pool_size(1)
                .max_overflow(0)
                .query_timeout(Duration::from_secs(10))
        });
        let watcher = self::engine(&db, |b| b.pool_size(1));
        let mut conn = engine.checkout().await.unwrap();
        let pid: i32 = conn
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        let canceller = cancel_when_running(watcher, pid, conn.cancel_handle().unwrap());
        let started = Instant::now();
        let error = conn.execute(LONG, &[]).await.unwrap_err();
        let took = started.elapsed();
        canceller.await.unwrap().unwrap();
        assert_eq!(error.kind(), ErrorKind::QueryTimeout, "{error:?}");
        assert_eq!(error.sqlstate(), Some(&SqlState::QUERY_CANCELED));
        assert!(took < CANCEL_BOUND, "{took:?}");
        // Only the statement ended: the same connection goes on.
        let same: i32 = conn
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(same, pid);
        drop(conn);
        let mut conn = engine.checkout().await.unwrap();
        let again: i32 = conn
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(again, pid, "kept in the pool");
        assert_eq!(engine.counters().closed_total(), 0);
    })
    .await;
}

#[tokio::test]
async fn a_cancelled_statement_aborts_its_session() {
    within(async {
        let db = test_db().await;
        let engine = engine(&db, |b| {
            b.pool_size(1)
                .max_overflow(0)
                .query_timeout(Duration::from_secs(10))
        });
        let watcher = self::engine(&db, |b| b.pool_size(1));
        let mut session = engine
            .transaction(&TransactionOptions::new())
            .await
            .unwrap();
        let pid: i32 = session
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        let canceller = cancel_when_running(watcher, pid, session.cancel_handle().unwrap());
        let error = session.execute(LONG, &[]).await.unwrap_err();
        canceller.await.unwrap().unwrap();
        assert_eq!(error.sqlstate(), Some(&SqlState::QUERY_CANCELED));
        let error = session.commit().await.unwrap_err();
        assert_eq!(error.sqlstate(), Some(&SqlState::IN_FAILED_SQL_TRANSACTION));
        let mut conn = engine.checkout().await.unwrap();
        let same: i32 = conn
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(same, pid, "rolled back and kept");
    })
    .await;
}

#[tokio::test]
async fn a_cancel_with_nothing_running_changes_nothing() {
    within(async {
        let db = test_db().await;
        let engine = engine(&db, |b| b.pool_size(1));
        let mut conn = engine.checkout().await.unwrap();
        let handle = conn.cancel_handle().unwrap();
        let started = Instant::now();
        handle.cancel().await.unwrap();
        assert!(started.elapsed() < CANCEL_BOUND);
        // Give a stray request time to arrive: nothing is cancelled.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let row = conn.query_one("SELECT 1", &[]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), 1);
    })
    .await;
}
