//! Streamed rows and `COPY` for the blocking family
//! ([`uno_db_core::blocking::Client::query_stream`], `copy_in`,
//! `copy_out`): the same cases as
//! [`nonblocking_streaming`](super::nonblocking_streaming), on the calling
//! thread. Named `stream_*` and `copy_*`.
// Cases are tests: a failed expectation panics, and every case returns the
// first error an operation gave.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_errors_doc
)]

use std::time::Instant;

use super::shared::{POLL, SERVER_STATE_WAIT};
use super::streaming_shared::{
    CALLER_PAUSE, COPY_IN, COPY_OUT, COPY_ROWS, COPY_TABLE, ENDLESS_ROWS, FAILS_HALFWAY, MALFORMED,
    MANY_ROWS, STALLS, STREAM_QUERY_TIMEOUT, copy_text, one_connection,
};
use std::io::{Read, Write};

use uno_db_core::blocking::{Client, EngineFactory};
use uno_db_core::{
    CloseReason, ConnectionConfig, Error, ErrorKind, Result, SqlState, TransactionOptions,
};

/// Reads a whole stream: the row count and the sum of column 0 (int8).
fn drain(
    client: &mut dyn Client,
    sql: &str,
    params: &[&(dyn uno_db_core::ToSql + Sync)],
) -> Result<(i64, i64)> {
    let mut rows = client.query_stream(sql, params)?;
    let (mut count, mut sum) = (0, 0);
    while let Some(row) = rows.next().transpose()? {
        count += 1;
        sum += row.try_get::<_, i64>(0)?;
    }
    Ok((count, sum))
}

/// Rows arrive in order, typed, on a connection and in a session, as
/// text or with parameters (through the statement cache), and the
/// connection serves the next statement.
pub fn stream_rows_arrive_in_order(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(&one_connection(config)?)?;
    let mut conn = engine.connect()?;
    let expected = MANY_ROWS * (MANY_ROWS + 1) / 2;
    let sql = "SELECT g::int8, 'row ' || g AS label FROM generate_series(1, $1::int8) AS g";
    assert_eq!(
        drain(&mut *conn, sql, &[&MANY_ROWS])?,
        (MANY_ROWS, expected)
    );
    {
        let mut rows = conn.query_stream(
            "SELECT g::int8 AS n, 'row ' || g AS label FROM generate_series(1, 3) AS g",
            &[],
        )?;
        let mut seen = Vec::new();
        while let Some(row) = rows.next().transpose()? {
            assert_eq!(row.columns()[1].name(), "label");
            seen.push((row.get::<_, i64>("n"), row.get::<_, String>("label")));
        }
        assert_eq!(
            seen,
            [
                (1, "row 1".to_owned()),
                (2, "row 2".to_owned()),
                (3, "row 3".to_owned())
            ]
        );
        // The end is final.
        assert!(rows.next().transpose()?.is_none());
    }
    assert_eq!(conn.query_one("SELECT 7", &[])?.get::<_, i32>(0), 7);
    let mut session = conn.begin(&TransactionOptions::new())?;
    session.batch_execute(
        "CREATE TABLE streamed AS SELECT g::int8 AS n FROM generate_series(1, 10) AS g",
    )?;
    assert_eq!(
        drain(&mut *session, "SELECT n FROM streamed", &[])?,
        (10, 55)
    );
    session.rollback()?;
    assert_eq!(engine.counters().created, 1, "one connection served all");
    Ok(())
}

