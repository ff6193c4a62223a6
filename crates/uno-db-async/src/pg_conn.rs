//! One physical connection: the driver client, its statement cache and the
//! state the pool needs to hand it out clean.

use std::time::{Duration, Instant};

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{CancelToken, Client};
use uno_db_core::{
    CloseReason, Error, ErrorKind, Result, Row, SqlState, Statement, StatementCache,
};

/// A physical connection and what is known about its state.
pub(crate) struct PgConn {
    client: Client,
    cancel: CancelToken,
    cache: StatementCache<tokio_postgres::Statement>,
    /// When `pool_recycle` (with jitter) retires this connection.
    expires_at: Option<Instant>,
    /// When it last went back to the pool (or was created).
    pub(crate) returned_at: Instant,
    /// A statement was started and never finished: its future was dropped
    /// (cancelled), so the server may still be running it.
    pub(crate) in_flight: bool,
    /// A transaction may be open: it must be rolled back before reuse.
    pub(crate) needs_rollback: bool,
    /// Why the pool is about to close it, recorded for the metrics.
    pub(crate) close_reason: Option<CloseReason>,
}

impl std::fmt::Debug for PgConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConn")
            .field("closed", &self.client.is_closed())
            .field("in_flight", &self.in_flight)
            .field("needs_rollback", &self.needs_rollback)
            .finish_non_exhaustive()
    }
}

impl PgConn {
    /// Wraps a freshly connected client.
    pub(crate) fn new(client: Client, cache_size: usize, lifetime: Option<Duration>) -> Self {
        let now = Instant::now();
        let expires_at = lifetime.map(|lifetime| now + jittered(lifetime));
        Self {
            cancel: client.cancel_token(),
            client,
            cache: StatementCache::new(cache_size),
            expires_at,
            returned_at: now,
            in_flight: false,
            needs_rollback: false,
            close_reason: None,
        }
    }

