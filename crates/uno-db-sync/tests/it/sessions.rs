//! Sessions, transactions, schema and role.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use uno_db_core::blocking::transaction_with_retry;
use uno_db_core::blocking::{Client, Engine, Session};
use uno_db_core::{ErrorKind, IsolationLevel, RetryPolicy, SqlState, TransactionOptions};
use uno_db_sync::SyncEngine;

use crate::support::{Fixture, LIMIT, backend_pid, within};

fn count(engine: &SyncEngine) -> i64 {
    engine
        .checkout()
        .unwrap()
        .query_one("SELECT count(*) FROM t", &[])
        .unwrap()
        .get(0)
}

fn engine_with_table(fx: &Fixture) -> SyncEngine {
    fx.admin()
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL DEFAULT 0)")
        .unwrap();
    SyncEngine::new(&fx.builder().pool_size(1).build().unwrap()).unwrap()
}

#[test]
fn a_dropped_session_rolls_back_and_the_connection_is_reused() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let engine = engine_with_table(&fx);
        let pid: i32 = {
            let mut session = engine.transaction(&TransactionOptions::new()).unwrap();
            session
                .execute("INSERT INTO t (id) VALUES ($1)", &[&1_i32])
                .unwrap();
            backend_pid(&mut session)
        };
        assert_eq!(count(&engine), 0);
        let mut conn = engine.checkout().unwrap();
        let same = backend_pid(&mut conn);
        assert_eq!(pid, same, "cleaned and reused, not discarded");
        // Not inside a transaction any more: a new one can begin.
        conn.batch_execute("BEGIN; ROLLBACK").unwrap();
        drop(conn);
        assert_eq!(engine.counters().closed_total(), 0);
    });
}

/// Threads that spin until dropped (also when the test panics), and at
/// most for [`LIMIT`] (also when it hangs).
struct Busy {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Busy {
    fn threads(count: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let until = Instant::now() + LIMIT;
        let threads = (0..count)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        Self { stop, threads }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            drop(thread.join());
        }
    }
}

#[test]
fn returns_that_need_cleaning_one_after_another_keep_their_connection() {
    // Each return rolls back on a helper thread; with one pool slot there
    // is one helper place, which the last helper must have given up by the
    // time its caller goes on (else the next return finds none and closes
    // a healthy connection).
    within(LIMIT, || {
        let fx = Fixture::new();
        let engine = engine_with_table(&fx);
        // Busy threads, so that a helper is descheduled between handing
        // back its connection and ending, as on a loaded machine.
        let busy = Busy::threads(3);
        for _ in 0..200 {
            let mut conn = engine.checkout().unwrap();
            conn.batch_execute("BEGIN").unwrap();
            drop(conn);
        }
        drop(busy);
        let counters = engine.counters();
        assert_eq!(
            (counters.created, counters.closed_total()),
            (1, 0),
            "{counters:?}"
        );
    });
}

#[test]
fn a_connection_returned_inside_a_transaction_is_rolled_back() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let engine = engine_with_table(&fx);
        let mut conn = engine.checkout().unwrap();
        conn.batch_execute("BEGIN; INSERT INTO t (id) VALUES (1)")
            .unwrap();
        drop(conn);
        assert_eq!(count(&engine), 0);
        let mut conn = engine.checkout().unwrap();
        conn.batch_execute("START TRANSACTION").unwrap();
        let _ = conn.query("SELECT 1/0", &[]).unwrap_err(); // aborts the transaction
        drop(conn);
        assert_eq!(count(&engine), 0, "the aborted transaction was cleaned");
        assert_eq!(engine.counters().closed_total(), 0);
    });
}

