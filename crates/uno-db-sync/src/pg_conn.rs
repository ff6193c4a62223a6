//! [`PgConn`]: one physical connection, the driver's client next to the
//! kernel's state for it. Sends statements; the kernel decides.

use std::sync::Arc;
use std::time::Instant;

use fallible_iterator::FallibleIterator;
use postgres::types::{ToSql, Type};
use postgres::{CancelToken, Client};
use uno_db_core::backend::{
    AllRows, ConnState, DescribePlan, OneRow, OptionalRow, PINNED_BEGIN, PINNED_END,
    PreparedStatement, ROLE_QUERY, RowsShape, SendPlan, first_simple_row, from_driver,
    typed_params,
};
use uno_db_core::blocking::{CopyInWriter, CopyOutReader, RowIter};
use uno_db_core::{CloseReason, Error, Result, Row, Statement, TransactionOptions};

use crate::copy::CopyWriter;
use crate::streamed::{StreamedCopy, StreamedRows, Waits};
use crate::watchdog::StatementSlot;

use crate::shared::EngineShared;

/// A physical connection and what the kernel knows about it. Counted as
/// closed (with the kernel's reason) when dropped.
pub(crate) struct PgConn {
    // `None` only while being dropped.
    client: Option<Client>,
    cancel: Option<Arc<CancelToken>>,
    /// This connection's `query_timeout` watch, made on its first
    /// watched statement.
    watch: Option<Arc<StatementSlot>>,
    pub(crate) state: ConnState<PreparedStatement>,
    shared: Arc<EngineShared>,
}

