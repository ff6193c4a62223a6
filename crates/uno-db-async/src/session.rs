//! [`AsyncSession`]: one pooled connection inside one transaction.

use async_trait::async_trait;
use tokio_postgres::types::ToSql;
use uno_db_core::nonblocking::{CopyInSink, CopyOutStream, RowStream, Session};
use uno_db_core::{Result, Row, Statement, quote_identifier};

use crate::client_methods::client_methods;
use crate::connection::AsyncConnection;
use crate::pg_conn::PgConn;

/// A unit of work: a pooled connection inside a transaction. Dropped
/// without [`commit`](Session::commit) it is rolled back (in the
/// background, before the connection is reused).
///
/// Once a statement fails, the server refuses everything but a rollback
/// (to a savepoint, or of the whole transaction); `commit` then rolls back
/// and reports the failure (SQLSTATE 25P02) instead of pretending to
/// commit.
#[derive(Debug)]
pub struct AsyncSession {
    conn: AsyncConnection,
}

impl AsyncSession {
    pub(crate) fn new(conn: AsyncConnection) -> Self {
        Self { conn }
    }

    fn pg(&mut self) -> Result<&mut PgConn> {
        self.conn.pg()
    }

    /// A handle that cancels the statement this session is running, from
    /// another task or thread; see [`AsyncConnection::cancel_handle`]. A
    /// cancelled statement aborts the transaction, as any failed statement
    /// does.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Closed`](uno_db_core::ErrorKind::Closed) when the
    /// connection is closed.
    pub fn cancel_handle(&self) -> Result<crate::CancelHandle> {
        self.conn.cancel_handle()
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
        self.pg()?.commit().await
    }

    /// Rolls back and returns the connection to its pool; the concrete form
    /// of [`Session::rollback`].
    ///
    /// # Errors
    ///
    /// The connection broke; the server rolls back on its own.
    pub async fn rollback(mut self) -> Result<()> {
        self.pg()?.rollback().await
    }
}

client_methods!(AsyncSession);

#[async_trait]
impl Session for AsyncSession {
    async fn savepoint(&mut self, name: &str) -> Result<()> {
        let sql = format!("SAVEPOINT {}", quote_identifier(name)?);
        self.pg()?.internal(&sql).await
    }

    async fn rollback_to_savepoint(&mut self, name: &str) -> Result<()> {
        let sql = format!("ROLLBACK TO SAVEPOINT {}", quote_identifier(name)?);
        let conn = self.pg()?;
        conn.internal(&sql).await?;
        conn.state.savepoint_restored();
        Ok(())
    }

    async fn release_savepoint(&mut self, name: &str) -> Result<()> {
        let sql = format!("RELEASE SAVEPOINT {}", quote_identifier(name)?);
        self.pg()?.internal(&sql).await
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        (*self).commit().await
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        (*self).rollback().await
    }
}