#[test]
fn commit_rollback_and_savepoints() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let engine = engine_with_table(&fx);
        let mut session = engine.session(&TransactionOptions::new()).unwrap();
        session
            .execute("INSERT INTO t (id) VALUES (1)", &[])
            .unwrap();
        session.savepoint("sp1").unwrap();
        session
            .execute("INSERT INTO t (id) VALUES (2)", &[])
            .unwrap();
        session.rollback_to_savepoint("sp1").unwrap();
        session.savepoint("sp 2").unwrap(); // quoted identifier
        session
            .execute("INSERT INTO t (id) VALUES (3)", &[])
            .unwrap();
        session.release_savepoint("sp 2").unwrap();
        session.commit().unwrap();
        let ids: Vec<i32> = engine
            .checkout()
            .unwrap()
            .query("SELECT id FROM t ORDER BY id", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(ids, [1, 3]);

        let mut session = engine.session(&TransactionOptions::new()).unwrap();
        session
            .execute("INSERT INTO t (id) VALUES (4)", &[])
            .unwrap();
        session.rollback().unwrap();
        assert_eq!(count(&engine), 2);

        // A failed statement recovered by a savepoint still commits.
        let mut session = engine.session(&TransactionOptions::new()).unwrap();
        session.savepoint("before").unwrap();
        let error = session
            .execute("INSERT INTO t (id) VALUES (1)", &[])
            .unwrap_err();
        assert_eq!(error.sqlstate(), Some(&SqlState::UNIQUE_VIOLATION));
        session.rollback_to_savepoint("before").unwrap();
        session
            .execute("INSERT INTO t (id) VALUES (5)", &[])
            .unwrap();
        session.commit().unwrap();
        assert_eq!(count(&engine), 3);

        assert_eq!(
            engine
                .session(&TransactionOptions::new())
                .unwrap()
                .savepoint("")
                .unwrap_err()
                .kind(),
            ErrorKind::Config
        );
    });
}

#[test]
fn committing_a_failed_transaction_is_an_error() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let engine = engine_with_table(&fx);
        let mut session = engine.session(&TransactionOptions::new()).unwrap();
        session
            .execute("INSERT INTO t (id) VALUES (1)", &[])
            .unwrap();
        session
            .execute("INSERT INTO t (id) VALUES (1)", &[])
            .unwrap_err();
        let error = session.commit().unwrap_err();
        assert_eq!(error.sqlstate(), Some(&SqlState::IN_FAILED_SQL_TRANSACTION));
        assert_eq!(count(&engine), 0);
    });
}

#[test]
fn transaction_options_are_applied() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let engine = engine_with_table(&fx);
        let options = TransactionOptions::new()
            .isolation(IsolationLevel::Serializable)
            .read_only(true)
            .deferrable(true);
        let mut session = engine.session(&options).unwrap();
        let show = |s: &mut Box<dyn Session>, what: &str| -> String {
            s.query_one(&format!("SHOW {what}"), &[]).unwrap().get(0)
        };
        assert_eq!(show(&mut session, "transaction_isolation"), "serializable");
        assert_eq!(show(&mut session, "transaction_read_only"), "on");
        assert_eq!(show(&mut session, "transaction_deferrable"), "on");
        let error = session
            .execute("INSERT INTO t (id) VALUES (1)", &[])
            .unwrap_err();
        assert_eq!(error.sqlstate(), Some(&SqlState::READ_ONLY_SQL_TRANSACTION));
        drop(session);

        let options = TransactionOptions::new().isolation(IsolationLevel::RepeatableRead);
        let mut session = engine.session(&options).unwrap();
        assert_eq!(
            show(&mut session, "transaction_isolation"),
            "repeatable read"
        );
        session.commit().unwrap();
    });
}

