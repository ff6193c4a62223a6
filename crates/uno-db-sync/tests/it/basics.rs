//! Connecting, querying, factories and disposal.

use std::sync::Arc;

use uno_db_core::blocking::{Client, Connection, Engine, EngineFactory};
use uno_db_core::{CloseReason, ErrorKind, SqlState};
use uno_db_sync::{SyncEngine, SyncEngineFactory};

use crate::support::{Fixture, LIMIT, backend_pid, within};

#[test]
fn connect_query_params_and_rows() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let engine = SyncEngine::new(&fx.config()).unwrap();
        let mut conn = engine.checkout().unwrap();
        conn.batch_execute("CREATE TABLE item (id int PRIMARY KEY, name text)")
            .unwrap();
        for (id, name) in [(1, "one"), (2, "two"), (3, "three")] {
            let n = conn
                .execute("INSERT INTO item (id, name) VALUES ($1, $2)", &[&id, &name])
                .unwrap();
            assert_eq!(n, 1);
        }
        let rows = conn
            .query(
                "SELECT id, name FROM item WHERE id >= $1 ORDER BY id",
                &[&2_i32],
            )
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].get::<_, i32>("id"), 2);
        assert_eq!(rows[1].get::<_, String>("name"), "three");

        let one = conn
            .query_one("SELECT name FROM item WHERE id = $1", &[&1_i32])
            .unwrap();
        assert_eq!(one.get::<_, &str>(0), "one");
        assert!(
            conn.query_opt("SELECT name FROM item WHERE id = $1", &[&9_i32])
                .unwrap()
                .is_none()
        );
        let missing = conn
            .query_one("SELECT name FROM item WHERE id = $1", &[&9_i32])
            .unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::RowNotFound);
        let many = conn.query_one("SELECT name FROM item", &[]).unwrap_err();
        assert_eq!(many.kind(), ErrorKind::TooManyRows);
        let many = conn.query_opt("SELECT name FROM item", &[]).unwrap_err();
        assert_eq!(many.kind(), ErrorKind::TooManyRows);
        assert!(!conn.is_closed());

        let statement = conn
            .prepare("SELECT id, name FROM item WHERE id = $1")
            .unwrap();
        assert_eq!(statement.params(), [uno_db_core::Type::INT4]);
        assert_eq!(statement.columns().len(), 2);
        assert_eq!(statement.columns()[1].name(), "name");
    });
}

#[test]
fn a_failed_query_leaves_the_connection_usable() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let engine = SyncEngine::new(&fx.config()).unwrap();
        let mut conn = engine.checkout().unwrap();
        let error = conn.query("SELEC 1", &[]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Database);
        assert_eq!(error.sqlstate(), Some(&SqlState::SYNTAX_ERROR));
        assert!(error.db_error().is_some());
        let error = conn
            .query("SELECT * FROM nowhere WHERE x = $1", &[&1_i32])
            .unwrap_err();
        assert_eq!(error.sqlstate(), Some(&SqlState::UNDEFINED_TABLE));
        let row = conn.query_one("SELECT $1::int4 * 2", &[&21_i32]).unwrap();
        assert_eq!(row.get::<_, i32>(0), 42);
        drop(conn);
        assert_eq!(
            engine.counters().closed_total(),
            0,
            "the connection went back to the pool"
        );
    });
}

