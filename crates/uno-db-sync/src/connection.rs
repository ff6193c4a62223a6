//! A pooled connection, cleaned and returned to its pool when dropped.

use std::fmt;
use std::sync::Arc;

use r2d2::PooledConnection;
use uno_db_core::blocking;
use uno_db_core::{
    CloseReason, Error, ErrorKind, Result, Row, Statement, ToSql, TransactionOptions,
};

use crate::engine::EngineInner;
use crate::physical::PhysicalConnection;
use crate::runtime_guard::ensure_blocking_context;
use crate::session::SyncSession;
use crate::slot_manager::SlotManager;

/// A connection checked out of a [`SyncEngine`](crate::SyncEngine).
///
/// Statements with parameters go through the connection's statement cache
/// (`statement_cache_size`, least recently used evicted; 0 turns it off),
/// so repeating the same SQL skips the prepare round trip.
///
/// Dropping it returns it to the pool, cleaned: a transaction it may have
/// left open is rolled back and `set_role` is reset; if cleaning fails, the
/// connection is closed instead ([`CloseReason::Dirty`]). It is also closed
/// when it is broken, older than `pool_recycle`, the engine was disposed,
/// or the pool already holds `pool_size` idle connections (overflow).
pub struct SyncConnection {
    pooled: PooledConnection<SlotManager>,
    engine: Arc<EngineInner>,
    // Whether a transaction block may be open: set by our own BEGIN and by
    // any SQL that could contain BEGIN or START TRANSACTION.
    maybe_in_transaction: bool,
}

impl SyncConnection {
    pub(crate) fn new(pooled: PooledConnection<SlotManager>, engine: Arc<EngineInner>) -> Self {
        Self {
            pooled,
            engine,
            maybe_in_transaction: false,
        }
    }

    fn physical(&mut self) -> Result<&mut PhysicalConnection> {
        ensure_blocking_context()?;
        self.pooled
            .0
            .as_mut()
            .ok_or_else(|| Error::with_message(ErrorKind::Closed, "the connection is closed"))
    }

    /// Closes the connection when it returns to the pool, for `reason`.
    pub(crate) fn discard(&mut self, reason: CloseReason, error: Option<&Error>) {
        if let Some(physical) = self.pooled.0.as_mut() {
            self.engine
                .state
                .events()
                .connection_discarded(reason, error);
            physical.mark_for_close(reason);
        }
    }

    /// Records whether a transaction block is open, as the session knows.
    pub(crate) fn set_in_transaction(&mut self, open: bool) {
        self.maybe_in_transaction = open;
    }

    fn note(&mut self, sql: &str) {
        if may_open_transaction(sql) {
            self.maybe_in_transaction = true;
        }
    }

    /// Cleans the connection for the next user, or marks it to be closed.
    fn return_to_pool(&mut self) {
        let engine = Arc::clone(&self.engine);
        let Some(physical) = self.pooled.0.as_mut() else {
            return;
        };
        if physical.is_unusable() {
            return;
        }
        if engine.state.is_disposed() {
            physical.mark_for_close(CloseReason::Disposed);
            return;
        }
        let mut cleanup = String::new();
        if self.maybe_in_transaction {
            cleanup.push_str("ROLLBACK;");
        }
        if engine.reset_role {
            cleanup.push_str("RESET ROLE;");
        }
        if !cleanup.is_empty()
            && let Err(error) = physical.batch_execute(&cleanup)
        {
            engine
                .state
                .events()
                .connection_discarded(CloseReason::Dirty, Some(&error));
            physical.mark_for_close(CloseReason::Dirty);
            return;
        }
        if physical.is_expired() {
            physical.mark_for_close(CloseReason::Expired);
        } else if engine
            .idle_connections()
            .is_some_and(|idle| idle >= engine.state.config.pool_size())
        {
            physical.mark_for_close(CloseReason::Overflow);
        } else {
            physical.mark_returned();
        }
    }
}

/// Whether `sql` could open a transaction block: only `BEGIN` and
/// `START TRANSACTION` can, so SQL containing neither word cannot. Other
/// matches (`start_date`, a `DO` body) only cost a harmless `ROLLBACK`.
fn may_open_transaction(sql: &str) -> bool {
    sql.as_bytes()
        .windows(5)
        .any(|w| w.eq_ignore_ascii_case(b"begin") || w.eq_ignore_ascii_case(b"start"))
}

impl Drop for SyncConnection {
    fn drop(&mut self) {
        self.return_to_pool();
    }
}

impl blocking::Connection for SyncConnection {
    fn execute<'a>(&mut self, sql: &str, params: &'a [&'a (dyn ToSql + Sync)]) -> Result<u64> {
        self.note(sql);
        self.physical()?.execute(sql, params)
    }

    fn query<'a>(&mut self, sql: &str, params: &'a [&'a (dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        self.note(sql);
        self.physical()?.query(sql, params)
    }

    fn query_one<'a>(&mut self, sql: &str, params: &'a [&'a (dyn ToSql + Sync)]) -> Result<Row> {
        let mut rows = self.query(sql, params)?.into_iter();
        match (rows.next(), rows.next()) {
            (Some(row), None) => Ok(row),
            (None, _) => Err(Error::new(ErrorKind::RowNotFound)),
            (Some(_), Some(_)) => Err(Error::new(ErrorKind::TooManyRows)),
        }
    }

    fn query_opt<'a>(
        &mut self,
        sql: &str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        let mut rows = self.query(sql, params)?.into_iter();
        match (rows.next(), rows.next()) {
            (row, None) => Ok(row),
            (_, Some(_)) => Err(Error::new(ErrorKind::TooManyRows)),
        }
    }

    fn batch_execute(&mut self, sql: &str) -> Result<()> {
        self.note(sql);
        self.physical()?.batch_execute(sql)
    }

    fn prepare(&mut self, sql: &str) -> Result<Statement> {
        self.physical()?.prepare(sql)
    }

    fn begin(self: Box<Self>, options: &TransactionOptions) -> Result<Box<dyn blocking::Session>> {
        Ok(Box::new(SyncSession::begin(*self, options)?))
    }

    fn is_closed(&self) -> bool {
        self.pooled
            .0
            .as_ref()
            .is_none_or(PhysicalConnection::is_closed)
    }
}

impl fmt::Debug for SyncConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyncConnection")
            .field("target", &self.engine.state.config.target())
            .field("closed", &blocking::Connection::is_closed(self))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spots_sql_that_may_open_a_transaction() {
        assert!(may_open_transaction("BEGIN"));
        assert!(may_open_transaction(
            "  start transaction isolation level serializable"
        ));
        assert!(may_open_transaction("select 1; Begin;"));
        assert!(!may_open_transaction("SELECT $1::int"));
        assert!(!may_open_transaction("COMMIT"));
        assert!(!may_open_transaction("beg"));
    }
}
