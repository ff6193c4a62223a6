//! A small service written against the blocking traits and tested with the
//! mockall mocks, returning hand-built rows.

use std::sync::Arc;

use uno_db_core::blocking::{
    EngineFactory, MockConnection, MockEngine, MockEngineFactory, MockSession,
};
use uno_db_core::{
    ConnectionConfig, Error, ErrorKind, Result, Row, SqlState, TransactionOptions, Type,
};

/// The kind of service users write: generic over the factory, so tests can
/// inject mocks and production the real backend.
struct UserRepository<F: EngineFactory> {
    factory: F,
    config: ConnectionConfig,
}

impl<F: EngineFactory> UserRepository<F> {
    fn new(factory: F, config: ConnectionConfig) -> Self {
        Self { factory, config }
    }

    fn find_name(&self, id: i64) -> Result<Option<String>> {
        let engine = self.factory.engine(&self.config)?;
        let mut conn = engine.connect()?;
        let row = conn.query_opt("SELECT name FROM users WHERE id = $1", &[&id])?;
        Ok(row.map(|row| row.get("name")))
    }

    /// Counts users on a standby when there is one (read routing).
    fn count(&self) -> Result<i64> {
        let engine = self.factory.reader(&self.config)?;
        let mut conn = engine.connect()?;
        Ok(conn.query_one("SELECT count(*) FROM users", &[])?.get(0))
    }

    /// Renames a user and writes an audit row, atomically.
    fn rename(&self, id: i64, name: &str) -> Result<bool> {
        let engine = self.factory.engine(&self.config)?;
        let mut session = engine.session(&TransactionOptions::new())?;
        let changed = session.execute("UPDATE users SET name = $2 WHERE id = $1", &[&id, &name])?;
        if changed == 0 {
            session.rollback()?;
            return Ok(false);
        }
        session.execute("INSERT INTO audit (user_id) VALUES ($1)", &[&id])?;
        session.commit()?;
        Ok(true)
    }
}

fn config() -> ConnectionConfig {
    ConnectionConfig::builder().database("app").build().unwrap()
}

fn factory_with(engine: MockEngine) -> MockEngineFactory {
    let mut factory = MockEngineFactory::new();
    let engine = Arc::new(engine);
    factory
        .expect_engine()
        .withf(|config| config.database() == "app")
        .returning(move |_| Ok(engine.clone()));
    factory
}

#[test]
fn find_name_reads_the_row_the_mock_returns() {
    let mut engine = MockEngine::new();
    engine.expect_connect().times(1).returning(|| {
        let mut conn = MockConnection::new();
        conn.expect_query_opt()
            .withf(|sql, params| sql.contains("FROM users") && params.len() == 1)
            .returning(|_, _| {
                Ok(Some(
                    Row::builder().column("name", Type::TEXT, "alice").build()?,
                ))
            });
        Ok(Box::new(conn))
    });
    let repository = UserRepository::new(factory_with(engine), config());
    assert_eq!(repository.find_name(7).unwrap().as_deref(), Some("alice"));
}

#[test]
fn reads_routed_to_the_reader_are_scripted_like_the_engine() {
    let mut engine = MockEngine::new();
    engine.expect_connect().times(1).returning(|| {
        let mut conn = MockConnection::new();
        conn.expect_query_one()
            .returning(|_, _| Row::builder().column("count", Type::INT8, 3_i64).build());
        Ok(Box::new(conn))
    });
    let engine = Arc::new(engine);
    let mut factory = MockEngineFactory::new();
    factory.expect_engine().never();
    factory
        .expect_reader()
        .withf(|config| config.database() == "app")
        .returning(move |_| Ok(engine.clone()));
    let repository = UserRepository::new(factory, config());
    assert_eq!(repository.count().unwrap(), 3);
}

#[test]
fn find_name_passes_errors_through() {
    let mut engine = MockEngine::new();
    engine
        .expect_connect()
        .returning(|| Err(Error::pool_timeout(std::time::Duration::from_secs(1), None)));
    let repository = UserRepository::new(factory_with(engine), config());
    let error = repository.find_name(7).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PoolTimeout);
    assert!(error.is_transient());
}

#[test]
fn rename_commits_both_writes() {
    let mut engine = MockEngine::new();
    engine.expect_session().times(1).returning(|_| {
        let mut session = MockSession::new();
        let mut seq = mockall::Sequence::new();
        session
            .expect_execute()
            .withf(|sql, _| sql.starts_with("UPDATE"))
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| Ok(1));
        session
            .expect_execute()
            .withf(|sql, _| sql.starts_with("INSERT INTO audit"))
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| Ok(1));
        session
            .expect_commit()
            .times(1)
            .in_sequence(&mut seq)
            .returning(|| Ok(()));
        session.expect_rollback().never();
        Ok(Box::new(session))
    });
    let repository = UserRepository::new(factory_with(engine), config());
    assert!(repository.rename(7, "bob").unwrap());
}

#[test]
fn rename_of_a_missing_user_rolls_back() {
    let mut engine = MockEngine::new();
    engine.expect_session().returning(|_| {
        let mut session = MockSession::new();
        session.expect_execute().times(1).returning(|_, _| Ok(0));
        session.expect_rollback().times(1).returning(|| Ok(()));
        session.expect_commit().never();
        Ok(Box::new(session))
    });
    let repository = UserRepository::new(factory_with(engine), config());
    assert!(!repository.rename(7, "bob").unwrap());
}

#[test]
fn a_faked_server_error_is_classified() {
    let mut engine = MockEngine::new();
    engine.expect_session().returning(|_| {
        let mut session = MockSession::new();
        session.expect_execute().returning(|_, _| {
            Err(
                Error::with_message(ErrorKind::Database, "could not serialize access")
                    .with_sqlstate(SqlState::T_R_SERIALIZATION_FAILURE),
            )
        });
        Ok(Box::new(session))
    });
    let repository = UserRepository::new(factory_with(engine), config());
    let error = repository.rename(7, "bob").unwrap_err();
    assert!(error.is_serialization_failure());
}
