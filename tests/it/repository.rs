//! The service of the mock example (`UserRepository<F: EngineFactory>`),
//! type-checked and run against both real factories.

use uno_db::{ConnectionConfig, Result};
use uno_db_testkit::TestDb;
use uno_db_testkit::conformance::{CASE_TIMEOUT, case_config, run_with_timeout};

mod blocking {
    use uno_db::blocking::EngineFactory;
    use uno_db::{ConnectionConfig, Result};

    pub(super) struct UserRepository<F: EngineFactory> {
        pub(super) factory: F,
        pub(super) config: ConnectionConfig,
    }

    impl<F: EngineFactory> UserRepository<F> {
        pub(super) fn find_name(&self, id: i64) -> Result<Option<String>> {
            let engine = self.factory.engine(&self.config)?;
            let mut conn = engine.connect()?;
            let row = conn.query_opt("SELECT name FROM users WHERE id = $1", &[&id])?;
            Ok(row.map(|row| row.get("name")))
        }
    }
}

mod nonblocking {
    use uno_db::nonblocking::EngineFactory;
    use uno_db::{ConnectionConfig, Result};

    pub(super) struct UserRepository<F: EngineFactory> {
        pub(super) factory: F,
        pub(super) config: ConnectionConfig,
    }

    impl<F: EngineFactory> UserRepository<F> {
        pub(super) async fn find_name(&self, id: i64) -> Result<Option<String>> {
            let engine = self.factory.engine(&self.config)?;
            let mut conn = engine.connect().await?;
            let row = conn
                .query_opt("SELECT name FROM users WHERE id = $1", &[&id])
                .await?;
            Ok(row.map(|row| row.get("name")))
        }
    }
}

fn seed(config: &ConnectionConfig) -> Result<()> {
    use uno_db::blocking::EngineFactory;
    let factory = uno_db::SyncEngineFactory::new();
    factory
        .engine(config)?
        .connect()?
        .batch_execute("CREATE TABLE users (id int8 PRIMARY KEY, name text); INSERT INTO users VALUES (1, 'alice')")?;
    factory.dispose_all();
    Ok(())
}

#[test]
fn the_repository_runs_on_the_blocking_backend() {
    run_with_timeout(CASE_TIMEOUT, || {
        let db = TestDb::new().unwrap();
        let config = case_config(db.url()).unwrap();
        seed(&config).unwrap();
        let repository = blocking::UserRepository {
            factory: uno_db::SyncEngineFactory::new(),
            config,
        };
        assert_eq!(repository.find_name(1).unwrap().as_deref(), Some("alice"));
        assert_eq!(repository.find_name(2).unwrap(), None);
    });
}

#[test]
fn the_repository_runs_on_the_async_backend() {
    run_with_timeout(CASE_TIMEOUT, || {
        let db = TestDb::new().unwrap();
        let config = case_config(db.url()).unwrap();
        seed(&config).unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let repository = nonblocking::UserRepository {
                factory: uno_db::AsyncEngineFactory::new(),
                config,
            };
            assert_eq!(
                repository.find_name(1).await.unwrap().as_deref(),
                Some("alice")
            );
            assert_eq!(repository.find_name(2).await.unwrap(), None);
        });
    });
}
