//! Conformance cases for the async family
//! ([`uno_db_core::nonblocking`]): the same cases as
//! [`blocking`](super::blocking), awaited.
// Cases are tests: a failed expectation panics, and every case returns the
// first error an operation gave.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_errors_doc
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::chain::{find_kind, refused_in_chain};
use super::free_port::closed_port;
use super::shared::{
    BACKENDS_OF_APPLICATION, BAD_PAIRS, CASED_NAMES, DEFAULT_ISOLATION, FIFO_POOL, FIFO_TOLERANCE,
    FIFO_WAITERS, LOAD_WORKERS, OPEN_TRANSACTION_PROBE, OPS_BETWEEN_POINTS, OUTAGE,
    OUTAGE_POOL_TIMEOUT, POLL, Pair, QUERY_TIMEOUT, SELECT_THEN_START_TRANSACTION,
    SERVER_STATE_WAIT, SLEEPER, STILL_RUNNING, TERMINATE, TERMINATION_POINTS, TIMEOUT_SLACK,
    TRANSACTION_WORDS_ONLY, assert_names_match_exactly_then_ignoring_case,
    one_connection_under_query_timeout, pids_name_connections, unique_sleep, with_url_param,
    worst_overtaking,
};
use super::temp_roles::TempRoles;
use super::unique_name::unique_application_name;
use crate::{FaultProxy, TestCluster, TestDb};
use uno_db_core::backend::ALIVE_BYPASS_WINDOW;
use uno_db_core::nonblocking::{Client, ClientExt, Connection, Engine, EngineFactory};
use uno_db_core::{
    CloseReason, ConnectionConfig, ErrorKind, IsolationLevel, PoolCounters, Result, RetryPolicy,
    SqlState, TransactionOptions, Type,
};

/// Parameters in, typed rows out, by name and by position.
pub async fn query_with_params_and_rows(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(config)?;
    let mut conn = engine.connect().await?;
    query_with_params_and_rows_on(&mut *conn).await?;
    Ok(())
}

/// The checks of [`query_with_params_and_rows`] on any client (the multiplexed one's
/// conformance runs them too).
pub(super) async fn query_with_params_and_rows_on(conn: &mut dyn Client) -> Result<()> {
    let rows = conn
        .query(
            "SELECT $1::int4 + g AS a, $2::text AS b, NULL::int8 AS c, g % 2 = 0 AS even \
         FROM generate_series(1, 3) AS g",
            &[&40_i32, &"x"],
        )
        .await?;
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
    assert_eq!(
        rows[0].try_get::<_, i32>(4).unwrap_err().kind(),
        ErrorKind::Decode
    );
    assert_eq!(rows[0].len(), 4);
    assert_names_match_exactly_then_ignoring_case(&conn.query_one(CASED_NAMES, &[]).await?);
    Ok(())
}

/// `query_one` wants exactly one row, `query_opt` at most one.
pub async fn query_one_and_query_opt_count_rows(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(config)?;
    let mut conn = engine.connect().await?;
    query_one_and_query_opt_count_rows_on(&mut *conn).await?;
    Ok(())
}

/// The checks of [`query_one_and_query_opt_count_rows`] on any client (the multiplexed one's
/// conformance runs them too).
pub(super) async fn query_one_and_query_opt_count_rows_on(conn: &mut dyn Client) -> Result<()> {
    let none = "SELECT 1 WHERE false";
    let two = "SELECT * FROM generate_series(1, 2)";
    assert_eq!(
        conn.query_one("SELECT 5::int4", &[])
            .await?
            .get::<_, i32>(0),
        5
    );
    assert_eq!(
        conn.query_one(none, &[]).await.unwrap_err().kind(),
        ErrorKind::RowNotFound
    );
    assert_eq!(
        conn.query_one(two, &[]).await.unwrap_err().kind(),
        ErrorKind::TooManyRows
    );
    assert!(conn.query_opt(none, &[]).await?.is_none());
    assert_eq!(
        conn.query_opt("SELECT 6::int4", &[])
            .await?
            .unwrap()
            .get::<_, i32>(0),
        6
    );
    assert_eq!(
        conn.query_opt(two, &[]).await.unwrap_err().kind(),
        ErrorKind::TooManyRows
    );
    Ok(())
}

/// `execute` reports rows affected; `batch_execute` runs several statements.
pub async fn execute_and_batch_execute(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(config)?;
    let mut conn = engine.connect().await?;
    execute_and_batch_execute_on(&mut *conn).await?;
    Ok(())
}

/// The checks of [`execute_and_batch_execute`] on any client (the multiplexed one's
/// conformance runs them too).
pub(super) async fn execute_and_batch_execute_on(conn: &mut dyn Client) -> Result<()> {
    conn.batch_execute(
        "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'a')",
    )
    .await?;
    let inserted = conn
        .execute(
            "INSERT INTO items SELECT g, 'n' || g FROM generate_series(2, 4) AS g",
            &[],
        )
        .await?;
    assert_eq!(inserted, 3);
    assert_eq!(
        conn.execute("UPDATE items SET name = $1 WHERE id > $2", &[&"z", &2_i32])
            .await?,
        2
    );
    let count: i64 = conn
        .query_one("SELECT count(*) FROM items", &[])
        .await?
        .get(0);
    assert_eq!(count, 4);
    Ok(())
}

/// `prepare` describes parameters and columns; the statement is reusable.
pub async fn prepare_describes_the_statement(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(config)?;
    let mut conn = engine.connect().await?;
    prepare_describes_the_statement_on(&mut *conn).await?;
    Ok(())
}

/// The checks of [`prepare_describes_the_statement`] on any client (the multiplexed one's
/// conformance runs them too).
pub(super) async fn prepare_describes_the_statement_on(conn: &mut dyn Client) -> Result<()> {
    let sql = "SELECT $1::int8 AS id, $2::text AS name";
    let statement = conn.prepare(sql).await?;
    assert_eq!(statement.sql(), sql);
    assert_eq!(statement.params(), &[Type::INT8, Type::TEXT]);
    let names: Vec<&str> = statement.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["id", "name"]);
    for i in 0..3_i64 {
        let row = conn.query_one(sql, &[&i, &"n"]).await?;
        assert_eq!(row.get::<_, i64>("id"), i);
    }
    assert_eq!(
        conn.prepare("SELEC nonsense").await.unwrap_err().kind(),
        ErrorKind::Database
    );
    Ok(())
}

/// A failed statement is a `Database` error with its SQLSTATE and leaves the
/// connection usable.
pub async fn query_error_keeps_the_connection_usable(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(config)?;
    let mut conn = engine.connect().await?;
    query_error_keeps_the_connection_usable_on(&mut *conn).await?;
    assert!(!conn.is_closed());
    Ok(())
}

/// The checks of [`query_error_keeps_the_connection_usable`] on any client (the multiplexed one's
/// conformance runs them too).
pub(super) async fn query_error_keeps_the_connection_usable_on(
    conn: &mut dyn Client,
) -> Result<()> {
    let error = conn.query("SELEC 1", &[]).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Database);
    assert_eq!(error.sqlstate(), Some(&SqlState::SYNTAX_ERROR));
    assert!(!error.is_transient());
    assert!(
        std::error::Error::source(&error).is_some(),
        "the driver error is the source"
    );
    let error = conn
        .query_one("SELECT 1 / $1::int4", &[&0_i32])
        .await
        .unwrap_err();
    assert_eq!(error.sqlstate(), Some(&SqlState::DIVISION_BY_ZERO));
    let error = conn
        .execute("SELECT $1::int4", &[&"not an int"])
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Encode);
    assert_eq!(
        conn.query_one("SELECT 1::int4", &[])
            .await?
            .get::<_, i32>(0),
        1
    );
    Ok(())
}

