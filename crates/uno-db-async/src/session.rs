//! [`AsyncSession`]: one pooled connection inside one transaction.

use async_trait::async_trait;
use tokio_postgres::types::ToSql;
use uno_db_core::nonblocking::Session;
use uno_db_core::{Error, ErrorKind, Result, Row, SqlState, Statement, quote_identifier};

use crate::connection::AsyncConnection;
use crate::pg_conn::PgConn;

/// A unit of work: a pooled connection inside a transaction. Dropped
/// without [`commit`](Session::commit) it is rolled back (in the
/// background, before the connection is reused).
///
/// Once a statement fails, the server refuses everything but a rollback
/// (to a savepoint, or of the whole transaction); `commit` then rolls back
/// and reports the failure instead of pretending to commit.
#[derive(Debug)]
pub struct AsyncSession {
    conn: AsyncConnection,
    /// A statement failed and no savepoint rollback has recovered since.
    aborted: bool,
}

impl AsyncSession {
    pub(crate) fn new(conn: AsyncConnection) -> Self {
        Self {
            conn,
            aborted: false,
        }
    }

    fn pg(&mut self) -> Result<&mut PgConn> {
        self.conn.pg()
    }

    /// Notes a server error: it aborts the transaction.
    fn track<T>(&mut self, result: Result<T>) -> Result<T> {
        if let Err(error) = &result
            && error.sqlstate().is_some()
        {
            self.aborted = true;
        }
        result
    }

    /// Commits and returns the connection to its pool; the concrete form of
    /// [`Session::commit`].
    ///
    /// # Errors
    ///
    /// The commit failed (for example a serialization failure, 40001), or
    /// an earlier statement had aborted the transaction; either way the
    /// work was rolled back.
    pub async fn commit(mut self) -> Result<()> {
        if self.aborted {
            // The server would answer COMMIT with a silent rollback.
            self.finish("ROLLBACK").await?;
            return Err(Error::with_message(
                ErrorKind::Database,
                "the transaction was aborted by an earlier error and has been rolled back",
            )
            .with_sqlstate(SqlState::IN_FAILED_SQL_TRANSACTION));
        }
        self.finish("COMMIT").await
    }

    /// Rolls back and returns the connection to its pool; the concrete form
    /// of [`Session::rollback`].
    ///
    /// # Errors
    ///
    /// The connection broke; the server rolls back on its own.
    pub async fn rollback(mut self) -> Result<()> {
        self.finish("ROLLBACK").await
    }

    async fn finish(&mut self, sql: &str) -> Result<()> {
        let conn = self.pg()?;
        conn.internal(sql).await?;
        conn.needs_rollback = false;
        Ok(())
    }
}

#[async_trait]
impl Session for AsyncSession {
    async fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let result = self.pg()?.execute(sql, params).await;
        self.track(result)
    }

    async fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let result = self.pg()?.query(sql, params).await;
        self.track(result)
    }

    async fn query_one(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        let result = self.pg()?.query_one(sql, params).await;
        self.track(result)
    }

    async fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        let result = self.pg()?.query_opt(sql, params).await;
        self.track(result)
    }

    async fn batch_execute(&mut self, sql: &str) -> Result<()> {
        let result = self.pg()?.batch_execute(sql).await;
        self.track(result)
    }

    async fn prepare(&mut self, sql: &str) -> Result<Statement> {
        let result = self.pg()?.prepare(sql).await;
        self.track(result)
    }

    async fn savepoint(&mut self, name: &str) -> Result<()> {
        let sql = format!("SAVEPOINT {}", quote_identifier(name)?);
        let result = self.pg()?.internal(&sql).await;
        self.track(result)
    }

    async fn rollback_to_savepoint(&mut self, name: &str) -> Result<()> {
        let sql = format!("ROLLBACK TO SAVEPOINT {}", quote_identifier(name)?);
        let result = self.pg()?.internal(&sql).await;
        if result.is_ok() {
            self.aborted = false;
        }
        self.track(result)
    }

    async fn release_savepoint(&mut self, name: &str) -> Result<()> {
        let sql = format!("RELEASE SAVEPOINT {}", quote_identifier(name)?);
        let result = self.pg()?.internal(&sql).await;
        self.track(result)
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        (*self).commit().await
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        (*self).rollback().await
    }
}