    /// Whether the driver knows the connection to be broken.
    pub(crate) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Whether `pool_recycle` retired it.
    pub(crate) fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }

    /// Whether it sat in the pool longer than `idle_timeout`.
    pub(crate) fn is_idle_beyond(&self, now: Instant, idle_timeout: Option<Duration>) -> bool {
        idle_timeout.is_some_and(|limit| now.saturating_duration_since(self.returned_at) >= limit)
    }

    /// Why an idle connection should be closed now, if it should.
    pub(crate) fn reap_reason(
        &self,
        now: Instant,
        idle_timeout: Option<Duration>,
    ) -> Option<CloseReason> {
        if self.is_closed() {
            Some(CloseReason::Broken)
        } else if self.is_expired(now) {
            Some(CloseReason::Expired)
        } else if self.is_idle_beyond(now, idle_timeout) {
            Some(CloseReason::Idle)
        } else {
            None
        }
    }

    /// A token to cancel whatever the connection runs, from elsewhere.
    pub(crate) fn cancel_token(&self) -> CancelToken {
        self.cancel.clone()
    }

    /// Runs a statement, returning the affected row count.
    pub(crate) async fn execute(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64> {
        self.note_statement(sql);
        self.in_flight = true;
        let result = match self.plan(sql, params).await {
            Ok(Plan::Prepared(statement)) => {
                let result = self.client.execute(&statement, params).await;
                self.checked(sql, result)
            }
            Ok(Plan::Unnamed(types)) => {
                let typed = with_types(params, &types);
                self.checked(sql, self.client.execute_typed(sql, &typed).await)
            }
            Err(error) => Err(error),
        };
        self.in_flight = false;
        result
    }

    /// Runs a query, returning all rows.
    pub(crate) async fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        self.note_statement(sql);
        self.in_flight = true;
        let result = match self.plan(sql, params).await {
            Ok(Plan::Prepared(statement)) => {
                let result = self.client.query(&statement, params).await;
                self.checked(sql, result)
            }
            Ok(Plan::Unnamed(types)) => {
                let typed = with_types(params, &types);
                self.checked(sql, self.client.query_typed(sql, &typed).await)
            }
            Err(error) => Err(error),
        };
        self.in_flight = false;
        result.map(|rows| rows.into_iter().map(Row::from_driver).collect())
    }

    /// How to run `sql`: from the statement cache (prepared once per
    /// connection, then one round trip without parse or plan work on the
    /// server); with the cache off, as the unnamed statement, described
    /// first when it has parameters, so that no named statement outlives
    /// the call (`PgBouncer` in transaction mode may route the next message
    /// to another server connection).
    async fn plan(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Plan> {
        if self.cache.is_enabled() {
            return self.cached(sql).await.map(Plan::Prepared);
        }
        if params.is_empty() {
            return Ok(Plan::Unnamed(Vec::new()));
        }
        let statement = Box::pin(self.client.prepare(sql))
            .await
            .map_err(Error::from_driver)?;
        if statement.params().len() == params.len() {
            Ok(Plan::Unnamed(statement.params().to_vec()))
        } else {
            // The driver reports the count mismatch before sending anything.
            Ok(Plan::Prepared(statement))
        }
    }

    /// Classifies a driver result, dropping a cached statement the server
    /// no longer accepts (its tables changed) so the next call re-prepares,
    /// and noting a failed transaction.
    fn checked<T>(&mut self, sql: &str, result: Result<T, tokio_postgres::Error>) -> Result<T> {
        let result = result.map_err(Error::from_driver);
        if let Err(error) = &result {
            let stale = error.sqlstate().is_some_and(|code| {
                *code == SqlState::FEATURE_NOT_SUPPORTED
                    || *code == SqlState::INVALID_SQL_STATEMENT_NAME
            });
            if stale {
                self.cache.remove(sql);
            }
        }
        self.note_result(&result);
        result
    }

    /// Runs a query that must return exactly one row.
    pub(crate) async fn query_one(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row> {
        let mut rows = self.query(sql, params).await?;
        match rows.len() {
            0 => Err(Error::new(ErrorKind::RowNotFound)),
            1 => rows.pop().ok_or_else(|| Error::new(ErrorKind::RowNotFound)),
            _ => Err(Error::new(ErrorKind::TooManyRows)),
        }
    }

    /// Runs a query that returns at most one row.
    pub(crate) async fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        let mut rows = self.query(sql, params).await?;
        match rows.len() {
            0 | 1 => Ok(rows.pop()),
            _ => Err(Error::new(ErrorKind::TooManyRows)),
        }
    }

    /// Runs statements with the simple query protocol.
    pub(crate) async fn batch_execute(&mut self, sql: &str) -> Result<()> {
        self.note_sql(sql);
        self.in_flight = true;
        let result = self
            .client
            .batch_execute(sql)
            .await
            .map_err(Error::from_driver);
        self.in_flight = false;
        self.note_result(&result);
        result
    }

    /// Runs statements the pool itself issues (`ROLLBACK`, `SET ROLE`...),
    /// without touching the transaction bookkeeping.
    pub(crate) async fn internal(&mut self, sql: &str) -> Result<()> {
        self.in_flight = true;
        let result = self
            .client
            .batch_execute(sql)
            .await
            .map_err(Error::from_driver);
        self.in_flight = false;
        result
    }

    /// Prepares `sql` (through the cache when it is on) and describes it.
    pub(crate) async fn prepare(&mut self, sql: &str) -> Result<Statement> {
        self.in_flight = true;
        let result = if self.cache.is_enabled() {
            self.cached(sql).await
        } else {
            self.client.prepare(sql).await.map_err(Error::from_driver)
        };
        self.in_flight = false;
        result.map(|statement| Statement::from_driver(sql, &statement))
    }

    async fn cached(&mut self, sql: &str) -> Result<tokio_postgres::Statement> {
        if let Some(statement) = self.cache.get(sql) {
            return Ok(statement);
        }
        // Boxed: preparing is the rare path and its future is large; inline,
        // it would bloat (and slow) every statement's future.
        let statement = Box::pin(self.client.prepare(sql))
            .await
            .map_err(Error::from_driver)?;
        // An evicted statement is closed on the server when dropped.
        drop(self.cache.insert(sql, statement.clone()));
        Ok(statement)
    }

    /// Conservatively notes statements that may open a transaction, so that
    /// a plain connection returned inside one is rolled back.
    /// As [`note_sql`](Self::note_sql) for one extended-protocol statement,
    /// which the server runs alone: only its first keyword can open a
    /// transaction, so there is no need to scan all of it on every call.
    fn note_statement(&mut self, sql: &str) {
        if !self.needs_rollback && statement_may_open_transaction(sql) {
            self.needs_rollback = true;
        }
    }

    fn note_sql(&mut self, sql: &str) {
        if !self.needs_rollback && may_open_transaction(sql) {
            self.needs_rollback = true;
        }
    }

    fn note_result<T>(&mut self, result: &Result<T>) {
        if let Err(error) = result
            && error.sqlstate() == Some(&SqlState::IN_FAILED_SQL_TRANSACTION)
        {
            self.needs_rollback = true;
        }
    }
}