/// A stream dropped early and its connection returned at once: the pool
/// cancels the query on the server and closes the connection rather than
/// hand out one with rows still coming; the next checkout is a new,
/// clean connection.
pub fn stream_dropped_early_is_never_handed_out(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(&one_connection(config)?)?;
    {
        let mut conn = engine.connect()?;
        let mut rows = conn.query_stream(ENDLESS_ROWS, &[])?;
        for _ in 0..10 {
            rows.next().transpose()?.expect("a row");
        }
    }
    let mut conn = engine.connect()?;
    assert_eq!(conn.query_one("SELECT 1", &[])?.get::<_, i32>(0), 1);
    let counters = engine.counters();
    assert_eq!(
        counters.created, 2,
        "the dropped stream's connection was not reused"
    );
    assert_eq!(counters.closed(CloseReason::Dirty), 1);
    let deadline = Instant::now() + SERVER_STATE_WAIT;
    loop {
        let running: i64 = conn
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND query = $1 AND state = 'active'",
                &[&ENDLESS_ROWS],
            )?
            .get(0);
        if running == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server still runs the dropped query"
        );
        std::thread::sleep(POLL);
    }
    Ok(())
}

/// A stream dropped early on a connection its owner keeps: the next
/// statement runs after the rest of the rows (read and thrown away), in
/// the same transaction, with the right result.
pub fn stream_dropped_early_then_the_connection_carries_on(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(&one_connection(config)?)?;
    let mut session = engine.session(&TransactionOptions::new())?;
    session.batch_execute("CREATE TABLE kept (n int8)")?;
    {
        let mut rows = session.query_stream(
            "SELECT g::int8 FROM generate_series(1, $1::int8) AS g",
            &[&MANY_ROWS],
        )?;
        assert_eq!(rows.next().transpose()?.expect("a row").get::<_, i64>(0), 1);
    }
    session.execute("INSERT INTO kept VALUES (42)", &[])?;
    assert_eq!(
        session
            .query_one("SELECT n FROM kept", &[])?
            .get::<_, i64>(0),
        42
    );
    session.commit()?;
    let mut conn = engine.connect()?;
    assert_eq!(
        conn.query_one("SELECT count(*) FROM kept", &[])?
            .get::<_, i64>(0),
        1
    );
    assert_eq!(engine.counters().created, 1, "the connection was kept");
    Ok(())
}

/// An error part-way through a stream (22012 after half the rows) comes
/// as the stream's item, typed, after the rows before it; the stream ends
/// and the connection serves the next statement.
pub fn stream_error_midway_is_typed_and_the_connection_survives(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(&one_connection(config)?)?;
    let mut conn = engine.connect()?;
    {
        let mut rows = conn.query_stream(FAILS_HALFWAY, &[])?;
        let mut before = 0;
        let error = loop {
            match rows.next().transpose() {
                Ok(Some(_)) => before += 1,
                Ok(None) => panic!("the query should fail"),
                Err(error) => break error,
            }
        };
        assert_eq!(error.kind(), ErrorKind::Database, "{error}");
        assert_eq!(error.sqlstate(), Some(&SqlState::DIVISION_BY_ZERO));
        assert!(before < 100_000, "{before} rows before the error");
        assert!(rows.next().transpose()?.is_none(), "the stream ended");
    }
    assert_eq!(conn.query_one("SELECT 2", &[])?.get::<_, i32>(0), 2);
    drop(conn);
    engine.connect()?.query_one("SELECT 3", &[])?;
    assert_eq!(engine.counters().created, 1);
    Ok(())
}

