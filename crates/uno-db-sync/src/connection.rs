//! [`SyncConnection`]: a pooled connection handed to callers.

use std::fmt;
use std::sync::Arc;

use uno_db_core::backend::LeakTicket;

use r2d2::{Pool, PooledConnection};
use uno_db_core::blocking::{Client, Connection, CopyInWriter, CopyOutReader, RowIter, Session};
use uno_db_core::{Error, ErrorKind, Result, Row, Statement, ToSql, TransactionOptions};

use crate::CancelHandle;
use crate::manager::ConnManager;
use crate::pg_conn::PgConn;
use crate::release;
use crate::runtime_guard::ensure_blocking_context;
use crate::session::SyncSession;
use crate::shared::EngineShared;

/// A connection checked out of a [`SyncEngine`](crate::SyncEngine)'s
/// pool. Dropping it returns it to the pool, cleaned: an open transaction
/// is rolled back and the role and search path restored first (bounded by
/// `connect_timeout`), and a connection that cannot be cleaned, is broken,
/// expired or surplus is closed instead.
///
/// Statements with parameters go through the connection's statement cache
/// (unless `statement_cache_size` is 0); statements without parameters run
/// as unnamed statements in one round trip.
pub struct SyncConnection {
    inner: Option<Inner>,
    /// Where and when it was checked out, with leak detection on.
    leak: Option<LeakTicket>,
}

/// Where a checked-out connection goes back to: its engine's shared state
/// and pool. An engine keeps one per stripe
/// ([`Striped`](uno_db_core::backend::Striped)) and a checkout
/// takes its thread's: a reference to the shared state and one to the pool
/// taken by every checkout would be two reference counts written from
/// every thread at once, two cache lines passed between the cores on every
/// checkout and again on every return (and the shared state's first line
/// read by every checkout with them).
pub(crate) struct Home {
    pub(crate) shared: Arc<EngineShared>,
    pub(crate) pool: Pool<ConnManager>,
}

enum Inner {
    Pooled {
        slot: PooledConnection<ConnManager>,
        home: Arc<Home>,
    },
    /// A connection not yet in the pool, lent to the connection callbacks.
    Detached(Box<PgConn>),
}

impl SyncConnection {
    pub(crate) fn pooled(
        slot: PooledConnection<ConnManager>,
        home: Arc<Home>,
        leak: Option<LeakTicket>,
    ) -> Self {
        Self {
            inner: Some(Inner::Pooled { slot, home }),
            leak,
        }
    }

    pub(crate) fn detached(conn: PgConn) -> Self {
        Self {
            inner: Some(Inner::Detached(Box::new(conn))),
            leak: None,
        }
    }

    /// Takes back a connection lent to the callbacks.
    pub(crate) fn into_detached(mut self) -> Option<PgConn> {
        match self.inner.take() {
            Some(Inner::Detached(conn)) => Some(*conn),
            other => {
                self.inner = other;
                None
            }
        }
    }

    pub(crate) fn pg(&mut self) -> Result<&mut PgConn> {
        ensure_blocking_context()?;
        match &mut self.inner {
            Some(Inner::Pooled { slot, .. }) => slot.0.as_deref_mut(),
            Some(Inner::Detached(conn)) => Some(&mut **conn),
            None => None,
        }
        .ok_or_else(|| Error::with_message(ErrorKind::Closed, "the connection is closed"))
    }

    /// The driver's client under this connection, for what uno-db does not
    /// wrap (`COPY`, `LISTEN`, custom protocol use). Afterwards the pool
    /// cannot know what the session holds, so when this connection is
    /// returned it rolls back and resets the whole session (`DISCARD ALL`,
    /// then the configured role and search path), which also drops the
    /// connection's prepared statements; if that reset fails or runs past
    /// `connect_timeout`, the connection is closed instead. Statements run
    /// through the client bypass `query_timeout`, the statement cache and
    /// the pool's error classification.
    ///
    /// ```no_run
    /// # fn demo(engine: &uno_db_sync::SyncEngine) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut conn = engine.checkout()?;
    /// let client: &mut postgres::Client = conn.driver_client()?;
    /// client.batch_execute("LISTEN jobs")?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Closed`] when the connection is closed.
    pub fn driver_client(&mut self) -> Result<&mut postgres::Client> {
        self.pg()?.lend_client()
    }

    /// A handle that cancels the statement this connection is running, from
    /// another thread ([`CancelHandle::cancel`]). Take it before starting
    /// the statement; it stays valid for this physical connection (once
    /// the connection is back in the pool, cancel requests may reach its
    /// next user's statement: drop the handle with the connection).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Closed`] when the connection is closed.
    pub fn cancel_handle(&self) -> Result<CancelHandle> {
        match &self.inner {
            Some(Inner::Pooled { slot, .. }) => slot.0.as_deref(),
            Some(Inner::Detached(conn)) => Some(&**conn),
            None => None,
        }
        .and_then(PgConn::cancel_handle)
        .ok_or_else(|| Error::with_message(ErrorKind::Closed, "the connection is closed"))
    }

    /// Begins a transaction with `options`, turning this connection into a
    /// [`SyncSession`]; the concrete form of [`Connection::begin`].
    ///
    /// `BEGIN` and the `SET LOCAL`s of the options' server-side limits go
    /// in one round trip.
    ///
    /// # Errors
    ///
    /// `BEGIN` failed; the connection goes back to the pool. A server-side
    /// limit beyond what `PostgreSQL` takes is a
    /// [`Config`](ErrorKind::Config) error, and nothing is sent.
    pub fn transaction(mut self, options: &TransactionOptions) -> Result<SyncSession> {
        self.pg()?.begin(options)?;
        Ok(SyncSession::new(self))
    }
}

impl Drop for SyncConnection {
    fn drop(&mut self) {
        if let Some(Inner::Pooled { mut slot, home }) = self.inner.take() {
            let Home { shared, pool } = &*home;
            shared.core.checked_in(self.leak.take());
            release::release(shared, pool, &mut slot);
            // The slot goes back to r2d2 (or is dropped) here; then the
            // checkout at the head of the queue may take it or open one.
            drop(slot);
            shared.queue.wake_head();
        }
    }
}

impl Client for SyncConnection {
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

impl Connection for SyncConnection {
    fn begin(self: Box<Self>, options: &TransactionOptions) -> Result<Box<dyn Session>> {
        Ok(Box::new((*self).transaction(options)?))
    }

    fn is_closed(&self) -> bool {
        match &self.inner {
            Some(Inner::Pooled { slot, .. }) => slot.0.as_deref().is_none_or(PgConn::is_closed),
            Some(Inner::Detached(conn)) => conn.is_closed(),
            None => true,
        }
    }
}

impl fmt::Debug for SyncConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let conn = match &self.inner {
            Some(Inner::Pooled { slot, .. }) => slot.0.as_deref(),
            Some(Inner::Detached(conn)) => Some(&**conn),
            None => None,
        };
        f.debug_struct("SyncConnection")
            .field("conn", &conn)
            .finish()
    }
}
