//! Conformance cases for the blocking family
//! ([`uno_db_core::blocking`]). Mirrored case for case by
//! [`nonblocking`](super::nonblocking).
// Cases are tests: a failed expectation panics, and every case returns the
// first error an operation gave.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_errors_doc
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::chain::{find_kind, refused_in_chain};
use super::free_port::closed_port;
use super::unique_name::unique_application_name;
use uno_db_core::blocking::{Engine, EngineFactory};
use uno_db_core::{
    CloseReason, ConnectionConfig, ErrorKind, IsolationLevel, Result, SqlState, TransactionOptions,
    Type,
};

/// Parameters in, typed rows out, by name and by position.
pub fn query_with_params_and_rows(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(config)?;
    let mut conn = engine.connect()?;
    let rows = conn.query(
        "SELECT $1::int4 + g AS a, $2::text AS b, NULL::int8 AS c, g % 2 = 0 AS even \
         FROM generate_series(1, 3) AS g",
        &[&40_i32, &"x"],
    )?;
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].get::<_, i32>("a"), 41);
    assert_eq!(rows[2].get::<_, i32>(0), 43);
    assert_eq!(rows[0].get::<_, &str>("b"), "x");
    assert_eq!(rows[0].get::<_, Option<i64>>("c"), None);
    assert!(rows[1].get::<_, bool>("even"));
    let columns = rows[0].columns();
    assert_eq!(columns[0].name(), "a");
    assert_eq!(columns[0].type_(), &Type::INT4);
    let wrong = rows[0].try_get::<_, i64>("a").unwrap_err();
    assert_eq!(wrong.kind(), ErrorKind::Decode);
    assert_eq!(
        rows[0].try_get::<_, i32>("nope").unwrap_err().kind(),
        ErrorKind::Decode
    );
    Ok(())
}

/// `query_one` wants exactly one row, `query_opt` at most one.
pub fn query_one_and_query_opt_count_rows(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(config)?;
    let mut conn = engine.connect()?;
    let none = "SELECT 1 WHERE false";
    let two = "SELECT * FROM generate_series(1, 2)";
    assert_eq!(conn.query_one("SELECT 5::int4", &[])?.get::<_, i32>(0), 5);
    assert_eq!(
        conn.query_one(none, &[]).unwrap_err().kind(),
        ErrorKind::RowNotFound
    );
    assert_eq!(
        conn.query_one(two, &[]).unwrap_err().kind(),
        ErrorKind::TooManyRows
    );
    assert!(conn.query_opt(none, &[])?.is_none());
    assert_eq!(
        conn.query_opt("SELECT 6::int4", &[])?
            .unwrap()
            .get::<_, i32>(0),
        6
    );
    assert_eq!(
        conn.query_opt(two, &[]).unwrap_err().kind(),
        ErrorKind::TooManyRows
    );
    Ok(())
}

/// `execute` reports rows affected; `batch_execute` runs several statements.
pub fn execute_and_batch_execute(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(config)?;
    let mut conn = engine.connect()?;
    conn.batch_execute(
        "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'a')",
    )?;
    let inserted = conn.execute(
        "INSERT INTO items SELECT g, 'n' || g FROM generate_series(2, 4) AS g",
        &[],
    )?;
    assert_eq!(inserted, 3);
    assert_eq!(
        conn.execute("UPDATE items SET name = $1 WHERE id > $2", &[&"z", &2_i32])?,
        2
    );
    let count: i64 = conn.query_one("SELECT count(*) FROM items", &[])?.get(0);
    assert_eq!(count, 4);
    Ok(())
}