impl std::fmt::Debug for PgConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConn")
            .field("closed", &self.is_closed())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl PgConn {
    pub(crate) fn new(
        client: Client,
        state: ConnState<PreparedStatement>,
        shared: Arc<EngineShared>,
    ) -> Self {
        Self {
            state,
            cancel: Some(Arc::new(client.cancel_token())),
            watch: None,
            client: Some(client),
            shared,
        }
    }

    /// One driver call, watched for `query_timeout`: past it, the watchdog
    /// cancels the statement on the server and the call fails with the
    /// kernel's time-out error (the connection is then lost).
    fn call<T>(
        &mut self,
        call: impl FnOnce(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T> {
        let limit = self.state.query_timeout();
        self.call_within(limit, call)
    }

    /// As [`call`](Self::call), watched for `limit` instead.
    fn call_within<T>(
        &mut self,
        limit: Option<std::time::Duration>,
        call: impl FnOnce(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T> {
        let client = open(&mut self.client)?;
        let watch = match (limit, &self.cancel, &self.watch) {
            (Some(_), _, Some(watch)) => Some(watch),
            (Some(_), Some(token), None) => {
                let watch = self.shared.watchdog.slot(Arc::clone(token));
                Some(&*self.watch.insert(watch))
            }
            _ => None,
        };
        let armed = watch.zip(limit).map(|(watch, limit)| watch.arm(limit));
        let result = call(client).map_err(from_driver);
        if let (Some(armed), Some(limit)) = (armed, limit)
            && armed.disarm()
        {
            return Err(self.state.statement_timed_out(limit));
        }
        result
    }

    /// Whether the driver knows the connection to be broken.
    pub(crate) fn is_closed(&self) -> bool {
        self.client.as_ref().is_none_or(Client::is_closed)
    }

    /// Whether the connection is closed, after reading without blocking
    /// whatever the server sent while it sat idle (a `FATAL` from
    /// `pg_terminate_backend`, a restart's EOF). The driver only reads
    /// during calls, so without this a connection that died idle would
    /// look alive until its next statement failed. Notifications read
    /// meanwhile are dropped: pooled connections do not `LISTEN`.
    pub(crate) fn poll_closed(&mut self) -> bool {
        let Some(client) = self.client.as_mut() else {
            return true;
        };
        let failed = {
            let mut notifications = client.notifications();
            // A zero timeout, not the plain non-blocking iterator: it lets
            // the driver's reactor turn once, so that data that arrived
            // while idle is seen at all. The turn waits for the driver's
            // next timer tick (up to 1 ms), which is why the kernel asks for
            // it only after a long idle.
            let mut pending = notifications.timeout_iter(std::time::Duration::ZERO);
            loop {
                match pending.next() {
                    Ok(Some(_)) => {}
                    Ok(None) => break false,
                    Err(_) => break true,
                }
            }
        };
        failed || client.is_closed()
    }

    /// Waits at most `wait` for a notification, for a listener (the
    /// driver keeps those that arrived during statements). `Ok(None)` when
    /// none came within `wait` or the connection ended: [`is_closed`]
    /// tells which.
    ///
    /// [`is_closed`]: Self::is_closed
    pub(crate) fn next_notification(
        &mut self,
        wait: std::time::Duration,
    ) -> Result<Option<postgres::Notification>> {
        let client = open(&mut self.client)?;
        let mut notifications = client.notifications();
        let mut pending = notifications.timeout_iter(wait);
        pending.next().map_err(from_driver)
    }

    /// The checkout check the kernel asked for: its first row as text.
    /// The driver bounds only its own check (`is_valid`, an empty query
    /// with a deadline): any other query on a black-holed socket would
    /// wait until TCP gives up. So that check runs first, bounded by
    /// `timeout`; it is the whole of `pre_ping`'s `SELECT 1`, and the role
    /// query follows it, watched for `timeout`.
    pub(crate) fn probe_row(
        &mut self,
        sql: &str,
        timeout: std::time::Duration,
    ) -> Result<Vec<Option<String>>> {
        self.state.internal_started()?;
        let alive = open(&mut self.client)?.is_valid(timeout);
        self.state.finished(None, alive.map_err(from_driver))?;
        if sql != ROLE_QUERY {
            return Ok(Vec::new());
        }
        self.state.internal_started()?;
        let result = self.call_within(Some(timeout), |c| c.simple_query(sql));
        let messages = self.state.finished(None, result)?;
        Ok(first_simple_row(&messages))
    }

    /// A token to cancel whatever the connection runs, from elsewhere.
    pub(crate) fn cancel_token(&self) -> Option<Arc<CancelToken>> {
        self.cancel.clone()
    }

    /// Runs a statement (SQL text, or the text of a statement this
    /// connection prepared: see `ConnState::statement_sql`, which every
    /// statement method asks first), returning the affected row count.
    pub(crate) fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let sql = self.state.statement_sql(sql)?;
        let cached = self.state.statement_started(sql)?;
        let result = match self.plan(sql, params, cached) {
            Ok(SendPlan::Prepared(prepared)) => self.call(|c| c.execute(&prepared, params)),
            Ok(SendPlan::Unnamed(types)) => {
                let typed = typed_params(params, &types);
                self.call(|c| c.execute_typed(sql, &typed))
            }
            Err(error) => Err(error),
        };
        self.state.finished(Some(sql), result)
    }

    /// Runs a query, returning all rows.
    pub(crate) fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        self.query_with(sql, params, AllRows)
    }

    /// Runs a query and makes of its rows what `shape` says (all of them,
    /// exactly one, at most one).
    fn query_with<S: RowsShape>(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        shape: S,
    ) -> Result<S::Output> {
        let sql = self.state.statement_sql(sql)?;
        let cached = self.state.statement_started(sql)?;
        let result = match self.plan(sql, params, cached) {
            Ok(SendPlan::Prepared(prepared)) => self.call(|c| c.query(&prepared, params)),
            Ok(SendPlan::Unnamed(types)) => {
                let typed = typed_params(params, &types);
                self.call(|c| c.query_typed(sql, &typed))
            }
            Err(error) => Err(error),
        };
        shape.output(self.state.finished(Some(sql), result)?)
    }

    /// Runs a query and returns its rows as the server sends them.
    pub(crate) fn query_stream<'a>(
        &'a mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<RowIter<'a>> {
        let sql = self.state.statement_sql(sql)?;
        let cached = self.state.statement_started(sql)?;
        let plan = match self.plan(sql, params, cached) {
            Ok(plan) => plan,
            Err(error) => return self.state.finished(Some(sql), Err(error)),
        };
        let limit = self.state.query_timeout();
        let waits = self.waits(limit);
        let Self { client, state, .. } = self;
        let client = open(client)?;
        let (result, expired) = waits.around(|| match &plan {
            SendPlan::Prepared(prepared) => client.query_raw(prepared, params.iter().copied()),
            SendPlan::Unnamed(types) => client.query_typed_raw(sql, typed_params(params, types)),
        });
        let rows =
            result.map_err(|error| state.stream_failed(Some(sql), from_driver(error), expired))?;
        Ok(RowIter::new(StreamedRows::new(rows, state, waits, sql)))
    }

    /// Starts `COPY ... FROM STDIN`.
    pub(crate) fn copy_in(&mut self, sql: &str) -> Result<CopyInWriter<'_>> {
        let (writer, state, waits) =
            self.start_copy(sql, |client, statement| client.copy_in(statement))?;
        Ok(CopyInWriter::new(CopyWriter::new(writer, state, waits)))
    }

    /// Starts `COPY ... TO STDOUT`.
    pub(crate) fn copy_out(&mut self, sql: &str) -> Result<CopyOutReader<'_>> {
        let (reader, state, waits) =
            self.start_copy(sql, |client, statement| client.copy_out(statement))?;
        Ok(CopyOutReader::new(StreamedCopy::new(reader, state, waits)))
    }

    /// Starts the `COPY` `sql` with `start` (the driver's `copy_in` or
    /// `copy_out`), watched as a stream: what it started, with the state and
    /// the watch its data goes on with.
    fn start_copy<'a, T>(
        &'a mut self,
        sql: &str,
        start: impl FnOnce(&'a mut Client, &postgres::Statement) -> Result<T, postgres::Error>,
    ) -> Result<(T, &'a mut ConnState<PreparedStatement>, Waits)> {
        let sql = self.state.statement_sql(sql)?;
        self.state.copy_started(sql)?;
        let statement = match self.copy_statement(sql) {
            Ok(statement) => statement,
            Err(error) => return self.state.finished(Some(sql), Err(error)),
        };
        let waits = self.waits(self.state.query_timeout());
        let Self { client, state, .. } = self;
        let client = open(client)?;
        let (result, expired) = waits.around(|| start(client, &statement));
        let started =
            result.map_err(|error| state.stream_failed(Some(sql), from_driver(error), expired))?;
        Ok((started, state, waits))
    }

    /// The statement a `COPY` runs: the driver needs one prepared.
    fn copy_statement(&mut self, sql: &str) -> Result<postgres::Statement> {
        if self.state.caches_statements() {
            return self.cached(sql);
        }
        self.call(|c| c.prepare(sql))
    }

    /// How a stream's waits are watched, for `limit`.
    fn waits(&self, limit: Option<std::time::Duration>) -> Waits {
        Waits::new(match (limit, &self.cancel) {
            (Some(limit), Some(token)) => {
                Some((self.shared.watchdog.watch_stream(limit, token), limit))
            }
            _ => None,
        })
    }

    /// Runs a query that must return exactly one row.
    pub(crate) fn query_one(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        self.query_with(sql, params, OneRow)
    }

    /// Runs a query that returns at most one row.
    pub(crate) fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        self.query_with(sql, params, OptionalRow)
    }

    /// Runs the user's statements with the simple query protocol.
    pub(crate) fn batch_execute(&mut self, sql: &str) -> Result<()> {
        let sql = self.state.statement_sql(sql)?;
        self.state.batch_started(sql)?;
        let result = self.call(|c| c.batch_execute(sql));
        self.state.finished(None, result)
    }

    /// Runs statements the pool itself issues (`ROLLBACK`, `SET ROLE`,
    /// savepoints...).
    pub(crate) fn internal(&mut self, sql: &str) -> Result<()> {
        self.state.internal_started()?;
        let result = self.call(|c| c.batch_execute(sql));
        self.state.finished(None, result)
    }

    /// Runs the pool's own query `sql` (simple protocol) and returns its
    /// first row as text, for the kernel to judge.
    pub(crate) fn internal_row(&mut self, sql: &str) -> Result<Vec<Option<String>>> {
        self.state.internal_started()?;
        let result = self.call(|c| c.simple_query(sql));
        let messages = self.state.finished(None, result)?;
        Ok(first_simple_row(&messages))
    }

    /// A handle that cancels this connection's running statement from
    /// another thread; `None` once the connection is being dropped.
    pub(crate) fn cancel_handle(&self) -> Option<crate::CancelHandle> {
        self.cancel.as_ref().map(|token| {
            crate::CancelHandle::new(
                Arc::clone(token),
                self.shared.core.tls(),
                self.shared.core.housekeeping_timeout(),
            )
        })
    }

    /// Sends `BEGIN ...` for a session with `options`, with its
    /// server-side limits in the same round trip (the kernel's
    /// `begin_batch`; nothing is sent when a limit is invalid).
    pub(crate) fn begin(&mut self, options: &TransactionOptions) -> Result<()> {
        let sql = &options.begin_batch()?;
        self.state.begin_started()?;
        let result = self.call(|c| c.batch_execute(sql));
        self.state.finished(None, result)?;
        self.state.begin_succeeded(options.statement_limit());
        Ok(())
    }

    /// Ends a session's transaction: commits, or rolls back an aborted one
    /// and reports it, as the kernel says.
    pub(crate) fn commit(&mut self) -> Result<()> {
        let (sql, outcome) = self.state.commit_plan();
        self.internal(sql)?;
        self.state.transaction_ended();
        outcome.map_or(Ok(()), Err)
    }

    /// Rolls back a session's transaction.
    pub(crate) fn rollback(&mut self) -> Result<()> {
        self.internal("ROLLBACK")?;
        self.state.transaction_ended();
        Ok(())
    }

    /// Leaves the connection as the kernel wants it after the callbacks.
    pub(crate) fn settle_callbacks(&mut self) -> Result<()> {
        let closed = self.is_closed();
        if let Some(sql) = self
            .shared
            .core
            .settle_after_callbacks(&mut self.state, closed)?
        {
            self.internal(sql)?;
        }
        Ok(())
    }

    /// The driver's client, lent to the user: the kernel resets the whole
    /// session when the connection comes back.
    pub(crate) fn lend_client(&mut self) -> Result<&mut Client> {
        self.state.lent_to_driver();
        open(&mut self.client)
    }

    /// Prepares `sql` (through the cache when it is on) and describes it.
    pub(crate) fn prepare(&mut self, sql: &str) -> Result<Statement> {
        let sql = self.state.statement_sql(sql)?;
        self.state.internal_started()?;
        if matches!(
            self.state.describe_plan(sql),
            DescribePlan::DescribeInTransaction
        ) {
            let result = self.call(|c| describe_in_transaction(c, sql));
            let (types, statement) = self.state.finished(Some(sql), result)?;
            self.state.described(sql, &types);
            return Ok(statement.prepared_on(self.state.id()));
        }
        let result = if self.state.caches_statements() {
            self.cached(sql)
        } else {
            self.call(|c| c.prepare(sql))
        };
        let prepared = self.state.finished(Some(sql), result)?;
        Ok(Statement::from_driver(sql, &prepared).prepared_on(self.state.id()))
    }

    /// How to run `sql`: as the async backend does (see its `PgConn`).
    fn plan(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        cached: Option<PreparedStatement>,
    ) -> Result<SendPlan<PreparedStatement>> {
        if let Some(prepared) = cached {
            return Ok(SendPlan::Prepared(prepared));
        }
        if self.state.caches_statements() {
            return self.cached(sql).map(SendPlan::Prepared);
        }
        if params.is_empty() {
            return Ok(SendPlan::Unnamed(Vec::new()));
        }
        match self.state.describe_plan(sql) {
            DescribePlan::Known(types) => return SendPlan::described_before(&types, params.len()),
            DescribePlan::DescribeInTransaction => {
                let (types, _) = self.call(|c| describe_in_transaction(c, sql))?;
                self.state.described(sql, &types);
                return SendPlan::described_before(&types, params.len());
            }
            DescribePlan::Describe => {}
        }
        let statement = self.call(|c| c.prepare(sql))?;
        let described = statement.params().to_vec();
        self.state.described(sql, &described);
        Ok(SendPlan::described(statement, &described, params.len()))
    }

    fn cached(&mut self, sql: &str) -> Result<PreparedStatement> {
        if let Some(prepared) = self.state.cached(sql) {
            return Ok(prepared);
        }
        let prepared = self.call(|c| c.prepare(sql))?;
        // An evicted statement is closed on the server when dropped.
        drop(self.state.remember(sql, prepared.clone()));
        Ok(prepared)
    }
}

