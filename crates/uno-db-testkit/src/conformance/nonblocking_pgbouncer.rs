//! The async family behind PgBouncer in transaction mode: the cases of the
//! suite that apply there (see [`nonblocking_pgbouncer_conformance!`](crate::nonblocking_pgbouncer_conformance)),
//! and what only PgBouncer shows.
// Cases are tests: a failed expectation panics.
#![allow(clippy::unwrap_used, clippy::missing_errors_doc)]

use uno_db_core::nonblocking::{Client, Connection, EngineFactory};
use uno_db_core::{ConnectionConfig, ErrorKind, Result, TransactionOptions};

/// Parameterised statements and `prepare`, from two pooled connections
/// that share one server connection, leave no named prepared statement on
/// it: each is described once per pooled connection inside a transaction
/// of its own (seen in the server's rollback count), so that its `Close`
/// reaches the server connection that prepared it, and then runs in one
/// round trip as the unnamed statement.
pub async fn pgbouncer_leaves_no_prepared_statements(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    const STATEMENTS: i32 = 10;
    let engine = factory.engine(config)?;
    let mut first = engine.connect().await?;
    let mut second = engine.connect().await?;
    let before = rollbacks(&mut *first).await?;
    for i in 0..STATEMENTS {
        let sql = format!("SELECT $1::int4 + {i}");
        let row = first.query_one(&sql, &[&i]).await?;
        assert_eq!(row.get::<_, i32>(0), 2 * i);
        // Described on this connection before: no describe now.
        assert_eq!(first.query_one(&sql, &[&i]).await?.get::<_, i32>(0), 2 * i);
        let statement = second.prepare(&format!("SELECT $1::text || '{i}'")).await?;
        assert_eq!(statement.params().len(), 1);
    }
    let described = rollbacks(&mut *first).await? - before;
    assert!(
        described >= i64::from(2 * STATEMENTS) && described < i64::from(3 * STATEMENTS),
        "{described} describes in a transaction for {} statements",
        2 * STATEMENTS
    );
    let left: i64 = first
        .query_one("SELECT count(*) FROM pg_prepared_statements", &[])
        .await?
        .get(0);
    assert_eq!(left, 0, "named statements left on the server connection");
    Ok(())
}

/// The database's rollbacks so far, as the server counts them.
/// Pins: behind PgBouncer in transaction mode rows stream (with
/// parameters, as unnamed statements) anywhere, while `COPY` (a named
/// statement, prepared then bound) runs only inside a session, and is
/// refused with a clear error outside one.
pub async fn pgbouncer_streams_anywhere_and_copies_in_sessions(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(config)?;
    let mut conn = engine.connect().await?;
    let mut rows = conn
        .query_stream(
            "SELECT g::int8 FROM generate_series(1, $1::int8) AS g",
            &[&1000_i64],
        )
        .await?;
    let mut sum = 0;
    while let Some(row) = rows.try_next().await? {
        sum += row.get::<_, i64>(0);
    }
    drop(rows);
    assert_eq!(sum, 500_500);
    conn.batch_execute("CREATE TABLE bounced (n int8)").await?;
    let error = conn.copy_in("COPY bounced FROM STDIN").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported, "{error}");
    assert!(error.to_string().contains("inside a session"), "{error}");
    let mut session = conn.begin(&TransactionOptions::new()).await?;
    let mut sink = session.copy_in("COPY bounced FROM STDIN").await?;
    sink.send("1\n2\n3\n").await?;
    assert_eq!(sink.finish().await?, 3);
    let mut out = Vec::new();
    let mut data = session.copy_out("COPY bounced TO STDOUT").await?;
    while let Some(chunk) = data.try_next().await? {
        out.extend_from_slice(&chunk);
    }
    drop(data);
    assert_eq!(out, b"1\n2\n3\n");
    session.commit().await?;
    Ok(())
}

async fn rollbacks(conn: &mut dyn Connection) -> Result<i64> {
    conn.batch_execute("SELECT pg_stat_force_next_flush()")
        .await?;
    Ok(conn
        .query_one(
            "SELECT xact_rollback FROM pg_stat_database WHERE datname = current_database()",
            &[],
        )
        .await?
        .get(0))
}

