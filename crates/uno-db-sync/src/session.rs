//! A unit of work: one pooled connection inside one transaction.

use std::fmt;

use uno_db_core::blocking::{self, Connection as _};
use uno_db_core::{
    Error, ErrorKind, Result, Row, SqlState, Statement, ToSql, TransactionOptions, quote_identifier,
};

use crate::connection::SyncConnection;

/// A transaction on a pooled connection. Dropped without
/// [`commit`](blocking::Session::commit), it is rolled back (when its
/// connection returns to the pool).
///
/// After a statement fails, the server ignores everything until the
/// transaction ends, and a `COMMIT` then silently rolls back. A session
/// remembers the failure: [`commit`](blocking::Session::commit) rolls back
/// and returns an error (SQLSTATE 25P02) instead of reporting success,
/// unless [`rollback_to_savepoint`](blocking::Session::rollback_to_savepoint)
/// recovered.
pub struct SyncSession {
    conn: SyncConnection,
    failed: bool,
}

impl SyncSession {
    /// Begins a transaction on `conn` with `options`.
    pub(crate) fn begin(mut conn: SyncConnection, options: &TransactionOptions) -> Result<Self> {
        conn.set_in_transaction(true);
        conn.batch_execute(&options.begin_statement())?;
        Ok(Self {
            conn,
            failed: false,
        })
    }

    /// Remembers a server-side failure, which aborts the transaction.
    fn track<T>(&mut self, result: Result<T>) -> Result<T> {
        if let Err(error) = &result
            && error.sqlstate().is_some()
        {
            self.failed = true;
        }
        result
    }

    fn end(mut self, sql: &str) -> Result<()> {
        self.conn.batch_execute(sql)?;
        self.conn.set_in_transaction(false);
        Ok(())
    }
}

impl blocking::Session for SyncSession {
    fn execute<'a>(&mut self, sql: &str, params: &'a [&'a (dyn ToSql + Sync)]) -> Result<u64> {
        let result = self.conn.execute(sql, params);
        self.track(result)
    }

    fn query<'a>(&mut self, sql: &str, params: &'a [&'a (dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let result = self.conn.query(sql, params);
        self.track(result)
    }

    fn query_one<'a>(&mut self, sql: &str, params: &'a [&'a (dyn ToSql + Sync)]) -> Result<Row> {
        let result = self.conn.query_one(sql, params);
        self.track(result)
    }

    fn query_opt<'a>(
        &mut self,
        sql: &str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        let result = self.conn.query_opt(sql, params);
        self.track(result)
    }

    fn batch_execute(&mut self, sql: &str) -> Result<()> {
        let result = self.conn.batch_execute(sql);
        self.track(result)
    }

    fn prepare(&mut self, sql: &str) -> Result<Statement> {
        let result = self.conn.prepare(sql);
        self.track(result)
    }

    fn savepoint(&mut self, name: &str) -> Result<()> {
        let sql = format!("SAVEPOINT {}", quote_identifier(name)?);
        let result = self.conn.batch_execute(&sql);
        self.track(result)
    }

    fn rollback_to_savepoint(&mut self, name: &str) -> Result<()> {
        let sql = format!("ROLLBACK TO SAVEPOINT {}", quote_identifier(name)?);
        let result = self.conn.batch_execute(&sql);
        if result.is_ok() {
            self.failed = false;
        }
        self.track(result)
    }

    fn release_savepoint(&mut self, name: &str) -> Result<()> {
        let sql = format!("RELEASE SAVEPOINT {}", quote_identifier(name)?);
        let result = self.conn.batch_execute(&sql);
        self.track(result)
    }

    fn commit(self: Box<Self>) -> Result<()> {
        if self.failed {
            self.end("ROLLBACK")?;
            return Err(Error::with_message(
                ErrorKind::Database,
                "the transaction was rolled back because a statement in it failed",
            )
            .with_sqlstate(SqlState::IN_FAILED_SQL_TRANSACTION));
        }
        self.end("COMMIT")
    }

    fn rollback(self: Box<Self>) -> Result<()> {
        self.end("ROLLBACK")
    }
}

impl fmt::Debug for SyncSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncSession")
            .field("conn", &self.conn)
            .field("failed", &self.failed)
            .finish()
    }
}
