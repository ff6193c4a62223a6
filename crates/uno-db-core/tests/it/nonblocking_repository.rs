//! The same service against the async traits, tested with their mocks.

use std::sync::Arc;

use uno_db_core::nonblocking::{
    EngineFactory, MockConnection, MockEngine, MockEngineFactory, MockSession,
};
use uno_db_core::{ConnectionConfig, Result, Row, TransactionOptions, Type};

struct UserRepository<F: EngineFactory> {
    factory: F,
    config: ConnectionConfig,
}

impl<F: EngineFactory> UserRepository<F> {
    fn new(factory: F, config: ConnectionConfig) -> Self {
        Self { factory, config }
    }

    async fn find_name(&self, id: i64) -> Result<Option<String>> {
        let engine = self.factory.engine(&self.config)?;
        let mut conn = engine.connect().await?;
        let row = conn
            .query_opt("SELECT name FROM users WHERE id = $1", &[&id])
            .await?;
        Ok(row.map(|row| row.get("name")))
    }

    async fn rename(&self, id: i64, name: &str) -> Result<bool> {
        let engine = self.factory.engine(&self.config)?;
        let mut session = engine.session(&TransactionOptions::new()).await?;
        let changed = session
            .execute("UPDATE users SET name = $2 WHERE id = $1", &[&id, &name])
            .await?;
        if changed == 0 {
            session.rollback().await?;
            return Ok(false);
        }
        session.commit().await?;
        Ok(true)
    }
}

fn factory_with(engine: MockEngine) -> MockEngineFactory {
    let mut factory = MockEngineFactory::new();
    let engine = Arc::new(engine);
    factory
        .expect_engine()
        .returning(move |_| Ok(engine.clone()));
    factory
}

#[tokio::test]
async fn find_name_reads_the_row_the_mock_returns() {
    let mut engine = MockEngine::new();
    engine.expect_connect().times(1).returning(|| {
        let mut conn = MockConnection::new();
        conn.expect_query_opt()
            .withf(|sql, params| sql.contains("FROM users") && params.len() == 1)
            .returning(|_, _| {
                Box::pin(async {
                    Ok(Some(
                        Row::builder().column("name", Type::TEXT, "alice").build()?,
                    ))
                })
            });
        Box::pin(async { Ok(Box::new(conn) as Box<dyn uno_db_core::nonblocking::Connection>) })
    });
    let repository = UserRepository::new(
        factory_with(engine),
        ConnectionConfig::builder().build().unwrap(),
    );
    assert_eq!(
        repository.find_name(7).await.unwrap().as_deref(),
        Some("alice")
    );
}

#[tokio::test]
async fn rename_commits() {
    let mut engine = MockEngine::new();
    engine.expect_session().times(1).returning(|_| {
        let mut session = MockSession::new();
        session
            .expect_execute()
            .times(1)
            .returning(|_, _| Box::pin(async { Ok(1) }));
        session
            .expect_commit()
            .times(1)
            .returning(|| Box::pin(async { Ok(()) }));
        session.expect_rollback().never();
        Box::pin(async { Ok(Box::new(session) as Box<dyn uno_db_core::nonblocking::Session>) })
    });
    let repository = UserRepository::new(
        factory_with(engine),
        ConnectionConfig::builder().build().unwrap(),
    );
    assert!(repository.rename(7, "bob").await.unwrap());
}

/// Code that runs statements on the multiplexed client is tested with the
/// same mocks: `MockEngine` expects `multiplexed` and hands out a
/// `MockClient`; an engine without the mode answers `Unsupported` (the
/// trait's default, which the fake database keeps).
#[tokio::test]
async fn the_multiplexed_client_is_mocked_like_the_others() {
    use uno_db_core::ErrorKind;
    use uno_db_core::nonblocking::{Client, Engine, MockClient};

    let mut engine = MockEngine::new();
    engine.expect_multiplexed().times(1).returning(|| {
        let mut client = MockClient::new();
        client
            .expect_execute()
            .withf(|sql, _| sql.starts_with("UPDATE users"))
            .returning(|_, _| Box::pin(async { Ok(1) }));
        Ok(Box::new(client) as Box<dyn Client>)
    });
    let mut client = engine.multiplexed().unwrap();
    let changed = client
        .execute("UPDATE users SET seen = now() WHERE id = $1", &[&7_i64])
        .await
        .unwrap();
    assert_eq!(changed, 1);

    let fake = uno_db_core::fake::FakeDatabase::new();
    let fake: &dyn Engine = &fake;
    assert_eq!(
        fake.multiplexed().unwrap_err().kind(),
        ErrorKind::Unsupported
    );
}