/// `query_timeout` bounds each wait for the server, not the stream: a
/// caller slower than the limit between buffered rows is not cut off,
/// while a server that stalls mid-stream is.
pub fn stream_waits_are_bounded_by_query_timeout(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let config = one_connection(config)?
        .to_builder()
        .query_timeout(Some(STREAM_QUERY_TIMEOUT))
        .build()?;
    let engine = factory.engine(&config)?;
    let mut conn = engine.connect()?;
    {
        let mut rows = conn.query_stream("SELECT g::int8 FROM generate_series(1, 5) AS g", &[])?;
        let mut count = 0;
        while rows.next().transpose()?.is_some() {
            count += 1;
            std::thread::sleep(CALLER_PAUSE);
        }
        assert_eq!(count, 5);
        assert!(
            CALLER_PAUSE * 5 > STREAM_QUERY_TIMEOUT,
            "the caller took longer than the limit"
        );
    }
    assert_eq!(conn.query_one("SELECT 1", &[])?.get::<_, i32>(0), 1);
    let started = Instant::now();
    let mut before = 0;
    let error = {
        let mut rows = conn.query_stream(STALLS, &[])?;
        loop {
            match rows.next().transpose() {
                Ok(Some(_)) => before += 1,
                Ok(None) => panic!("the stall should time out"),
                Err(error) => break error,
            }
        }
    };
    assert!(before > 0, "the stall came mid-stream");
    assert_eq!(error.kind(), ErrorKind::QueryTimeout, "{error}");
    assert!(
        started.elapsed() < STREAM_QUERY_TIMEOUT * 10,
        "{:?}",
        started.elapsed()
    );
    drop(conn);
    engine.connect()?.query_one("SELECT 1", &[])?;
    Ok(())
}

/// Text `COPY` in (rows spanning sends) and out round-trips, binary
/// `COPY` out feeds binary `COPY` in, and `finish` counts the rows.
pub fn copy_in_and_out_round_trip(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(&one_connection(config)?)?;
    let mut conn = engine.connect()?;
    conn.batch_execute(COPY_TABLE)?;
    let text = copy_text();
    let mut sink = conn.copy_in(COPY_IN)?;
    // Uneven pieces: rows span sends.
    for piece in text.as_bytes().chunks(37) {
        sink.write_all(piece).map_err(Error::from_io)?;
    }
    assert_eq!(sink.finish()?, COPY_ROWS as u64);
    let name: String = conn
        .query_one("SELECT name FROM copied WHERE id = 7", &[])?
        .get(0);
    assert_eq!(name, "name\t7\\");

    let mut out = Vec::new();
    conn.copy_out(COPY_OUT)?
        .read_to_end(&mut out)
        .map_err(Error::from_io)?;
    assert_eq!(String::from_utf8(out).unwrap(), text);

    let mut binary = Vec::new();
    conn.copy_out("COPY copied TO STDOUT (FORMAT binary)")?
        .read_to_end(&mut binary)
        .map_err(Error::from_io)?;
    conn.batch_execute("CREATE TABLE copied_again (LIKE copied)")?;
    let mut sink = conn.copy_in("COPY copied_again FROM STDIN (FORMAT binary)")?;
    sink.write_all(&binary).map_err(Error::from_io)?;
    assert_eq!(sink.finish()?, COPY_ROWS as u64);
    let same: i64 = conn
        .query_one(
            "SELECT count(*) FROM copied JOIN copied_again USING (id, name)",
            &[],
        )?
        .get(0);
    assert_eq!(same, COPY_ROWS);
    assert_eq!(engine.counters().created, 1);
    Ok(())
}

/// Malformed `COPY` data: a typed error (22P02) from `finish`, nothing
/// loaded, the connection usable and the pool healthy; and statements that
/// are not `COPY` are refused before anything is sent.
pub fn copy_malformed_data_is_refused_and_the_pool_stays_healthy(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(&one_connection(config)?)?;
    let mut conn = engine.connect()?;
    conn.batch_execute(COPY_TABLE)?;
    let error = {
        let mut sink = conn.copy_in(COPY_IN)?;
        match sink.write_all(MALFORMED.as_bytes()) {
            Ok(()) => sink.finish().unwrap_err(),
            Err(error) => Error::from_io(error),
        }
    };
    assert_eq!(error.kind(), ErrorKind::Database, "{error}");
    assert_eq!(
        error.sqlstate(),
        Some(&SqlState::INVALID_TEXT_REPRESENTATION),
        "{error}"
    );
    let loaded: i64 = conn.query_one("SELECT count(*) FROM copied", &[])?.get(0);
    assert_eq!(loaded, 0);

    for error in [
        conn.copy_in("SELECT 1").unwrap_err(),
        conn.copy_out("INSERT INTO copied VALUES (1, 'x')")
            .unwrap_err(),
    ] {
        assert_eq!(error.kind(), ErrorKind::Unsupported, "{error}");
        assert!(error.to_string().contains("COPY"), "{error}");
    }
    let loaded: i64 = conn.query_one("SELECT count(*) FROM copied", &[])?.get(0);
    assert_eq!(loaded, 0, "nothing was sent");
    drop(conn);
    let mut conn = engine.connect()?;
    assert_eq!(conn.query_one("SELECT 1", &[])?.get::<_, i32>(0), 1);
    assert_eq!(
        engine.counters().created,
        1,
        "the connection stayed in the pool"
    );
    Ok(())
}

