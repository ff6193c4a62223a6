//! [`PgConn`]: one physical connection, the driver's client next to the
//! kernel's state for it. Sends statements; the kernel decides.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{CancelToken, Client};
use uno_db_core::backend::{
    AllRows, ConnState, DescribePlan, PINNED_BEGIN, PINNED_END, PreparedStatement, RowsShape,
    SendPlan, first_simple_row, from_driver, typed_params,
};
use uno_db_core::nonblocking::{CopyInSink, CopyOutStream, RowStream};
use uno_db_core::{Result, Row, Statement, TransactionOptions};

use crate::copy::CopySink;
use crate::read_rows::read_rows;
use crate::shared::EngineShared;
use crate::streamed::Streamed;

use crate::watchdog::StatementClock;

/// A physical connection and what the kernel knows about it.
pub(crate) struct PgConn {
    client: Client,
    cancel: CancelToken,
    /// Where the engine's watchdog reads the running statement's deadline.
    clock: Arc<StatementClock>,
    pub(crate) state: ConnState<PreparedStatement>,
    /// Its engine, for the return: kept once per physical connection, so
    /// that a checkout does not clone (and its return drop) a reference
    /// whose count every checkout on every thread would write.
    shared: Arc<EngineShared>,
}

/// Runs a statement future under `query_timeout`: when the engine's
/// watchdog ends a late statement (a cancel request, then the driver task),
/// the statement fails and the kernel's time-out error is returned; the
/// closed connection is discarded on return.
macro_rules! timed {
    ($conn:expr, $call:expr) => {{
        let watch = $conn.watch();
        let result = $call.await;
        $conn.unwatch(watch, result)
    }};
}

pub(crate) use timed;

