//! [`AsyncConnection`]: a pooled connection handed to callers.

use async_trait::async_trait;
use deadpool::managed::Object;
use tokio_postgres::types::ToSql;
use uno_db_core::backend::LeakTicket;
use uno_db_core::nonblocking::{Connection, CopyInSink, CopyOutStream, RowStream, Session};
use uno_db_core::{Error, ErrorKind, Result, Row, Statement, TransactionOptions};

use crate::CancelHandle;
use crate::client_methods::client_methods;
use crate::manager::ConnManager;
use crate::pg_conn::PgConn;
use crate::release;
use crate::session::AsyncSession;

/// A connection checked out of an [`AsyncEngine`](crate::AsyncEngine)'s
/// pool. Dropping it returns it to the pool, cleaned: an open transaction
/// is rolled back and the role reset first, and a connection dropped in the
/// middle of a statement is discarded rather than reused.
///
/// Every statement, with or without parameters, is prepared once on this
/// physical connection and served from its statement cache afterwards; with
/// `statement_cache_size` 0, a statement without parameters runs as the
/// unnamed statement in one round trip.
pub struct AsyncConnection {
    inner: Option<Inner>,
    /// Where and when it was checked out, with leak detection on.
    leak: Option<LeakTicket>,
}

enum Inner {
    Pooled(Object<ConnManager>),
    /// A connection not yet in the pool, lent to the connection callbacks.
    Detached(Box<PgConn>),
}

impl std::fmt::Debug for AsyncConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let conn = match &self.inner {
            Some(Inner::Pooled(object)) => Some(&***object),
            Some(Inner::Detached(conn)) => Some(&**conn),
            None => None,
        };
        f.debug_struct("AsyncConnection")
            .field("conn", &conn)
            .finish()
    }
}

impl AsyncConnection {
    pub(crate) fn pooled(object: Object<ConnManager>, leak: Option<LeakTicket>) -> Self {
        Self {
            inner: Some(Inner::Pooled(object)),
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
        match &mut self.inner {
            Some(Inner::Pooled(object)) => Ok(&mut ***object),
            Some(Inner::Detached(conn)) => Ok(&mut **conn),
            None => Err(Error::new(ErrorKind::Closed)),
        }
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
    /// # async fn demo(engine: &uno_db_async::AsyncEngine) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut conn = engine.checkout().await?;
    /// let client: &tokio_postgres::Client = conn.driver_client()?;
    /// client.batch_execute("LISTEN jobs").await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Closed`] when the connection is closed.
    pub fn driver_client(&mut self) -> Result<&tokio_postgres::Client> {
        Ok(self.pg()?.lend_client())
    }

    /// A handle that cancels the statement this connection is running, from
    /// another task or thread ([`CancelHandle::cancel`]). Take it before
    /// starting the statement; it stays valid for this physical connection
    /// (once the connection is back in the pool, cancel requests may reach
    /// its next user's statement: drop the handle with the connection).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Closed`] when the connection is closed.
    pub fn cancel_handle(&self) -> Result<CancelHandle> {
        match &self.inner {
            Some(Inner::Pooled(object)) => Ok(object.cancel_handle()),
            Some(Inner::Detached(conn)) => Ok(conn.cancel_handle()),
            None => Err(Error::new(ErrorKind::Closed)),
        }
    }

    /// Begins a transaction with `options`, turning this connection into an
    /// [`AsyncSession`]; the concrete form of [`Connection::begin`].
    ///
    /// `BEGIN` and the `SET LOCAL`s of the options' server-side limits go
    /// in one round trip.
    ///
    /// # Errors
    ///
    /// `BEGIN` failed; the connection goes back to the pool. A server-side
    /// limit beyond what `PostgreSQL` takes is a
    /// [`Config`](ErrorKind::Config) error, and nothing is sent.
    pub async fn transaction(mut self, options: &TransactionOptions) -> Result<AsyncSession> {
        self.pg()?.begin(options).await?;
        Ok(AsyncSession::new(self))
    }
}

impl Drop for AsyncConnection {
    fn drop(&mut self) {
        if let Some(Inner::Pooled(object)) = self.inner.take() {
            object.shared().core.checked_in(self.leak.take());
            release::release(object);
        }
    }
}

client_methods!(AsyncConnection);

#[async_trait]
impl Connection for AsyncConnection {
    async fn begin(self: Box<Self>, options: &TransactionOptions) -> Result<Box<dyn Session>> {
        Ok(Box::new((*self).transaction(options).await?))
    }

    fn is_closed(&self) -> bool {
        match &self.inner {
            Some(Inner::Pooled(object)) => object.is_closed(),
            Some(Inner::Detached(conn)) => conn.is_closed(),
            None => true,
        }
    }
}