/// How one statement runs.
enum Plan {
    /// A prepared (usually cached) statement.
    Prepared(tokio_postgres::Statement),
    /// The unnamed statement, with these parameter types.
    Unnamed(Vec<Type>),
}

/// Pairs parameters with the types the server expects for them.
fn with_types<'a>(
    params: &[&'a (dyn ToSql + Sync)],
    types: &[Type],
) -> Vec<(&'a (dyn ToSql + Sync), Type)> {
    params.iter().copied().zip(types.iter().cloned()).collect()
}

/// Whether `sql` contains the word `BEGIN` or `START` (any case): false
/// positives only cost a `ROLLBACK` on return.
pub(crate) fn may_open_transaction(sql: &str) -> bool {
    sql.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|word| word.eq_ignore_ascii_case("begin") || word.eq_ignore_ascii_case("start"))
}

/// Whether one statement (not a `;`-separated batch) may open a transaction:
/// its first keyword, after white space and comments, is `BEGIN` or `START`.
/// Anything it cannot read past (an unterminated comment) counts as yes.
pub(crate) fn statement_may_open_transaction(sql: &str) -> bool {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(comment) = rest.strip_prefix("--") {
            match comment.find('\n') {
                Some(end) => rest = &comment[end..],
                None => return false, // Nothing but a comment.
            }
        } else if let Some(comment) = rest.strip_prefix("/*") {
            match comment.find("*/") {
                // Nested comments are rare here; reading past the first
                // `*/` at worst sees a word of the comment, a false yes.
                Some(end) => rest = &comment[end + 2..],
                None => return true,
            }
        } else {
            break;
        }
    }
    let word_end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let word = &rest[..word_end];
    word.eq_ignore_ascii_case("begin") || word.eq_ignore_ascii_case("start")
}

/// `lifetime` shortened by up to 10%, so connections opened together do not
/// all retire at once.
fn jittered(lifetime: Duration) -> Duration {
    lifetime.mul_f64(1.0 - fastrand::f64() * 0.1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn transaction_words_are_spotted() {
        assert!(may_open_transaction("BEGIN"));
        assert!(may_open_transaction(
            "select 1; begin isolation level serializable"
        ));
        assert!(may_open_transaction("START TRANSACTION"));
        assert!(!may_open_transaction("SELECT start_date, begins FROM t"));
        assert!(!may_open_transaction("COMMIT"));
    }

    #[test]
    fn a_statement_opens_a_transaction_only_by_its_first_keyword() {
        assert!(statement_may_open_transaction("BEGIN"));
        assert!(statement_may_open_transaction(
            "  begin isolation level serializable"
        ));
        assert!(statement_may_open_transaction("-- note\nSTART TRANSACTION"));
        assert!(statement_may_open_transaction("/* hint */ begin"));
        assert!(statement_may_open_transaction("/* unterminated"));
        assert!(!statement_may_open_transaction("SELECT 1"));
        assert!(!statement_may_open_transaction(
            "SELECT start_date, begins FROM t"
        ));
        assert!(!statement_may_open_transaction(
            "DO $$ BEGIN PERFORM 1; END $$"
        ));
        assert!(!statement_may_open_transaction("COMMIT"));
        assert!(!statement_may_open_transaction("-- only a comment"));
        assert!(!statement_may_open_transaction(""));
    }

    #[test]
    fn jitter_shortens_by_at_most_ten_percent() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(100));
            assert!(
                d <= Duration::from_secs(100) && d >= Duration::from_secs(90),
                "{d:?}"
            );
        }
    }
}