/// `prepare` describes parameters and columns; the statement is reusable.
pub fn prepare_describes_the_statement(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(config)?;
    let mut conn = engine.connect()?;
    let sql = "SELECT $1::int8 AS id, $2::text AS name";
    let statement = conn.prepare(sql)?;
    assert_eq!(statement.sql(), sql);
    assert_eq!(statement.params(), &[Type::INT8, Type::TEXT]);
    let names: Vec<&str> = statement.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["id", "name"]);
    for i in 0..3_i64 {
        let row = conn.query_one(sql, &[&i, &"n"])?;
        assert_eq!(row.get::<_, i64>("id"), i);
    }
    assert_eq!(
        conn.prepare("SELEC nonsense").unwrap_err().kind(),
        ErrorKind::Database
    );
    Ok(())
}

/// A failed statement is a `Database` error with its SQLSTATE and leaves the
/// connection usable.
pub fn query_error_keeps_the_connection_usable(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(config)?;
    let mut conn = engine.connect()?;
    let error = conn.query("SELEC 1", &[]).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Database);
    assert_eq!(error.sqlstate(), Some(&SqlState::SYNTAX_ERROR));
    assert!(!error.is_transient());
    assert!(
        std::error::Error::source(&error).is_some(),
        "the driver error is the source"
    );
    let error = conn
        .query_one("SELECT 1 / $1::int4", &[&0_i32])
        .unwrap_err();
    assert_eq!(error.sqlstate(), Some(&SqlState::DIVISION_BY_ZERO));
    let error = conn
        .execute("SELECT $1::int4", &[&"not an int"])
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Encode);
    assert_eq!(conn.query_one("SELECT 1::int4", &[])?.get::<_, i32>(0), 1);
    assert!(!conn.is_closed());
    Ok(())
}

fn create_counter_table(factory: &dyn EngineFactory, config: &ConnectionConfig) -> Result<()> {
    let engine = factory.engine(config)?;
    engine
        .connect()?
        .batch_execute("CREATE TABLE IF NOT EXISTS counter (n int NOT NULL)")
}

fn count_rows(factory: &dyn EngineFactory, config: &ConnectionConfig) -> Result<i64> {
    let engine = factory.engine(config)?;
    Ok(engine
        .connect()?
        .query_one("SELECT count(*) FROM counter", &[])?
        .get(0))
}

/// Commit persists, rollback and drop discard.
pub fn sessions_commit_rollback_and_drop(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    create_counter_table(factory, config)?;
    let engine = factory.engine(config)?;

    let mut session = engine.session(&TransactionOptions::new())?;
    session.execute("INSERT INTO counter VALUES ($1)", &[&1_i32])?;
    session.commit()?;
    assert_eq!(count_rows(factory, config)?, 1);

    let mut session = engine.session(&TransactionOptions::new())?;
    session.execute("INSERT INTO counter VALUES (2)", &[])?;
    session.rollback()?;
    assert_eq!(count_rows(factory, config)?, 1);

    let mut session = engine.session(&TransactionOptions::new())?;
    session.execute("INSERT INTO counter VALUES (3)", &[])?;
    drop(session);
    assert_eq!(
        count_rows(factory, config)?,
        1,
        "a dropped session rolls back"
    );

    let conn = engine.connect()?;
    let mut session = conn.begin(&TransactionOptions::new())?;
    session.execute("INSERT INTO counter VALUES (4)", &[])?;
    session.commit()?;
    assert_eq!(count_rows(factory, config)?, 2);
    Ok(())
}

