//! `bench --compare`'s `r2d2_postgres` on settings matching uno-db's: each
//! connection prepares a statement the first time it runs it and keeps it,
//! as uno-db's statement cache does (`r2d2_postgres` has no cache of its
//! own, and its documentation sends SQL text on every call, which costs a
//! prepare, and its close, per statement).

use std::collections::HashMap;

use r2d2::ManageConnection;
use r2d2_postgres::PostgresConnectionManager;

/// `r2d2_postgres`'s manager, whose connections keep their statements.
#[derive(Debug)]
pub(crate) struct PreparedManager {
    inner: PostgresConnectionManager<postgres::NoTls>,
}

impl PreparedManager {
    pub(crate) fn new(config: postgres::Config) -> Self {
        Self {
            inner: PostgresConnectionManager::new(config, postgres::NoTls),
        }
    }
}

/// A connection and the statements it has prepared, by SQL text.
pub(crate) struct PreparedClient {
    pub(crate) client: postgres::Client,
    statements: HashMap<&'static str, postgres::Statement>,
}

impl PreparedClient {
    /// The statement for `sql`, prepared on this connection the first time.
    pub(crate) fn statement(
        &mut self,
        sql: &'static str,
    ) -> Result<postgres::Statement, postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }
}

impl ManageConnection for PreparedManager {
    type Connection = PreparedClient;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PreparedClient, postgres::Error> {
        Ok(PreparedClient {
            client: self.inner.connect()?,
            statements: HashMap::new(),
        })
    }

    fn is_valid(&self, conn: &mut PreparedClient) -> Result<(), postgres::Error> {
        self.inner.is_valid(&mut conn.client)
    }

    fn has_broken(&self, conn: &mut PreparedClient) -> bool {
        self.inner.has_broken(&mut conn.client)
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use uno_db_testkit::TestDb;
    use uno_db_testkit::conformance::run_with_timeout;

    use super::*;

    #[test]
    fn a_connection_prepares_a_statement_once_and_keeps_it() {
        run_with_timeout(Duration::from_secs(60), || {
            let db = TestDb::new().expect("a test database");
            let mut config: postgres::Config = db.url().parse().expect("the test URL parses");
            config.connect_timeout(Duration::from_secs(5));
            let manager = PreparedManager::new(config);
            let mut conn = manager.connect().expect("a connection");
            for _ in 0..3 {
                let statement = conn.statement("SELECT 1").expect("prepared");
                let rows = conn.client.query(&statement, &[]).expect("ran");
                assert_eq!(rows[0].get::<_, i32>(0), 1);
            }
            // One statement on the server, still open: not one per call,
            // and not closed after each.
            let kept: i64 = conn
                .client
                .query_one(
                    "SELECT count(*) FROM pg_prepared_statements WHERE statement = 'SELECT 1'",
                    &[],
                )
                .expect("counted")
                .get(0);
            assert_eq!(kept, 1);
            assert!(manager.is_valid(&mut conn).is_ok());
            assert!(!manager.has_broken(&mut conn));
        });
    }
}