/// A repository function written once against `&mut dyn Client`: on a
/// connection its insert is autocommitted, inside a session it belongs to
/// the transaction (a rollback undoes it); `&mut impl Client` takes the
/// boxed connection and session as they are.
pub async fn client_runs_on_connections_and_sessions(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    async fn add(client: &mut dyn Client, n: i32) -> Result<u64> {
        client
            .execute("INSERT INTO counter VALUES ($1)", &[&n])
            .await
    }
    async fn total(client: &mut impl Client) -> Result<i64> {
        Ok(client
            .query_one("SELECT coalesce(sum(n), 0)::int8 FROM counter", &[])
            .await?
            .get(0))
    }
    create_counter_table(factory, config).await?;
    let engine = factory.engine(config)?;
    let mut conn = engine.connect().await?;
    assert_eq!(add(&mut *conn, 1).await?, 1);

    let mut session = engine.session(&TransactionOptions::new()).await?;
    add(&mut *session, 10).await?;
    assert_eq!(
        total(&mut session).await?,
        11,
        "the session sees its insert"
    );
    assert_eq!(
        total(&mut conn).await?,
        1,
        "nobody else does before the commit"
    );
    session.rollback().await?;
    assert_eq!(total(&mut conn).await?, 1, "the rollback undid the insert");

    let mut session = engine.session(&TransactionOptions::new()).await?;
    add(&mut *session, 100).await?;
    session.commit().await?;
    assert_eq!(total(&mut conn).await?, 101);
    Ok(())
}

/// A prepared `Statement` runs wherever SQL text does (`execute`, `query`,
/// `query_one`, `query_opt`), on its connection and inside a session begun
/// on it.
pub async fn prepared_statements_run_in_place_of_text(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(config)?;
    let mut conn = engine.connect().await?;
    conn.batch_execute("CREATE TABLE items (id int8 PRIMARY KEY, name text)")
        .await?;
    let insert = conn.prepare("INSERT INTO items VALUES ($1, $2)").await?;
    assert!(insert.connection().is_some());
    for id in 1..=3_i64 {
        let name = format!("n{id}");
        assert_eq!(conn.execute(&insert, &[&id, &name]).await?, 1);
    }
    let by_id = conn.prepare("SELECT name FROM items WHERE id = $1").await?;
    assert_eq!(by_id.sql(), "SELECT name FROM items WHERE id = $1");
    let name: String = conn.query_one(&by_id, &[&2_i64]).await?.get("name");
    assert_eq!(name, "n2");
    assert!(conn.query_opt(&by_id, &[&9_i64]).await?.is_none());
    let all = conn.prepare("SELECT id FROM items ORDER BY id").await?;
    let ids: Vec<i64> = conn
        .query(&all, &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(ids, [1, 2, 3]);

    let mut session = conn.begin(&TransactionOptions::new()).await?;
    assert_eq!(session.execute(&insert, &[&4_i64, &"n4"]).await?, 1);
    assert_eq!(session.query(&all, &[]).await?.len(), 4);
    session.rollback().await?;
    Ok(())
}

/// A row that does not map (a missing column, a mistyped one, NULL for a
/// non-`Option` field) is a `Decode` error naming the column, never a
/// panic, and leaves the connection and the pool healthy.
pub async fn rows_that_do_not_map_name_the_column(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(&config.to_builder().pool_size(1).max_overflow(0).build()?)?;
    let mut conn = engine.connect().await?;
    let good: Vec<Pair> = conn
        .query_as(
            "SELECT g::int8 AS id, g::text AS label FROM generate_series(1, 2) AS g",
            &[],
        )
        .await?;
    assert_eq!(good.len(), 2);
    assert_eq!((good[1].id, good[1].label.as_deref()), (2, Some("2")));
    for (sql, column) in BAD_PAIRS {
        let error = conn.query_one_as::<Pair>(sql, &[]).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Decode, "{sql}: {error:?}");
        assert!(error.to_string().contains(column), "{sql}: {error}");
        // The same connection serves the next statement.
        assert_eq!(conn.query_one("SELECT 1", &[]).await?.get::<_, i32>(0), 1);
    }
    drop(conn);
    let none: Option<Pair> = engine
        .connect()
        .await?
        .query_opt_as("SELECT 1::int8 AS id, NULL::text AS label WHERE false", &[])
        .await?;
    assert!(none.is_none());
    assert_eq!(
        engine.counters().created,
        1,
        "the pool's one connection served all"
    );
    Ok(())
}

/// A statement runs only on the connection that prepared it: any other
/// refuses it with `Unsupported` and a message saying why, before sending
/// anything, so a session that refused it carries on.
pub async fn statements_from_another_connection_are_refused(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(config)?;
    let mut first = engine.connect().await?;
    let mut second = engine.connect().await?;
    let statement = first.prepare("SELECT 1::int4").await?;
    let error = second.query_one(&statement, &[]).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    assert!(
        error.to_string().contains("prepared on connection"),
        "{error}"
    );
    for error in [
        second.execute(&statement, &[]).await.unwrap_err(),
        second.query(&statement, &[]).await.unwrap_err(),
        second.query_opt(&statement, &[]).await.unwrap_err(),
        second.batch_execute(&statement).await.unwrap_err(),
        second.prepare(&statement).await.unwrap_err(),
    ] {
        assert_eq!(error.kind(), ErrorKind::Unsupported, "{error}");
    }

    let mut session = second.begin(&TransactionOptions::new()).await?;
    assert_eq!(
        session.query(&statement, &[]).await.unwrap_err().kind(),
        ErrorKind::Unsupported
    );
    let one: i32 = session.query_one(statement.sql(), &[]).await?.get(0);
    assert_eq!(one, 1, "the text runs anywhere, the transaction is intact");
    session.commit().await?;
    assert_eq!(first.query_one(&statement, &[]).await?.get::<_, i32>(0), 1);
    Ok(())
}

async fn create_counter_table(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(config)?;
    engine
        .connect()
        .await?
        .batch_execute("CREATE TABLE IF NOT EXISTS counter (n int NOT NULL)")
        .await
}

async fn count_rows(factory: &dyn EngineFactory, config: &ConnectionConfig) -> Result<i64> {
    let engine = factory.engine(config)?;
    Ok(engine
        .connect()
        .await?
        .query_one("SELECT count(*) FROM counter", &[])
        .await?
        .get(0))
}

/// Commit persists, rollback and drop discard.
pub async fn sessions_commit_rollback_and_drop(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    create_counter_table(factory, config).await?;
    let engine = factory.engine(config)?;

    let mut session = engine.session(&TransactionOptions::new()).await?;
    session
        .execute("INSERT INTO counter VALUES ($1)", &[&1_i32])
        .await?;
    session.commit().await?;
    assert_eq!(count_rows(factory, config).await?, 1);

    let mut session = engine.session(&TransactionOptions::new()).await?;
    session
        .execute("INSERT INTO counter VALUES (2)", &[])
        .await?;
    session.rollback().await?;
    assert_eq!(count_rows(factory, config).await?, 1);

    let mut session = engine.session(&TransactionOptions::new()).await?;
    session
        .execute("INSERT INTO counter VALUES (3)", &[])
        .await?;
    drop(session);
    assert_eq!(
        count_rows(factory, config).await?,
        1,
        "a dropped session rolls back"
    );

    let conn = engine.connect().await?;
    let mut session = conn.begin(&TransactionOptions::new()).await?;
    session
        .execute("INSERT INTO counter VALUES (4)", &[])
        .await?;
    session.commit().await?;
    assert_eq!(count_rows(factory, config).await?, 2);
    Ok(())
}

/// Savepoints nest units of work inside a session.
pub async fn savepoints_nest(factory: &dyn EngineFactory, config: &ConnectionConfig) -> Result<()> {
    create_counter_table(factory, config).await?;
    let engine = factory.engine(config)?;
    let mut session = engine.session(&TransactionOptions::new()).await?;
    session
        .execute("INSERT INTO counter VALUES (1)", &[])
        .await?;
    session.savepoint("inner").await?;
    session
        .execute("INSERT INTO counter VALUES (2)", &[])
        .await?;
    session.rollback_to_savepoint("inner").await?;
    session.savepoint("second").await?;
    session
        .execute("INSERT INTO counter VALUES (3)", &[])
        .await?;
    session.release_savepoint("second").await?;
    // A failed statement inside a savepoint does not doom the session.
    session.savepoint("failing").await?;
    assert!(
        session
            .execute("INSERT INTO counter VALUES (NULL)", &[])
            .await
            .is_err()
    );
    session.rollback_to_savepoint("failing").await?;
    session.commit().await?;
    let rows = factory
        .engine(config)?
        .connect()
        .await?
        .query("SELECT n FROM counter ORDER BY n", &[])
        .await?;
    let kept: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(kept, [1, 3]);

    let mut session = engine.session(&TransactionOptions::new()).await?;
    let error = session
        .rollback_to_savepoint("never_set")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Database);
    assert!(
        session.savepoint("bad\0name").await.is_err(),
        "an invalid name is an error, not a panic"
    );
    session.rollback().await?;
    Ok(())
}

