//! [`SharedConnState`]: what the kernel knows about one shared connection
//! of the multiplexed mode, whose statements come from many callers at
//! once, and the rules for its statements' outcomes.
//!
//! The rules:
//!
//! - A statement's server error is its caller's alone: the connection is
//!   in autocommit, nothing of the statement outlives it.
//! - An error that ends the session (the driver saw the connection close,
//!   the server terminated it) marks the connection lost: it takes no new
//!   statement and is replaced. The statements in flight on it fail with
//!   that error, transient ([`Closed`](ErrorKind::Closed)) and never
//!   retried, since any of them may have been applied.
//! - A statement past `query_timeout` fails with
//!   [`QueryTimeout`](ErrorKind::QueryTimeout) at once, and only its
//!   caller sees it. A cancel request would end whichever statement the
//!   server runs at that moment, maybe another caller's, so none is sent
//!   then: the connection is retired (no new statements; replaced), the
//!   statements already sent on it finish or time out on their own, and
//!   when it closes with no caller waiting on it any more, a cancel
//!   request ends what its abandoned statements may still run.
//! - A caller that stops waiting (its future dropped) leaves its statement
//!   to end on the server; the others are not disturbed.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_postgres::error::SqlState;

use super::conn_state::connection_lost;
use super::events::Telemetry;
use super::statement_cache::StatementCache;
use crate::error::{Error, ErrorKind, Result};
use crate::status::CloseReason;

/// The id of the next shared connection, unique in the process.
static NEXT_SHARED_ID: AtomicU64 = AtomicU64::new(1);

/// The state of one shared connection: its statement cache (`S` is the
/// driver's prepared statement), the statements whose callers wait on it,
/// and whether it may take more.
#[derive(Debug)]
pub struct SharedConnState<S> {
    id: u64,
    cache: Mutex<StatementCache<S>>,
    caches: bool,
    /// Statements sent (or being sent) whose callers still wait.
    waiting: AtomicUsize,
    /// A caller stopped waiting for a statement of its own (timed out or
    /// dropped): the server may still be running it.
    abandoned: AtomicBool,
    /// An error showed the connection to be unusable.
    lost: AtomicBool,
    /// A statement ran past `query_timeout`: no new statement goes here.
    retired: AtomicBool,
    /// The engine's statement spans and measures, and which server of the
    /// configuration it reached.
    telemetry: Option<(Arc<Telemetry>, usize)>,
}

/// One statement in flight on a shared connection, from
/// [`SharedConnState::statement_started`] to its outcome. Dropped without
/// one (its caller's future was dropped), it counts as abandoned.
#[derive(Debug)]
#[must_use = "report the statement's outcome with `finished` or `timed_out`"]
pub struct SharedStatement<S> {
    conn: Arc<SharedConnState<S>>,
    done: bool,
    /// Its span (`postgresql`, as a pooled statement's) and clock.
    span: tracing::Span,
    clock: Option<std::time::Instant>,
}

impl<S: Clone> SharedConnState<S> {
    /// The state of a shared connection just opened, with a statement
    /// cache of `cache_size` entries (0: none).
    #[must_use]
    pub fn new(cache_size: usize) -> Self {
        Self {
            id: NEXT_SHARED_ID.fetch_add(1, Ordering::Relaxed),
            cache: Mutex::new(StatementCache::new(cache_size)),
            caches: cache_size > 0,
            waiting: AtomicUsize::new(0),
            abandoned: AtomicBool::new(false),
            lost: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            telemetry: None,
        }
    }

    /// Its statements get the spans and measures of the connection it was
    /// made of (see [`ConnState::telemetry`](super::ConnState::telemetry)),
    /// as that connection's own statements would.
    #[must_use]
    pub fn with_telemetry(mut self, telemetry: Option<(Arc<Telemetry>, usize)>) -> Self {
        self.telemetry = telemetry;
        self
    }

    /// Its id, unique in the process among shared connections.
    #[must_use]
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Whether prepared statements are cached on it.
    #[must_use]
    pub fn caches_statements(&self) -> bool {
        self.caches
    }

    /// The cached statement for `sql`, if any.
    pub fn cached(&self, sql: &str) -> Option<S> {
        self.lock_cache().get(sql)
    }

