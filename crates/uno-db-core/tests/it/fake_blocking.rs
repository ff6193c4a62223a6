//! The scripted fake database behind the blocking traits: a repository's
//! tests in a few lines, and what the fake answers and records.

use std::time::Duration;

use uno_db_core::blocking::{Client, ClientExt, Engine, EngineFactory, transaction_with_retry};
use uno_db_core::fake::{Event, FakeDatabase, SqlPattern, Value};
use uno_db_core::{
    ConnectionConfig, Error, ErrorKind, IsolationLevel, Result, RetryPolicy, Row, SqlState,
    Statement, TransactionOptions, Type,
};

/// The kind of repository users write: generic over the factory.
struct UserRepository<F: EngineFactory> {
    factory: F,
    config: ConnectionConfig,
}

impl<F: EngineFactory> UserRepository<F> {
    fn new(factory: F, config: ConnectionConfig) -> Self {
        Self { factory, config }
    }

    fn create(&self, name: &str, email: &str) -> Result<i64> {
        let engine = self.factory.engine(&self.config)?;
        let mut session = engine.session(&TransactionOptions::new())?;
        let sql = "INSERT INTO users (name, email) VALUES ($1, $2) RETURNING id";
        let id = session.query_one(sql, &[&name, &email])?.get("id");
        session.commit()?;
        Ok(id)
    }
}

// The goal of the fake: a repository's `create` test in ten lines at most,
// setup included.
#[test]
fn create_returns_the_new_id() -> Result<()> {
    let fake = FakeDatabase::new();
    let id = Row::builder().column("id", Type::INT8, 7_i64).build()?;
    fake.on(SqlPattern::contains("INTO users")).returns_row(id);
    let users = UserRepository::new(fake.clone(), ConnectionConfig::default());
    assert_eq!(users.create("alice", "a@x.org")?, 7);
    assert_eq!(fake.statements()[0].params, ["alice", "a@x.org"]);
    assert_eq!(fake.commits(), 1);
    Ok(())
}

fn id_row(id: i64) -> Row {
    Row::builder().column("id", Type::INT8, id).build().unwrap()
}

fn engine(fake: &FakeDatabase) -> std::sync::Arc<dyn Engine> {
    fake.engine(&ConnectionConfig::default()).unwrap()
}

#[test]
fn statements_match_exact_sql_with_whitespace_folded_or_a_pattern() -> Result<()> {
    let fake = FakeDatabase::new();
    fake.on("SELECT 1").returns_row(id_row(1));
    fake.on(SqlPattern::starts_with("UPDATE users")).affects(2);
    fake.on(SqlPattern::contains("FROM orders"))
        .returns_rows([id_row(3), id_row(4)]);
    fake.on(SqlPattern::matching(|sql| sql.ends_with("LIMIT 1")))
        .affects(5);
    let mut conn = engine(&fake).connect()?;

    assert_eq!(conn.query_one("  SELECT\n    1 ", &[])?.get::<_, i64>(0), 1);
    assert_eq!(conn.execute("UPDATE users SET x = 1", &[])?, 2);
    let ids: Vec<i64> = conn
        .query("SELECT id FROM orders", &[])?
        .iter()
        .map(|row| row.get("id"))
        .collect();
    assert_eq!(ids, [3, 4]);
    assert_eq!(
        conn.execute("SELECT id FROM orders", &[])?,
        2,
        "execute counts the rows"
    );
    assert_eq!(conn.execute("DELETE FROM jobs LIMIT 1", &[])?, 5);
    assert!(conn.query("DELETE FROM jobs LIMIT 1", &[])?.is_empty());
    // Exact means exact: a longer statement is not answered.
    let error = conn.query_one("SELECT 10", &[]).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    Ok(())
}

#[test]
fn limited_rules_answer_in_order_then_give_way() -> Result<()> {
    let fake = FakeDatabase::new();
    let pattern = SqlPattern::contains("INTO jobs");
    fake.on(pattern.clone()).once().affects(1);
    fake.on(pattern.clone()).times(2).affects(2);
    fake.on(pattern).affects(3);
    let mut conn = engine(&fake).connect()?;
    let answers = (0..5)
        .map(|_| conn.execute("INSERT INTO jobs DEFAULT VALUES", &[]))
        .collect::<Result<Vec<_>>>()?;
    assert_eq!(answers, [1, 2, 2, 3, 3]);
    Ok(())
}