/// Savepoints nest units of work inside a session.
pub fn savepoints_nest(factory: &dyn EngineFactory, config: &ConnectionConfig) -> Result<()> {
    create_counter_table(factory, config)?;
    let engine = factory.engine(config)?;
    let mut session = engine.session(&TransactionOptions::new())?;
    session.execute("INSERT INTO counter VALUES (1)", &[])?;
    session.savepoint("inner")?;
    session.execute("INSERT INTO counter VALUES (2)", &[])?;
    session.rollback_to_savepoint("inner")?;
    session.savepoint("second")?;
    session.execute("INSERT INTO counter VALUES (3)", &[])?;
    session.release_savepoint("second")?;
    // A failed statement inside a savepoint does not doom the session.
    session.savepoint("failing")?;
    assert!(
        session
            .execute("INSERT INTO counter VALUES (NULL)", &[])
            .is_err()
    );
    session.rollback_to_savepoint("failing")?;
    session.commit()?;
    let rows = factory
        .engine(config)?
        .connect()?
        .query("SELECT n FROM counter ORDER BY n", &[])?;
    let kept: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(kept, [1, 3]);

    let mut session = engine.session(&TransactionOptions::new())?;
    let error = session.rollback_to_savepoint("never_set").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Database);
    assert!(
        session.savepoint("bad\0name").is_err(),
        "an invalid name is an error, not a panic"
    );
    session.rollback()?;
    Ok(())
}

/// Isolation level, read-only and deferrable reach the server.
pub fn transaction_options_apply(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    create_counter_table(factory, config)?;
    let engine = factory.engine(config)?;
    let options = TransactionOptions::new()
        .isolation(IsolationLevel::Serializable)
        .read_only(true)
        .deferrable(true);
    let mut session = engine.session(&options)?;
    let row = session.query_one(
        "SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only'), \
         current_setting('transaction_deferrable')",
        &[],
    )?;
    assert_eq!(row.get::<_, &str>(0), "serializable");
    assert_eq!(row.get::<_, &str>(1), "on");
    assert_eq!(row.get::<_, &str>(2), "on");
    let error = session
        .execute("INSERT INTO counter VALUES (1)", &[])
        .unwrap_err();
    assert_eq!(error.sqlstate(), Some(&SqlState::READ_ONLY_SQL_TRANSACTION));
    drop(session);

    let mut session =
        engine.session(&TransactionOptions::new().isolation(IsolationLevel::RepeatableRead))?;
    let level: String = session.query_one("SHOW transaction_isolation", &[])?.get(0);
    assert_eq!(level, "repeatable read");
    session.commit()?;
    Ok(())
}

/// The same configuration gives the same engine; another gives another.
pub fn one_engine_per_config(factory: &dyn EngineFactory, config: &ConnectionConfig) -> Result<()> {
    let first = factory.engine(config)?;
    let again = factory.engine(&config.clone())?;
    assert!(Arc::ptr_eq(&first, &again), "same config, same engine");
    let other = factory.engine(&config.to_builder().pool_size(1).build()?)?;
    assert!(
        !Arc::ptr_eq(&first, &other),
        "another config, another engine"
    );
    assert_eq!(first.config(), config);
    Ok(())
}

/// Callbacks run once per new physical connection, in order, before it is
/// handed out.
pub fn callbacks_run_once_per_physical_connection(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&runs);
    factory.callbacks().register("count", move |_conn| {
        counted.fetch_add(1, Ordering::SeqCst);
        Ok(())
    });
    factory.callbacks().register("tag", |conn| {
        conn.batch_execute("SET application_name = 'uno-db-callback'")?;
        Ok(())
    });
    let engine = factory.engine(config)?;
    {
        let mut first = engine.connect()?;
        let _second = engine.connect()?;
        let name: String = first.query_one("SHOW application_name", &[])?.get(0);
        assert_eq!(name, "uno-db-callback");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 2, "two physical connections");
    for _ in 0..5 {
        engine.connect()?.query_one("SELECT 1", &[])?;
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "reused connections do not rerun callbacks"
    );
    Ok(())
}

