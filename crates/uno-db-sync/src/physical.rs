//! One physical connection: the driver client, its statement cache and its
//! bookkeeping.

use std::sync::Arc;
use std::time::{Duration, Instant};

use postgres::Client;
use postgres::types::ToSql;
use uno_db_core::{
    CloseReason, Error, ErrorKind, Result, Row, SqlState, Statement, StatementCache,
};

use crate::engine_state::EngineState;
use crate::runtime_guard::drive;

/// Share of `pool_recycle` taken off at random per connection, so that
/// connections opened together do not all expire together.
const RECYCLE_JITTER: f64 = 0.1;

/// A live server connection owned by one pool slot.
pub(crate) struct PhysicalConnection {
    // `None` only while being dropped.
    client: Option<Client>,
    cache: StatementCache<postgres::Statement>,
    born: Instant,
    lifetime: Option<Duration>,
    returned_at: Instant,
    close_reason: Option<CloseReason>,
    state: Arc<EngineState>,
}

impl PhysicalConnection {
    /// Takes over a freshly connected client and counts it as created.
    pub(crate) fn new(client: Client, state: Arc<EngineState>) -> Self {
        let lifetime = state
            .config
            .pool_recycle()
            .map(|recycle| recycle.mul_f64(1.0 - RECYCLE_JITTER * fastrand::f64()));
        let now = Instant::now();
        state.metrics.record_created();
        Self {
            client: Some(client),
            cache: StatementCache::new(state.config.statement_cache_size()),
            born: now,
            lifetime,
            returned_at: now,
            close_reason: None,
            state,
        }
    }

    fn client(&mut self) -> Result<&mut Client> {
        self.client
            .as_mut()
            .ok_or_else(|| Error::with_message(ErrorKind::Closed, "the connection is closed"))
    }

    /// Whether the driver saw the connection close.
    pub(crate) fn is_closed(&self) -> bool {
        self.client.as_ref().is_none_or(Client::is_closed)
    }

    /// Marks the connection to be closed, for `reason`, when its slot
    /// returns to the pool.
    pub(crate) fn mark_for_close(&mut self, reason: CloseReason) {
        self.close_reason.get_or_insert(reason);
    }

    /// Whether the pool must not keep this connection.
    pub(crate) fn is_unusable(&self) -> bool {
        self.close_reason.is_some() || self.is_closed()
    }

    /// Why this idle connection should not be handed out now, if so.
    pub(crate) fn staleness(&self, now: Instant) -> Option<CloseReason> {
        if self.is_closed() {
            Some(CloseReason::Broken)
        } else if self
            .lifetime
            .is_some_and(|l| now.duration_since(self.born) >= l)
        {
            Some(CloseReason::Expired)
        } else if self
            .state
            .config
            .idle_timeout()
            .is_some_and(|t| now.duration_since(self.returned_at) >= t)
        {
            Some(CloseReason::Idle)
        } else {
            None
        }
    }

    /// Whether `pool_recycle` (with its jitter) has passed.
    pub(crate) fn is_expired(&self) -> bool {
        self.lifetime.is_some_and(|l| self.born.elapsed() >= l)
    }

    /// Records that the connection went back to the pool now.
    pub(crate) fn mark_returned(&mut self) {
        self.returned_at = Instant::now();
    }

    /// A round trip bounded by `timeout`.
    pub(crate) fn ping(&mut self, timeout: Duration) -> Result<()> {
        let client = self.client()?;
        drive(|| client.is_valid(timeout)).map_err(Error::from_driver)
    }

    /// The driver statement for `sql`: from the cache, or prepared now (and
    /// cached).
    fn statement(&mut self, sql: &str) -> Result<postgres::Statement> {
        if let Some(statement) = self.cache.get(sql) {
            return Ok(statement);
        }
        let client = self.client()?;
        let statement = drive(|| client.prepare(sql)).map_err(Error::from_driver)?;
        // An evicted statement is closed on the server when dropped.
        drop(self.cache.insert(sql, statement.clone()));
        Ok(statement)
    }

    /// The cached statement for `sql` when the cache is on (prepared once
    /// per connection, then one round trip with no parse or plan work on
    /// the server); `None` to send the SQL text (unnamed statement).
    fn cached(&mut self, sql: &str) -> Result<Option<postgres::Statement>> {
        if !self.cache.is_enabled() {
            return Ok(None);
        }
        self.statement(sql).map(Some)
    }

    fn finish<T>(
        &mut self,
        sql: &str,
        result: std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        result.map_err(|e| {
            let error = Error::from_driver(e);
            // A stale plan (after DDL) or a statement the server forgot
            // (DISCARD ALL): prepare afresh next time.
            if matches!(
                error.sqlstate(),
                Some(code) if *code == SqlState::FEATURE_NOT_SUPPORTED
                    || *code == SqlState::INVALID_SQL_STATEMENT_NAME
            ) {
                self.cache.remove(sql);
            }
            error
        })
    }

    pub(crate) fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let statement = self.cached(sql)?;
        let client = self.client()?;
        let result = drive(|| match &statement {
            Some(statement) => client.execute(statement, params),
            // Without parameters there is nothing to describe: one round trip.
            None if params.is_empty() => client.execute_typed(sql, &[]),
            None => client.execute(sql, params),
        });
        self.finish(sql, result)
    }

    pub(crate) fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let statement = self.cached(sql)?;
        let client = self.client()?;
        let result = drive(|| match &statement {
            Some(statement) => client.query(statement, params),
            None if params.is_empty() => client.query_typed(sql, &[]),
            None => client.query(sql, params),
        });
        let rows = self.finish(sql, result)?;
        Ok(rows.into_iter().map(Row::from_driver).collect())
    }

    pub(crate) fn batch_execute(&mut self, sql: &str) -> Result<()> {
        let client = self.client()?;
        drive(|| client.batch_execute(sql)).map_err(Error::from_driver)
    }

    /// Describes `sql`, through the cache when it is on.
    pub(crate) fn prepare(&mut self, sql: &str) -> Result<Statement> {
        let statement = if self.cache.is_enabled() {
            self.statement(sql)?
        } else {
            let client = self.client()?;
            drive(|| client.prepare(sql)).map_err(Error::from_driver)?
        };
        Ok(Statement::from_driver(sql, &statement))
    }

    fn inferred_close_reason(&self) -> CloseReason {
        let now = Instant::now();
        match self.staleness(now) {
            Some(reason) => reason,
            // Neither broken, expired nor idle: the pool itself went away.
            None => CloseReason::Disposed,
        }
    }
}

impl Drop for PhysicalConnection {
    fn drop(&mut self) {
        let reason = self
            .close_reason
            .unwrap_or_else(|| self.inferred_close_reason());
        self.state.metrics.record_closed(reason);
        self.state.events().connection_closed(reason);
        if let Some(client) = self.client.take() {
            // A graceful close waits for the server to answer what is in
            // flight, which a server gone silent never does: close on a
            // thread of its own, so no caller, reaper or dispose hangs. (Its
            // own runtime also makes it panic on a runtime thread.)
            let closer = std::thread::Builder::new()
                .name("uno-db-sync-close".to_owned())
                .spawn(move || drop(client));
            // Without a thread the client was dropped (closed) right here.
            drop(closer);
        }
    }
}
