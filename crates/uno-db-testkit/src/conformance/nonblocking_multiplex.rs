//! The multiplexed mode of the async family
//! ([`Engine::multiplexed`](uno_db_core::nonblocking::Engine::multiplexed)):
//! the statement cases of [`nonblocking`] that apply
//! to a client without a connection of its own, run on the multiplexed
//! client, and the mode's own rules (session statements refused, callers
//! isolated, the engine's connection setup applied to shared connections).
//! Named `multiplex_*`, so that a test filter picks them out.
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

use uno_db_core::nonblocking::{Client, ClientExt, EngineFactory};
use uno_db_core::{ConnectionConfig, ErrorKind, Result, SqlState};

use super::nonblocking;
use super::shared::{BAD_PAIRS, Pair};

/// How many shared connections the cases ask for.
const SHARED: usize = 2;
/// How many callers the concurrent cases run at once.
const CALLERS: i32 = 64;

/// `config` with the multiplexed mode on.
fn multiplexed(config: &ConnectionConfig) -> Result<ConnectionConfig> {
    config.to_builder().multiplex_connections(SHARED).build()
}

/// The multiplexed client of the engine for `config`.
fn client(factory: &dyn EngineFactory, config: &ConnectionConfig) -> Result<Box<dyn Client>> {
    factory.engine(&multiplexed(config)?)?.multiplexed()
}

/// As [`nonblocking::query_with_params_and_rows`].
pub async fn multiplex_query_with_params_and_rows(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    nonblocking::query_with_params_and_rows_on(&mut *client(factory, config)?).await
}

/// As [`nonblocking::query_one_and_query_opt_count_rows`].
pub async fn multiplex_query_one_and_query_opt_count_rows(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    nonblocking::query_one_and_query_opt_count_rows_on(&mut *client(factory, config)?).await
}

/// As [`nonblocking::execute_and_batch_execute`].
pub async fn multiplex_execute_and_batch_execute(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    nonblocking::execute_and_batch_execute_on(&mut *client(factory, config)?).await
}

/// As [`nonblocking::prepare_describes_the_statement`].
pub async fn multiplex_prepare_describes_the_statement(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    nonblocking::prepare_describes_the_statement_on(&mut *client(factory, config)?).await
}

/// As [`nonblocking::query_error_keeps_the_connection_usable`].
pub async fn multiplex_query_error_keeps_the_client_usable(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    nonblocking::query_error_keeps_the_connection_usable_on(&mut *client(factory, config)?).await
}

/// A row that does not map is a `Decode` error naming the column; the
/// client serves the next statement.
pub async fn multiplex_rows_that_do_not_map_name_the_column(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let mut client = client(factory, config)?;
    let good: Vec<Pair> = client
        .query_as(
            "SELECT g::int8 AS id, g::text AS label FROM generate_series(1, 2) AS g",
            &[],
        )
        .await?;
    assert_eq!((good[1].id, good[1].label.as_deref()), (2, Some("2")));
    for (sql, column) in BAD_PAIRS {
        let error = client.query_one_as::<Pair>(sql, &[]).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Decode, "{sql}: {error:?}");
        assert!(error.to_string().contains(column), "{sql}: {error}");
        assert_eq!(client.query_one("SELECT 1", &[]).await?.get::<_, i32>(0), 1);
    }
    Ok(())
}

/// Statements that change or rely on session state are refused with
/// `Unsupported` naming the way out, before anything is sent; the mode is
/// refused unless configured.
pub async fn multiplex_session_statements_are_refused(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let off = factory.engine(config)?;
    assert_eq!(
        off.multiplexed().unwrap_err().kind(),
        ErrorKind::Unsupported,
        "multiplex_connections is 0 by default"
    );
    let mut client = client(factory, config)?;
    for sql in [
        "SET statement_timeout = 0",
        "RESET ALL",
        "BEGIN",
        "START TRANSACTION",
        "LISTEN channel",
        "PREPARE p AS SELECT 1",
        "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
        "CREATE TEMPORARY TABLE t (a int)",
        "SELECT pg_advisory_lock(42)",
        "SELECT set_config('work_mem', '1GB', false)",
        "DO $$ BEGIN PERFORM 1; END $$",
    ] {
        for error in [
            client.execute(sql, &[]).await.unwrap_err(),
            client.query(sql, &[]).await.unwrap_err(),
            client.batch_execute(sql).await.unwrap_err(),
        ] {
            assert_eq!(error.kind(), ErrorKind::Unsupported, "{sql}: {error:?}");
            assert!(error.to_string().contains("session()"), "{sql}: {error}");
        }
    }
    // A transaction-scoped lock is the caller's own statement's: allowed.
    client
        .query("SELECT pg_advisory_xact_lock(42)", &[])
        .await?;
    Ok(())
}