/// A failing callback discards its connection and names itself.
pub fn failing_callback_discards_the_connection(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    factory.callbacks().register("bad_sql", |conn| {
        conn.batch_execute("SELEC broken")?;
        Ok(())
    });
    let engine = factory.engine(
        &config
            .to_builder()
            .pool_timeout(Duration::from_secs(2))
            .build()?,
    )?;
    let started = Instant::now();
    let error = engine.connect().unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    let callback_error =
        find_kind(&error, ErrorKind::Callback).expect("a Callback error in the chain");
    assert!(callback_error.contains("`bad_sql`"), "{callback_error}");
    assert_eq!(engine.status().in_use, 0);
    assert_eq!(
        engine.status().idle,
        0,
        "no half-initialised connection is pooled"
    );
    assert!(factory.callbacks().unregister("bad_sql"));
    engine.connect()?.query_one("SELECT 1", &[])?;
    Ok(())
}

/// Status and counters follow checkouts and returns.
pub fn status_and_counters(factory: &dyn EngineFactory, config: &ConnectionConfig) -> Result<()> {
    let engine = factory.engine(config)?;
    assert_eq!(
        engine.status().max_size,
        config.pool_size() + config.max_overflow()
    );
    {
        let _a = engine.connect()?;
        let _b = engine.connect()?;
        let status = engine.status();
        assert_eq!(status.in_use, 2, "{status:?}");
        assert!(status.size >= 2, "{status:?}");
    }
    let status = engine.status();
    assert_eq!(status.in_use, 0, "{status:?}");
    assert_eq!(status.idle, status.size, "{status:?}");
    let counters = engine.counters();
    assert!(counters.created >= 2, "{counters:?}");
    assert!(counters.acquired >= 2, "{counters:?}");
    Ok(())
}

/// A disposed engine hands out nothing.
pub fn dispose_closes_the_engine(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let name = unique_application_name("dispose");
    let engine = factory.engine(
        &config
            .to_builder()
            .application_name(name.as_str())
            .build()?,
    )?;
    let admin = factory.engine(config)?;
    let mut held = engine.connect()?;
    engine.connect()?.query_one("SELECT 1", &[])?;
    assert_eq!(server_backends(&*admin, &name)?, 2);
    engine.dispose();
    assert!(engine.is_disposed());
    assert_eq!(engine.connect().unwrap_err().kind(), ErrorKind::PoolClosed);
    assert_eq!(engine.status().idle, 0);
    assert!(
        eventually_backends(&*admin, &name, 1)?,
        "the idle connection closes at once"
    );
    held.query_one("SELECT 1", &[])?;
    drop(held);
    assert!(
        eventually_backends(&*admin, &name, 0)?,
        "the returned one closes within a second"
    );
    assert_eq!(engine.status().size, 0);
    Ok(())
}

/// After a burst, the pool shrinks back to `pool_size`: overflow connections
/// close when returned, on the server too.
pub fn overflow_shrinks_back(factory: &dyn EngineFactory, config: &ConnectionConfig) -> Result<()> {
    let name = unique_application_name("overflow");
    let config = config
        .to_builder()
        .application_name(name.as_str())
        .pool_size(1)
        .max_overflow(3)
        .pool_timeout(Duration::from_millis(300))
        .build()?;
    let engine = factory.engine(&config)?;
    let admin = factory.engine(&config.to_builder().clear_application_name().build()?)?;
    let mut burst = Vec::new();
    for _ in 0..4 {
        burst.push(engine.connect()?);
    }
    assert_eq!(engine.status().size, 4);
    assert_eq!(
        engine.connect().unwrap_err().kind(),
        ErrorKind::PoolTimeout,
        "max is 4"
    );
    drop(burst);
    assert!(
        eventually_backends(&*admin, &name, 1)?,
        "back to pool_size on the server"
    );
    let status = engine.status();
    assert_eq!(
        (status.size, status.idle, status.in_use),
        (1, 1, 0),
        "{status:?}"
    );
    assert_eq!(engine.counters().closed(CloseReason::Overflow), 3);
    Ok(())
}

/// Server backends whose `application_name` is `name`.
fn server_backends(admin: &dyn Engine, name: &str) -> Result<i64> {
    let sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1";
    Ok(admin.connect()?.query_one(sql, &[&name])?.get(0))
}