    /// Caches a statement just prepared for `sql`; returns the one evicted
    /// to make room (the backend drops it, closing it on the server).
    pub fn remember(&self, sql: &str, statement: S) -> Option<S> {
        self.lock_cache().insert(sql, statement)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, StatementCache<S>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many statements it has in flight whose callers wait, or `None`
    /// when it takes no new statement (lost, retired, or `driver_closed`:
    /// the driver saw it close): what
    /// [`pick_shared`](super::pick_shared) picks from.
    #[must_use]
    pub fn load(&self, driver_closed: bool) -> Option<usize> {
        self.takes_statements(driver_closed)
            .then(|| self.waiting.load(Ordering::Acquire))
    }

    /// Whether it takes new statements.
    #[must_use]
    pub fn takes_statements(&self, driver_closed: bool) -> bool {
        !driver_closed
            && !self.lost.load(Ordering::Acquire)
            && !self.retired.load(Ordering::Acquire)
    }

    /// A statement is about to be sent on it.
    ///
    /// # Errors
    ///
    /// [`Closed`](ErrorKind::Closed) when it was lost or retired since it
    /// was picked: nothing is sent, and the caller may pick again.
    pub fn statement_started(self: &Arc<Self>, sql: &str) -> Result<SharedStatement<S>> {
        if !self.takes_statements(false) {
            return Err(not_sent());
        }
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let (span, clock) = match &self.telemetry {
            Some((telemetry, host)) => (
                telemetry
                    .statement_span(*host, sql, &tracing::Span::none())
                    .unwrap_or_else(tracing::Span::none),
                telemetry.statement_clock(),
            ),
            None => (tracing::Span::none(), None),
        };
        Ok(SharedStatement {
            conn: Arc::clone(self),
            done: false,
            span,
            clock,
        })
    }

    /// Whether closing it now should send a cancel request first: a
    /// statement whose caller stopped waiting may still run there, and no
    /// caller waits on it any more (so the request can end no one else's
    /// statement). The backend asks when it drops the connection.
    #[must_use]
    pub fn cancel_on_close(&self) -> bool {
        self.abandoned.load(Ordering::Acquire) && self.waiting.load(Ordering::Acquire) == 0
    }

    /// Why it closes: [`Broken`](CloseReason::Broken) when it was lost,
    /// [`Dirty`](CloseReason::Dirty) when a late statement retired it,
    /// else [`Disposed`](CloseReason::Disposed) (the engine was).
    #[must_use]
    pub fn close_reason(&self) -> CloseReason {
        if self.lost.load(Ordering::Acquire) {
            CloseReason::Broken
        } else if self.retired.load(Ordering::Acquire) {
            CloseReason::Dirty
        } else {
            CloseReason::Disposed
        }
    }

    /// Whether the connection was lost or retired (and so is being
    /// replaced).
    #[must_use]
    pub fn is_replaced(&self) -> bool {
        !self.takes_statements(false)
    }
}

impl<S: Clone> SharedStatement<S> {
    /// The statement ended with `result`; `sql` is its text when it may
    /// be in the statement cache. A lost connection takes no more
    /// statements; a stale cached plan is forgotten (SQLSTATE 0A000 after
    /// DDL, 26000 when the server forgot it).
    ///
    /// # Errors
    ///
    /// `result`'s error, unchanged: a broken connection's error is already
    /// [`Closed`](ErrorKind::Closed), which is transient.
    pub fn finished<T>(mut self, sql: Option<&str>, result: Result<T>) -> Result<T> {
        self.done = true;
        self.ended(result.as_ref().err());
        if let Err(error) = &result {
            if connection_lost(error) {
                self.conn.lost.store(true, Ordering::Release);
            } else if let (Some(code), Some(sql)) = (error.sqlstate(), sql)
                && (*code == SqlState::FEATURE_NOT_SUPPORTED
                    || *code == SqlState::INVALID_SQL_STATEMENT_NAME)
            {
                drop(self.conn.lock_cache().remove(sql));
            }
        }
        result
    }

    /// The statement did not finish within `limit` (`query_timeout`): its
    /// caller stops waiting and gets the returned error; the connection is
    /// retired (see the module's rules).
    #[must_use]
    pub fn timed_out(mut self, limit: Duration) -> Error {
        self.done = true;
        self.conn.abandoned.store(true, Ordering::Release);
        self.conn.retired.store(true, Ordering::Release);
        let error = Error::with_message(
            ErrorKind::QueryTimeout,
            format!(
                "the statement did not finish within query_timeout ({}ms); its shared \
                 connection takes no more statements and is replaced, and the statement is \
                 cancelled once no other caller's statement runs there",
                limit.as_millis()
            ),
        )
        .with_source(std::io::Error::from(std::io::ErrorKind::TimedOut));
        self.ended(Some(&error));
        error
    }

