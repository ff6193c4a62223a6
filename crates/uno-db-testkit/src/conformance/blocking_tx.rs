//! Per-transaction server limits for the blocking family
//! (`TransactionOptions::statement_timeout`, `lock_timeout`,
//! `idle_in_transaction_session_timeout`): the same cases as
//! [`nonblocking_tx`](super::nonblocking_tx). Named `tx_*`, so that a
//! test filter picks them out.
// Cases are tests: a failed expectation panics, and every case returns the
// first error an operation gave.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_errors_doc
)]

use std::time::Instant;

use super::tx_shared::{
    BACKEND_PID, IDLE_LIMIT, IDLE_WAIT, LIMIT, LIMIT_BOUND, LONGER_THAN_LIMIT, SERVER_WAIT,
    SLEEP_PAST_LIMIT, TOO_LONG, one_connection, setting,
};
use uno_db_core::blocking::{Client, EngineFactory};
use uno_db_core::{ConnectionConfig, ErrorKind, Result, SqlState, TransactionOptions};

fn show(client: &mut dyn Client, name: &str) -> Result<String> {
    Ok(client.query_one(&setting(name), &[])?.get(0))
}

fn pid(client: &mut dyn Client) -> Result<i32> {
    Ok(client.query_one(BACKEND_PID, &[])?.get(0))
}

/// Pins: a session's `statement_timeout` is the server's, set in that
/// session only: a long statement fails within the limit with 57014
/// (`QueryTimeout`), the connection stays (the same backend serves the
/// next checkout), and after the session ends, by rollback or commit, the
/// same statement on the same pooled connection is not limited.
pub fn tx_statement_timeout_limits_only_its_transaction(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(&one_connection(config)?)?;
    let options = TransactionOptions::new().statement_timeout(LIMIT);
    let mut session = engine.session(&options)?;
    let session_pid = pid(&mut *session)?;
    assert_eq!(show(&mut *session, "statement_timeout")?, "300ms");
    let started = Instant::now();
    let error = session.execute(SLEEP_PAST_LIMIT, &[]).unwrap_err();
    let took = started.elapsed();
    assert_eq!(error.kind(), ErrorKind::QueryTimeout, "{error:?}");
    assert_eq!(error.sqlstate(), Some(&SqlState::QUERY_CANCELED));
    assert!(took >= LIMIT && took < LIMIT_BOUND, "{took:?}");
    session.rollback()?;
    // Committed this time: the limit goes with the transaction too.
    let mut session = engine.session(&options)?;
    assert_eq!(pid(&mut *session)?, session_pid, "the connection was kept");
    session.commit()?;
    let mut conn = engine.connect()?;
    assert_eq!(pid(&mut *conn)?, session_pid, "the same pooled connection");
    assert_eq!(show(&mut *conn, "statement_timeout")?, "0");
    conn.execute(LONGER_THAN_LIMIT, &[])?;
    drop(conn);
    assert_eq!(engine.counters().closed_total(), 0);
    Ok(())
}

/// Pins: `Duration::ZERO` lifts a `statement_timeout` of the configuration
/// for the session only.
pub fn tx_zero_statement_timeout_means_no_limit(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let config = one_connection(config)?
        .to_builder()
        .statement_timeout(LIMIT)
        .build()?;
    let engine = factory.engine(&config)?;
    let options = TransactionOptions::new().statement_timeout(std::time::Duration::ZERO);
    let mut session = engine.session(&options)?;
    assert_eq!(show(&mut *session, "statement_timeout")?, "0");
    session.execute(LONGER_THAN_LIMIT, &[])?;
    session.commit()?;
    let mut conn = engine.connect()?;
    assert_eq!(show(&mut *conn, "statement_timeout")?, "300ms");
    let error = conn.execute(LONGER_THAN_LIMIT, &[]).unwrap_err();
    assert_eq!(error.sqlstate(), Some(&SqlState::QUERY_CANCELED));
    Ok(())
}