/// Isolation level, read-only and deferrable reach the server.
pub async fn transaction_options_apply(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    create_counter_table(factory, config).await?;
    let engine = factory.engine(config)?;
    let options = TransactionOptions::new()
        .isolation(IsolationLevel::Serializable)
        .read_only(true)
        .deferrable(true);
    let mut session = engine.session(&options).await?;
    let row = session.query_one(
        "SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only'), \
         current_setting('transaction_deferrable')",
        &[],
    ).await?;
    assert_eq!(row.get::<_, &str>(0), "serializable");
    assert_eq!(row.get::<_, &str>(1), "on");
    assert_eq!(row.get::<_, &str>(2), "on");
    let error = session
        .execute("INSERT INTO counter VALUES (1)", &[])
        .await
        .unwrap_err();
    assert_eq!(error.sqlstate(), Some(&SqlState::READ_ONLY_SQL_TRANSACTION));
    drop(session);

    let mut session = engine
        .session(&TransactionOptions::new().isolation(IsolationLevel::RepeatableRead))
        .await?;
    let level: String = session
        .query_one("SHOW transaction_isolation", &[])
        .await?
        .get(0);
    assert_eq!(level, "repeatable read");
    session.commit().await?;
    Ok(())
}

/// The same configuration gives the same engine; another gives another.
pub async fn one_engine_per_config(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
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
pub async fn callbacks_run_once_per_physical_connection(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&runs);
    factory.callbacks().register("count", move |_conn| {
        counted.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok(()) })
    });
    factory.callbacks().register("tag", |conn| {
        Box::pin(async move {
            conn.batch_execute("SET application_name = 'uno-db-callback'")
                .await?;
            Ok(())
        })
    });
    let engine = factory.engine(config)?;
    {
        let mut first = engine.connect().await?;
        let _second = engine.connect().await?;
        let name: String = first.query_one("SHOW application_name", &[]).await?.get(0);
        assert_eq!(name, "uno-db-callback");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 2, "two physical connections");
    for _ in 0..5 {
        engine.connect().await?.query_one("SELECT 1", &[]).await?;
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "reused connections do not rerun callbacks"
    );
    Ok(())
}

/// A failing callback discards its connection and names itself.
pub async fn failing_callback_discards_the_connection(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    factory.callbacks().register("bad_sql", |conn| {
        Box::pin(async move {
            conn.batch_execute("SELEC broken").await?;
            Ok(())
        })
    });
    let engine = factory.engine(
        &config
            .to_builder()
            .pool_timeout(Duration::from_secs(2))
            .build()?,
    )?;
    let started = Instant::now();
    let error = engine.connect().await.unwrap_err();
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
    engine.connect().await?.query_one("SELECT 1", &[]).await?;
    Ok(())
}

