//! [`MultiplexedClient`]: the statements of the multiplexed mode.

use std::sync::Arc;

use async_trait::async_trait;
use tokio_postgres::types::ToSql;
use uno_db_core::backend::{AllRows, OneRow, OptionalRow, multiplexed_sql};
use uno_db_core::nonblocking::Client;
use uno_db_core::{Result, Row, Statement};

use crate::multiplexer::Multiplexer;
use crate::shared_line::SharedLine;

/// Runs autocommit statements of many tasks over an engine's few shared
/// connections (`multiplex_connections`), pipelined: a statement needs no
/// checkout and waits for no pooled connection, only for the statements
/// sent before it on its shared connection. From
/// [`AsyncEngine::multiplexed`](crate::AsyncEngine::multiplexed); cheap
/// to clone (clones share the connections).
///
/// Each statement goes to the shared connection with the fewest statements
/// in flight. Statements that may change or rely on session state (see
/// [`SqlEffects::touches_session`]: settings, transactions, `LISTEN`,
/// prepared statements and cursors by name, temporary objects, session
/// advisory locks, `currval`, `DO` blocks...) are refused with
/// [`Unsupported`](uno_db_core::ErrorKind::Unsupported), nothing sent: run
/// them on a connection from [`checkout`](crate::AsyncEngine::checkout) or
/// in a transaction. `copy_in`, `copy_out` are refused too, and
/// `query_stream` collects the rows first.
///
/// Faults touch only the statements they hit:
///
/// - A statement's error is its caller's alone.
/// - A shared connection that breaks (the server terminated it or
///   restarted, the network failed) is replaced; the statements in flight
///   on it fail with a transient [`Closed`](uno_db_core::ErrorKind::Closed)
///   error and are never retried, since any of them may have been applied.
/// - A statement past `query_timeout` fails with
///   [`QueryTimeout`](uno_db_core::ErrorKind::QueryTimeout) at once; a
///   cancel request would end whatever the server runs at that moment, so
///   none is sent then: its connection takes no new statements and is
///   replaced, and once no caller waits on it the connection is closed
///   after a cancel request for what may still run there.
/// - A caller that stops waiting (its future dropped) leaves its statement
///   to end on the server; nobody else notices.
///
/// ```no_run
/// use uno_db_async::AsyncEngine;
/// use uno_db_core::nonblocking::Client;
///
/// # async fn demo() -> uno_db_core::Result<()> {
/// let engine = AsyncEngine::new(&"postgresql://app@db/orders?multiplex_connections=4".parse()?)?;
/// let client = engine.multiplexed()?;
/// let tasks: Vec<_> = (0..64_i32)
///     .map(|i| {
///         let mut client = client.clone();
///         tokio::spawn(async move { client.query_one("SELECT $1::int4 + 1", &[&i]).await })
///     })
///     .collect();
/// for task in tasks {
///     let _row = task.await.expect("the task ran")?;
/// }
/// # Ok(())
/// # }
/// ```
///
/// [`SqlEffects::touches_session`]: uno_db_core::backend::SqlEffects::touches_session
#[derive(Debug, Clone)]
pub struct MultiplexedClient {
    multiplexer: Arc<Multiplexer>,
}

/// Runs `$work` (with `$line` bound to the shared connection) as one
/// statement of `$sql`, admitted as a batch or not.
macro_rules! multiplexed {
    ($self:ident, $sql:ident, $batch:expr, |$line:ident| $work:expr) => {{
        let $sql = multiplexed_sql($sql);
        $self.multiplexer.admit($sql, $batch)?;
        let ($line, statement) = $self.multiplexer.start($sql).await?;
        let cached = (!$batch).then_some($sql);
        SharedLine::run(
            statement,
            cached,
            $self.multiplexer.statement_waits(),
            $work,
        )
        .await
    }};
}

impl MultiplexedClient {
    pub(crate) fn new(multiplexer: Arc<Multiplexer>) -> Self {
        Self { multiplexer }
    }

    /// How many of the engine's shared connections are open and take
    /// statements now (they open on first use and are replaced when they
    /// break).
    #[must_use]
    pub fn open_connections(&self) -> usize {
        self.multiplexer.open_count()
    }

    // The statement methods, inherent as on `AsyncConnection` (see
    // `client_methods`): called on the concrete type, the statement's
    // future is not boxed.

    /// Runs a statement and returns the number of rows it affected;
    /// [`Client::execute`] without boxing its future.
    ///
    /// # Errors
    ///
    /// As [`Client::execute`], and
    /// [`Unsupported`](uno_db_core::ErrorKind::Unsupported) for a statement
    /// that touches session state.
    pub async fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        multiplexed!(self, sql, false, |line| line.execute(sql, params))
    }

    /// Runs a query and returns all its rows; [`Client::query`] without
    /// boxing its future.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub async fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        multiplexed!(self, sql, false, |line| line
            .query_with(sql, params, AllRows))
    }

    /// Runs a query that returns exactly one row; [`Client::query_one`]
    /// without boxing its future.
    ///
    /// # Errors
    ///
    /// As [`Client::query_one`], and as [`execute`](Self::execute).
    pub async fn query_one(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        multiplexed!(self, sql, false, |line| line
            .query_with(sql, params, OneRow))
    }

    /// Runs a query that returns at most one row; [`Client::query_opt`]
    /// without boxing its future.
    ///
    /// # Errors
    ///
    /// As [`Client::query_opt`], and as [`execute`](Self::execute).
    pub async fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        multiplexed!(self, sql, false, |line| line.query_with(
            sql,
            params,
            OptionalRow
        ))
    }

    /// Runs `;`-separated statements in one round trip;
    /// [`Client::batch_execute`] without boxing its future.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub async fn batch_execute(&mut self, sql: &str) -> Result<()> {
        multiplexed!(self, sql, true, |line| line.batch_execute(sql))
    }

    /// Describes `sql` (its parameter and column types);
    /// [`Client::prepare`] without boxing its future.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub async fn prepare(&mut self, sql: &str) -> Result<Statement> {
        multiplexed!(self, sql, false, |line| line.describe(sql))
    }
}

#[async_trait]
impl Client for MultiplexedClient {
    async fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        MultiplexedClient::execute(self, sql, params).await
    }

    async fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        MultiplexedClient::query(self, sql, params).await
    }

    async fn query_one(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        MultiplexedClient::query_one(self, sql, params).await
    }

    async fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        MultiplexedClient::query_opt(self, sql, params).await
    }

    async fn batch_execute(&mut self, sql: &str) -> Result<()> {
        MultiplexedClient::batch_execute(self, sql).await
    }

    async fn prepare(&mut self, sql: &str) -> Result<Statement> {
        MultiplexedClient::prepare(self, sql).await
    }
}