#[test]
fn a_unique_violation_reaches_the_caller_with_its_sqlstate() {
    let fake = FakeDatabase::new();
    fake.on(SqlPattern::starts_with("INSERT INTO users"))
        .fails_with(Error::from_sqlstate(
            SqlState::UNIQUE_VIOLATION,
            "duplicate key value violates unique constraint \"users_email_key\"",
        ));
    let users = UserRepository::new(fake.clone(), ConnectionConfig::default());
    let error = users.create("alice", "alice@example.com").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Database);
    assert_eq!(error.sqlstate(), Some(&SqlState::UNIQUE_VIOLATION));
    assert!(!error.is_transient());
    assert!(!error.is_serialization_failure());
    assert_eq!(fake.commits(), 0);
    assert_eq!(fake.rollbacks(), 1, "the session dropped on `?` rolls back");
}

#[test]
fn a_serialization_failure_is_retried_as_a_whole_transaction() -> Result<()> {
    let fake = FakeDatabase::new();
    let conflict = Error::from_sqlstate(
        SqlState::T_R_SERIALIZATION_FAILURE,
        "could not serialize access due to concurrent update",
    );
    assert!(conflict.is_serialization_failure());
    assert!(
        !conflict.is_transient(),
        "only the whole transaction may be retried"
    );
    fake.on(SqlPattern::starts_with("UPDATE accounts"))
        .once()
        .fails_with(conflict);
    fake.on(SqlPattern::starts_with("UPDATE accounts"))
        .affects(1);
    let options = TransactionOptions::new().isolation(IsolationLevel::Serializable);
    let policy = RetryPolicy::default().initial_delay(Duration::from_millis(1));
    let moved = transaction_with_retry(&*engine(&fake), &options, &policy, |session| {
        session.execute(
            "UPDATE accounts SET balance = balance - 10 WHERE id = 1",
            &[],
        )
    })?;
    assert_eq!(moved, 1);
    let first = fake.statements()[0].clone();
    let mut retried = first.clone();
    retried.connection = 2;
    assert_eq!(
        fake.events(),
        [
            Event::Begin(options),
            Event::Statement(first),
            Event::Rollback,
            Event::Begin(options),
            Event::Statement(retried),
            Event::Commit,
        ]
    );
    Ok(())
}

#[test]
fn a_failing_commit_is_scripted_and_rolls_back() -> Result<()> {
    let fake = FakeDatabase::new();
    fake.on("COMMIT").once().fails_with(Error::from_sqlstate(
        SqlState::T_R_SERIALIZATION_FAILURE,
        "could not serialize access due to read/write dependencies among transactions",
    ));
    let engine = engine(&fake);
    let error = engine
        .session(&TransactionOptions::new())?
        .commit()
        .unwrap_err();
    assert!(error.is_serialization_failure());
    engine.session(&TransactionOptions::new())?.commit()?;
    let begin = Event::Begin(TransactionOptions::new());
    assert_eq!(
        fake.events(),
        [begin.clone(), Event::Rollback, begin, Event::Commit]
    );
    Ok(())
}

#[test]
fn a_broken_connection_stays_broken() -> Result<()> {
    let fake = FakeDatabase::new();
    fake.on("SELECT 1").fails_with(Error::from_sqlstate(
        SqlState::ADMIN_SHUTDOWN,
        "terminating connection due to administrator command",
    ));
    fake.on("SELECT 2").affects(0);
    let engine = engine(&fake);
    let mut conn = engine.connect()?;
    assert!(!conn.is_closed());
    let error = conn.execute("SELECT 1", &[]).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Closed);
    assert!(error.is_transient());
    assert!(conn.is_closed());
    let error = conn.execute("SELECT 2", &[]).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Closed, "{error}");
    assert_eq!(
        fake.statements().len(),
        1,
        "a broken connection sends nothing"
    );
    // A plain `Closed` error breaks it too; a new connection works.
    fake.on("SELECT 3")
        .fails_with(Error::new(ErrorKind::Closed));
    let mut conn = engine.connect()?;
    assert_eq!(conn.execute("SELECT 2", &[])?, 0);
    assert!(conn.execute("SELECT 3", &[]).unwrap_err().is_transient());
    assert!(conn.is_closed());
    Ok(())
}

#[test]
fn unscripted_sql_fails_naming_the_statement_and_is_recorded() -> Result<()> {
    let fake = FakeDatabase::new();
    let mut conn = engine(&fake).connect()?;
    let error = conn
        .execute("DELETE FROM users WHERE id = $1", &[&1_i64])
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    assert!(
        error
            .to_string()
            .contains("`DELETE FROM users WHERE id = $1`"),
        "{error}"
    );
    assert_eq!(fake.statements()[0].sql, "DELETE FROM users WHERE id = $1");
    assert!(!conn.is_closed());
    Ok(())
}

