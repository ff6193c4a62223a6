//! Queries, parameters, rows, statement cache, engine identity and disposal.

use std::sync::Arc;

use uno_db_async::{AsyncEngine, AsyncEngineFactory};
use uno_db_core::nonblocking::{Client, Connection, Engine, EngineFactory};
use uno_db_core::{ErrorKind, SqlState, Type};

use crate::support::{builder, engine, failure, test_db, within};

#[tokio::test]
async fn queries_with_parameters_return_rows() {
    within(async {
        let db = test_db().await;
        let engine = engine(&db, |b| b);
        let mut conn = engine.checkout().await.unwrap();
        let row = conn
            .query_one("SELECT $1::int4 + 1 AS n, $2::text AS s", &[&41_i32, &"hi"])
            .await
            .unwrap();
        assert_eq!(row.get::<_, i32>("n"), 42);
        assert_eq!(row.get::<_, String>(1), "hi");

        conn.batch_execute("CREATE TABLE item (id int PRIMARY KEY, name text)")
            .await
            .unwrap();
        for (id, name) in [(1_i32, "a"), (2, "b"), (3, "c")] {
            assert_eq!(
                conn.execute("INSERT INTO item VALUES ($1, $2)", &[&id, &name])
                    .await
                    .unwrap(),
                1
            );
        }
        assert_eq!(
            conn.execute("UPDATE item SET name = upper(name)", &[])
                .await
                .unwrap(),
            3
        );
        let rows = conn
            .query(
                "SELECT name FROM item WHERE id >= $1 ORDER BY id",
                &[&2_i32],
            )
            .await
            .unwrap();
        let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        assert_eq!(names, ["B", "C"]);

        assert!(
            conn.query_opt("SELECT 1 FROM item WHERE id = $1", &[&9_i32])
                .await
                .unwrap()
                .is_none()
        );
        let missing = conn
            .query_one("SELECT 1 FROM item WHERE id = $1", &[&9_i32])
            .await
            .unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::RowNotFound);
        let many = conn
            .query_one("SELECT id FROM item", &[])
            .await
            .unwrap_err();
        assert_eq!(many.kind(), ErrorKind::TooManyRows);
        let many = conn
            .query_opt("SELECT id FROM item", &[])
            .await
            .unwrap_err();
        assert_eq!(many.kind(), ErrorKind::TooManyRows);

        let statement = conn
            .prepare("SELECT name FROM item WHERE id = $1")
            .await
            .unwrap();
        assert_eq!(statement.params(), [Type::INT4]);
        assert_eq!(statement.columns()[0].name(), "name");
    })
    .await;
}

#[tokio::test]
async fn a_failed_statement_leaves_the_connection_usable() {
    within(async {
        let db = test_db().await;
        let engine = engine(&db, |b| b.pool_size(1).max_overflow(0));
        let mut conn = engine.checkout().await.unwrap();
        let error = conn.query("SELEC 1", &[]).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Database);
        assert_eq!(error.sqlstate(), Some(&SqlState::SYNTAX_ERROR));
        let error = conn.query("SELECT 1/$1::int", &[&0_i32]).await.unwrap_err();
        assert_eq!(error.sqlstate(), Some(&SqlState::DIVISION_BY_ZERO));
        let error = conn
            .query_one("SELECT 'x'::text", &[])
            .await
            .unwrap()
            .try_get::<_, i32>(0)
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Decode);
        let row = conn.query_one("SELECT 1/$1::int", &[&1_i32]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), 1);
        assert!(!conn.is_closed());
        drop(conn);
        // The connection went back to the pool, not discarded.
        let mut again = engine.checkout().await.unwrap();
        again.batch_execute("SELECT 1").await.unwrap();
        assert_eq!(engine.counters().created, 1);
    })
    .await;
}