/// Describes `sql` between `BEGIN` and `ROLLBACK`, so that behind
/// PgBouncer in transaction mode its named statement is prepared and closed
/// on the same server connection.
fn describe_in_transaction(
    client: &mut Client,
    sql: &str,
) -> std::result::Result<(Vec<Type>, Statement), postgres::Error> {
    client.batch_execute(PINNED_BEGIN)?;
    // The statement is dropped (its `Close` sent) before the end.
    let described = client.prepare(sql).map(|statement| {
        (
            statement.params().to_vec(),
            Statement::from_driver(sql, &statement),
        )
    });
    let ended = client.batch_execute(PINNED_END);
    let types = described?;
    ended?;
    Ok(types)
}

/// The client, unless it was already taken (the connection is being
/// dropped). A free function, so that callers can borrow other fields of
/// the connection at the same time.
fn open(client: &mut Option<Client>) -> Result<&mut Client> {
    client.as_mut().ok_or_else(|| {
        Error::with_message(uno_db_core::ErrorKind::Closed, "the connection is closed")
    })
}

impl Drop for PgConn {
    fn drop(&mut self) {
        let core = &self.shared.core;
        // Without a recorded reason, r2d2 drops a connection when the pool
        // itself goes away.
        let reason = core.close_reason(
            &self.state,
            self.is_closed(),
            Instant::now(),
            CloseReason::Disposed,
        );
        core.record_closed(reason);
        if let Some(client) = self.client.take() {
            // A graceful close waits for the server to answer what is in
            // flight, which a server gone silent never does: close on a
            // thread of its own, so no caller, reaper or dispose hangs. (The
            // driver's runtime would also panic on a runtime thread.)
            let closer = std::thread::Builder::new()
                .name("uno-db-sync-close".to_owned())
                .spawn(move || drop(client));
            // Without a thread the client was dropped (closed) right here.
            drop(closer);
        }
    }
}