/// Whether the server comes down to `expected` such backends within a second.
fn eventually_backends(admin: &dyn Engine, name: &str, expected: i64) -> Result<bool> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        if server_backends(admin, name)? == expected {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An exhausted pool gives a `PoolTimeout` within `pool_timeout` (plus a
/// margin), not a hang.
pub fn exhausted_pool_times_out(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let timeout = Duration::from_millis(300);
    let config = config
        .to_builder()
        .pool_size(1)
        .max_overflow(0)
        .pool_timeout(timeout)
        .build()?;
    let engine = factory.engine(&config)?;
    let _held = engine.connect()?;
    let started = Instant::now();
    let error = engine.connect().unwrap_err();
    let waited = started.elapsed();
    assert_eq!(error.kind(), ErrorKind::PoolTimeout, "{error:?}");
    assert!(error.is_transient());
    assert!(
        waited >= timeout.mul_f64(0.9) && waited < timeout + Duration::from_secs(2),
        "{waited:?}"
    );
    assert_eq!(engine.counters().acquire_timeouts, 1);
    Ok(())
}

/// A server that refuses connections gives an error within `pool_timeout`
/// (plus a margin) that carries the connect error, never a bare timeout.
pub fn unreachable_server_error_carries_the_cause(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let config = config
        .to_builder()
        .host("127.0.0.1")
        .port(closed_port())
        .pool_timeout(Duration::from_secs(1))
        .connect_timeout(Duration::from_millis(500))
        .build()?;
    let engine = factory.engine(&config)?;
    let started = Instant::now();
    let error = engine.connect().unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(error.kind(), ErrorKind::PoolTimeout | ErrorKind::Connect),
        "{error:?}"
    );
    assert!(
        find_kind(&error, ErrorKind::Connect).is_some(),
        "the connect error is in the chain: {error:?}"
    );
    assert!(
        refused_in_chain(&error),
        "the chain keeps the driver's own I/O error: {error:?}"
    );
    assert!(error.is_transient());
    Ok(())
}

/// A missing database is a permanent error with its SQLSTATE, reported
/// fast rather than after `pool_timeout`.
pub fn missing_database_fails_fast(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let config = config
        .to_builder()
        .database("uno_db_no_such_database")
        .pool_timeout(Duration::from_secs(10))
        .build()?;
    let engine = factory.engine(&config)?;
    let started = Instant::now();
    let error = engine.connect().unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        error.sqlstate(),
        Some(&SqlState::INVALID_CATALOG_NAME),
        "{error:?}"
    );
    assert!(!error.is_transient());
    Ok(())
}

/// `schema` sets the search path of every connection.
pub fn schema_sets_search_path(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    factory
        .engine(config)?
        .connect()?
        .batch_execute("CREATE SCHEMA app; CREATE TABLE app.only_here (id int)")?;
    let engine = factory.engine(&config.to_builder().schema("app").build()?)?;
    let mut conn = engine.connect()?;
    let path: String = conn.query_one("SHOW search_path", &[])?.get(0);
    assert!(path.contains("app"), "{path}");
    conn.query("SELECT * FROM only_here", &[])?;
    Ok(())
}

/// `set_role` applies on every checkout and does not stick.
pub fn set_role_applies_on_checkout(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let admin = factory.engine(config)?;
    let role = format!("uno_db_reader_{}", std::process::id());
    admin.connect()?.batch_execute(&format!(
        "DO $$ BEGIN CREATE ROLE {role} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
    ))?;
    let engine = factory.engine(
        &config
            .to_builder()
            .set_role(role.as_str())
            .pool_size(1)
            .max_overflow(0)
            .build()?,
    )?;
    for _ in 0..2 {
        let mut conn = engine.connect()?;
        let row = conn.query_one("SELECT current_user::text, session_user::text", &[])?;
        assert_eq!(row.get::<_, &str>(0), role);
        assert_ne!(row.get::<_, &str>(1), role);
        // A user switching roles by hand must not leak it to the next checkout.
        conn.batch_execute("RESET ROLE")?;
    }
    Ok(())
}