/// Cached statements stay within `statement_cache_size` on the server too;
/// size 0 leaves none behind.
#[tokio::test]
async fn the_statement_cache_is_bounded() {
    within(async {
        let db = test_db().await;
        let count = "SELECT count(*) FROM pg_prepared_statements";
        for (size, expected) in [(2_usize, 2_i64), (0, 0)] {
            let engine = engine(&db, |b| b.statement_cache_size(size));
            let mut conn = engine.checkout().await.unwrap();
            for n in 0..4_i32 {
                let sql = format!("SELECT $1::int + {n}");
                let row = conn.query_one(&sql, &[&1_i32]).await.unwrap();
                assert_eq!(row.get::<_, i32>(0), 1 + n);
                // Again: served from the cache when it is on.
                conn.query_one(&sql, &[&1_i32]).await.unwrap();
            }
            let held: i64 = conn.query_one(count, &[]).await.unwrap().get(0);
            assert_eq!(held, expected, "statement_cache_size = {size}");
            let affected = conn
                .execute("SELECT g FROM generate_series(1, $1) g", &[&3_i32])
                .await
                .unwrap();
            assert_eq!(affected, 3);
            let error = conn
                .query("SELECT $1::int, $2::int", &[&1_i32])
                .await
                .unwrap_err();
            let cause = std::error::Error::source(&error).unwrap().to_string();
            assert!(cause.contains("parameters"), "{cause}");
            conn.query_one("SELECT 1", &[]).await.unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn a_factory_keeps_one_engine_per_configuration() {
    within(async {
        let db = test_db().await;
        let config = builder(&db).build().unwrap();
        let factory = AsyncEngineFactory::new();
        let a = factory.engine(&config).unwrap();
        let b = factory
            .clone()
            .engine(&config.to_builder().build().unwrap())
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b), "same configuration, same engine");
        let other = factory
            .engine(&config.to_builder().pool_size(3).build().unwrap())
            .unwrap();
        assert!(!Arc::ptr_eq(&a, &other));
        let mut conn = a.connect().await.unwrap();
        conn.batch_execute("SELECT 1").await.unwrap();

        // An engine disposed on its own is replaced.
        other.dispose();
        let replaced = factory.engine(&other.config().clone()).unwrap();
        assert!(!replaced.is_disposed());

        // One configuration can be let go; the next request makes a new one.
        assert!(factory.dispose(replaced.config()));
        assert!(replaced.is_disposed() && !a.is_disposed());
        assert!(
            !factory.dispose(replaced.config()),
            "nothing kept for it any more"
        );
        let replaced = factory.engine(&other.config().clone()).unwrap();
        assert!(!replaced.is_disposed());

        factory.dispose_all();
        assert!(a.is_disposed() && replaced.is_disposed());
        assert_eq!(
            failure(factory.engine(&config)).kind(),
            ErrorKind::PoolClosed
        );
    })
    .await;
}

#[tokio::test]
async fn a_disposed_engine_refuses_checkouts() {
    within(async {
        let db = test_db().await;
        let engine: AsyncEngine = engine(&db, |b| b);
        let held = engine.checkout().await.unwrap();
        drop(engine.checkout().await.unwrap());
        assert_eq!(engine.status().size, 2);
        engine.dispose();
        assert!(engine.is_disposed());
        assert_eq!(
            engine.checkout().await.unwrap_err().kind(),
            ErrorKind::PoolClosed
        );
        assert_eq!(
            failure(engine.connect().await).kind(),
            ErrorKind::PoolClosed
        );
        drop(held);
        let counters = engine.counters();
        assert_eq!(counters.closed(uno_db_core::CloseReason::Disposed), 2);
        assert_eq!(engine.status().size, 0);
    })
    .await;
}

/// A cached statement whose result type changed is re-prepared.
#[tokio::test]
async fn a_stale_cached_statement_is_prepared_again() {
    within(async {
        let db = test_db().await;
        let engine = engine(&db, |b| b.pool_size(1));
        let mut conn = engine.checkout().await.unwrap();
        conn.batch_execute("CREATE TABLE s (a int); INSERT INTO s VALUES (1)")
            .await
            .unwrap();
        let sql = "SELECT * FROM s WHERE a = $1";
        assert_eq!(conn.query(sql, &[&1_i32]).await.unwrap()[0].len(), 1);
        conn.batch_execute("ALTER TABLE s ADD COLUMN b int")
            .await
            .unwrap();
        // The server refuses the old plan once (0A000); the next call re-prepares.
        if let Err(error) = conn.query(sql, &[&1_i32]).await {
            assert_eq!(
                error.sqlstate(),
                Some(&SqlState::FEATURE_NOT_SUPPORTED),
                "{error:?}"
            );
        }
        assert_eq!(conn.query(sql, &[&1_i32]).await.unwrap()[0].len(), 2);
    })
    .await;
}

/// Server settings and the statement timeout travel in the startup packet.
#[tokio::test]
async fn options_and_statement_timeout_reach_the_server() {
    within(async {
        let db = test_db().await;
        let engine = engine(&db, |b| {
            b.option("lock_timeout", "1234ms")
                .option("application_name", r"with space\and backslash")
                .statement_timeout(std::time::Duration::from_millis(200))
        });
        let mut conn = engine.checkout().await.unwrap();
        let show = async |conn: &mut uno_db_async::AsyncConnection, name: &str| -> String {
            conn.query_one(&format!("SHOW {name}"), &[])
                .await
                .unwrap()
                .get(0)
        };
        assert_eq!(show(&mut conn, "lock_timeout").await, "1234ms");
        assert_eq!(
            show(&mut conn, "application_name").await,
            r"with space\and backslash"
        );
        assert_eq!(show(&mut conn, "statement_timeout").await, "200ms");
        let error = conn.batch_execute("SELECT pg_sleep(5)").await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::QueryTimeout, "{error:?}");
        assert_eq!(
            conn.query_one("SELECT 1::int4", &[])
                .await
                .unwrap()
                .get::<_, i32>(0),
            1
        );
    })
    .await;
}

/// The driver's client lent by `driver_client`: whatever it leaves in the
/// session (an open transaction, a setting, a temporary table, a prepared
/// statement) is gone when the connection is next checked out, which is
/// the same connection, and the pool's own statements still work.
#[tokio::test]
async fn a_lent_driver_client_leaves_nothing_behind() {
    within(async {
        let db = test_db().await;
        let engine = engine(&db, |b| b.pool_size(1).max_overflow(0).schema("public"));
        let mut conn = engine.checkout().await.unwrap();
        let sql = "SELECT $1::int4 + 1";
        assert_eq!(
            conn.query_one(sql, &[&1_i32])
                .await
                .unwrap()
                .get::<_, i32>(0),
            2
        );
        let pid: i32 = conn
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        let client = conn.driver_client().unwrap();
        client
            .batch_execute(
                "SET application_name = 'lent'; SET search_path = pg_catalog; \
                 CREATE TEMP TABLE scratch (v int); PREPARE mine AS SELECT 1; BEGIN",
            )
            .await
            .unwrap();
        drop(conn);
        let mut conn = engine.checkout().await.unwrap();
        let row = conn
            .query_one(
                "SELECT pg_backend_pid(), current_setting('application_name'), \
                 current_setting('search_path'), to_regclass('pg_temp.scratch') IS NULL, \
                 (SELECT count(*) FROM pg_prepared_statements WHERE name = 'mine')",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, i32>(0), pid, "reset, not reconnected");
        assert_ne!(row.get::<_, &str>(1), "lent");
        assert_eq!(
            row.get::<_, &str>(2),
            "public",
            "the configured search path"
        );
        assert!(row.get::<_, bool>(3), "the temporary table survived");
        assert_eq!(row.get::<_, i64>(4), 0, "prepared statements survived");
        let probe = conn.batch_execute("SAVEPOINT probe").await.unwrap_err();
        assert_eq!(
            probe.sqlstate(),
            Some(&SqlState::NO_ACTIVE_SQL_TRANSACTION),
            "still inside the lent transaction"
        );
        // The pool's cached statement was dropped with the rest, and is
        // prepared again rather than failing.
        assert_eq!(
            conn.query_one(sql, &[&2_i32])
                .await
                .unwrap()
                .get::<_, i32>(0),
            3
        );
    })
    .await;
}