    /// Its span and measure get the outcome (`error`: `None` when it
    /// succeeded).
    fn ended(&mut self, error: Option<&Error>) {
        if let Some((telemetry, _)) = &self.conn.telemetry {
            telemetry.statement_ended(&self.span, self.clock.take(), error);
        }
    }
}

impl<S> Drop for SharedStatement<S> {
    fn drop(&mut self) {
        if !self.done {
            self.conn.abandoned.store(true, Ordering::Release);
        }
        self.conn.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The error of a statement that found its shared connection replaced
/// before anything was sent.
fn not_sent() -> Error {
    Error::with_message(
        ErrorKind::Closed,
        "the shared connection was being replaced; the statement was not sent",
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn conn() -> Arc<SharedConnState<u32>> {
        Arc::new(SharedConnState::new(4))
    }

    fn db(code: &str) -> Error {
        Error::with_message(ErrorKind::Database, "test").with_sqlstate(SqlState::from_code(code))
    }

    #[test]
    fn a_statement_error_is_its_callers_alone() {
        let conn = conn();
        let statement = conn.statement_started("SELECT 1").unwrap();
        assert_eq!(conn.load(false), Some(1));
        let error = statement
            .finished::<()>(None, Err(db("42601")))
            .unwrap_err();
        assert_eq!(error.sqlstate(), Some(&SqlState::SYNTAX_ERROR));
        assert_eq!(conn.load(false), Some(0));
        assert!(!conn.is_replaced());
        assert!(!conn.cancel_on_close());
    }

    #[test]
    fn a_broken_connection_is_replaced_and_its_statements_fail_transient() {
        let conn = conn();
        let first = conn.statement_started("SELECT 1").unwrap();
        let second = conn.statement_started("SELECT 1").unwrap();
        let error = first
            .finished::<()>(None, Err(Error::new(ErrorKind::Closed)))
            .unwrap_err();
        assert!(error.is_transient());
        assert!(conn.is_replaced());
        assert_eq!(conn.load(false), None);
        let _ = second.finished::<()>(None, Err(db("57P01")));
        let refused = conn.statement_started("SELECT 1").unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Closed);
        assert!(refused.is_transient());
        assert!(!conn.cancel_on_close(), "nothing was abandoned");
        assert_eq!(conn.close_reason(), CloseReason::Broken);
    }

    #[test]
    fn a_late_statement_retires_the_connection_and_is_cancelled_last() {
        let conn = conn();
        let late = conn.statement_started("SELECT 1").unwrap();
        let other = conn.statement_started("SELECT 1").unwrap();
        let error = late.timed_out(Duration::from_millis(50));
        assert_eq!(error.kind(), ErrorKind::QueryTimeout);
        assert!(conn.is_replaced());
        assert!(!conn.cancel_on_close(), "another caller still waits");
        let _ = other.finished(None, Ok(1)).unwrap();
        assert!(conn.cancel_on_close());
        assert_eq!(conn.close_reason(), CloseReason::Dirty);
    }

    #[test]
    fn a_dropped_caller_disturbs_no_one() {
        let conn = conn();
        let dropped = conn.statement_started("SELECT 1").unwrap();
        drop(dropped);
        assert_eq!(conn.load(false), Some(0));
        assert!(!conn.is_replaced());
        assert!(conn.cancel_on_close());
        assert_eq!(conn.load(true), None, "the driver saw it close");
        assert_eq!(conn.close_reason(), CloseReason::Disposed);
    }

    #[test]
    fn stale_plans_are_forgotten() {
        let conn = conn();
        let _ = conn.remember("SELECT 1", 1);
        let _ = conn.remember("SELECT 2", 2);
        let statement = conn.statement_started("SELECT 1").unwrap();
        let _ = statement.finished::<()>(Some("SELECT 1"), Err(db("0A000")));
        assert_eq!(conn.cached("SELECT 1"), None);
        let statement = conn.statement_started("SELECT 1").unwrap();
        let _ = statement.finished::<()>(Some("SELECT 2"), Err(db("23505")));
        assert_eq!(conn.cached("SELECT 2"), Some(2));
        assert_ne!(conn.id(), SharedConnState::<u32>::new(0).id());
        assert!(!SharedConnState::<u32>::new(0).caches_statements());
    }
}
