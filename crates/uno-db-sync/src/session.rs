//! [`SyncSession`]: one pooled connection inside one transaction.

use std::fmt;

use uno_db_core::blocking::{Client, CopyInWriter, CopyOutReader, RowIter, Session};
use uno_db_core::{Result, Row, Statement, ToSql, quote_identifier};

use crate::connection::SyncConnection;
use crate::pg_conn::PgConn;

/// A unit of work: a pooled connection inside a transaction. Dropped
/// without [`commit`](Session::commit) it is rolled back before the
/// connection is reused.
///
/// Once a statement fails, the server refuses everything but a rollback
/// (to a savepoint, or of the whole transaction); `commit` then rolls back
/// and reports the failure (SQLSTATE 25P02) instead of pretending to
/// commit.
pub struct SyncSession {
    conn: SyncConnection,
}

impl SyncSession {
    pub(crate) fn new(conn: SyncConnection) -> Self {
        Self { conn }
    }

    fn pg(&mut self) -> Result<&mut PgConn> {
        self.conn.pg()
    }

    /// A handle that cancels the statement this session is running, from
    /// another thread; see [`SyncConnection::cancel_handle`]. A cancelled
    /// statement aborts the transaction, as any failed statement does.
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
    pub fn commit(mut self) -> Result<()> {
        self.pg()?.commit()
    }

    /// Rolls back and returns the connection to its pool; the concrete form
    /// of [`Session::rollback`].
    ///
    /// # Errors
    ///
    /// The connection broke; the server rolls back on its own.
    pub fn rollback(mut self) -> Result<()> {
        self.pg()?.rollback()
    }
}

impl Client for SyncSession {
    fn execute<'a>(&mut self, sql: &str, params: &'a [&'a (dyn ToSql + Sync)]) -> Result<u64> {
        self.pg()?.execute(sql, params)
    }

    fn query<'a>(&mut self, sql: &str, params: &'a [&'a (dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        self.pg()?.query(sql, params)
    }

    fn query_one<'a>(&mut self, sql: &str, params: &'a [&'a (dyn ToSql + Sync)]) -> Result<Row> {
        self.pg()?.query_one(sql, params)
    }

    fn query_opt<'a>(
        &mut self,
        sql: &str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        self.pg()?.query_opt(sql, params)
    }

    fn batch_execute(&mut self, sql: &str) -> Result<()> {
        self.pg()?.batch_execute(sql)
    }

    fn prepare(&mut self, sql: &str) -> Result<Statement> {
        self.pg()?.prepare(sql)
    }

    fn query_stream<'a>(
        &'a mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<RowIter<'a>> {
        self.pg()?.query_stream(sql, params)
    }

    fn copy_in<'a>(&'a mut self, sql: &str) -> Result<CopyInWriter<'a>> {
        self.pg()?.copy_in(sql)
    }

    fn copy_out<'a>(&'a mut self, sql: &str) -> Result<CopyOutReader<'a>> {
        self.pg()?.copy_out(sql)
    }
}

impl Session for SyncSession {
    fn savepoint(&mut self, name: &str) -> Result<()> {
        let sql = format!("SAVEPOINT {}", quote_identifier(name)?);
        self.pg()?.internal(&sql)
    }

    fn rollback_to_savepoint(&mut self, name: &str) -> Result<()> {
        let sql = format!("ROLLBACK TO SAVEPOINT {}", quote_identifier(name)?);
        let conn = self.pg()?;
        conn.internal(&sql)?;
        conn.state.savepoint_restored();
        Ok(())
    }

    fn release_savepoint(&mut self, name: &str) -> Result<()> {
        let sql = format!("RELEASE SAVEPOINT {}", quote_identifier(name)?);
        self.pg()?.internal(&sql)
    }

    fn commit(self: Box<Self>) -> Result<()> {
        (*self).commit()
    }

    fn rollback(self: Box<Self>) -> Result<()> {
        (*self).rollback()
    }
}

impl fmt::Debug for SyncSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncSession")
            .field("conn", &self.conn)
            .finish()
    }
}