/// Many callers at once each get their own rows, and one caller's error
/// reaches only that caller.
pub async fn multiplex_callers_get_their_own_rows_and_errors(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(&multiplexed(config)?)?;
    let tasks: Vec<_> = (0..CALLERS)
        .map(|caller| {
            let client = engine.multiplexed();
            tokio::spawn(async move {
                let mut client = client?;
                for round in 0..10_i32 {
                    let value = caller * 100 + round;
                    if (caller + round) % 5 == 0 {
                        let error = client
                            .query_one("SELECT $1::int4 / 0", &[&value])
                            .await
                            .unwrap_err();
                        assert_eq!(error.sqlstate(), Some(&SqlState::DIVISION_BY_ZERO));
                        continue;
                    }
                    let row = client
                        .query_one("SELECT $1::int4, $2::text", &[&value, &value.to_string()])
                        .await?;
                    assert_eq!(row.get::<_, i32>(0), value, "caller {caller}");
                    assert_eq!(row.get::<_, String>(1), value.to_string());
                }
                Ok::<(), uno_db_core::Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a caller panicked")?;
    }
    let mut client = engine.multiplexed()?;
    let pids = client
        .query(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
            &[],
        )
        .await?;
    assert!(
        pids[0].get::<_, i64>(0) < i64::try_from(SHARED).unwrap_or(i64::MAX),
        "only the shared connections served the callers"
    );
    Ok(())
}

/// Shared connections are set up as pooled ones: the configured search
/// path and the factory's callbacks, once per physical connection.
pub async fn multiplex_shared_connections_get_the_connection_setup(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    factory
        .engine(config)?
        .connect()
        .await?
        .batch_execute("CREATE SCHEMA app; CREATE TABLE app.only_here (id int)")
        .await?;
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&runs);
    factory.callbacks().register("tag", move |conn| {
        counted.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            conn.batch_execute("SET application_name = 'uno-db-shared'")
                .await?;
            Ok(())
        })
    });
    let engine = factory.engine(&multiplexed(&config.to_builder().schema("app").build()?)?)?;
    let mut client = engine.multiplexed()?;
    for _ in 0..10 {
        client.query("SELECT * FROM only_here", &[]).await?;
        let name: String = client.query_one("SHOW application_name", &[]).await?.get(0);
        assert_eq!(name, "uno-db-shared");
    }
    assert!(
        (1..=SHARED).contains(&runs.load(Ordering::SeqCst)),
        "callbacks ran once per shared connection"
    );
    Ok(())
}

/// A disposed engine's multiplexed clients refuse statements with
/// `PoolClosed`, and it hands out no new client.
pub async fn multiplex_dispose_closes_the_client(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(&multiplexed(config)?)?;
    let mut client = engine.multiplexed()?;
    client.query("SELECT 1", &[]).await?;
    engine.dispose();
    assert_eq!(
        client.query("SELECT 1", &[]).await.unwrap_err().kind(),
        ErrorKind::PoolClosed
    );
    assert_eq!(
        engine.multiplexed().unwrap_err().kind(),
        ErrorKind::PoolClosed
    );
    Ok(())
}

/// Defines one `#[test]` per multiplexed-mode case, each with a fresh
/// database, its own tokio runtime and an outer timeout, as
/// [`nonblocking_conformance!`](crate::nonblocking_conformance).
#[macro_export]
macro_rules! nonblocking_multiplex_conformance {
    ($factory:expr) => {
        $crate::nonblocking_multiplex_conformance!(@cases $factory;
            multiplex_query_with_params_and_rows,
            multiplex_query_one_and_query_opt_count_rows,
            multiplex_execute_and_batch_execute,
            multiplex_prepare_describes_the_statement,
            multiplex_query_error_keeps_the_client_usable,
            multiplex_rows_that_do_not_map_name_the_column,
            multiplex_session_statements_are_refused,
            multiplex_callers_get_their_own_rows_and_errors,
            multiplex_shared_connections_get_the_connection_setup,
            multiplex_dispose_closes_the_client,
        );
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::run_with_timeout($crate::conformance::case_timeout(&[30]), || {
                    let db = $crate::TestDb::new().expect("a test database");
                    let config = $crate::conformance::case_config(db.url()).expect("a valid config");
                    let runtime = $crate::conformance::tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .enable_all()
                        .build()
                        .expect("a tokio runtime");
                    runtime.block_on(async {
                        let factory = $factory;
                        $crate::conformance::nonblocking_multiplex::$case(&factory, &config)
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
