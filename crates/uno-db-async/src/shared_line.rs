//! [`SharedLine`]: one shared connection of the multiplexed mode, whose
//! statements from many callers the driver pipelines. Sends statements;
//! the kernel's [`SharedConnState`] decides what their outcomes mean.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio_postgres::types::ToSql;
use tokio_postgres::{CancelToken, Client};
use uno_db_core::backend::{
    ConnState, MakeTls, PreparedStatement, RowsShape, SharedConnState, SharedStatement, from_driver,
};
use uno_db_core::{Error, ErrorKind, Result, Statement};

use crate::deadline_queue::{DeadlineQueue, Wait};
use crate::pg_conn::PgConn;
use crate::read_rows::read_rows;
use crate::shared::EngineShared;

/// A shared connection: the driver's client, which takes statements from
/// any number of tasks at once, and the kernel's state for it.
pub(crate) struct SharedLine {
    client: Client,
    cancel: CancelToken,
    state: Arc<SharedConnState<PreparedStatement>>,
    /// The state it opened with: it keeps the connection's server process
    /// registered with the engine (for a drain past its deadline).
    _opened: ConnState<PreparedStatement>,
    shared: Arc<EngineShared>,
}

impl std::fmt::Debug for SharedLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLine")
            .field("closed", &self.client.is_closed())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl SharedLine {
    /// A shared connection made of a connection the engine just opened.
    pub(crate) fn new(conn: PgConn, shared: Arc<EngineShared>) -> Self {
        let (client, opened) = conn.into_parts();
        Self {
            cancel: client.cancel_token(),
            client,
            state: Arc::new(
                SharedConnState::new(shared.core.config().statement_cache_size())
                    .with_telemetry(opened.telemetry()),
            ),
            _opened: opened,
            shared,
        }
    }

    /// How many statements wait on it, or `None` when it takes no more.
    pub(crate) fn load(&self) -> Option<usize> {
        self.state.load(self.client.is_closed())
    }

    /// A statement (`sql`) is about to be sent here.
    ///
    /// # Errors
    ///
    /// [`Closed`](uno_db_core::ErrorKind::Closed) when the connection was
    /// lost or retired since it was picked: nothing is sent.
    pub(crate) fn start(&self, sql: &str) -> Result<SharedStatement<PreparedStatement>> {
        self.state.statement_started(sql)
    }

    /// Runs `work` (which sends `statement` on this connection) as the
    /// kernel says: limited by `waits` (the `query_timeout` queue) when
    /// set, its outcome reported. `sql` is its text when it may
    /// be in the statement cache.
    ///
    /// # Errors
    ///
    /// `work`'s error, or the kernel's time-out error.
    pub(crate) fn run<'a, T, F: Future<Output = Result<T>>>(
        statement: SharedStatement<PreparedStatement>,
        sql: Option<&'a str>,
        waits: Option<&'a DeadlineQueue>,
        work: F,
    ) -> SharedRun<'a, F> {
        SharedRun {
            statement: Some(statement),
            sql,
            waits,
            wait: None,
            work,
        }
    }

    /// Runs a statement, returning the affected row count.
    pub(crate) async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        if !self.state.caches_statements() && params.is_empty() {
            return self
                .client
                .execute_typed(sql, &[])
                .await
                .map_err(from_driver);
        }
        let prepared = self.prepared(sql).await?;
        self.client
            .execute(&prepared, params)
            .await
            .map_err(from_driver)
    }

    /// Runs a query and makes of its rows what `shape` says (all of them,
    /// exactly one, at most one).
    pub(crate) async fn query_with<S: RowsShape>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        shape: S,
    ) -> Result<S::Output> {
        if !self.state.caches_statements() && params.is_empty() {
            let rows = self
                .client
                .query_typed(sql, &[])
                .await
                .map_err(from_driver)?;
            return shape.output(rows);
        }
        let prepared = self.prepared(sql).await?;
        S::finish(read_rows(&self.client, &prepared, params, shape, 0).await?)
    }

    /// Runs statements with the simple query protocol.
    pub(crate) async fn batch_execute(&self, sql: &str) -> Result<()> {
        self.client.batch_execute(sql).await.map_err(from_driver)
    }

    /// Prepares and describes `sql` (cached on this connection when the
    /// cache is on). The statement is not tied to this connection.
    pub(crate) async fn describe(&self, sql: &str) -> Result<Statement> {
        let prepared = self.prepared(sql).await?;
        Ok(Statement::from_driver(sql, &prepared))
    }

    /// The prepared statement for `sql`: from this connection's cache, or
    /// prepared now (and cached when the cache is on; otherwise closed on
    /// the server once used).
    async fn prepared(&self, sql: &str) -> Result<PreparedStatement> {
        if let Some(prepared) = self.state.cached(sql) {
            return Ok(prepared);
        }
        // Boxed: preparing is the rare path and its future is large.
        let statement = Box::pin(self.client.prepare(sql))
            .await
            .map_err(from_driver)?;
        // An evicted statement is closed on the server when dropped.
        drop(self.state.remember(sql, statement.clone()));
        Ok(statement)
    }
}

impl Drop for SharedLine {
    fn drop(&mut self) {
        let core = &self.shared.core;
        if self.state.cancel_on_close()
            && !self.client.is_closed()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let token = self.cancel.clone();
            let tls: MakeTls = core.tls();
            let bound = core.housekeeping_timeout();
            runtime.spawn(async move {
                let _ = tokio::time::timeout(bound, token.cancel_query(tls)).await;
            });
        }
        core.record_closed(self.state.close_reason());
    }
}

pin_project_lite::pin_project! {
    /// A statement under way on a shared connection (see
    /// [`SharedLine::run`]). Written by hand: as an `async fn`, the
    /// statement's future was kept twice (the argument and the pinned
    /// local), and the trait boxes and copies it on every statement.
    pub(crate) struct SharedRun<'a, F> {
        // `None` once finished.
        statement: Option<SharedStatement<PreparedStatement>>,
        sql: Option<&'a str>,
        waits: Option<&'a DeadlineQueue>,
        // Joined only if the first poll did not finish the statement; its
        // limit counts from then.
        wait: Option<Wait<'a>>,
        #[pin]
        work: F,
    }
}

impl<T, F: Future<Output = Result<T>>> Future for SharedRun<'_, F> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let this = self.project();
        // `Err(limit)`: the statement ran past `query_timeout`.
        let outcome = match this.work.poll(cx) {
            Poll::Ready(outcome) => Ok(outcome),
            Poll::Pending => {
                let Some(queue) = *this.waits else {
                    return Poll::Pending;
                };
                let wait = this
                    .wait
                    .get_or_insert_with(|| queue.wait_from(Instant::now()));
                match wait.poll_expired(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(()) => Err(queue.limit()),
                }
            }
        };
        *this.wait = None;
        let Some(statement) = this.statement.take() else {
            return Poll::Ready(Err(Error::with_message(
                ErrorKind::Unsupported,
                "a multiplexed statement's future was polled after it completed",
            )));
        };
        Poll::Ready(match outcome {
            Ok(outcome) => statement.finished(*this.sql, outcome),
            Err(limit) => Err(statement.timed_out(limit)),
        })
    }
}