#[test]
fn commits_and_rollbacks_are_recorded_with_the_transaction_flag() -> Result<()> {
    let fake = FakeDatabase::new();
    fake.on(SqlPattern::starts_with("INSERT")).affects(1);
    fake.on("ROLLBACK").affects(0); // transaction control answers like any rule, when one matches
    let engine = engine(&fake);
    engine
        .connect()?
        .execute("INSERT INTO log VALUES (1)", &[])?;
    let mut session = engine.session(&TransactionOptions::new())?;
    session.execute("INSERT INTO log VALUES (2)", &[])?;
    session.commit()?;
    let mut session = engine.session(&TransactionOptions::new())?;
    session.execute("INSERT INTO log VALUES (3)", &[])?;
    session.rollback()?;
    assert_eq!((fake.commits(), fake.rollbacks()), (1, 1));
    let flags: Vec<bool> = fake.statements().iter().map(|s| s.in_transaction).collect();
    assert_eq!(flags, [false, true, true]);
    let connections: Vec<u64> = fake.statements().iter().map(|s| s.connection).collect();
    assert_eq!(connections, [1, 2, 3]);
    Ok(())
}

#[test]
fn a_session_dropped_uncommitted_is_recorded_as_a_rollback() -> Result<()> {
    let fake = FakeDatabase::new();
    fake.on(SqlPattern::starts_with("INSERT")).affects(1);
    {
        let mut session = engine(&fake).session(&TransactionOptions::new())?;
        session.execute("INSERT INTO log VALUES (1)", &[])?;
    }
    assert_eq!(fake.rollbacks(), 1);
    assert_eq!(fake.commits(), 0);
    assert_eq!(fake.events().last(), Some(&Event::Rollback));
    assert_eq!(engine(&fake).status().in_use, 0, "its connection went back");
    Ok(())
}

#[test]
fn parameters_are_recorded_as_typed_values() -> Result<()> {
    let fake = FakeDatabase::new();
    fake.on(SqlPattern::contains("INTO t")).affects(1);
    let mut conn = engine(&fake).connect()?;
    let bytes: &[u8] = b"\x00\x01";
    conn.execute(
        "INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &true,
            &42_i32,
            &1.5_f64,
            &"text",
            &bytes,
            &None::<i64>,
            &vec![1_i64, 2],
            &std::time::UNIX_EPOCH,
        ],
    )?;
    let params = &fake.statements()[0].params;
    assert_eq!(
        params[..7],
        [
            Value::Bool(true),
            Value::Int(42),
            Value::Float(1.5),
            Value::Text("text".into()),
            Value::Bytes(vec![0, 1]),
            Value::Null,
            Value::Array(vec![Value::Int(1), Value::Int(2)]),
        ]
    );
    assert_eq!(params[7], Value::from_param(&std::time::UNIX_EPOCH));
    assert!(matches!(&params[7], Value::Other { type_, .. } if *type_ == Type::TIMESTAMPTZ));
    Ok(())
}

#[test]
fn a_failed_statement_aborts_the_transaction_until_a_savepoint_restores_it() -> Result<()> {
    let fake = FakeDatabase::new();
    fake.on("INSERT INTO a VALUES (1)").affects(1);
    fake.on("INSERT INTO b VALUES (1)")
        .fails_with(Error::from_sqlstate(
            SqlState::UNIQUE_VIOLATION,
            "duplicate key value violates unique constraint \"b_pkey\"",
        ));
    let engine = engine(&fake);
    let mut session = engine.session(&TransactionOptions::new())?;
    session.savepoint("before_b")?;
    assert!(session.execute("INSERT INTO b VALUES (1)", &[]).is_err());
    let error = session
        .execute("INSERT INTO a VALUES (1)", &[])
        .unwrap_err();
    assert_eq!(error.sqlstate(), Some(&SqlState::IN_FAILED_SQL_TRANSACTION));
    session.rollback_to_savepoint("before_b")?;
    assert_eq!(session.execute("INSERT INTO a VALUES (1)", &[])?, 1);
    session.commit()?;

    let mut session = engine.session(&TransactionOptions::new())?;
    assert!(session.execute("INSERT INTO b VALUES (1)", &[]).is_err());
    let error = session.commit().unwrap_err();
    assert_eq!(error.sqlstate(), Some(&SqlState::IN_FAILED_SQL_TRANSACTION));
    assert_eq!((fake.commits(), fake.rollbacks()), (1, 1));
    Ok(())
}