#[test]
fn the_factory_keeps_one_engine_per_configuration() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let factory = SyncEngineFactory::new();
        let a = factory.sync_engine(&fx.config()).unwrap();
        let b = factory.sync_engine(&fx.config()).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let other = factory
            .sync_engine(&fx.builder().pool_size(3).build().unwrap())
            .unwrap();
        assert!(!Arc::ptr_eq(&a, &other));

        // Clones share the engines and the callbacks.
        let clone = factory.clone();
        assert!(Arc::ptr_eq(&a, &clone.sync_engine(&fx.config()).unwrap()));
        factory.callbacks().register("noop", |_| Ok(()));
        assert_eq!(a.callbacks().names(), ["noop"]);
        assert_eq!(clone.callbacks().names(), ["noop"]);

        // Through the trait as well.
        let dynamic = factory.engine(&fx.config()).unwrap();
        dynamic.connect().unwrap().execute("SELECT 1", &[]).unwrap();

        // A disposed engine is replaced on the next request.
        a.dispose();
        let replaced = factory.sync_engine(&fx.config()).unwrap();
        assert!(!Arc::ptr_eq(&a, &replaced));
        assert!(!replaced.is_disposed());

        // One configuration can be let go; the next request makes a new one.
        let three = fx.builder().pool_size(3).build().unwrap();
        assert!(factory.dispose(&three));
        assert!(other.is_disposed() && !replaced.is_disposed());
        assert!(!factory.dispose(&three), "nothing kept for it any more");
        let renewed = factory.sync_engine(&three).unwrap();
        assert!(!Arc::ptr_eq(&other, &renewed) && !renewed.is_disposed());

        factory.dispose_all();
        assert!(replaced.is_disposed() && other.is_disposed());
        let Err(error) = factory.engine(&fx.config()) else {
            panic!("the factory is disposed")
        };
        assert_eq!(error.kind(), ErrorKind::PoolClosed);
    });
}

#[test]
fn dispose_closes_idle_connections_and_refuses_checkouts() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let name = format!("uno_sync_dispose_{}", std::process::id());
        let engine =
            SyncEngine::new(&fx.builder().application_name(&name).build().unwrap()).unwrap();
        let mut admin = fx.admin();
        let backends = |admin: &mut postgres::Client| -> i64 {
            admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                    &[&name],
                )
                .unwrap()
                .get(0)
        };
        let idle = engine.checkout().unwrap();
        let mut held = engine.checkout().unwrap();
        drop(idle);
        assert_eq!(backends(&mut admin), 2);

        engine.dispose();
        assert!(engine.is_disposed());
        assert_eq!(engine.checkout().unwrap_err().kind(), ErrorKind::PoolClosed);
        assert_eq!(
            engine.connect().err().map(|e| e.kind()),
            Some(ErrorKind::PoolClosed)
        );
        assert_eq!(
            engine.counters().closed(CloseReason::Disposed),
            1,
            "the idle one closed at once"
        );

        // The checked-out one still works, and closes when returned.
        held.execute("SELECT 1", &[]).unwrap();
        drop(held);
        assert_eq!(engine.counters().closed(CloseReason::Disposed), 2);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while backends(&mut admin) != 0 {
            assert!(std::time::Instant::now() < deadline, "backends still open");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        engine.dispose(); // twice is fine
    });
}

/// The driver's client lent by `driver_client`: whatever it leaves in the
/// session (an open transaction, a setting, a temporary table, a prepared
/// statement) is gone when the connection is next checked out, which is
/// the same connection, and the pool's own statements still work.
#[test]
fn a_lent_driver_client_leaves_nothing_behind() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let config = fx.builder().pool_size(1).schema("public").build().unwrap();
        let engine = SyncEngine::new(&config).unwrap();
        let mut conn = engine.checkout().unwrap();
        let sql = "SELECT $1::int4 + 1";
        assert_eq!(conn.query_one(sql, &[&1_i32]).unwrap().get::<_, i32>(0), 2);
        let pid = backend_pid(&mut conn);
        let client = conn.driver_client().unwrap();
        client
            .batch_execute(
                "SET application_name = 'lent'; SET search_path = pg_catalog; \
                 CREATE TEMP TABLE scratch (v int); PREPARE mine AS SELECT 1; BEGIN",
            )
            .unwrap();
        drop(conn);
        let mut conn = engine.checkout().unwrap();
        let row = conn
            .query_one(
                "SELECT pg_backend_pid(), current_setting('application_name'), \
                 current_setting('search_path'), to_regclass('pg_temp.scratch') IS NULL, \
                 (SELECT count(*) FROM pg_prepared_statements WHERE name = 'mine')",
                &[],
            )
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
        let probe = conn.batch_execute("SAVEPOINT probe").unwrap_err();
        assert_eq!(
            probe.sqlstate(),
            Some(&SqlState::NO_ACTIVE_SQL_TRANSACTION),
            "still inside the lent transaction"
        );
        assert_eq!(conn.query_one(sql, &[&2_i32]).unwrap().get::<_, i32>(0), 3);
    });
}