/// Pins: a session's `lock_timeout` ends a wait for a row another
/// transaction locked, and for a table lock, with 55P03 within the bound.
pub fn tx_lock_timeout_bounds_a_blocked_lock(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let config = config.to_builder().query_timeout(SERVER_WAIT).build()?;
    let engine = factory.engine(&config)?;
    let mut conn = engine.connect()?;
    conn.batch_execute(
        "CREATE TABLE uno_locked (id int PRIMARY KEY, v int); INSERT INTO uno_locked VALUES (1, 0)",
    )?;
    drop(conn);
    let mut holder = engine.session(&TransactionOptions::new())?;
    holder.execute("SELECT v FROM uno_locked WHERE id = 1 FOR UPDATE", &[])?;
    let options = TransactionOptions::new().lock_timeout(LIMIT);
    for blocked in [
        "UPDATE uno_locked SET v = 2 WHERE id = 1",
        "LOCK TABLE uno_locked IN ACCESS EXCLUSIVE MODE",
    ] {
        let mut waiter = engine.session(&options)?;
        let started = Instant::now();
        let error = waiter.execute(blocked, &[]).unwrap_err();
        let took = started.elapsed();
        assert_eq!(error.kind(), ErrorKind::Database, "{blocked}: {error:?}");
        assert_eq!(
            error.sqlstate(),
            Some(&SqlState::LOCK_NOT_AVAILABLE),
            "{blocked}"
        );
        assert!(took >= LIMIT && took < LIMIT_BOUND, "{blocked}: {took:?}");
        waiter.rollback()?;
    }
    holder.commit()?;
    Ok(())
}

/// Pins: a session's `idle_in_transaction_session_timeout` makes the
/// server end a session left idle: its next statement fails with
/// `Closed` (25P03 when the server's report was read), the connection is discarded, and the next checkout gets a
/// clean new one without the limit.
pub fn tx_idle_in_transaction_timeout_ends_the_session(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(&one_connection(config)?)?;
    let options = TransactionOptions::new().idle_in_transaction_session_timeout(IDLE_LIMIT);
    let mut session = engine.session(&options)?;
    let old_pid = pid(&mut *session)?;
    std::thread::sleep(IDLE_WAIT);
    let error = session.execute("SELECT 1", &[]).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Closed, "{error:?}");
    // The server's FATAL, when the driver read it (else a closed socket).
    if let Some(code) = error.sqlstate() {
        assert_eq!(code, &SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT);
    }
    drop(session);
    let started = Instant::now();
    let mut conn = engine.connect()?;
    assert!(started.elapsed() < SERVER_WAIT);
    assert_ne!(
        pid(&mut *conn)?,
        old_pid,
        "the lost connection was discarded"
    );
    assert_eq!(
        show(&mut *conn, "idle_in_transaction_session_timeout")?,
        "0"
    );
    Ok(())
}

/// Pins: a limit beyond what the server takes is a `Config` error before
/// anything is sent; the connection goes back unharmed.
pub fn tx_limits_beyond_the_server_are_refused(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(&one_connection(config)?)?;
    let pid_before = pid(&mut *engine.connect()?)?;
    for options in [
        TransactionOptions::new().statement_timeout(TOO_LONG),
        TransactionOptions::new().lock_timeout(TOO_LONG),
        TransactionOptions::new().idle_in_transaction_session_timeout(TOO_LONG),
    ] {
        let error = engine.session(&options).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config, "{error:?}");
    }
    let mut conn = engine.connect()?;
    assert_eq!(pid(&mut *conn)?, pid_before);
    assert_eq!(conn.query_one("SELECT 1", &[])?.get::<_, i32>(0), 1);
    Ok(())
}

/// Defines one `#[test]` per blocking per-transaction-limit case, each
/// with a fresh database and an outer timeout, as
/// [`blocking_conformance!`](crate::blocking_conformance).
#[macro_export]
macro_rules! blocking_tx_conformance {
    ($factory:expr) => {
        $crate::blocking_tx_conformance!(@cases $factory;
            tx_statement_timeout_limits_only_its_transaction,
            tx_zero_statement_timeout_means_no_limit,
            tx_lock_timeout_bounds_a_blocked_lock,
            tx_idle_in_transaction_timeout_ends_the_session,
            tx_limits_beyond_the_server_are_refused,
        );
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::run_with_timeout($crate::conformance::case_timeout(&[30]), || {
                    let db = $crate::TestDb::new().expect("a test database");
                    let config = $crate::conformance::case_config(db.url()).expect("a valid config");
                    let factory = $factory;
                    $crate::conformance::blocking_tx::$case(&factory, &config)
                        .expect(stringify!($case));
                    $crate::conformance::uno_db_core::blocking::EngineFactory::dispose_all(&factory);
                });
            }
        )*
    };
}