/// A `COPY` abandoned (its sink dropped unfinished) loads nothing: on a
/// kept connection the next statement works; in a session the transaction
/// is aborted, so `commit` reports it and rolls back; a connection
/// returned with the `COPY` unanswered is not handed out dirty.
pub fn copy_abandoned_loads_nothing(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(&one_connection(config)?)?;
    let mut conn = engine.connect()?;
    conn.batch_execute(COPY_TABLE)?;
    {
        let mut sink = conn.copy_in(COPY_IN)?;
        sink.write_all(b"1\tfirst\n").map_err(Error::from_io)?;
    }
    assert_eq!(
        conn.query_one("SELECT count(*) FROM copied", &[])?
            .get::<_, i64>(0),
        0
    );

    let mut session = conn.begin(&TransactionOptions::new())?;
    session.execute("INSERT INTO copied VALUES (100, 'before')", &[])?;
    {
        let mut sink = session.copy_in(COPY_IN)?;
        sink.write_all(b"2\tsecond\n").map_err(Error::from_io)?;
    }
    let error = session.commit().unwrap_err();
    assert_eq!(
        error.sqlstate(),
        Some(&SqlState::IN_FAILED_SQL_TRANSACTION),
        "{error}"
    );

    {
        let mut conn = engine.connect()?;
        let mut sink = conn.copy_in(COPY_IN)?;
        sink.write_all(b"3\tthird\n").map_err(Error::from_io)?;
        // Both dropped: the connection goes back with the COPY unanswered.
    }
    let mut conn = engine.connect()?;
    assert_eq!(
        conn.query_one("SELECT count(*) FROM copied", &[])?
            .get::<_, i64>(0),
        0
    );
    // Outside a transaction, a savepoint is refused (25P01).
    let error = conn.execute("SAVEPOINT probe", &[]).unwrap_err();
    assert_eq!(
        error.sqlstate(),
        Some(&SqlState::NO_ACTIVE_SQL_TRANSACTION),
        "{error}"
    );
    Ok(())
}

/// Turns each streaming case into a `#[test]` with its own database and an
/// outer timeout.
#[macro_export]
macro_rules! blocking_streaming_conformance {
    ($factory:expr) => {
        $crate::blocking_streaming_conformance!(@cases $factory;
            stream_rows_arrive_in_order,
            stream_dropped_early_is_never_handed_out,
            stream_dropped_early_then_the_connection_carries_on,
            stream_error_midway_is_typed_and_the_connection_survives,
            stream_waits_are_bounded_by_query_timeout,
            copy_in_and_out_round_trip,
            copy_malformed_data_is_refused_and_the_pool_stays_healthy,
            copy_abandoned_loads_nothing,
        );
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::run_with_timeout($crate::conformance::case_timeout(&[60]), || {
                    let db = $crate::TestDb::new().expect("a test database");
                    let config = $crate::conformance::case_config(db.url()).expect("a valid config");
                    let factory = $factory;
                    $crate::conformance::blocking_streaming::$case(&factory, &config)
                        .expect(stringify!($case));
                    $crate::conformance::uno_db_core::blocking::EngineFactory::dispose_all(&factory);
                });
            }
        )*
    };
}
