//! The blocking family behind PgBouncer in transaction mode: the cases of the
//! suite that apply there (see [`blocking_pgbouncer_conformance!`](crate::blocking_pgbouncer_conformance)),
//! and what only PgBouncer shows.
// Cases are tests: a failed expectation panics.
#![allow(clippy::unwrap_used, clippy::missing_errors_doc)]

use std::io::{Read, Write};

use uno_db_core::blocking::{Client, Connection, EngineFactory};
use uno_db_core::{ConnectionConfig, Error, ErrorKind, Result, TransactionOptions};

/// Parameterised statements and `prepare`, from two pooled connections
/// that share one server connection, leave no named prepared statement on
/// it: each is described once per pooled connection inside a transaction
/// of its own (seen in the server's rollback count), so that its `Close`
/// reaches the server connection that prepared it, and then runs in one
/// round trip as the unnamed statement.
pub fn pgbouncer_leaves_no_prepared_statements(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    const STATEMENTS: i32 = 10;
    let engine = factory.engine(config)?;
    let mut first = engine.connect()?;
    let mut second = engine.connect()?;
    let before = rollbacks(&mut *first)?;
    for i in 0..STATEMENTS {
        let sql = format!("SELECT $1::int4 + {i}");
        let row = first.query_one(&sql, &[&i])?;
        assert_eq!(row.get::<_, i32>(0), 2 * i);
        // Described on this connection before: no describe now.
        assert_eq!(first.query_one(&sql, &[&i])?.get::<_, i32>(0), 2 * i);
        let statement = second.prepare(&format!("SELECT $1::text || '{i}'"))?;
        assert_eq!(statement.params().len(), 1);
    }
    let described = rollbacks(&mut *first)? - before;
    assert!(
        described >= i64::from(2 * STATEMENTS) && described < i64::from(3 * STATEMENTS),
        "{described} describes in a transaction for {} statements",
        2 * STATEMENTS
    );
    let left: i64 = first
        .query_one("SELECT count(*) FROM pg_prepared_statements", &[])?
        .get(0);
    assert_eq!(left, 0, "named statements left on the server connection");
    Ok(())
}

/// Pins: behind PgBouncer in transaction mode rows stream (with
/// parameters, as unnamed statements) anywhere, while `COPY` (a named
/// statement, prepared then bound) runs only inside a session, and is
/// refused with a clear error outside one.
pub fn pgbouncer_streams_anywhere_and_copies_in_sessions(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(config)?;
    let mut conn = engine.connect()?;
    let sum: i64 = conn
        .query_stream(
            "SELECT g::int8 FROM generate_series(1, $1::int8) AS g",
            &[&1000_i64],
        )?
        .map(|row| row.map(|row| row.get::<_, i64>(0)))
        .sum::<Result<i64>>()?;
    assert_eq!(sum, 500_500);
    conn.batch_execute("CREATE TABLE bounced (n int8)")?;
    let error = conn.copy_in("COPY bounced FROM STDIN").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported, "{error}");
    assert!(error.to_string().contains("inside a session"), "{error}");
    let mut session = conn.begin(&TransactionOptions::new())?;
    let mut writer = session.copy_in("COPY bounced FROM STDIN")?;
    writer.write_all(b"1\n2\n3\n").map_err(Error::from_io)?;
    assert_eq!(writer.finish()?, 3);
    let mut out = Vec::new();
    session
        .copy_out("COPY bounced TO STDOUT")?
        .read_to_end(&mut out)
        .map_err(Error::from_io)?;
    assert_eq!(out, b"1\n2\n3\n");
    session.commit()?;
    Ok(())
}

/// The database's rollbacks so far, as the server counts them.
fn rollbacks(conn: &mut dyn Connection) -> Result<i64> {
    conn.batch_execute("SELECT pg_stat_force_next_flush()")?;
    Ok(conn
        .query_one(
            "SELECT xact_rollback FROM pg_stat_database WHERE datname = current_database()",
            &[],
        )?
        .get(0))
}

/// Pins: behind PgBouncer in transaction mode a session's server-side
/// limits apply (`SET LOCAL` goes with `BEGIN`, on the transaction's one
/// server connection) and never reach the server connections other
/// clients get afterwards: a long statement fails with 57014 within the
/// limit; after rollback or commit no statement is limited.
pub fn pgbouncer_transaction_limits_apply(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    use std::time::{Duration, Instant};
    let engine = factory.engine(config)?;
    let limit = Duration::from_millis(300);
    let options = TransactionOptions::new()
        .statement_timeout(limit)
        .lock_timeout(limit);
    let mut session = engine.session(&options)?;
    let shown: String = session
        .query_one("SELECT current_setting('statement_timeout')", &[])?
        .get(0);
    assert_eq!(shown, "300ms");
    let started = Instant::now();
    let error = session.execute("SELECT pg_sleep(5)", &[]).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::QueryTimeout, "{error:?}");
    assert!(started.elapsed() < Duration::from_millis(1500));
    session.rollback()?;
    // Committed this time: the limits end with the transaction too.
    let mut session = engine.session(&options)?;
    session.execute("SELECT 1", &[])?;
    session.commit()?;
    let mut conn = engine.connect()?;
    for setting in ["statement_timeout", "lock_timeout"] {
        let shown: String = conn
            .query_one(&format!("SELECT current_setting('{setting}')"), &[])?
            .get(0);
        assert_eq!(shown, "0", "{setting} after the session");
    }
    conn.execute("SELECT pg_sleep(0.6)", &[])?;
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
/// Also left out for this family: the `query_timeout` cases. The `postgres`
/// driver's cancel request closes its socket as soon as it is written,
/// which crashes PgBouncer before 1.20 (pgbouncer#801; Debian 12 ships
/// 1.18), and the driver lends no way to send it otherwise
/// (docs/high-availability.md).
#[macro_export]
macro_rules! blocking_pgbouncer_conformance {
    ($factory:expr) => {
        $crate::blocking_pgbouncer_conformance!(@cases $factory;
            blocking::query_with_params_and_rows,
            blocking::client_runs_on_connections_and_sessions,
            blocking::prepared_statements_run_in_place_of_text,
            blocking::statements_from_another_connection_are_refused,
            blocking::rows_that_do_not_map_name_the_column,
            blocking::query_one_and_query_opt_count_rows,
            blocking::execute_and_batch_execute,
            blocking::prepare_describes_the_statement,
            blocking::query_error_keeps_the_connection_usable,
            blocking::sessions_commit_rollback_and_drop,
            blocking::savepoints_nest,
            blocking::transaction_options_apply,
            blocking::one_engine_per_config,
            blocking::status_and_counters,
            blocking::exhausted_pool_times_out,
            blocking::returned_transactions_are_cleaned,
            blocking::clean_return_after_select_then_start_transaction,
            blocking::clean_return_keeps_the_connection_after_transaction_words,
            blocking::clean_return_after_commit_and_chain,
            blocking::clean_return_after_cancelled_statement,
            blocking::clean_return_after_failed_rollback,
            blocking_streaming::stream_rows_arrive_in_order,
            blocking_pgbouncer::pgbouncer_leaves_no_prepared_statements,
            blocking_pgbouncer::pgbouncer_streams_anywhere_and_copies_in_sessions,
            blocking_pgbouncer::pgbouncer_transaction_limits_apply,
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
                    let factory = $factory;
                    $crate::conformance::$module::$case(&factory, &config).expect(stringify!($case));
                });
            }
        )*
    };
}