/// Status and counters follow checkouts and returns.
pub async fn status_and_counters(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(config)?;
    assert_eq!(
        engine.status().max_size,
        config.pool_size() + config.max_overflow()
    );
    {
        let _a = engine.connect().await?;
        let _b = engine.connect().await?;
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
    // A checkout an idle connection serves at once waited for nothing: it
    // counts as a checkout and adds no waiting time.
    drop(engine.connect().await?);
    let after = engine.counters();
    assert_eq!(after.acquired, counters.acquired + 1, "{after:?}");
    assert_eq!(after.total_wait, counters.total_wait, "{after:?}");
    Ok(())
}

/// A disposed engine hands out nothing.
pub async fn dispose_closes_the_engine(
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
    let mut held = engine.connect().await?;
    engine.connect().await?.query_one("SELECT 1", &[]).await?;
    assert_eq!(server_backends(&*admin, &name).await?, 2);
    engine.dispose();
    assert!(engine.is_disposed());
    assert_eq!(
        engine.connect().await.unwrap_err().kind(),
        ErrorKind::PoolClosed
    );
    assert_eq!(engine.status().idle, 0);
    assert!(
        eventually_backends(&*admin, &name, 1).await?,
        "the idle connection closes at once"
    );
    held.query_one("SELECT 1", &[]).await?;
    drop(held);
    assert!(
        eventually_backends(&*admin, &name, 0).await?,
        "the returned one closes within a second"
    );
    assert_eq!(engine.status().size, 0);
    Ok(())
}

/// After a burst, the pool shrinks back to `pool_size`: overflow connections
/// close when returned, on the server too.
pub async fn overflow_shrinks_back(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
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
        burst.push(engine.connect().await?);
    }
    assert_eq!(engine.status().size, 4);
    assert_eq!(
        engine.connect().await.unwrap_err().kind(),
        ErrorKind::PoolTimeout,
        "max is 4"
    );
    drop(burst);
    assert!(
        eventually_backends(&*admin, &name, 1).await?,
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
async fn server_backends(admin: &dyn Engine, name: &str) -> Result<i64> {
    let sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1";
    Ok(admin
        .connect()
        .await?
        .query_one(sql, &[&name])
        .await?
        .get(0))
}

/// Whether the server comes down to `expected` such backends within a second.
async fn eventually_backends(admin: &dyn Engine, name: &str, expected: i64) -> Result<bool> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        if server_backends(admin, name).await? == expected {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An exhausted pool gives a `PoolTimeout` within `pool_timeout` (plus a
/// margin), not a hang.
pub async fn exhausted_pool_times_out(
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
    let _held = engine.connect().await?;
    let started = Instant::now();
    let error = engine.connect().await.unwrap_err();
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
pub async fn unreachable_server_error_carries_the_cause(
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
    let error = engine.connect().await.unwrap_err();
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
pub async fn missing_database_fails_fast(
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
    let error = engine.connect().await.unwrap_err();
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
pub async fn schema_sets_search_path(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    factory
        .engine(config)?
        .connect()
        .await?
        .batch_execute("CREATE SCHEMA app; CREATE TABLE app.only_here (id int)")
        .await?;
    let engine = factory.engine(&config.to_builder().schema("app").build()?)?;
    let mut conn = engine.connect().await?;
    let path: String = conn.query_one("SHOW search_path", &[]).await?.get(0);
    assert!(path.contains("app"), "{path}");
    conn.query("SELECT * FROM only_here", &[]).await?;
    Ok(())
}

/// `set_role` applies on every checkout and does not stick.
pub async fn set_role_applies_on_checkout(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let admin = factory.engine(config)?;
    // Dropped again at the end: roles outlive the test database.
    let roles = TempRoles::new(config, "reader", 1);
    let role = roles.name(0).to_owned();
    admin
        .connect()
        .await?
        .batch_execute(&roles.create_sql())
        .await?;
    let engine = factory.engine(
        &config
            .to_builder()
            .set_role(role.as_str())
            .pool_size(1)
            .max_overflow(0)
            .build()?,
    )?;
    for _ in 0..2 {
        let mut conn = engine.connect().await?;
        let row = conn
            .query_one("SELECT current_user::text, session_user::text", &[])
            .await?;
        assert_eq!(row.get::<_, &str>(0), role);
        assert_ne!(row.get::<_, &str>(1), role);
        // A user switching roles by hand must not leak it to the next checkout.
        conn.batch_execute("RESET ROLE").await?;
    }
    Ok(())
}

/// Statements, with or without parameters, are prepared once per physical
/// connection and then served from its statement cache; with the cache off
/// none stays prepared.
pub async fn statements_are_prepared_once(
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
                let mut conn = engine.connect().await?;
                if sql.contains("$1") {
                    conn.query(sql, &[&i]).await?;
                } else {
                    conn.query(sql, &[]).await?;
                }
            }
            let held: i64 = engine
                .connect()
                .await?
                .query_one(probe, &[&sql])
                .await?
                .get(0);
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
pub async fn returned_transactions_are_cleaned(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    create_counter_table(factory, config).await?;
    let config = config.to_builder().pool_size(1).max_overflow(0).build()?;
    let engine = factory.engine(&config)?;
    {
        let mut conn = engine.connect().await?;
        conn.batch_execute("BEGIN; INSERT INTO counter VALUES (1)")
            .await?;
    }
    {
        let mut conn = engine.connect().await?;
        let idle: bool = conn
            .query_one("SELECT pg_current_xact_id_if_assigned() IS NULL", &[])
            .await?
            .get(0);
        assert!(idle, "no transaction carried over");
        conn.batch_execute("BEGIN").await?;
        assert!(conn.query("SELECT 1 / 0", &[]).await.is_err());
    }
    let mut conn = engine.connect().await?;
    assert_eq!(
        conn.query_one("SELECT 2::int4", &[])
            .await?
            .get::<_, i32>(0),
        2,
        "not an aborted transaction"
    );
    drop(conn);
    assert_eq!(count_rows(factory, &config).await?, 0);
    Ok(())
}

// ---------------------------------------------------------------------------
// Return hygiene: a returned connection comes back clean to the next user.
//
// Each case uses an engine of one connection (`pool_size` 1, `max_overflow`
// 0), so the next checkout gets the same physical connection unless the
// pool discarded it, and checks from inside it that nothing carried over.
// ---------------------------------------------------------------------------

/// The `counter` table, an engine of exactly one connection, and an admin
/// engine (the case's own configuration) to look from outside.
async fn one_connection_engine(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<(Arc<dyn Engine>, Arc<dyn Engine>)> {
    create_counter_table(factory, config).await?;
    let single = config.to_builder().pool_size(1).max_overflow(0).build()?;
    Ok((factory.engine(&single)?, factory.engine(config)?))
}

/// The server process id behind `conn`.
async fn backend_pid(conn: &mut dyn Connection) -> Result<i32> {
    Ok(conn.query_one("SELECT pg_backend_pid()", &[]).await?.get(0))
}

/// Checks, from inside `conn`, that it carries no transaction over: the
/// server refuses a savepoint (no transaction block is open), only the
/// `committed` rows of `counter` are visible (none left uncommitted by the
/// previous user) and the isolation level is the default one.
async fn assert_clean(conn: &mut dyn Connection, committed: i64, context: &str) -> Result<()> {
    match conn.batch_execute(OPEN_TRANSACTION_PROBE).await {
        Ok(()) => panic!(
            "{context}: the next user got a connection inside the previous user's \
             transaction (SAVEPOINT was accepted)"
        ),
        Err(error) if error.sqlstate() == Some(&SqlState::NO_ACTIVE_SQL_TRANSACTION) => {}
        Err(error) if error.sqlstate() == Some(&SqlState::IN_FAILED_SQL_TRANSACTION) => panic!(
            "{context}: the next user got a connection inside the previous user's \
             aborted transaction"
        ),
        Err(error) => panic!("{context}: the open-transaction probe failed otherwise: {error:?}"),
    }
    let visible: i64 = conn
        .query_one("SELECT count(*) FROM counter", &[])
        .await?
        .get(0);
    assert_eq!(
        visible, committed,
        "{context}: the next user sees rows the previous one never committed"
    );
    let default_isolation: bool = conn.query_one(DEFAULT_ISOLATION, &[]).await?.get(0);
    assert!(
        default_isolation,
        "{context}: an isolation level carried over"
    );
    Ok(())
}

/// Waits (bounded) until `condition` holds; fails the case naming `what`.
async fn wait_for<F>(what: &str, mut condition: impl FnMut() -> F) -> Result<()>
where
    F: Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + SERVER_STATE_WAIT;
    while !condition().await? {
        assert!(
            Instant::now() < deadline,
            "{what}: not reached within {SERVER_STATE_WAIT:?}"
        );
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

/// Terminates the backends `pids` from `admin` and waits until they are
/// gone; returns how many the server terminated.
async fn terminate_backends(admin: &dyn Engine, pids: &[i32]) -> Result<i64> {
    let pids = pids.to_vec();
    let mut conn = admin.connect().await?;
    let terminated: i64 = conn.query_one(TERMINATE, &[&pids]).await?.get(0);
    let deadline = Instant::now() + SERVER_STATE_WAIT;
    loop {
        let left: i64 = conn.query_one(STILL_RUNNING, &[&pids]).await?.get(0);
        if left == 0 {
            return Ok(terminated);
        }
        assert!(
            Instant::now() < deadline,
            "the terminated backends to exit: not reached within {SERVER_STATE_WAIT:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Whether backend `pid` runs `pg_sleep`, asked from `admin`.
/// Whether the server runs the statement `sql` in `pg_sleep`.
async fn sleeper_runs(admin: &dyn Engine, sql: &str) -> Result<bool> {
    Ok(admin
        .connect()
        .await?
        .query_opt(SLEEPER, &[&sql])
        .await?
        .is_some())
}

/// The backends of this database whose `application_name` is `name`.
async fn backends_of(admin: &dyn Engine, name: &str) -> Result<Vec<i32>> {
    Ok(admin
        .connect()
        .await?
        .query_one(BACKENDS_OF_APPLICATION, &[&name])
        .await?
        .get(0))
}

/// Pins: `SET application_name = 'x'; BEGIN` on a plain connection, then
/// returning it, rolls the transaction back; the next user of the same
/// pooled connection is outside any transaction and does not see the
/// uncommitted row, which is never committed later either.
pub async fn clean_return_after_set_then_begin(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let (engine, _admin) = one_connection_engine(factory, config).await?;
    {
        let mut conn = engine.connect().await?;
        conn.batch_execute("SET application_name = 'x'; BEGIN")
            .await?;
        conn.execute("INSERT INTO counter VALUES (1)", &[]).await?;
    }
    assert_clean(&mut *engine.connect().await?, 0, "after `SET ...; BEGIN`").await?;
    engine.dispose();
    assert_eq!(
        count_rows(factory, config).await?,
        0,
        "the row was never committed"
    );
    Ok(())
}

/// Pins: a transaction opened after another statement of the same batch
/// is rolled back on return, also when the batch failed. Three batches on a
/// plain connection, each followed by a return and a check that the next
/// user is outside any transaction, at the default isolation level, and
/// sees no uncommitted row:
///
/// - `SELECT 1; START TRANSACTION ISOLATION LEVEL SERIALIZABLE`: the server
///   rejects it (SQLSTATE 25001: the `SELECT` already took a snapshot), and
///   nothing stays open;
/// - `SELECT 1; START TRANSACTION; SET TRANSACTION ISOLATION LEVEL
///   SERIALIZABLE`: rejected too (25001), but it leaves an aborted
///   transaction block open although the call returned an error;
/// - `SHOW search_path; START TRANSACTION ISOLATION LEVEL SERIALIZABLE`,
///   then an `INSERT`: accepted, a serializable transaction stays open.
pub async fn clean_return_after_select_then_start_transaction(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let (engine, _admin) = one_connection_engine(factory, config).await?;
    for (batch, rejected) in SELECT_THEN_START_TRANSACTION {
        {
            let mut conn = engine.connect().await?;
            match (conn.batch_execute(batch).await, rejected) {
                (Ok(()), false) => {
                    conn.execute("INSERT INTO counter VALUES (1)", &[]).await?;
                }
                (Err(error), true) => assert_eq!(
                    error.sqlstate(),
                    Some(&SqlState::ACTIVE_SQL_TRANSACTION),
                    "{batch}: {error:?}"
                ),
                (outcome, _) => panic!("{batch}: unexpected outcome {outcome:?}"),
            }
        }
        assert_clean(
            &mut *engine.connect().await?,
            0,
            &format!("after `{batch}`"),
        )
        .await?;
    }
    engine.dispose();
    assert_eq!(
        count_rows(factory, config).await?,
        0,
        "the row was never committed"
    );
    Ok(())
}

/// Pins: `START TRANSACTION` in a comment and `BEGIN` in a `DO` body open
/// no transaction; run through `batch_execute` and `execute`, they leave
/// the connection usable and clean, and it is reused (same
/// `pg_backend_pid()`): a false positive may cost a `ROLLBACK`, never the
/// connection.
pub async fn clean_return_keeps_the_connection_after_transaction_words(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let (engine, _admin) = one_connection_engine(factory, config).await?;
    let pid = backend_pid(&mut *engine.connect().await?).await?;
    for sql in TRANSACTION_WORDS_ONLY {
        for extended in [false, true] {
            let how = if extended { "execute" } else { "batch_execute" };
            let context = format!("{how}({sql:?})");
            {
                let mut conn = engine.connect().await?;
                if extended {
                    conn.execute(sql, &[]).await?;
                } else {
                    conn.batch_execute(sql).await?;
                }
            }
            let mut conn = engine.connect().await?;
            assert_eq!(
                backend_pid(&mut *conn).await?,
                pid,
                "{context}: the connection was discarded"
            );
            assert_clean(&mut *conn, 0, &context).await?;
        }
    }
    let counters = engine.counters();
    assert_eq!(counters.closed_total(), 0, "{counters:?}");
    Ok(())
}

/// Pins: `COMMIT AND CHAIN` opens a new transaction, which is rolled back
/// on return, not leaked: in a session then dropped, and on a plain
/// connection (`BEGIN; INSERT; COMMIT AND CHAIN; INSERT` in one batch, and
/// statement by statement). Only the rows before each `COMMIT AND CHAIN`
/// are committed.
pub async fn clean_return_after_commit_and_chain(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let (engine, _admin) = one_connection_engine(factory, config).await?;
    {
        let mut session = engine.session(&TransactionOptions::new()).await?;
        session
            .execute("INSERT INTO counter VALUES (1)", &[])
            .await?;
        session.batch_execute("COMMIT AND CHAIN").await?;
        session
            .execute("INSERT INTO counter VALUES (2)", &[])
            .await?;
    }
    assert_clean(
        &mut *engine.connect().await?,
        1,
        "a session after COMMIT AND CHAIN",
    )
    .await?;
    {
        let mut conn = engine.connect().await?;
        conn.batch_execute(
            "BEGIN; INSERT INTO counter VALUES (3); COMMIT AND CHAIN; \
             INSERT INTO counter VALUES (4)",
        )
        .await?;
    }
    assert_clean(
        &mut *engine.connect().await?,
        2,
        "one batch with COMMIT AND CHAIN",
    )
    .await?;
    {
        let mut conn = engine.connect().await?;
        conn.execute("BEGIN", &[]).await?;
        conn.execute("INSERT INTO counter VALUES (5)", &[]).await?;
        conn.execute("COMMIT AND CHAIN", &[]).await?;
        conn.execute("INSERT INTO counter VALUES (6)", &[]).await?;
    }
    assert_clean(
        &mut *engine.connect().await?,
        3,
        "COMMIT AND CHAIN statement by statement",
    )
    .await?;
    engine.dispose();
    let rows = factory
        .engine(config)?
        .connect()
        .await?
        .query("SELECT n FROM counter ORDER BY n", &[])
        .await?;
    let committed: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(committed, [1, 3, 5]);
    Ok(())
}

/// Pins: a statement cancelled mid-flight (async family: the future of
/// `query("SELECT pg_sleep(30)")` dropped once the server runs it) leaves
/// the pool working: after the connection is returned, the next checkout
/// succeeds at once with a clean, working connection, which is another
/// one (the old one's state was unknown, so it was discarded: another
/// `pg_backend_pid()`), and the server runs no `pg_sleep` for the old one
/// any more (it was cancelled, not left running).
pub async fn clean_return_after_cancelled_statement(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let (engine, admin) = one_connection_engine(factory, config).await?;
    let mut conn = engine.connect().await?;
    let pid = backend_pid(&mut *conn).await?;
    let started = Instant::now();
    let sql = unique_sleep();
    {
        let slow = conn.query(&sql, &[]);
        let server_runs_it = wait_for("the server to run pg_sleep", || sleeper_runs(&*admin, &sql));
        tokio::select! {
            outcome = slow => panic!("pg_sleep(30) ended early: {outcome:?}"),
            waited = server_runs_it => waited?,
        }
        // Leaving this block drops the statement's future mid-flight.
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(conn);
    let started = Instant::now();
    let mut next = engine.connect().await?;
    let next_pid = backend_pid(&mut *next).await?;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the next checkout took {:?}",
        started.elapsed()
    );
    if pids_name_connections(config) {
        assert_ne!(
            next_pid, pid,
            "a connection dropped mid-statement was handed out again"
        );
    } else {
        assert!(
            engine.counters().created >= 2,
            "a connection dropped mid-statement was handed out again"
        );
    }
    assert_clean(&mut *next, 0, "after a cancelled statement").await?;
    wait_for(
        "no pg_sleep left running for the cancelled statement",
        || {
            let (admin, sql) = (Arc::clone(&admin), sql.clone());
            async move { Ok(!sleeper_runs(&*admin, &sql).await?) }
        },
    )
    .await?;
    Ok(())
}

/// Pins: a connection whose backend was terminated while it was inside a
/// transaction (a session, then a plain connection after `BEGIN`) cannot
/// be rolled back on return; the pool closes it, and the next checkout
/// gets a fresh, working, clean connection without any error. The
/// counters show each broken connection closed (as broken or dirty).
pub async fn clean_return_after_failed_rollback(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let (engine, admin) = one_connection_engine(factory, config).await?;
    for in_session in [true, false] {
        let context = if in_session {
            "a session"
        } else {
            "a plain connection after BEGIN"
        };
        let before = engine.counters();
        let pid = if in_session {
            let mut session = engine.session(&TransactionOptions::new()).await?;
            session
                .execute("INSERT INTO counter VALUES (1)", &[])
                .await?;
            let pid: i32 = session
                .query_one("SELECT pg_backend_pid()", &[])
                .await?
                .get(0);
            assert_eq!(terminate_backends(&*admin, &[pid]).await?, 1);
            drop(session);
            pid
        } else {
            let mut conn = engine.connect().await?;
            conn.batch_execute("BEGIN; INSERT INTO counter VALUES (1)")
                .await?;
            let pid = backend_pid(&mut *conn).await?;
            assert_eq!(terminate_backends(&*admin, &[pid]).await?, 1);
            drop(conn);
            pid
        };
        let mut conn = engine
            .connect()
            .await
            .unwrap_or_else(|error| panic!("{context}: the next checkout failed: {error:?}"));
        assert_ne!(
            backend_pid(&mut *conn).await?,
            pid,
            "{context}: a dead connection"
        );
        assert_clean(&mut *conn, 0, context).await?;
        drop(conn);
        let counters = engine.counters();
        let closed = |c: PoolCounters| c.closed(CloseReason::Broken) + c.closed(CloseReason::Dirty);
        assert_eq!(
            closed(counters) - closed(before),
            1,
            "{context}: the broken connection is counted closed once: {counters:?}"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Faults on a real server. Named `fault_*`; most fail on the backends as they
// were when these cases were written: each pins the behaviour its doc says.
// ---------------------------------------------------------------------------

/// A throwaway cluster of the case's own, which it may stop and start,
/// and a database on it; both made off the runtime's threads.
pub(super) async fn throwaway_database() -> (Arc<TestCluster>, TestDb) {
    let cluster = tokio::task::spawn_blocking(|| TestCluster::new().expect("a throwaway cluster"))
        .await
        .map(Arc::new)
        .expect("starting the cluster");
    let db = {
        let cluster = Arc::clone(&cluster);
        tokio::task::spawn_blocking(move || cluster.test_db().expect("a database on the cluster"))
            .await
            .expect("creating the database")
    };
    (cluster, db)
}

/// Pins: a server back within `pool_timeout` is used. The server (a
/// throwaway cluster) is stopped; a checkout starts with `pool_timeout`
/// 4 s and the default retry policy; the server starts again about 1 s
/// later, from another task. The checkout must succeed, instead of giving
/// up with the connect error once its retries are spent.
pub async fn fault_server_back_within_pool_timeout_is_used(
    factory: &dyn EngineFactory,
    _config: &ConnectionConfig,
) -> Result<()> {
    let (cluster, db) = throwaway_database().await;
    let config = super::case_config(db.url())?
        .to_builder()
        .pool_size(1)
        .max_overflow(0)
        .pool_timeout(OUTAGE_POOL_TIMEOUT)
        .retry(RetryPolicy::default())
        .build()?;
    let engine = factory.engine(&config)?;
    {
        let cluster = Arc::clone(&cluster);
        tokio::task::spawn_blocking(move || cluster.stop().expect("stopping the cluster"))
            .await
            .expect("stopping the cluster");
    }
    let restarter = {
        let cluster = Arc::clone(&cluster);
        tokio::spawn(async move {
            // The outage itself: how long the server stays away.
            tokio::time::sleep(OUTAGE).await;
            tokio::task::spawn_blocking(move || {
                cluster.start().expect("starting the cluster again");
                Instant::now()
            })
            .await
            .expect("starting the cluster again")
        })
    };
    let started = Instant::now();
    let outcome = engine.connect().await;
    let waited = started.elapsed();
    let back_at = restarter.await.expect("the restarter");
    assert!(
        back_at < started + OUTAGE_POOL_TIMEOUT,
        "the server took {:?} to come back: the case proves nothing",
        back_at - started
    );
    let mut conn = outcome.unwrap_or_else(|error| {
        panic!(
            "the checkout gave up after {waited:?}, although the server was back after \
             {:?}, within pool_timeout ({OUTAGE_POOL_TIMEOUT:?}): {error:?}",
            back_at - started
        )
    });
    assert_eq!(
        conn.query_one("SELECT 1::int4", &[])
            .await?
            .get::<_, i32>(0),
        1
    );
    assert!(waited < OUTAGE_POOL_TIMEOUT + TIMEOUT_SLACK, "{waited:?}");
    drop(conn);
    engine.dispose();
    Ok(())
}

/// A proxy in front of the case's server and a configuration through it.
fn through_proxy(config: &ConnectionConfig) -> Result<(FaultProxy, ConnectionConfig)> {
    let host = config.hosts().first().map_or("127.0.0.1", String::as_str);
    let upstream = std::net::ToSocketAddrs::to_socket_addrs(&(host, config.port()))
        .ok()
        .and_then(|mut addrs| addrs.next())
        .expect("the case's server is reachable over TCP");
    let proxy = FaultProxy::start(upstream).expect("a fault proxy");
    let proxied = config
        .to_builder()
        .host("127.0.0.1")
        .port(proxy.port())
        .build()?;
    Ok((proxy, proxied))
}

/// Pins: a statement still running on a live server when `query_timeout`
/// passes fails with [`ErrorKind::QueryTimeout`] within the timeout plus
/// 250 ms, is cancelled on the server (its `pg_sleep` disappears from
/// `pg_stat_activity`), and its connection is discarded: the next checkout
/// gets another backend.
pub async fn fault_slow_statement_fails_within_query_timeout(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let config = one_connection_under_query_timeout(config)?;
    let engine = factory.engine(&config)?;
    let admin = factory.engine(&config.to_builder().query_timeout(None).build()?)?;
    let mut conn = engine.connect().await?;
    let pid = backend_pid(&mut *conn).await?;
    let sql = unique_sleep();
    let started = Instant::now();
    let error = conn
        .query(&sql, &[])
        .await
        .expect_err("a 30 s statement under a 1 s query_timeout");
    let elapsed = started.elapsed();
    assert_eq!(error.kind(), ErrorKind::QueryTimeout, "{error:?}");
    assert!(
        elapsed <= QUERY_TIMEOUT + TIMEOUT_SLACK,
        "failed after {elapsed:?}, not within {QUERY_TIMEOUT:?} + {TIMEOUT_SLACK:?}"
    );
    drop(conn);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut watcher = admin.connect().await?;
        let sleeping: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE query = $1 AND state = 'active'",
                &[&sql],
            )
            .await?
            .get(0);
        if sleeping == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the timed-out statement still runs on the server"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fresh = backend_pid(&mut *engine.connect().await?).await?;
    if pids_name_connections(&config) {
        assert_ne!(fresh, pid, "the timed-out connection was reused");
    } else {
        assert!(
            engine.counters().created >= 2,
            "the timed-out connection was reused"
        );
    }
    Ok(())
}

/// Pins: with `discard_on_return`, a returned connection keeps nothing of
/// its user's session (settings, temporary tables, prepared statements)
/// but gets the configured search path back, and statements the pool had
/// cached are prepared again rather than failing.
pub async fn discard_on_return_resets_the_whole_session(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    factory
        .engine(config)?
        .connect()
        .await?
        .batch_execute("CREATE SCHEMA IF NOT EXISTS configured_schema")
        .await?;
    let engine = factory.engine(
        &config
            .to_builder()
            .schema("configured_schema")
            .discard_on_return(true)
            .pool_size(1)
            .max_overflow(0)
            .build()?,
    )?;
    let pid = {
        let mut conn = engine.connect().await?;
        conn.batch_execute(
            "SET statement_timeout = '7min'; CREATE TEMP TABLE scratch (x int); \
             PREPARE mine AS SELECT 1",
        )
        .await?;
        conn.query_one("SELECT $1::int4", &[&1_i32]).await?;
        backend_pid(&mut *conn).await?
    };
    let mut conn = engine.connect().await?;
    assert_eq!(
        backend_pid(&mut *conn).await?,
        pid,
        "the same connection, reset"
    );
    let row = conn
        .query_one(
            "SELECT current_setting('statement_timeout'), current_setting('search_path'), \
         (SELECT count(*) FROM pg_prepared_statements WHERE name = 'mine'), \
         to_regclass('pg_temp.scratch') IS NULL",
            &[],
        )
        .await?;
    assert_ne!(row.get::<_, &str>(0), "7min", "the user's setting survived");
    assert!(
        row.get::<_, &str>(1).contains("configured_schema"),
        "{}",
        row.get::<_, &str>(1)
    );
    assert_eq!(
        row.get::<_, i64>(2),
        0,
        "the user's prepared statement survived"
    );
    assert!(row.get::<_, bool>(3), "the temporary table survived");
    // The pool's own cached statement was dropped too: it is prepared again.
    assert_eq!(
        conn.query_one("SELECT $1::int4", &[&2_i32])
            .await?
            .get::<_, i32>(0),
        2
    );
    Ok(())
}

/// Pins: statements shorter than `query_timeout` complete, one of most of
/// the limit and a run of short ones on one connection that lasts longer
/// than the limit in all: the limit counts from each statement's start,
/// never from an earlier statement's.
pub async fn statements_within_query_timeout_complete(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let config = one_connection_under_query_timeout(config)?;
    let engine = factory.engine(&config)?;
    let mut conn = engine.connect().await?;
    conn.query("SELECT pg_sleep(0.7)", &[]).await?;
    let started = Instant::now();
    let mut statements = 0_u32;
    while started.elapsed() < QUERY_TIMEOUT * 2 {
        conn.query("SELECT pg_sleep(0.01)", &[]).await?;
        statements += 1;
    }
    assert!(
        statements > 10,
        "{statements} statements in {:?}",
        started.elapsed()
    );
    Ok(())
}

/// Pins: a transaction's own `query_timeout` (`TransactionOptions`)
/// limits its statements even on an engine without one, and ends with the
/// transaction: the next user of the pool has no limit.
pub async fn transaction_query_timeout_limits_only_its_transaction(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(
        &config
            .to_builder()
            .query_timeout(None)
            .pool_size(1)
            .max_overflow(0)
            .build()?,
    )?;
    let limit = Duration::from_millis(500);
    let mut session = engine
        .session(&TransactionOptions::new().query_timeout(limit))
        .await?;
    let started = Instant::now();
    let error = session
        .query("SELECT pg_sleep(5)", &[])
        .await
        .expect_err("a 5 s statement in a transaction limited to 500 ms");
    let elapsed = started.elapsed();
    assert_eq!(error.kind(), ErrorKind::QueryTimeout, "{error:?}");
    assert!(
        elapsed <= limit + TIMEOUT_SLACK,
        "failed after {elapsed:?}, not within {limit:?} + {TIMEOUT_SLACK:?}"
    );
    drop(session);
    let mut conn = engine.connect().await?;
    conn.query("SELECT pg_sleep(0.8)", &[]).await?;
    drop(conn);
    let mut session = engine.session(&TransactionOptions::new()).await?;
    session.query("SELECT pg_sleep(0.8)", &[]).await?;
    session.commit().await?;
    Ok(())
}

/// Pins: a black-holed statement fails within its timeout plus 250 ms. The
/// configuration sets the client-side statement timeout with the URL
/// parameter `query_timeout=1s` (rejected by URL parsing before the
/// parameter existed, which fails the case too). A warm connection goes
/// through a [`FaultProxy`] that then black-holes: `query_one("SELECT 1")`
/// must fail with [`ErrorKind::QueryTimeout`] within 1.25 s, and once the
/// proxy is restored the next checkout gets a fresh connection (another
/// `pg_backend_pid()`), never the timed-out one.
pub async fn fault_black_holed_statement_fails_within_query_timeout(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let (proxy, proxied) = through_proxy(config)?;
    let url = with_url_param(
        &proxied.to_url_with_password(),
        "query_timeout",
        &format!("{}s", QUERY_TIMEOUT.as_secs()),
    );
    let config = url
        .parse::<ConnectionConfig>()?
        .to_builder()
        .pool_size(1)
        .max_overflow(0)
        .pre_ping(false)
        .build()?;
    let engine = factory.engine(&config)?;
    let warm_pid = backend_pid(&mut *engine.connect().await?).await?;
    proxy.black_hole().expect("black-holing the proxy");
    let mut conn = engine.connect().await?;
    let started = Instant::now();
    let limit = QUERY_TIMEOUT + Duration::from_secs(5);
    let outcome = tokio::time::timeout(limit, conn.query_one("SELECT 1", &[]))
        .await
        .unwrap_or_else(|_| {
            panic!("a black-holed SELECT 1 with query_timeout=1s: still running after {limit:?}")
        })
        .map(|_| ());
    let elapsed = started.elapsed();
    let error = outcome.expect_err("a black-holed statement cannot succeed");
    assert_eq!(error.kind(), ErrorKind::QueryTimeout, "{error:?}");
    assert!(
        elapsed <= QUERY_TIMEOUT + TIMEOUT_SLACK,
        "failed after {elapsed:?}, not within {QUERY_TIMEOUT:?} + {TIMEOUT_SLACK:?}"
    );
    drop(conn);
    proxy.restore().expect("restoring the proxy");
    let fresh_pid = backend_pid(&mut *engine.connect().await?).await?;
    assert_ne!(fresh_pid, warm_pid, "the timed-out connection was reused");
    engine.dispose();
    Ok(())
}

/// What the load workers of the "terminated under load" cases count.
#[derive(Default)]
struct LoadTally {
    ok: AtomicUsize,
    failures: std::sync::Mutex<Vec<String>>,
}

impl LoadTally {
    /// One checkout plus `SELECT pg_backend_pid()`, counted.
    async fn operation(&self, engine: &dyn Engine) {
        let outcome = match engine.connect().await {
            Ok(mut conn) => backend_pid(&mut *conn).await,
            Err(error) => Err(error),
        };
        match outcome {
            Ok(_) => {
                self.ok.fetch_add(1, Ordering::SeqCst);
            }
            Err(error) => self
                .failures
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(format!("{error:?}")),
        }
    }

    fn failures(&self) -> Vec<String> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// The engines of the "terminated under load" cases.
struct LoadEngines {
    /// [`LOAD_WORKERS`] connections under their own `application_name`.
    engine: Arc<dyn Engine>,
    /// The case's configuration, to terminate from.
    admin: Arc<dyn Engine>,
    /// The `application_name` of `engine`'s connections.
    name: String,
}

fn load_engine(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
    pre_ping: bool,
) -> Result<LoadEngines> {
    let name = unique_application_name("load");
    let engine = factory.engine(
        &config
            .to_builder()
            .application_name(name.as_str())
            .pool_size(LOAD_WORKERS)
            .max_overflow(0)
            .pre_ping(pre_ping)
            .build()?,
    )?;
    Ok(LoadEngines {
        engine,
        admin: factory.engine(config)?,
        name,
    })
}

/// Pins: terminating pooled backends under concurrent load costs at most
/// one failed operation per terminated backend. A pool of 8 (`pre_ping`
/// off), 8 tasks looping checkout + `SELECT pg_backend_pid()`; at 3
/// points, while they run, an admin connection terminates every backend of
/// the pool (by `application_name`). Of all operations, at most N (the
/// number of backends terminated) may fail; the load runs on afterwards.
pub async fn fault_terminated_backends_under_load_fail_at_most_once_each(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let LoadEngines {
        engine,
        admin,
        name,
    } = load_engine(factory, config, false)?;
    let tally = Arc::new(LoadTally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..LOAD_WORKERS)
        .map(|_| {
            let (engine, tally, stop) =
                (Arc::clone(&engine), Arc::clone(&tally), Arc::clone(&stop));
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    tally.operation(&*engine).await;
                }
            })
        })
        .collect();
    let mut terminated = 0;
    for point in 0..=TERMINATION_POINTS {
        let target = tally.ok.load(Ordering::SeqCst) + OPS_BETWEEN_POINTS;
        wait_for("the load to make progress", || {
            let reached = tally.ok.load(Ordering::SeqCst) >= target;
            async move { Ok(reached) }
        })
        .await?;
        if point < TERMINATION_POINTS {
            let pids = backends_of(&*admin, &name).await?;
            let now = terminate_backends(&*admin, &pids).await?;
            assert!(now > 0, "point {point}: nothing to terminate");
            terminated += now;
        }
    }
    stop.store(true, Ordering::SeqCst);
    for worker in workers {
        worker.await.expect("a load worker");
    }
    let failures = tally.failures();
    assert!(
        i64::try_from(failures.len()).unwrap_or(i64::MAX) <= terminated,
        "{} operations failed for {terminated} terminated backends: {failures:#?}",
        failures.len()
    );
    Ok(())
}

/// Pins: with `pre_ping`, backends terminated while idle in the pool cost
/// no failed operation, under concurrent load. Same pool and workers as
/// [`fault_terminated_backends_under_load_fail_at_most_once_each`], but
/// with `pre_ping` on and the workers stopped at each of the 3 points
/// (between two bursts of load), so that every terminated backend is idle
/// in the pool: a statement already running on a backend being terminated
/// fails whatever the pool does, so only idle ones can have a bar of 0.
/// Every operation must succeed.
pub async fn fault_terminated_backends_with_pre_ping_never_fail(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let LoadEngines {
        engine,
        admin,
        name,
    } = load_engine(factory, config, true)?;
    let tally = Arc::new(LoadTally::default());
    let mut terminated = 0;
    for point in 0..=TERMINATION_POINTS {
        let workers: Vec<_> = (0..LOAD_WORKERS)
            .map(|_| {
                let (engine, tally) = (Arc::clone(&engine), Arc::clone(&tally));
                tokio::spawn(async move {
                    for _ in 0..OPS_BETWEEN_POINTS / LOAD_WORKERS + 2 {
                        tally.operation(&*engine).await;
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.await.expect("a load worker");
        }
        if point < TERMINATION_POINTS {
            let pids = backends_of(&*admin, &name).await?;
            let now = terminate_backends(&*admin, &pids).await?;
            assert!(now > 0, "point {point}: nothing to terminate");
            terminated += now;
        }
    }
    let failures = tally.failures();
    assert!(
        failures.is_empty(),
        "{} operations failed ({terminated} idle backends terminated, pre_ping on): {failures:#?}",
        failures.len()
    );
    Ok(())
}

/// Pins: a connection whose backend was terminated while idle in the pool
/// is never handed out dead, even without `pre_ping`, once it has been idle
/// for the kernel's alive-bypass window (500 ms, HikariCP's
/// `aliveBypassWindowMs`; within it, see
/// `fault_connection_dead_within_the_alive_window_fails_once`). Two connections are
/// returned idle, their backends terminated (and gone); the next four
/// checkouts each run `SELECT pg_backend_pid()` without a failure, on
/// backends other than the terminated ones.
pub async fn fault_terminated_idle_connection_is_never_handed_out(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(
        &config
            .to_builder()
            .pool_size(2)
            .max_overflow(0)
            .pre_ping(false)
            .build()?,
    )?;
    let admin = factory.engine(config)?;
    let mut first = engine.connect().await?;
    let mut second = engine.connect().await?;
    let old = [
        backend_pid(&mut *first).await?,
        backend_pid(&mut *second).await?,
    ];
    drop((first, second));
    let returned = Instant::now();
    assert_eq!(terminate_backends(&*admin, &old).await?, 2);
    // Idleness is what is under test: wait out the window.
    tokio::time::sleep_until((returned + ALIVE_BYPASS_WINDOW).into()).await;
    let mut failures = Vec::new();
    for i in 0..4 {
        let outcome = match engine.connect().await {
            Ok(mut conn) => backend_pid(&mut *conn).await,
            Err(error) => Err(error),
        };
        match outcome {
            Ok(pid) => assert!(!old.contains(&pid), "checkout {i}: a terminated backend"),
            Err(error) => failures.push(format!("checkout {i}: {error:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "dead connections were handed out: {failures:#?}"
    );
    Ok(())
}

/// Pins: a connection terminated within the alive-bypass window of its last
/// use may be handed out (no check is made then, as in HikariCP), but it
/// fails once, as a transient [`ErrorKind::Closed`] (the session is gone),
/// and is never handed out again: the next checkout gets a new backend.
pub async fn fault_connection_dead_within_the_alive_window_fails_once(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(
        &config
            .to_builder()
            .pool_size(1)
            .max_overflow(0)
            .pre_ping(false)
            .build()?,
    )?;
    let admin = factory.engine(config)?;
    let mut conn = engine.connect().await?;
    let old = backend_pid(&mut *conn).await?;
    drop(conn);
    assert_eq!(terminate_backends(&*admin, &[old]).await?, 1);
    let mut conn = engine.connect().await?;
    match backend_pid(&mut *conn).await {
        Ok(pid) => assert_ne!(pid, old, "a terminated backend answered"),
        Err(error) => {
            assert_eq!(error.kind(), ErrorKind::Closed, "{error:?}");
            assert!(error.is_transient(), "{error:?}");
        }
    }
    drop(conn);
    let mut conn = engine.connect().await?;
    let pid = backend_pid(&mut *conn).await?;
    assert_ne!(pid, old, "a dead connection was handed out twice");
    Ok(())
}

/// Pins: waiters are served first come, first served. A pool of 4 is held
/// entirely; 32 tasks then ask for a connection one after the other, each
/// starting only once `status().waiting` shows the previous one waiting
/// (arrival order). The held connections are released one at a time, and
/// each served waiter's connection is released only after it was recorded,
/// so exactly one connection is free at a time. Tolerance: no waiter may
/// be overtaken by more than one later arrival (`FIFO_TOLERANCE`).
pub async fn fault_waiters_are_served_first_come_first_served(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(
        &config
            .to_builder()
            .pool_size(FIFO_POOL)
            .max_overflow(0)
            .pool_timeout(Duration::from_secs(8))
            .build()?,
    )?;
    let mut held = Vec::new();
    for _ in 0..FIFO_POOL {
        held.push(engine.connect().await?);
    }
    let (served, mut serve_order) = tokio::sync::mpsc::unbounded_channel();
    let mut waiters = Vec::new();
    for index in 0..FIFO_WAITERS {
        let (waiter_engine, served) = (Arc::clone(&engine), served.clone());
        waiters.push(tokio::spawn(async move {
            let _ = served.send((index, waiter_engine.connect().await));
        }));
        wait_for("the waiter to be counted", || {
            let counted = engine.status().waiting > index;
            async move { Ok(counted) }
        })
        .await?;
    }
    let mut order = Vec::new();
    let mut free = held.into_iter();
    let mut release: Option<Box<dyn Connection>> = free.next();
    while order.len() < FIFO_WAITERS {
        drop(release.take());
        let (index, conn) = tokio::time::timeout(Duration::from_secs(5), serve_order.recv())
            .await
            .expect("a waiter served after a release")
            .expect("the waiters' channel");
        order.push(index);
        release = Some(conn.unwrap_or_else(|error| panic!("waiter {index}: {error:?}")));
    }
    drop((release, free));
    for waiter in waiters {
        waiter.await.expect("a waiter");
    }
    let (waiter, overtaken_by) = worst_overtaking(&order);
    assert!(
        overtaken_by <= FIFO_TOLERANCE,
        "waiter {waiter} was overtaken by {overtaken_by} later arrivals; served: {order:?}"
    );
    Ok(())
}

/// Pins: `search_path` and the role are restored after any change a user
/// makes. A pool of one with `set_role` and `schema` configured; the user
/// switches both (`SET ROLE other; SET search_path = other_schema`, then
/// through `set_config`) and returns the connection; the next user sees the
/// configured role (`current_user`) and the configured `search_path`
/// (`SHOW search_path` as on a fresh connection).
pub async fn fault_role_and_search_path_are_restored_after_user_change(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let roles = TempRoles::new(config, "role", 2);
    let (configured_role, other_role) = (roles.name(0), roles.name(1));
    let admin = factory.engine(config)?;
    admin
        .connect()
        .await?
        .batch_execute(&format!(
            "{} CREATE SCHEMA configured_schema; CREATE SCHEMA other_schema",
            roles.create_sql()
        ))
        .await?;
    let engine = factory.engine(
        &config
            .to_builder()
            .set_role(configured_role)
            .schema("configured_schema")
            .pool_size(1)
            .max_overflow(0)
            .build()?,
    )?;
    let configured_path: String = engine
        .connect()
        .await?
        .query_one("SHOW search_path", &[])
        .await?
        .get(0);
    assert!(
        configured_path.contains("configured_schema"),
        "{configured_path}"
    );
    let changes = [
        format!("SET ROLE {other_role}; SET search_path = other_schema"),
        format!(
            "SELECT set_config('role', '{other_role}', false), \
             set_config('search_path', 'other_schema', false)"
        ),
    ];
    for change in &changes {
        {
            let mut conn = engine.connect().await?;
            conn.batch_execute(change).await?;
            let user: String = conn
                .query_one("SELECT current_user::text", &[])
                .await?
                .get(0);
            assert_eq!(user, other_role, "the change took: {change}");
        }
        let mut conn = engine.connect().await?;
        let row = conn
            .query_one(
                "SELECT current_user::text, current_setting('search_path')",
                &[],
            )
            .await?;
        assert_eq!(
            row.get::<_, &str>(0),
            configured_role,
            "role after: {change}"
        );
        assert_eq!(
            row.get::<_, &str>(1),
            configured_path,
            "search_path after: {change}"
        );
    }
    engine.dispose();
    Ok(())
}

/// Defines one `#[test]` per async conformance case, each with a fresh
/// database, its own multi-threaded tokio runtime and an outer timeout
/// ([`CASE_TIMEOUT`](crate::conformance::CASE_TIMEOUT), or the case's own
/// `within` seconds). `$factory` is an expression evaluated per test that
/// makes a `nonblocking::EngineFactory`.
///
/// The return-hygiene cases are named `clean_return_*` and the fault cases
/// `fault_*`, so that a test-name filter runs just them.
#[macro_export]
macro_rules! nonblocking_conformance {
    ($factory:expr) => {
        $crate::nonblocking_conformance!(@cases $factory;
            query_with_params_and_rows,
            query_one_and_query_opt_count_rows,
            execute_and_batch_execute,
            prepare_describes_the_statement,
            query_error_keeps_the_connection_usable,
            sessions_commit_rollback_and_drop,
            client_runs_on_connections_and_sessions,
            prepared_statements_run_in_place_of_text,
            statements_from_another_connection_are_refused,
            rows_that_do_not_map_name_the_column,
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
            overflow_shrinks_back,
            // Return hygiene (kernel decisions).
            clean_return_after_set_then_begin within 30,
            clean_return_after_select_then_start_transaction within 30,
            clean_return_keeps_the_connection_after_transaction_words within 30,
            clean_return_after_commit_and_chain within 30,
            clean_return_after_cancelled_statement within 45,
            clean_return_after_failed_rollback within 30,
            // Faults on a real server; most fail before the lifecycle kernel.
            fault_server_back_within_pool_timeout_is_used within 30,
            fault_black_holed_statement_fails_within_query_timeout within 30,
            fault_slow_statement_fails_within_query_timeout within 30,
            transaction_query_timeout_limits_only_its_transaction within 30,
            statements_within_query_timeout_complete within 30,
            fault_terminated_backends_under_load_fail_at_most_once_each within 30,
            fault_terminated_backends_with_pre_ping_never_fail within 30,
            fault_terminated_idle_connection_is_never_handed_out within 30,
            fault_connection_dead_within_the_alive_window_fails_once within 30,
            fault_waiters_are_served_first_come_first_served within 30,
            discard_on_return_resets_the_whole_session,
            fault_role_and_search_path_are_restored_after_user_change within 30,
        );
    };
    (@cases $factory:expr; $($case:ident $(within $secs:literal)?),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::run_with_timeout($crate::conformance::case_timeout(&[$($secs)?]), || {
                    let db = $crate::TestDb::new().expect("a test database");
                    let config = $crate::conformance::case_config(db.url()).expect("a valid config");
                    let runtime = $crate::conformance::tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .enable_all()
                        .build()
                        .expect("a tokio runtime");
                    runtime.block_on(async {
                        let factory = $factory;
                        $crate::conformance::nonblocking::$case(&factory, &config)
                            .await
                            .expect(stringify!($case));
                        $crate::conformance::uno_db_core::nonblocking::EngineFactory::dispose_all(&factory);
                    });
                    // Let the connection tasks close before the database is dropped.
                    runtime.shutdown_timeout(::std::time::Duration::from_secs(5));
                });
            }
        )*
    };
}