#[test]
fn prepared_statements_run_as_their_sql_on_their_connection_only() -> Result<()> {
    let fake = FakeDatabase::new();
    fake.on("SELECT id FROM users WHERE name = $1")
        .returns_row(id_row(9));
    let engine = engine(&fake);
    let mut conn = engine.connect()?;
    let statement: Statement = conn.prepare("SELECT id FROM users WHERE name = $1")?;
    assert_eq!(
        conn.query_one(&statement, &[&"alice"])?.get::<_, i64>("id"),
        9
    );
    assert_eq!(
        fake.statements()[0].sql,
        "SELECT id FROM users WHERE name = $1"
    );
    let mut other = engine.connect()?;
    let error = other.query_one(&statement, &[&"alice"]).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    assert_eq!(
        other
            .query_one(statement.sql(), &[&"bob"])?
            .get::<_, i64>(0),
        9
    );
    Ok(())
}

#[test]
fn rows_map_through_client_ext_and_stream() -> Result<()> {
    let fake = FakeDatabase::new();
    fake.on("SELECT id FROM users")
        .returns_rows([id_row(1), id_row(2)]);
    fake.on("SELECT id FROM nobody").returns_rows([]);
    let mut conn = engine(&fake).connect()?;
    let ids: Vec<i64> = conn
        .query_as::<Id>("SELECT id FROM users", &[])?
        .into_iter()
        .map(|id| id.0)
        .collect();
    assert_eq!(ids, [1, 2]);
    let streamed = conn.query_stream("SELECT id FROM users", &[])?.count();
    assert_eq!(streamed, 2);
    assert_eq!(
        conn.query_one("SELECT id FROM users", &[])
            .unwrap_err()
            .kind(),
        ErrorKind::TooManyRows
    );
    assert_eq!(
        conn.query_one("SELECT id FROM nobody", &[])
            .unwrap_err()
            .kind(),
        ErrorKind::RowNotFound
    );
    assert!(conn.query_opt("SELECT id FROM nobody", &[])?.is_none());
    assert_eq!(
        conn.copy_in("COPY t FROM STDIN").err().map(|e| e.kind()),
        Some(ErrorKind::Unsupported)
    );
    Ok(())
}

struct Id(i64);

impl uno_db_core::FromRow for Id {
    fn from_row(row: &Row) -> Result<Self> {
        Ok(Self(row.try_get("id")?))
    }
}

#[test]
fn the_engine_counts_connections_runs_callbacks_and_disposes() -> Result<()> {
    let fake = FakeDatabase::new();
    fake.on("SET TIME ZONE 'UTC'").affects(0);
    EngineFactory::callbacks(&fake).register("utc", |conn| {
        conn.batch_execute("SET TIME ZONE 'UTC'")?;
        Ok(())
    });
    let engine = engine(&fake);
    let first = engine.connect()?;
    let second = engine.connect()?;
    assert_eq!(engine.status().in_use, 2);
    assert_eq!(engine.counters().acquired, 2);
    drop((first, second));
    assert_eq!(engine.status().in_use, 0);
    assert_eq!(
        fake.statements().len(),
        2,
        "the callback ran on each connection"
    );
    assert_eq!(
        engine.listener().unwrap_err().kind(),
        ErrorKind::Unsupported
    );

    assert!(EngineFactory::dispose(&fake, &ConnectionConfig::default()));
    assert!(engine.is_disposed());
    assert_eq!(engine.connect().unwrap_err().kind(), ErrorKind::PoolClosed);
    Ok(())
}

#[test]
fn a_clone_shares_the_script_and_the_record_across_threads() -> Result<()> {
    let fake = FakeDatabase::new();
    fake.on(SqlPattern::starts_with("INSERT")).affects(1);
    let handles: Vec<_> = (0..4_i64)
        .map(|i| {
            let fake = fake.clone();
            std::thread::spawn(move || {
                Engine::connect(&fake)?.execute("INSERT INTO t VALUES ($1)", &[&i])
            })
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().unwrap()?, 1);
    }
    let mut values: Vec<Value> = fake
        .statements()
        .into_iter()
        .map(|s| s.params[0].clone())
        .collect();
    values.sort_by_key(|v| match v {
        Value::Int(i) => *i,
        _ => -1,
    });
    assert_eq!(values, (0..4_i64).map(Value::from).collect::<Vec<_>>());
    fake.clear_events();
    assert!(fake.events().is_empty());
    Ok(())
}