impl std::fmt::Debug for PgConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConn")
            .field("closed", &self.client.is_closed())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl PgConn {
    pub(crate) fn new(
        client: Client,
        state: ConnState<PreparedStatement>,
        clock: Arc<StatementClock>,
        shared: Arc<EngineShared>,
    ) -> Self {
        Self {
            cancel: client.cancel_token(),
            client,
            clock,
            state,
            shared,
        }
    }

    /// The engine this connection belongs to.
    pub(crate) fn shared(&self) -> &Arc<EngineShared> {
        &self.shared
    }

    /// The driver's client and the kernel's state, for a shared connection
    /// of the multiplexed mode (which keeps the state only for what it
    /// registered when the connection opened).
    pub(crate) fn into_parts(self) -> (Client, ConnState<PreparedStatement>) {
        (self.client, self.state)
    }

    /// Where the engine's watchdog reads the running statement's deadline.
    pub(crate) fn clock(&self) -> &Arc<StatementClock> {
        &self.clock
    }

    /// Whether the driver knows the connection to be broken.
    pub(crate) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Where and how long to wait for a cancel request before closing this
    /// connection, when that order matters (behind PgBouncer).
    pub(crate) fn cancel_first(&self) -> Option<(std::time::Duration, uno_db_core::Endpoint)> {
        self.clock.cancel_first()
    }

    /// The driver's client, lent to the user: the kernel resets the whole
    /// session when the connection comes back.
    pub(crate) fn lend_client(&mut self) -> &Client {
        self.state.lent_to_driver();
        &self.client
    }

    /// A token to cancel whatever the connection runs, from elsewhere.
    pub(crate) fn cancel_token(&self) -> CancelToken {
        self.cancel.clone()
    }

    /// Runs a statement (SQL text, or the text of a statement this
    /// connection prepared: see `ConnState::statement_sql`, which every
    /// statement method asks first), returning the affected row count.
    pub(crate) async fn execute(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64> {
        let sql = self.state.statement_sql(sql)?;
        let cached = self.state.statement_started(sql)?;
        let watch = self.watch();
        // The plan of a cached statement inline, not through `plan`: that
        // layer is a future of its own, polled and moved on every statement
        // (about 0.1 k instructions per statement, measured with callgrind).
        let plan = match cached {
            Some(prepared) => Ok(SendPlan::Prepared(prepared)),
            None => Box::pin(self.plan_uncached(sql, params)).await,
        };
        let result = match plan {
            Ok(SendPlan::Prepared(prepared)) => self
                .client
                .execute(&prepared, params)
                .await
                .map_err(from_driver),
            Ok(SendPlan::Unnamed(types)) => {
                let typed = typed_params(params, &types);
                self.client
                    .execute_typed(sql, &typed)
                    .await
                    .map_err(from_driver)
            }
            Err(error) => Err(error),
        };
        let result = self.state.finished(Some(sql), result);
        self.unwatch(watch, result)
    }

    /// Runs a query and makes of its rows what `shape` says (all of them,
    /// exactly one, at most one).
    pub(crate) async fn query_with<S: RowsShape>(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        shape: S,
    ) -> Result<S::Output> {
        let sql = self.state.statement_sql(sql)?;
        let cached = self.state.statement_started(sql)?;
        let watch = self.watch();
        // Inline, as in `execute`.
        let plan = match cached {
            Some(prepared) => Ok(SendPlan::Prepared(prepared)),
            None => Box::pin(self.plan_uncached(sql, params)).await,
        };
        let result = match plan {
            Ok(SendPlan::Prepared(prepared)) => {
                let expected = self.state.expected_rows();
                read_rows(&self.client, &prepared, params, shape, expected).await
            }
            Ok(SendPlan::Unnamed(types)) => {
                let typed = typed_params(params, &types);
                self.client
                    .query_typed(sql, &typed)
                    .await
                    .map_err(from_driver)
                    .map(|rows| shape.take_all(rows))
            }
            Err(error) => Err(error),
        };
        let result = self.state.finished(Some(sql), result);
        if let Some(count) = result.as_ref().ok().and_then(S::listed) {
            self.state.rows_read(sql, count);
        }
        S::finish(self.unwatch(watch, result)?)
    }

    /// Runs a query, returning all rows.
    // Not an `async fn`: it returns `query_with`'s future itself, with no
    // layer of its own.
    pub(crate) fn query<'a>(
        &'a mut self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>>> + Send + 'a {
        self.query_with(sql, params, AllRows)
    }

    /// Starts the `query_timeout` watch of the statement about to be sent;
    /// the limit, `None` without one.
    pub(crate) fn watch(&self) -> Option<Duration> {
        let limit = self.state.query_timeout()?;
        self.clock.start(limit);
        Some(limit)
    }

    /// Ends the watch [`watch`](Self::watch) started: when the watchdog
    /// ended the statement, the kernel's time-out error instead of
    /// `result` (the closed connection is discarded on return).
    pub(crate) fn unwatch<T>(&mut self, watch: Option<Duration>, result: Result<T>) -> Result<T> {
        match watch {
            Some(limit) if self.clock.stop() => Err(self.state.statement_timed_out(limit)),
            _ => result,
        }
    }

    /// Runs a query and returns its rows as the server sends them.
    pub(crate) async fn query_stream<'a>(
        &'a mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<RowStream<'a>> {
        let sql = self.state.statement_sql(sql)?;
        // Sending and the wait for the server's first answer.
        let stream = timed!(self, self.start_stream(sql, params))?;
        Ok(RowStream::new(Streamed::new(
            self,
            sql,
            stream,
            Row::from_driver,
        )))
    }

    async fn start_stream(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<tokio_postgres::RowStream> {
        let cached = self.state.statement_started(sql)?;
        let result = match self.plan(sql, params, cached).await {
            Ok(SendPlan::Prepared(prepared)) => {
                self.client
                    .query_raw(&prepared, params.iter().copied())
                    .await
            }
            Ok(SendPlan::Unnamed(types)) => {
                self.client
                    .query_typed_raw(sql, typed_params(params, &types))
                    .await
            }
            Err(error) => return self.state.finished(Some(sql), Err(error)),
        };
        result.map_err(|error| {
            self.state
                .stream_failed(Some(sql), from_driver(error), None)
        })
    }

    /// Starts `COPY ... FROM STDIN`.
    pub(crate) async fn copy_in(&mut self, sql: &str) -> Result<CopyInSink<'_>> {
        let sql = self.state.statement_sql(sql)?;
        self.state.copy_started(sql)?;
        let result = timed!(self, async {
            let statement = self.copy_statement(sql).await?;
            self.client
                .copy_in::<_, Bytes>(&statement)
                .await
                .map_err(from_driver)
        });
        let sink = result.map_err(|error| self.state.stream_failed(Some(sql), error, None))?;
        Ok(CopyInSink::new(CopySink::new(self, sink)))
    }

    /// Starts `COPY ... TO STDOUT`.
    pub(crate) async fn copy_out(&mut self, sql: &str) -> Result<CopyOutStream<'_>> {
        let sql = self.state.statement_sql(sql)?;
        self.state.copy_started(sql)?;
        let result = timed!(self, async {
            let statement = self.copy_statement(sql).await?;
            self.client.copy_out(&statement).await.map_err(from_driver)
        });
        let stream = result.map_err(|error| self.state.stream_failed(Some(sql), error, None))?;
        Ok(CopyOutStream::new(Streamed::new(
            self,
            sql,
            stream,
            |data| data,
        )))
    }

    /// The statement a `COPY` runs: the driver needs one prepared.
    async fn copy_statement(&mut self, sql: &str) -> Result<tokio_postgres::Statement> {
        if self.state.caches_statements() {
            return self.cached(sql).await;
        }
        Box::pin(self.client.prepare(sql))
            .await
            .map_err(from_driver)
    }

    /// Runs the user's statements with the simple query protocol.
    pub(crate) async fn batch_execute(&mut self, sql: &str) -> Result<()> {
        let sql = self.state.statement_sql(sql)?;
        self.state.batch_started(sql)?;
        let result = timed!(self, async {
            self.client.batch_execute(sql).await.map_err(from_driver)
        });
        self.state.finished(None, result)
    }

    /// Runs statements the pool itself issues (`ROLLBACK`, `SET ROLE`,
    /// savepoints...).
    pub(crate) async fn internal(&mut self, sql: &str) -> Result<()> {
        self.state.internal_started()?;
        let result = timed!(self, async {
            self.client.batch_execute(sql).await.map_err(from_driver)
        });
        self.state.finished(None, result)
    }

    /// Runs the pool's own query `sql` (simple protocol) and returns its
    /// first row as text, for the kernel to judge.
    pub(crate) async fn internal_row(&mut self, sql: &str) -> Result<Vec<Option<String>>> {
        self.state.internal_started()?;
        let result = timed!(self, async {
            self.client.simple_query(sql).await.map_err(from_driver)
        });
        let messages = self.state.finished(None, result)?;
        Ok(first_simple_row(&messages))
    }

    /// A handle that cancels this connection's running statement from
    /// elsewhere.
    pub(crate) fn cancel_handle(&self) -> crate::CancelHandle {
        self.clock.cancel_handle()
    }

    /// Sends `BEGIN ...` for a session with `options`, with its
    /// server-side limits in the same round trip (the kernel's
    /// `begin_batch`; nothing is sent when a limit is invalid).
    pub(crate) async fn begin(&mut self, options: &TransactionOptions) -> Result<()> {
        let sql = &options.begin_batch()?;
        self.state.begin_started()?;
        let result = timed!(self, async {
            self.client.batch_execute(sql).await.map_err(from_driver)
        });
        self.state.finished(None, result)?;
        self.state.begin_succeeded(options.statement_limit());
        Ok(())
    }

    /// Ends a session's transaction: commits, or rolls back an aborted one
    /// and reports it, as the kernel says.
    pub(crate) async fn commit(&mut self) -> Result<()> {
        let (sql, outcome) = self.state.commit_plan();
        self.internal(sql).await?;
        self.state.transaction_ended();
        outcome.map_or(Ok(()), Err)
    }

    /// Rolls back a session's transaction.
    pub(crate) async fn rollback(&mut self) -> Result<()> {
        self.internal("ROLLBACK").await?;
        self.state.transaction_ended();
        Ok(())
    }

    /// Leaves the connection as the kernel wants it after the callbacks.
    pub(crate) async fn settle_callbacks(
        &mut self,
        core: &uno_db_core::backend::EngineCore,
    ) -> Result<()> {
        let closed = self.is_closed();
        if let Some(sql) = core.settle_after_callbacks(&mut self.state, closed)? {
            self.internal(sql).await?;
        }
        Ok(())
    }

    /// Prepares `sql` (through the cache when it is on) and describes it.
    pub(crate) async fn prepare(&mut self, sql: &str) -> Result<Statement> {
        let sql = self.state.statement_sql(sql)?;
        self.state.internal_started()?;
        if matches!(
            self.state.describe_plan(sql),
            DescribePlan::DescribeInTransaction
        ) {
            let result = timed!(self, self.describe_in_transaction(sql));
            let (types, statement) = self.state.finished(Some(sql), result)?;
            self.state.described(sql, &types);
            return Ok(statement.prepared_on(self.state.id()));
        }
        let result = timed!(self, async {
            if self.state.caches_statements() {
                self.cached(sql).await
            } else {
                self.client.prepare(sql).await.map_err(from_driver)
            }
        });
        let prepared = self.state.finished(Some(sql), result)?;
        Ok(Statement::from_driver(sql, &prepared).prepared_on(self.state.id()))
    }

    /// How to run `sql`: from the statement cache (prepared once per
    /// connection, then one round trip without parse or plan work on the
    /// server); with the cache off, as the unnamed statement, described
    /// first when it has parameters, so that no named statement outlives
    /// the call (`PgBouncer` in transaction mode may route the next message
    /// to another server connection).
    async fn plan(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        cached: Option<PreparedStatement>,
    ) -> Result<SendPlan<PreparedStatement>> {
        match cached {
            Some(prepared) => Ok(SendPlan::Prepared(prepared)),
            // Boxed: a statement's first use is rare, and its future (a
            // prepare, perhaps a describe in a transaction) would otherwise
            // weigh on every statement's, past the size the allocator
            // serves from its per-thread cache.
            None => Box::pin(self.plan_uncached(sql, params)).await,
        }
    }

    async fn plan_uncached(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<SendPlan<PreparedStatement>> {
        if self.state.caches_statements() {
            return self.cached(sql).await.map(SendPlan::Prepared);
        }
        if params.is_empty() {
            return Ok(SendPlan::Unnamed(Vec::new()));
        }
        match self.state.describe_plan(sql) {
            DescribePlan::Known(types) => return SendPlan::described_before(&types, params.len()),
            DescribePlan::DescribeInTransaction => {
                let (types, _) = self.describe_in_transaction(sql).await?;
                self.state.described(sql, &types);
                return SendPlan::described_before(&types, params.len());
            }
            DescribePlan::Describe => {}
        }
        let statement = Box::pin(self.client.prepare(sql))
            .await
            .map_err(from_driver)?;
        let described = statement.params().to_vec();
        self.state.described(sql, &described);
        Ok(SendPlan::described(statement, &described, params.len()))
    }

    /// Describes `sql` between `BEGIN` and `ROLLBACK`, so that behind
    /// PgBouncer in transaction mode its named statement is prepared and
    /// closed on the same server connection.
    async fn describe_in_transaction(&mut self, sql: &str) -> Result<(Vec<Type>, Statement)> {
        self.client
            .batch_execute(PINNED_BEGIN)
            .await
            .map_err(from_driver)?;
        // The statement is dropped (its `Close` sent) before the end.
        let described = Box::pin(self.client.prepare(sql)).await.map(|statement| {
            (
                statement.params().to_vec(),
                Statement::from_driver(sql, &statement),
            )
        });
        let ended = self.client.batch_execute(PINNED_END).await;
        let types = described.map_err(from_driver)?;
        ended.map_err(from_driver)?;
        Ok(types)
    }

    async fn cached(&mut self, sql: &str) -> Result<PreparedStatement> {
        if let Some(statement) = self.state.cached(sql) {
            return Ok(statement);
        }
        // Boxed: preparing is the rare path and its future is large; inline,
        // it would bloat (and slow) every statement's future.
        let statement = Box::pin(self.client.prepare(sql))
            .await
            .map_err(from_driver)?;
        // An evicted statement is closed on the server when dropped.
        drop(self.state.remember(sql, statement.clone()));
        Ok(statement)
    }
}