#[test]
fn a_serialization_failure_is_retried() {
    within(LIMIT, || {
        let fx = Fixture::new();
        fx.admin()
            .batch_execute(
                "CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL); INSERT INTO t VALUES (1, 0)",
            )
            .unwrap();
        let engine = SyncEngine::new(&fx.builder().pool_size(2).build().unwrap()).unwrap();
        let attempts = AtomicUsize::new(0);
        let options = TransactionOptions::new().isolation(IsolationLevel::Serializable);
        let policy = RetryPolicy::default()
            .initial_delay(Duration::from_millis(5))
            .max_delay(Duration::from_millis(20));
        let value: i32 = transaction_with_retry(&engine, &options, &policy, |session| {
            let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
            let v: i32 = session
                .query_one("SELECT v FROM t WHERE id = 1", &[])
                .unwrap()
                .get(0);
            if attempt == 1 {
                // A concurrent writer commits after our snapshot was taken.
                engine
                    .checkout()
                    .unwrap()
                    .execute("UPDATE t SET v = v + 100 WHERE id = 1", &[])
                    .unwrap();
            }
            session.execute("UPDATE t SET v = $1 WHERE id = 1", &[&(v + 1)])?;
            Ok(v + 1)
        })
        .unwrap();
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
        assert_eq!(value, 101);

        // Other errors are not retried.
        let attempts = AtomicUsize::new(0);
        let error = transaction_with_retry(&engine, &options, &policy, |session| {
            attempts.fetch_add(1, Ordering::SeqCst);
            session.execute("INSERT INTO t VALUES (1, 0)", &[])
        })
        .unwrap_err();
        assert_eq!(error.sqlstate(), Some(&SqlState::UNIQUE_VIOLATION));
        assert_eq!(attempts.load(Ordering::SeqCst), 1);

        // Persistent failures stop after max_attempts.
        let attempts = AtomicUsize::new(0);
        let error = transaction_with_retry(
            &engine,
            &options,
            &policy.max_attempts(3),
            |_| -> uno_db_core::Result<()> {
                attempts.fetch_add(1, Ordering::SeqCst);
                Err(uno_db_core::Error::new(ErrorKind::Database)
                    .with_sqlstate(SqlState::T_R_SERIALIZATION_FAILURE))
            },
        )
        .unwrap_err();
        assert!(error.is_serialization_failure());
        assert_eq!(attempts.load(Ordering::SeqCst), 3);

        // The default-options form retries deadlocks (40P01) the same way.
        let attempts = AtomicUsize::new(0);
        let value =
            transaction_with_retry(&engine, &TransactionOptions::new(), &policy, |session| {
                if attempts.fetch_add(1, Ordering::SeqCst) == 0 {
                    return Err(uno_db_core::Error::new(ErrorKind::Database)
                        .with_sqlstate(SqlState::T_R_DEADLOCK_DETECTED));
                }
                Ok(session
                    .query_one("SELECT v FROM t WHERE id = 1", &[])?
                    .get::<_, i32>(0))
            })
            .unwrap();
        assert_eq!((attempts.load(Ordering::SeqCst), value), (2, 101));
    });
}

#[test]
fn schema_sets_the_search_path() {
    within(LIMIT, || {
        let fx = Fixture::new();
        fx.admin()
            .batch_execute("CREATE SCHEMA app_data; CREATE TABLE app_data.inside (x int)")
            .unwrap();
        let engine =
            SyncEngine::new(&fx.builder().schema("App_Data, public").build().unwrap()).unwrap();
        let mut conn = engine.checkout().unwrap();
        let schema: String = conn
            .query_one("SELECT current_schema()", &[])
            .unwrap()
            .get(0);
        assert_eq!(schema, "app_data");
        let path: String = conn.query_one("SHOW search_path", &[]).unwrap().get(0);
        assert_eq!(path, "app_data, public");
        conn.execute("INSERT INTO inside VALUES (1)", &[]).unwrap();
    });
}

#[test]
fn set_role_is_applied_on_checkout_and_reset_on_return() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let role = format!("uno_sync_role_{}", std::process::id());
        let mut admin = fx.admin();
        admin
            .batch_execute(&format!(
                "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} NOLOGIN"
            ))
            .unwrap();
        let engine = SyncEngine::new(
            &fx.builder()
                .pool_size(1)
                .set_role(role.to_uppercase())
                .build()
                .unwrap(),
        )
        .unwrap();
        let users = |conn: &mut uno_db_sync::SyncConnection| -> (String, String) {
            let row = conn
                .query_one("SELECT current_user::text, session_user::text", &[])
                .unwrap();
            (row.get(0), row.get(1))
        };
        let mut conn = engine.checkout().unwrap();
        let (current, session) = users(&mut conn);
        assert_eq!(
            current, role,
            "folded to lower case, as unquoted SQL would be"
        );
        assert_ne!(session, role);
        // Whatever the user does to the role is undone on return.
        conn.batch_execute("RESET ROLE").unwrap();
        drop(conn);
        let mut conn = engine.checkout().unwrap();
        assert_eq!(users(&mut conn).0, role);
        drop(conn);
        drop(engine);
        admin.batch_execute(&format!("DROP ROLE {role}")).unwrap();
    });
}
