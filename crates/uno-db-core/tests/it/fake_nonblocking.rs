//! The scripted fake database behind the async traits: the same
//! repository test as the blocking one, and the async paths of the fake.

use uno_db_core::fake::{Event, FakeDatabase, SqlPattern, Value};
use uno_db_core::nonblocking::{Client, Engine, EngineFactory};
use uno_db_core::{
    ConnectionConfig, Error, ErrorKind, Result, Row, SqlState, TransactionOptions, Type,
};

struct UserRepository<F: EngineFactory> {
    factory: F,
    config: ConnectionConfig,
}

impl<F: EngineFactory> UserRepository<F> {
    fn new(factory: F, config: ConnectionConfig) -> Self {
        Self { factory, config }
    }

    async fn create(&self, name: &str, email: &str) -> Result<i64> {
        let engine = self.factory.engine(&self.config)?;
        let mut session = engine.session(&TransactionOptions::new()).await?;
        let sql = "INSERT INTO users (name, email) VALUES ($1, $2) RETURNING id";
        let id = session.query_one(sql, &[&name, &email]).await?.get("id");
        session.commit().await?;
        Ok(id)
    }
}

// The goal of the fake: a repository's `create` test in ten lines at most,
// setup included.
#[tokio::test]
async fn create_returns_the_new_id() -> Result<()> {
    let fake = FakeDatabase::new();
    let id = Row::builder().column("id", Type::INT8, 7_i64).build()?;
    fake.on(SqlPattern::contains("INTO users")).returns_row(id);
    let users = UserRepository::new(fake.clone(), ConnectionConfig::default());
    assert_eq!(users.create("alice", "a@x.org").await?, 7);
    assert_eq!(fake.statements()[0].params, ["alice", "a@x.org"]);
    assert_eq!(fake.commits(), 1);
    Ok(())
}

#[tokio::test]
async fn a_unique_violation_reaches_the_caller_and_the_session_rolls_back() {
    let fake = FakeDatabase::new();
    fake.on(SqlPattern::contains("INTO users"))
        .fails_with(Error::from_sqlstate(
            SqlState::UNIQUE_VIOLATION,
            "duplicate key value violates unique constraint \"users_email_key\"",
        ));
    let users = UserRepository::new(fake.clone(), ConnectionConfig::default());
    let error = users
        .create("alice", "alice@example.com")
        .await
        .unwrap_err();
    assert_eq!(error.sqlstate(), Some(&SqlState::UNIQUE_VIOLATION));
    assert_eq!(error.kind(), ErrorKind::Database);
    assert_eq!((fake.commits(), fake.rollbacks()), (0, 1));
}

#[tokio::test]
async fn statements_sessions_and_savepoints_are_recorded_in_order() -> Result<()> {
    let fake = FakeDatabase::new();
    fake.on(SqlPattern::starts_with("UPDATE")).affects(1);
    let engine = fake.engine(&ConnectionConfig::default())?;
    let options = TransactionOptions::new().read_only(false);
    let mut session = engine.connect().await?.begin(&options).await?;
    session.savepoint("s1").await?;
    session.execute("UPDATE t SET x = $1", &[&"y"]).await?;
    session.release_savepoint("s1").await?;
    session.commit().await?;
    let statement = fake.statements()[0].clone();
    assert!(statement.in_transaction);
    assert_eq!(statement.params, [Value::from("y")]);
    assert_eq!(
        fake.events(),
        [
            Event::Begin(options),
            Event::Savepoint("s1".into()),
            Event::Statement(statement),
            Event::ReleaseSavepoint("s1".into()),
            Event::Commit,
        ]
    );
    Ok(())
}

#[tokio::test]
async fn a_dropped_session_rolls_back_and_a_broken_connection_stays_broken() -> Result<()> {
    let fake = FakeDatabase::new();
    fake.on("SELECT pg_sleep(10)")
        .fails_with(Error::from_sqlstate(
            SqlState::CONNECTION_FAILURE,
            "connection to server was lost",
        ));
    let engine = fake.engine(&ConnectionConfig::default())?;
    {
        let mut session = engine.session(&TransactionOptions::new()).await?;
        let error = session
            .execute("SELECT pg_sleep(10)", &[])
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Closed);
        assert!(error.is_transient());
        let again = session.query("SELECT 1", &[]).await.unwrap_err();
        assert_eq!(again.kind(), ErrorKind::Closed);
    }
    assert_eq!(fake.rollbacks(), 1);
    assert_eq!(engine.status().in_use, 0);
    Ok(())
}

#[tokio::test]
async fn unscripted_sql_fails_and_streams_answer_as_queries() -> Result<()> {
    let fake = FakeDatabase::new();
    let row = Row::builder().column("n", Type::INT4, 1_i32).build()?;
    fake.on("SELECT n FROM t").returns_row(row);
    let mut conn = Engine::connect(&fake).await?;
    let error = conn.execute("SELECT missing", &[]).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    assert!(error.to_string().contains("`SELECT missing`"), "{error}");
    let mut stream = conn.query_stream("SELECT n FROM t", &[]).await?;
    let mut streamed = 0;
    while let Some(row) = stream.try_next().await? {
        assert_eq!(row.get::<_, i32>("n"), 1);
        streamed += 1;
    }
    assert_eq!(streamed, 1);
    Ok(())
}

#[tokio::test]
async fn the_async_engine_runs_callbacks_and_disposes() -> Result<()> {
    let fake = FakeDatabase::new();
    fake.on("SET application_name = 'test'").affects(0);
    EngineFactory::callbacks(&fake).register("name", |conn| {
        Box::pin(async move {
            conn.batch_execute("SET application_name = 'test'").await?;
            Ok(())
        })
    });
    let engine = fake.engine(&ConnectionConfig::default())?;
    engine.warm_up().await?;
    drop(engine.connect().await?);
    assert_eq!(fake.statements()[0].sql, "SET application_name = 'test'");
    assert!(engine.listener().await.is_err());
    let report = engine.close(std::time::Duration::from_secs(1)).await;
    assert_eq!(report.forced, 0);
    assert_eq!(
        engine.connect().await.unwrap_err().kind(),
        ErrorKind::PoolClosed
    );
    Ok(())
}