/// Statements, with or without parameters, are prepared once per physical
/// connection and then served from its statement cache; with the cache off
/// none stays prepared.
pub fn statements_are_prepared_once(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let probe = "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1";
    for (cache_size, expected) in [(16_usize, 1_i64), (0, 0)] {
        let config = config
            .to_builder()
            .pool_size(1)
            .max_overflow(0)
            .statement_cache_size(cache_size)
            .build()?;
        let engine = factory.engine(&config)?;
        for sql in ["SELECT 1", "SELECT $1::int4"] {
            for i in 0..3_i32 {
                let mut conn = engine.connect()?;
                if sql.contains("$1") {
                    conn.query(sql, &[&i])?;
                } else {
                    conn.query(sql, &[])?;
                }
            }
            let held: i64 = engine.connect()?.query_one(probe, &[&sql])?.get(0);
            assert_eq!(
                held, expected,
                "{sql} with statement_cache_size = {cache_size}"
            );
        }
    }
    Ok(())
}

/// A connection returned inside an open or failed transaction is cleaned
/// before reuse.
pub fn returned_transactions_are_cleaned(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    create_counter_table(factory, config)?;
    let config = config.to_builder().pool_size(1).max_overflow(0).build()?;
    let engine = factory.engine(&config)?;
    {
        let mut conn = engine.connect()?;
        conn.batch_execute("BEGIN; INSERT INTO counter VALUES (1)")?;
    }
    {
        let mut conn = engine.connect()?;
        let idle: bool = conn
            .query_one("SELECT pg_current_xact_id_if_assigned() IS NULL", &[])?
            .get(0);
        assert!(idle, "no transaction carried over");
        conn.batch_execute("BEGIN")?;
        assert!(conn.query("SELECT 1 / 0", &[]).is_err());
    }
    let mut conn = engine.connect()?;
    assert_eq!(
        conn.query_one("SELECT 2::int4", &[])?.get::<_, i32>(0),
        2,
        "not an aborted transaction"
    );
    drop(conn);
    assert_eq!(count_rows(factory, &config)?, 0);
    Ok(())
}

/// Defines one `#[test]` per blocking conformance case, each with a fresh
/// database and an outer timeout. `$factory` is an expression evaluated
/// per test that makes a `blocking::EngineFactory`.
#[macro_export]
macro_rules! blocking_conformance {
    ($factory:expr) => {
        $crate::blocking_conformance!(@cases $factory;
            query_with_params_and_rows,
            query_one_and_query_opt_count_rows,
            execute_and_batch_execute,
            prepare_describes_the_statement,
            query_error_keeps_the_connection_usable,
            sessions_commit_rollback_and_drop,
            savepoints_nest,
            transaction_options_apply,
            one_engine_per_config,
            callbacks_run_once_per_physical_connection,
            failing_callback_discards_the_connection,
            status_and_counters,
            dispose_closes_the_engine,
            exhausted_pool_times_out,
            unreachable_server_error_carries_the_cause,
            missing_database_fails_fast,
            schema_sets_search_path,
            set_role_applies_on_checkout,
            returned_transactions_are_cleaned,
            statements_are_prepared_once,
            overflow_shrinks_back
        );
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::run_with_timeout($crate::conformance::CASE_TIMEOUT, || {
                    let db = $crate::TestDb::new().expect("a test database");
                    let config = $crate::conformance::case_config(db.url()).expect("a valid config");
                    let factory = $factory;
                    $crate::conformance::blocking::$case(&factory, &config).expect(stringify!($case));
                    $crate::conformance::uno_db_core::blocking::EngineFactory::dispose_all(&factory);
                });
            }
        )*
    };
}