/// Pins: behind PgBouncer in transaction mode a session's server-side
/// limits apply (`SET LOCAL` goes with `BEGIN`, on the transaction's one
/// server connection) and never reach the server connections other
/// clients get afterwards: a long statement fails with 57014 within the
/// limit; after rollback or commit no statement is limited.
pub async fn pgbouncer_transaction_limits_apply(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    use std::time::{Duration, Instant};
    let engine = factory.engine(config)?;
    let limit = Duration::from_millis(300);
    let options = TransactionOptions::new()
        .statement_timeout(limit)
        .lock_timeout(limit);
    let mut session = engine.session(&options).await?;
    let shown: String = session
        .query_one("SELECT current_setting('statement_timeout')", &[])
        .await?
        .get(0);
    assert_eq!(shown, "300ms");
    let started = Instant::now();
    let error = session
        .execute("SELECT pg_sleep(5)", &[])
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::QueryTimeout, "{error:?}");
    assert!(started.elapsed() < Duration::from_millis(1500));
    session.rollback().await?;
    // Committed this time: the limits end with the transaction too.
    let mut session = engine.session(&options).await?;
    session.execute("SELECT 1", &[]).await?;
    session.commit().await?;
    let mut conn = engine.connect().await?;
    for setting in ["statement_timeout", "lock_timeout"] {
        let shown: String = conn
            .query_one(&format!("SELECT current_setting('{setting}')"), &[])
            .await?
            .get(0);
        assert_eq!(shown, "0", "{setting} after the session");
    }
    conn.execute("SELECT pg_sleep(0.6)", &[]).await?;
    Ok(())
}

/// The suite's cases that apply behind PgBouncer in transaction mode, and
/// this module's, each as a `#[test]` with a database and a PgBouncer of
/// its own in front of the test kit's shared cluster. Left out, because
/// they need a session of their own (docs/high-availability.md): `schema`,
/// `set_role` (refused by validation with `pgbouncer_mode=transaction`),
/// the statement cache, session `SET`s, connection callbacks that set
/// session state, `discard_on_return`; the faults that terminate server
/// backends or restart the server (PgBouncer, not the pool, sees those);
/// and the cases that count the pool's server backends (`dispose`,
/// overflow shrinking back), since the server connections are PgBouncer's.
#[macro_export]
macro_rules! nonblocking_pgbouncer_conformance {
    ($factory:expr) => {
        $crate::nonblocking_pgbouncer_conformance!(@cases $factory;
            nonblocking::query_with_params_and_rows,
            nonblocking::client_runs_on_connections_and_sessions,
            nonblocking::prepared_statements_run_in_place_of_text,
            nonblocking::statements_from_another_connection_are_refused,
            nonblocking::rows_that_do_not_map_name_the_column,
            nonblocking::query_one_and_query_opt_count_rows,
            nonblocking::execute_and_batch_execute,
            nonblocking::prepare_describes_the_statement,
            nonblocking::query_error_keeps_the_connection_usable,
            nonblocking::sessions_commit_rollback_and_drop,
            nonblocking::savepoints_nest,
            nonblocking::transaction_options_apply,
            nonblocking::one_engine_per_config,
            nonblocking::status_and_counters,
            nonblocking::exhausted_pool_times_out,
            nonblocking::returned_transactions_are_cleaned,
            nonblocking::clean_return_after_select_then_start_transaction,
            nonblocking::clean_return_keeps_the_connection_after_transaction_words,
            nonblocking::clean_return_after_commit_and_chain,
            nonblocking::clean_return_after_cancelled_statement,
            nonblocking::clean_return_after_failed_rollback,
            nonblocking::fault_slow_statement_fails_within_query_timeout,
            nonblocking::transaction_query_timeout_limits_only_its_transaction,
            nonblocking_streaming::stream_rows_arrive_in_order,
            nonblocking_pgbouncer::pgbouncer_leaves_no_prepared_statements,
            nonblocking_pgbouncer::pgbouncer_streams_anywhere_and_copies_in_sessions,
            nonblocking_pgbouncer::pgbouncer_transaction_limits_apply,
        );
    };
    (@cases $factory:expr; $($module:ident :: $case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::run_with_timeout($crate::conformance::case_timeout(&[45]), || {
                    // This module's own cases need the pool's connections to share one
                    // server connection; the suite's need room for their probes.
                    let shared = stringify!($module).ends_with("pgbouncer");
                    let (_db, _bouncer, config) =
                        $crate::conformance::behind_pgbouncer(if shared { 1 } else { 8 });
                    let runtime = $crate::conformance::tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .enable_all()
                        .build()
                        .expect("a tokio runtime");
                    runtime.block_on(async {
                        let factory = $factory;
                        $crate::conformance::$module::$case(&factory, &config)
                            .await
                            .expect(stringify!($case));
                    });
                });
            }
        )*
    };
}
