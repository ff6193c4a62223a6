//! Sessions: commit, rollback on drop, savepoints, isolation, retry.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Barrier;
use uno_db_async::{AsyncEngine, AsyncEngineFactory, AsyncSessionFactory};
use uno_db_core::nonblocking::{Client, Engine, Session};
use uno_db_core::{
    CloseReason, ErrorKind, IsolationLevel, RetryPolicy, SqlState, TransactionOptions,
};

use crate::support::{backend_pid, builder, engine, test_db, within};

async fn count(engine: &AsyncEngine) -> i64 {
    let mut conn = engine.checkout().await.unwrap();
    conn.query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0)
}

async fn with_table(engine: &AsyncEngine) {
    engine
        .checkout()
        .await
        .unwrap()
        .batch_execute("CREATE TABLE t (n int)")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_session_dropped_without_commit_rolls_back() {
    within(async {
        let db = test_db().await;
        let engine = engine(&db, |b| b.pool_size(1).max_overflow(0));
        with_table(&engine).await;
        let mut session = engine.session(&TransactionOptions::new()).await.unwrap();
        session
            .execute("INSERT INTO t VALUES ($1)", &[&1_i32])
            .await
            .unwrap();
        drop(session);
        assert_eq!(count(&engine).await, 0);

        // A failed transaction too, and the connection is reused, not discarded.
        let mut session = engine.session(&TransactionOptions::new()).await.unwrap();
        session
            .execute("INSERT INTO t VALUES ($1)", &[&1_i32])
            .await
            .unwrap();
        assert!(
            session
                .execute("INSERT INTO nope VALUES (1)", &[])
                .await
                .is_err()
        );
        drop(session);
        // A plain connection left inside a transaction is cleaned as well.
        let mut conn = engine.checkout().await.unwrap();
        let pid = backend_pid(&mut conn).await;
        conn.batch_execute("BEGIN; INSERT INTO t VALUES (2)")
            .await
            .unwrap();
        drop(conn);
        let mut conn = engine.checkout().await.unwrap();
        assert_eq!(backend_pid(&mut conn).await, pid);
        let row = conn
            .query_one("SELECT count(*), now() = statement_timestamp() FROM t", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, i64>(0), 0);
        assert!(!row.get::<_, bool>(1), "not inside a leftover transaction");
        drop(conn);
        let counters = engine.counters();
        assert_eq!(
            (counters.created, counters.closed(CloseReason::Dirty)),
            (1, 0)
        );
    })
    .await;
}

#[tokio::test]
async fn commit_makes_work_visible() {
    within(async {
        let db = test_db().await;
        let engine = engine(&db, |b| b);
        with_table(&engine).await;
        let mut session = engine
            .transaction(&TransactionOptions::new())
            .await
            .unwrap();
        session
            .execute("INSERT INTO t VALUES ($1), ($2)", &[&1_i32, &2_i32])
            .await
            .unwrap();
        assert_eq!(count(&engine).await, 0, "not visible before commit");
        session.commit().await.unwrap();
        assert_eq!(count(&engine).await, 2);

        let mut session = engine.session(&TransactionOptions::new()).await.unwrap();
        session.execute("DELETE FROM t", &[]).await.unwrap();
        session.rollback().await.unwrap();
        assert_eq!(count(&engine).await, 2);
    })
    .await;
}

#[tokio::test]
async fn savepoints_nest_units_of_work() {
    within(async {
        let db = test_db().await;
        let engine = engine(&db, |b| b);
        with_table(&engine).await;
        let mut session = engine.session(&TransactionOptions::new()).await.unwrap();
        session
            .execute("INSERT INTO t VALUES (1)", &[])
            .await
            .unwrap();
        session.savepoint("a").await.unwrap();
        session
            .execute("INSERT INTO t VALUES (2)", &[])
            .await
            .unwrap();
        session.rollback_to_savepoint("a").await.unwrap();
        session.savepoint("b \"quoted\"").await.unwrap();
        assert!(
            session
                .execute("INSERT INTO t VALUES ('x')", &[])
                .await
                .is_err()
        );
        session.rollback_to_savepoint("b \"quoted\"").await.unwrap();
        session
            .execute("INSERT INTO t VALUES (3)", &[])
            .await
            .unwrap();
        session.release_savepoint("a").await.unwrap();
        assert_eq!(
            session.savepoint("").await.unwrap_err().kind(),
            ErrorKind::Config
        );
        session.commit().await.unwrap();
        let mut conn = engine.checkout().await.unwrap();
        let rows = conn.query("SELECT n FROM t ORDER BY n", &[]).await.unwrap();
        assert_eq!(
            rows.iter().map(|r| r.get::<_, i32>(0)).collect::<Vec<_>>(),
            [1, 3]
        );
    })
    .await;
}

#[tokio::test]
async fn committing_an_aborted_transaction_reports_it() {
    within(async {
        let db = test_db().await;
        let engine = engine(&db, |b| b);
        with_table(&engine).await;
        let mut session = engine.session(&TransactionOptions::new()).await.unwrap();
        session
            .execute("INSERT INTO t VALUES (1)", &[])
            .await
            .unwrap();
        assert!(session.execute("SELEC", &[]).await.is_err());
        let error = session.commit().await.unwrap_err();
        assert_eq!(error.sqlstate(), Some(&SqlState::IN_FAILED_SQL_TRANSACTION));
        assert_eq!(count(&engine).await, 0);
    })
    .await;
}

#[tokio::test]
async fn transaction_options_reach_the_server() {
    within(async {
        let db = test_db().await;
        let factory = AsyncEngineFactory::new();
        let sessions =
            AsyncSessionFactory::from_factory(&factory, &builder(&db).build().unwrap()).unwrap();
        let show = async |session: &mut Box<dyn Session>, setting: &str| -> String {
            session
                .query_one(&format!("SHOW {setting}"), &[])
                .await
                .unwrap()
                .get(0)
        };
        let mut session = sessions.session().await.unwrap();
        assert_eq!(
            show(&mut session, "transaction_isolation").await,
            "read committed"
        );
        assert_eq!(show(&mut session, "transaction_read_only").await, "off");
        session.commit().await.unwrap();
        let options = TransactionOptions::new()
            .isolation(IsolationLevel::Serializable)
            .read_only(true)
            .deferrable(true);
        let mut session = sessions.session_with(&options).await.unwrap();
        assert_eq!(
            show(&mut session, "transaction_isolation").await,
            "serializable"
        );
        assert_eq!(show(&mut session, "transaction_read_only").await, "on");
        assert_eq!(show(&mut session, "transaction_deferrable").await, "on");
        drop(session);
        let sessions = sessions
            .with_options(TransactionOptions::new().isolation(IsolationLevel::RepeatableRead));
        let mut session = sessions.session().await.unwrap();
        assert_eq!(
            show(&mut session, "transaction_isolation").await,
            "repeatable read"
        );
    })
    .await;
}

/// Write skew between two serializable transactions: one fails with 40001
/// and is retried as a whole.
#[tokio::test]
async fn serialization_failures_are_retried() {
    within(async {
        let db = test_db().await;
        let engine = Arc::new(engine(&db, |b| b));
        engine
            .checkout()
            .await
            .unwrap()
            .batch_execute("CREATE TABLE acct (id int PRIMARY KEY, n int); INSERT INTO acct VALUES (1, 0), (2, 0)")
            .await
            .unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let attempts = Arc::new(AtomicUsize::new(0));
        let options = TransactionOptions::new().isolation(IsolationLevel::Serializable);
        let policy = RetryPolicy::default().max_attempts(5).initial_delay(Duration::from_millis(10));
        let run = |id: i32| {
            let (engine, barrier, attempts) = (Arc::clone(&engine), Arc::clone(&barrier), Arc::clone(&attempts));
            tokio::spawn(async move {
                let mut first = true;
                uno_db_core::nonblocking::transaction_with_retry(&*engine, &options, &policy, move |session| {
                    let barrier = Arc::clone(&barrier);
                    attempts.fetch_add(1, Ordering::SeqCst);
                    let wait = std::mem::replace(&mut first, false);
                    Box::pin(async move {
                        let sum: i64 = session.query_one("SELECT sum(n) FROM acct", &[]).await?.get(0);
                        if wait {
                            barrier.wait().await;
                        }
                        session.execute("UPDATE acct SET n = $1 WHERE id = $2", &[&(sum as i32 + 1), &id]).await
                    })
                })
                .await
            })
        };
        let (a, b) = (run(1), run(2));
        assert_eq!(a.await.unwrap().unwrap(), 1);
        assert_eq!(b.await.unwrap().unwrap(), 1);
        assert!(attempts.load(Ordering::SeqCst) >= 3, "one transaction was retried");
        let mut conn = engine.checkout().await.unwrap();
        let total: i64 = conn.query_one("SELECT sum(n) FROM acct", &[]).await.unwrap().get(0);
        assert_eq!(total, 3, "serial order: 1 then 1 + 1");

        // Other errors are not retried.
        let tries = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&tries);
        let error = uno_db_core::nonblocking::transaction_with_retry(&*engine, &TransactionOptions::new(), &policy, move |session| {
            seen.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move { session.execute("SELEC", &[]).await })
        })
        .await
        .unwrap_err();
        assert_eq!(error.sqlstate(), Some(&SqlState::SYNTAX_ERROR));
        assert_eq!(tries.load(Ordering::SeqCst), 1);
    })
    .await;
}

/// A transaction's own, shorter `query_timeout` takes effect at once,
/// also while the engine's watchdog sleeps for a longer one.
#[tokio::test]
async fn a_shorter_transaction_limit_is_watched_at_once() {
    within(async {
        let db = test_db().await;
        let engine = engine(&db, |b| {
            b.query_timeout(Some(Duration::from_secs(30)))
                .pool_size(1)
                .max_overflow(0)
        });
        // Starts the watchdog, asleep for the engine's limit (a look a
        // second).
        let mut conn = engine.checkout().await.unwrap();
        conn.batch_execute("SELECT 1").await.unwrap();
        drop(conn);
        let limit = Duration::from_millis(300);
        let mut session = engine
            .transaction(&TransactionOptions::new().query_timeout(limit))
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let error = session
            .query("SELECT pg_sleep(5)", &[])
            .await
            .expect_err("a 5 s statement in a transaction limited to 300 ms");
        let elapsed = started.elapsed();
        assert_eq!(error.kind(), ErrorKind::QueryTimeout, "{error:?}");
        assert!(
            elapsed < limit + Duration::from_millis(400),
            "failed after {elapsed:?}, its limit {limit:?}"
        );
    })
    .await;
}
