//! [`ConnState`]: everything the kernel knows about one physical
//! connection, beside the driver's client that a backend keeps next to it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use postgres_types::Type;

use tokio_postgres::error::SqlState;

use tracing::Span;

use super::describe_plan::DescribePlan;
use super::events::Telemetry;
use super::live_backends::BackendPid;
use super::sql_effects::SqlEffects;
use super::statement_cache::StatementCache;
use crate::error::{Error, ErrorKind, Result};
use crate::status::CloseReason;

/// Share of `pool_recycle` taken off at random per connection, so that
/// connections opened together do not all retire together.
const RECYCLE_JITTER: f64 = 0.1;

/// The id of the next physical connection, unique in the process, so that a
/// prepared statement can say which connection it belongs to.
static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

/// Where the connection stands with transactions, as far as the kernel can
/// tell without the server's own transaction status (neither driver
/// exposes it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transaction {
    /// No transaction block is open.
    None,
    /// The user's SQL may have opened one.
    Maybe,
    /// A session's `BEGIN` succeeded.
    Open,
    /// A statement failed inside the session's transaction: the server now
    /// refuses everything but a rollback.
    Aborted,
}

/// The lifecycle state of one physical connection: its statement cache,
/// its age, and what its users may have left on it. Backends keep one next
/// to each driver client and report every statement to it; the kernel
/// ([`EngineCore`](super::EngineCore)) reads it to decide what happens at
/// checkout and on return.
///
/// `S` is the driver's prepared statement type.
#[derive(Debug)]
pub struct ConnState<S> {
    /// This connection's id, unique in the process.
    id: u64,
    /// Each statement kept with what its SQL may do, read once.
    cache: StatementCache<Cached<S>>,
    /// How many rows the running statement returned last time (0 when
    /// unknown), as [`statement_started`](Self::statement_started) found it.
    expected_rows: u32,
    expires_at: Option<Instant>,
    returned_at: Instant,
    transaction: Transaction,
    /// A statement was started and has not finished: its caller was
    /// cancelled, so the server may still be running it.
    in_flight: bool,
    /// The connection failed in a way that makes it unusable (closed,
    /// terminated by the server, a fatal error).
    lost: bool,
    role_changed: bool,
    search_path_changed: bool,
    close_reason: Option<CloseReason>,
    /// The engine's `query_timeout`, and a session's own limit while its
    /// transaction lasts.
    query_timeout: Option<Duration>,
    session_query_timeout: Option<Duration>,
    /// Which host of the configuration it reached, and when its role was
    /// last checked.
    host: HostMark,
    /// The server refused a write (25006): a sign the server may have
    /// been demoted.
    refused_write: bool,
    /// Behind PgBouncer in transaction mode: the parameter types of the
    /// statements described on it (the statement cache is off there).
    described: StatementCache<Arc<[Type]>>,
    /// Behind PgBouncer in transaction mode: describes outside a
    /// transaction need one of their own.
    shares_server: bool,
    /// The driver's client was lent to the user: the session may hold
    /// anything, so the return resets all of it.
    lent: bool,
    /// The engine's spans and measures (none for a state built alone).
    telemetry: Option<Arc<Telemetry>>,
    /// The running user statement's span and clock.
    statement: Span,
    statement_clock: Option<Instant>,
    /// The session's transaction span, from `BEGIN` to its end.
    transaction_span: Span,
    /// `commit_plan` recorded the transaction's outcome.
    outcome_recorded: AtomicBool,
    /// When it was last handed to a user (see
    /// [`EngineCore::handed_out`](super::EngineCore::handed_out)).
    checked_out_at: Option<Instant>,
    /// When the pool last found it fit to hand out (see
    /// [`vetted`](Self::vetted)); taken by the hand-out that follows.
    vetted_at: Option<Instant>,
    /// Its server process, known to the engine while this lives.
    backend_pid: Option<BackendPid>,
}

/// A statement of the cache.
#[derive(Debug, Clone)]
struct Cached<S> {
    statement: S,
    /// What its SQL may do, read once.
    effects: SqlEffects,
    /// How many rows it returned last time, at most [`MAX_EXPECTED_ROWS`]:
    /// the room a backend that collects rows one at a time makes for
    /// them at once, instead of growing its list (which copies what it
    /// holds each time it doubles: 2–3 % of a 100-row query).
    rows: u32,
}

/// The most rows a statement's list is made room for ahead: 1,024 of our
/// rows are about 90 KB.
const MAX_EXPECTED_ROWS: u32 = 1024;

/// Which server a connection reached (its index in the configuration's
/// endpoints), the host's retirement epoch when its role was last
/// checked, and when that was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct HostMark {
    pub(super) index: usize,
    pub(super) epoch: u64,
    pub(super) checked_at: Instant,
}

impl<S: Clone> ConnState<S> {
    /// The state of a connection opened at `now`, with a statement cache of
    /// `cache_size` entries and a lifetime of `pool_recycle` shortened by a
    /// random 0–10 %.
    #[must_use]
    pub fn new(
        now: Instant,
        cache_size: usize,
        pool_recycle: Option<Duration>,
        query_timeout: Option<Duration>,
    ) -> Self {
        Self::on_host(
            now,
            cache_size,
            pool_recycle,
            query_timeout,
            HostMark {
                index: 0,
                epoch: 0,
                checked_at: now,
            },
        )
    }

    /// As [`new`](Self::new), on the host `host` names.
    pub(super) fn on_host(
        now: Instant,
        cache_size: usize,
        pool_recycle: Option<Duration>,
        query_timeout: Option<Duration>,
        host: HostMark,
    ) -> Self {
        let expires_at = pool_recycle
            .map(|lifetime| now + lifetime.mul_f64(1.0 - RECYCLE_JITTER * fastrand::f64()));
        Self {
            id: NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed),
            cache: StatementCache::new(cache_size),
            expected_rows: 0,
            expires_at,
            returned_at: now,
            transaction: Transaction::None,
            in_flight: false,
            lost: false,
            role_changed: false,
            search_path_changed: false,
            close_reason: None,
            query_timeout,
            session_query_timeout: None,
            host,
            refused_write: false,
            described: StatementCache::new(0),
            shares_server: false,
            lent: false,
            telemetry: None,
            statement: Span::none(),
            statement_clock: None,
            transaction_span: Span::none(),
            outcome_recorded: AtomicBool::new(false),
            checked_out_at: None,
            vetted_at: None,
            backend_pid: None,
        }
    }

    /// Its statements and transactions get the spans and measures of
    /// `telemetry`.
    pub(super) fn with_telemetry(mut self, telemetry: Arc<Telemetry>) -> Self {
        self.telemetry = Some(telemetry);
        self
    }

    /// It is handed to a user at `now`.
    pub(super) fn checked_out(&mut self, now: Instant) {
        self.checked_out_at = Some(now);
    }

    /// The pool found it fit to hand out at `now`
    /// ([`EngineCore::checkout_verdict`](super::EngineCore::checkout_verdict)
    /// and any probe passed) and hands it out next: the hand-out takes this
    /// time rather than reading the clock again.
    pub fn vetted(&mut self, now: Instant) {
        self.vetted_at = Some(now);
    }

    /// The time [`vetted`](Self::vetted) recorded, cleared.
    pub(super) fn take_vetted(&mut self) -> Option<Instant> {
        self.vetted_at.take()
    }

    /// The engine's statement spans and measures this connection's
    /// statements get, and which server of the configuration it reached:
    /// what a shared connection made of it carries on
    /// ([`SharedConnState::with_telemetry`](super::SharedConnState::with_telemetry)).
    #[must_use]
    pub fn telemetry(&self) -> Option<(Arc<Telemetry>, usize)> {
        self.telemetry
            .as_ref()
            .map(|telemetry| (Arc::clone(telemetry), self.host.index))
    }

    /// Its server process, registered with the engine.
    pub(super) fn set_backend_pid(&mut self, pid: BackendPid) {
        self.backend_pid = Some(pid);
    }

    /// When it was last handed to a user.
    pub(super) fn checked_out_at(&self) -> Option<Instant> {
        self.checked_out_at
    }

    /// A user statement begins: its span (child of the transaction's) and
    /// clock.
    fn start_statement(&mut self, sql: &str) {
        if let Some(telemetry) = &self.telemetry {
            // Unless a subscriber wants spans, a disabled span is not
            // replaced by another: each drop of a `Span` costs. One left
            // from when a subscriber did goes.
            match telemetry.statement_span(self.host.index, sql, &self.transaction_span) {
                Some(span) => self.statement = span,
                None if !self.statement.is_disabled() => self.statement = Span::none(),
                None => {}
            }
            self.statement_clock = telemetry.statement_clock();
        }
    }

    /// The user statement under way, if any, ended with `error`.
    fn end_statement(&mut self, error: Option<&Error>) {
        if self.statement.is_disabled() && self.statement_clock.is_none() {
            return;
        }
        if let Some(telemetry) = &self.telemetry {
            telemetry.statement_ended(&self.statement, self.statement_clock.take(), error);
        }
        self.statement = Span::none();
    }

    /// The session's transaction ended (`outcome` unless `commit_plan`
    /// recorded one): its span closes.
    fn end_transaction_span(&mut self, outcome: &'static str) {
        if !self.outcome_recorded.swap(false, Ordering::Relaxed) {
            self.transaction_span.record("outcome", outcome);
        }
        self.transaction_span = Span::none();
    }

    /// The driver's client is lent to the user, who may do on the session
    /// anything the kernel cannot see (a transaction left open, settings,
    /// `LISTEN`, temporary tables, `DEALLOCATE`): the return rolls back and
    /// resets the whole session (`DISCARD ALL`, then the configured role
    /// and search path), which also empties the statement cache; a return
    /// that cannot do that discards the connection.
    pub fn lent_to_driver(&mut self) {
        self.lent = true;
        self.transaction = Transaction::Maybe;
    }

    /// Whether the driver's client was lent since the last reset.
    #[must_use]
    pub fn was_lent(&self) -> bool {
        self.lent
    }

    /// The connection's id, unique in the process: what its prepared
    /// statements carry ([`Statement::prepared_on`](crate::Statement::prepared_on)).
    #[must_use]
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The SQL to run for `text`, the text a statement method received:
    /// `text` itself, or the SQL of a statement this connection prepared.
    /// Backends call it first thing in every statement method.
    ///
    /// # Errors
    ///
    /// [`Unsupported`](ErrorKind::Unsupported): `text` is a statement
    /// another connection prepared. A prepared statement exists only on
    /// the server session that prepared it; refusing it, rather than
    /// quietly running its SQL, tells the caller that the statement was
    /// carried to a connection it does not belong to.
    pub fn statement_sql<'a>(&self, text: &'a str) -> Result<&'a str> {
        crate::statement::sql_on_connection(text, self.id)
    }

    /// Marks it as going through PgBouncer in transaction mode: its
    /// statement cache is off, and the parameter types of up to `capacity`
    /// statements are kept instead.
    pub(super) fn sharing_server_connections(mut self, capacity: usize) -> Self {
        self.cache = StatementCache::new(0);
        self.described = StatementCache::new(capacity);
        self.shares_server = true;
        self
    }

    /// How to learn the parameter types of `sql`, which has parameters and
    /// goes as the unnamed statement (the statement cache is off).
    pub fn describe_plan(&mut self, sql: &str) -> DescribePlan {
        if let Some(types) = self.described.get(sql) {
            DescribePlan::Known(types)
        } else if self.shares_server && !self.may_be_in_transaction() {
            DescribePlan::DescribeInTransaction
        } else {
            DescribePlan::Describe
        }
    }

    /// `sql` was described with these parameter types.
    pub fn described(&mut self, sql: &str, types: &[Type]) {
        drop(self.described.insert(sql, types.into()));
    }

    /// The host it reached and when its role was last checked.
    pub(super) fn host(&self) -> HostMark {
        self.host
    }

    /// Its server's role was checked again at `now`, in the host's
    /// retirement `epoch`.
    pub(super) fn role_checked(&mut self, now: Instant, epoch: u64) {
        self.host.checked_at = now;
        self.host.epoch = epoch;
    }

    /// Whether the server refused a write on it (25006).
    pub(super) fn refused_write(&self) -> bool {
        self.refused_write
    }

    /// The client-side limit on the next statement: the session's own
    /// (`TransactionOptions::query_timeout`) while its transaction lasts,
    /// else the engine's `query_timeout`.
    #[must_use]
    pub fn query_timeout(&self) -> Option<Duration> {
        self.session_query_timeout.or(self.query_timeout)
    }

    /// Whether prepared statements are cached (`statement_cache_size > 0`).
    #[must_use]
    pub fn caches_statements(&self) -> bool {
        self.cache.is_enabled()
    }

    /// The cached statement for `sql`, if any (marking it recently used).
    pub fn cached(&mut self, sql: &str) -> Option<S> {
        self.cache.get(sql).map(|cached| cached.statement)
    }

    /// Caches a statement just prepared for `sql`; returns the one evicted
    /// to make room, which the backend drops (closing it on the server).
    pub fn remember(&mut self, sql: &str, statement: S) -> Option<S> {
        self.cache
            .insert(
                sql,
                Cached {
                    statement,
                    effects: SqlEffects::of_statement(sql),
                    rows: 0,
                },
            )
            .map(|evicted| evicted.statement)
    }

    /// A user statement (one extended-protocol statement) is about to be
    /// sent. Returns its cached statement, if any: what its SQL may do was
    /// read when it was cached, so a cached statement is not read again.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Closed`] when the connection was lost earlier (a
    /// statement timed out, the server ended it): nothing is sent.
    pub fn statement_started(&mut self, sql: &str) -> Result<Option<S>> {
        self.usable()?;
        let (cached, effects) = match self.cache.get(sql) {
            Some(cached) => {
                self.expected_rows = cached.rows;
                (Some(cached.statement), cached.effects)
            }
            None => {
                self.expected_rows = 0;
                (None, SqlEffects::of_statement(sql))
            }
        };
        self.note(effects);
        self.in_flight = true;
        self.start_statement(sql);
        Ok(cached)
    }

    /// How many rows to make room for ahead, for the statement
    /// [`statement_started`](Self::statement_started) began: as many as it
    /// returned last time on this connection (0 when unknown), at most
    /// 1,024.
    #[must_use]
    pub fn expected_rows(&self) -> usize {
        self.expected_rows as usize
    }

    /// The statement `sql` [`statement_started`](Self::statement_started)
    /// began returned `count` rows: kept for its next run when that count
    /// outgrew the room made for it or used less than half of it (a
    /// statement whose count holds steady costs no second lookup).
    pub fn rows_read(&mut self, sql: &str, count: usize) {
        let count =
            u32::try_from(count).map_or(MAX_EXPECTED_ROWS, |count| count.min(MAX_EXPECTED_ROWS));
        let expected = self.expected_rows;
        if (count > expected || count < expected / 2)
            && let Some(cached) = self.cache.peek_mut(sql)
        {
            cached.rows = count;
        }
    }

    /// A user batch (simple protocol, `;`-separated) is about to be sent.
    ///
    /// # Errors
    ///
    /// As [`statement_started`](Self::statement_started).
    pub fn batch_started(&mut self, sql: &str) -> Result<()> {
        self.usable()?;
        self.note(SqlEffects::of_batch(sql));
        self.in_flight = true;
        self.start_statement(sql);
        Ok(())
    }

    /// A `COPY` (`sql`, from `copy_in` or `copy_out`) is about to be sent.
    /// It stays in flight until its data ends ([`finished`](Self::finished)).
    ///
    /// Streamed results (`query_stream`'s rows, `copy_out`'s data) start
    /// with [`statement_started`](Self::statement_started) or this, and
    /// finish when the caller reads their end or an error. One dropped
    /// before that leaves its statement in flight: the driver reads and
    /// throws away the rest before the connection's next statement (which
    /// then finishes it), and a connection returned while it is still in
    /// flight is cancelled and discarded, never handed out with data still
    /// coming.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] when `sql` is not a `COPY` statement
    /// (nothing is sent), or as
    /// [`statement_started`](Self::statement_started).
    pub fn copy_started(&mut self, sql: &str) -> Result<()> {
        if !super::sql_effects::is_copy(sql) {
            return Err(Error::with_message(
                ErrorKind::Unsupported,
                "copy_in and copy_out take a COPY statement (COPY ... FROM STDIN, \
                 COPY ... TO STDOUT)",
            ));
        }
        // The driver runs `COPY` as a named statement, prepared and then
        // bound: outside a transaction PgBouncer may send the two to
        // different server connections.
        if self.shares_server && self.transaction != Transaction::Open {
            return Err(Error::with_message(
                ErrorKind::Unsupported,
                "behind PgBouncer in transaction mode, run COPY inside a session \
                 (its transaction keeps one server connection)",
            ));
        }
        self.usable()?;
        self.in_flight = true;
        self.start_statement(sql);
        Ok(())
    }

    /// A wait of a streamed statement (`query_stream`, `copy_in`,
    /// `copy_out`: its start, a row or chunk, a `COPY` send or finish)
    /// failed with `error`, which ends the statement. `late` is the limit
    /// the wait overran when the backend's client-side watch cancelled it:
    /// the caller then gets the time-out error and the connection is lost,
    /// as for any late statement; otherwise `error`, learnt from as
    /// [`finished`](Self::finished) does.
    #[must_use]
    pub fn stream_failed(
        &mut self,
        sql: Option<&str>,
        error: Error,
        late: Option<Duration>,
    ) -> Error {
        if let Some(limit) = late {
            return self.statement_timed_out(limit);
        }
        self.in_flight = false;
        self.learn(sql, &error);
        error
    }

    /// A streamed statement's data ended (its last row or chunk, or the
    /// `COPY` its count): the statement is over.
    pub fn stream_ended(&mut self) {
        self.in_flight = false;
    }

    /// The data of a `COPY ... FROM STDIN` was dropped before it was
    /// finished: the driver makes the server fail the `COPY` (nothing is
    /// loaded), which aborts an open transaction. The `COPY` stays in
    /// flight as [`copy_started`](Self::copy_started) says.
    pub fn copy_abandoned(&mut self) {
        if self.transaction == Transaction::Open {
            self.transaction = Transaction::Aborted;
        }
    }

    /// One of the pool's own statements (`ROLLBACK`, `SET ROLE`...) is
    /// about to be sent.
    ///
    /// # Errors
    ///
    /// As [`statement_started`](Self::statement_started).
    pub fn internal_started(&mut self) -> Result<()> {
        self.usable()?;
        self.in_flight = true;
        Ok(())
    }

    fn usable(&self) -> Result<()> {
        if self.lost {
            return Err(Error::with_message(
                ErrorKind::Closed,
                "the connection was lost earlier (a statement failed or timed out); \
                 it will be discarded when returned",
            ));
        }
        Ok(())
    }

    /// The statement started last did not finish within `limit` (the
    /// client-side `query_timeout`): the connection is lost (its reply may
    /// still come), the return path cancels the statement on the server if
    /// it may still run, and the caller gets this error.
    #[must_use]
    pub fn statement_timed_out(&mut self, limit: Duration) -> Error {
        self.lost = true;
        Error::with_message(
            ErrorKind::QueryTimeout,
            format!(
                "the statement did not finish within query_timeout ({}ms); it was cancelled \
                 and the connection will be discarded",
                limit.as_millis()
            ),
        )
        .with_source(std::io::Error::from(std::io::ErrorKind::TimedOut))
    }

    fn note(&mut self, effects: SqlEffects) {
        if effects.opens_transaction && self.transaction == Transaction::None {
            self.transaction = Transaction::Maybe;
        }
        self.role_changed |= effects.changes_role;
        self.search_path_changed |= effects.changes_search_path;
        if effects.drops_statements {
            self.cache.clear();
        }
    }

    /// The statement started last finished with `result`; `sql` is its text
    /// when it may be in the statement cache. Learns from errors: a lost
    /// connection is never reused, a stale cached plan is forgotten (the
    /// next call prepares afresh), and a failure inside a transaction
    /// aborts it.
    ///
    /// # Errors
    ///
    /// `result`'s error, unchanged.
    pub fn finished<T>(&mut self, sql: Option<&str>, result: Result<T>) -> Result<T> {
        self.in_flight = false;
        self.end_statement(result.as_ref().err());
        if let Err(error) = &result {
            self.learn(sql, error);
        }
        result
    }

    fn learn(&mut self, sql: Option<&str>, error: &Error) {
        if connection_lost(error) {
            self.lost = true;
            return;
        }
        let Some(code) = error.sqlstate() else {
            return;
        };
        // A kept description may be stale after DDL: describe again.
        if let Some(sql) = sql {
            drop(self.described.remove(sql));
        }
        if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
            self.refused_write = true;
        }
        // 0A000: "cached plan must not change result type" after DDL;
        // 26000: the server forgot the statement (DISCARD ALL elsewhere).
        if (*code == SqlState::FEATURE_NOT_SUPPORTED
            || *code == SqlState::INVALID_SQL_STATEMENT_NAME)
            && let Some(sql) = sql
        {
            drop(self.cache.remove(sql));
        }
        match self.transaction {
            Transaction::Open => self.transaction = Transaction::Aborted,
            Transaction::None if *code == SqlState::IN_FAILED_SQL_TRANSACTION => {
                self.transaction = Transaction::Maybe;
            }
            _ => {}
        }
    }

    /// The session's `BEGIN` is about to be sent: from now on a transaction
    /// may be open, whatever its outcome.
    ///
    /// # Errors
    ///
    /// As [`statement_started`](Self::statement_started).
    pub fn begin_started(&mut self) -> Result<()> {
        self.usable()?;
        if let Some(telemetry) = &self.telemetry {
            self.transaction_span = telemetry.transaction_span(self.host.index);
            self.outcome_recorded.store(false, Ordering::Relaxed);
        }
        self.transaction = Transaction::Maybe;
        self.in_flight = true;
        Ok(())
    }

    /// The session's `BEGIN` succeeded; `query_timeout` is its own
    /// statement limit, if it has one.
    pub fn begin_succeeded(&mut self, query_timeout: Option<Duration>) {
        self.in_flight = false;
        self.transaction = Transaction::Open;
        self.session_query_timeout = query_timeout;
    }

    /// A `ROLLBACK TO SAVEPOINT` succeeded: an aborted transaction is usable
    /// again.
    pub fn savepoint_restored(&mut self) {
        if self.transaction == Transaction::Aborted {
            self.transaction = Transaction::Open;
        }
    }

    /// How a session asked to commit ends: the statement to send, and the
    /// error to report after it. An aborted transaction is rolled back and
    /// reported as failed (SQLSTATE 25P02) instead of letting `COMMIT`
    /// roll back silently.
    #[must_use]
    pub fn commit_plan(&self) -> (&'static str, Option<Error>) {
        if !self.transaction_span.is_disabled() {
            let outcome = if self.transaction == Transaction::Aborted {
                "rollback"
            } else {
                "commit"
            };
            self.transaction_span.record("outcome", outcome);
            self.outcome_recorded.store(true, Ordering::Relaxed);
        }
        if self.transaction == Transaction::Aborted {
            let error = Error::with_message(
                ErrorKind::Database,
                "the transaction was aborted by an earlier error and has been rolled back",
            )
            .with_sqlstate(SqlState::IN_FAILED_SQL_TRANSACTION);
            ("ROLLBACK", Some(error))
        } else {
            ("COMMIT", None)
        }
    }

    /// The session's `COMMIT` or `ROLLBACK` succeeded.
    pub fn transaction_ended(&mut self) {
        self.end_transaction_span("rollback");
        self.transaction = Transaction::None;
        self.session_query_timeout = None;
    }

    /// Whether a transaction block may be open.
    #[must_use]
    pub fn may_be_in_transaction(&self) -> bool {
        self.transaction != Transaction::None
    }

    /// Whether the role or search path may differ from what the pool set.
    #[must_use]
    pub fn session_changed(&self) -> (bool, bool) {
        (self.role_changed, self.search_path_changed)
    }

    /// The return path's cleaning `queries` succeeded: the connection is
    /// as the pool set it up (and, after `DISCARD ALL`, holds no prepared
    /// statement).
    pub fn cleaned_after(&mut self, queries: &[String]) {
        if queries
            .iter()
            .any(|sql| SqlEffects::of_batch(sql).drops_statements)
        {
            self.cache.clear();
        }
        self.cleaned();
    }

    /// The connection is as the pool set it up.
    pub fn cleaned(&mut self) {
        if !self.transaction_span.is_disabled() {
            // Dropped without commit: the return path rolled it back.
            self.end_transaction_span("rollback");
        }
        self.lent = false;
        self.in_flight = false;
        self.transaction = Transaction::None;
        self.session_query_timeout = None;
        self.role_changed = false;
        self.search_path_changed = false;
    }

    /// Whether a statement is still running (its caller was cancelled).
    #[must_use]
    pub fn is_in_flight(&self) -> bool {
        self.in_flight
    }

    /// Whether an error showed the connection to be unusable.
    #[must_use]
    pub fn is_lost(&self) -> bool {
        self.lost
    }

    /// Whether `pool_recycle` (with its jitter) has passed.
    #[must_use]
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }

    /// Whether it has sat in the pool for `idle_timeout` or longer.
    #[must_use]
    // A sum and a comparison rather than a difference: `duration_since`
    // normalises and saturates, several times the instructions on every
    // checkout.
    pub fn is_idle_beyond(&self, now: Instant, idle_timeout: Option<Duration>) -> bool {
        idle_timeout.is_some_and(|limit| {
            self.returned_at
                .checked_add(limit)
                .is_some_and(|deadline| now >= deadline)
        })
    }

    /// The connection went back to the pool at `now`.
    pub fn returned(&mut self, now: Instant) {
        self.returned_at = now;
    }

    /// Records why the pool is closing it (the first reason wins).
    pub fn close_for(&mut self, reason: CloseReason) {
        self.close_reason.get_or_insert(reason);
    }

    /// The reason recorded by [`close_for`](Self::close_for), if any.
    #[must_use]
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.close_reason
    }
}

/// Whether `error` shows that its connection can no longer be used: the
/// driver saw it close, the socket failed, the server is terminating it
/// (SQLSTATE class 57P: admin shutdown, crash shutdown, cannot connect
/// now), or the server reported a connection exception (class 08) or a
/// `FATAL`/`PANIC` error.
#[must_use]
pub fn connection_lost(error: &Error) -> bool {
    // Driver errors that end the session are already `Closed`; errors made
    // elsewhere (test doubles, with a SQLSTATE) follow the same rule.
    error.kind() == ErrorKind::Closed
        || error.sqlstate().is_some_and(|code| {
            let severity = error
                .db_error()
                .and_then(tokio_postgres::error::DbError::parsed_severity);
            crate::error::ends_the_session(code, severity)
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn state() -> ConnState<u32> {
        ConnState::new(Instant::now(), 4, None, None)
    }

    fn db(code: &str) -> Error {
        Error::with_message(ErrorKind::Database, "test").with_sqlstate(SqlState::from_code(code))
    }

    #[test]
    fn statements_run_only_on_the_connection_that_prepared_them() {
        let mine = state();
        let other = state();
        assert_ne!(mine.id(), other.id());
        let statement = crate::Statement::new("SELECT 1", Vec::new(), Vec::new());
        assert_eq!(mine.statement_sql(&statement).unwrap(), "SELECT 1");
        let statement = statement.prepared_on(mine.id());
        assert_eq!(mine.statement_sql(&statement).unwrap(), "SELECT 1");
        let error = other.statement_sql(&statement).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unsupported);
        assert!(
            error.to_string().contains("prepared on connection"),
            "{error}"
        );
        assert_eq!(other.statement_sql("SELECT 2").unwrap(), "SELECT 2");
    }

    /// Runs `sql` (cached) and reports `count` rows; the room the next run
    /// makes ahead.
    fn run_returning(conn: &mut ConnState<u32>, sql: &str, count: usize) -> usize {
        conn.finished::<()>(Some(sql), Ok(())).unwrap();
        conn.rows_read(sql, count);
        assert_eq!(conn.statement_started(sql).unwrap(), Some(7));
        conn.expected_rows()
    }

    #[test]
    fn a_cached_statement_makes_room_for_as_many_rows_as_it_returned_last() {
        let mut conn = state();
        let sql = "SELECT g FROM generate_series(1, $1) AS g";
        assert_eq!(conn.statement_started(sql).unwrap(), None);
        assert_eq!(conn.expected_rows(), 0, "unknown before the first run");
        assert_eq!(conn.remember(sql, 7), None);
        assert_eq!(run_returning(&mut conn, sql, 100), 100);
        // Within half of it: kept (no second lookup).
        assert_eq!(run_returning(&mut conn, sql, 60), 100);
        // More: grows; far fewer: shrinks.
        assert_eq!(run_returning(&mut conn, sql, 150), 150);
        assert_eq!(run_returning(&mut conn, sql, 10), 10);
        // Never more than 1,024 ahead.
        assert_eq!(run_returning(&mut conn, sql, 1_000_000), 1024);
        // Another statement has its own count; an uncached one none.
        conn.finished::<()>(Some(sql), Ok(())).unwrap();
        assert_eq!(conn.statement_started("SELECT 1").unwrap(), None);
        assert_eq!(conn.expected_rows(), 0);
        conn.rows_read("SELECT 1", 5);
        conn.finished::<()>(Some("SELECT 1"), Ok(())).unwrap();
        assert_eq!(conn.statement_started("SELECT 1").unwrap(), None);
        assert_eq!(conn.expected_rows(), 0);
    }

    #[test]
    fn a_batch_with_begin_leaves_a_transaction_to_roll_back() {
        let mut conn = state();
        conn.batch_started("SET application_name = 'x'; BEGIN")
            .unwrap();
        conn.finished::<()>(None, Ok(())).unwrap();
        assert!(conn.may_be_in_transaction());
        conn.cleaned();
        assert!(!conn.may_be_in_transaction());
    }

    #[test]
    fn copy_takes_only_copy_statements() {
        let mut conn = state();
        let error = conn.copy_started("SELECT 1").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unsupported);
        assert!(!conn.is_in_flight());
        conn.copy_started("COPY t FROM STDIN").unwrap();
        assert!(conn.is_in_flight());
    }

    #[test]
    fn behind_pgbouncer_copy_runs_only_in_a_session() {
        let mut conn = state().sharing_server_connections(0);
        let error = conn.copy_started("COPY t FROM STDIN").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unsupported);
        assert!(error.to_string().contains("inside a session"), "{error}");
        conn.begin_started().unwrap();
        conn.begin_succeeded(None);
        conn.copy_started("COPY t FROM STDIN").unwrap();
    }

    #[test]
    fn an_abandoned_copy_aborts_the_session_and_stays_in_flight() {
        let mut conn = state();
        conn.begin_started().unwrap();
        conn.begin_succeeded(None);
        conn.copy_started("COPY t FROM STDIN").unwrap();
        conn.copy_abandoned();
        assert!(conn.is_in_flight());
        let (sql, error) = conn.commit_plan();
        assert_eq!(sql, "ROLLBACK");
        assert!(error.is_some());
    }

    #[test]
    fn a_dropped_statement_stays_in_flight() {
        let mut conn = state();
        let _ = conn.statement_started("SELECT pg_sleep(10)").unwrap();
        assert!(conn.is_in_flight());
        let error = conn.statement_timed_out(Duration::from_secs(1));
        assert_eq!(error.kind(), ErrorKind::QueryTimeout);
        assert!(conn.is_lost());
        assert_eq!(
            conn.statement_started("SELECT 1").unwrap_err().kind(),
            ErrorKind::Closed
        );
    }

    #[test]
    fn fatal_and_connection_errors_lose_the_connection() {
        for code in ["57P01", "57P02", "57P03", "08006", "08003"] {
            let mut conn = state();
            let _ = conn.statement_started("SELECT 1").unwrap();
            let _ = conn.finished::<()>(None, Err(db(code)));
            assert!(conn.is_lost(), "{code}");
        }
        let mut conn = state();
        let _ = conn.finished::<()>(None, Err(Error::new(ErrorKind::Closed)));
        assert!(conn.is_lost());
        let mut conn = state();
        let _ = conn.finished::<()>(None, Err(db("23505")));
        assert!(!conn.is_lost());
    }

    #[test]
    fn stale_plans_are_forgotten() {
        let mut conn = state();
        let _ = conn.remember("SELECT * FROM t", 7);
        let _ = conn.finished::<()>(Some("SELECT * FROM t"), Err(db("0A000")));
        assert_eq!(conn.cached("SELECT * FROM t"), None);
        let _ = conn.remember("SELECT 2", 8);
        let _ = conn.finished::<()>(Some("SELECT 2"), Err(db("42601")));
        assert_eq!(conn.cached("SELECT 2"), Some(8));
    }

    #[test]
    fn an_error_aborts_the_session_until_a_savepoint_restores_it() {
        let mut conn = state();
        conn.begin_started().unwrap();
        conn.begin_succeeded(None);
        assert_eq!(conn.commit_plan().0, "COMMIT");
        let _ = conn.finished::<()>(None, Err(db("23505")));
        let (sql, error) = conn.commit_plan();
        assert_eq!(sql, "ROLLBACK");
        assert_eq!(
            error.unwrap().sqlstate(),
            Some(&SqlState::IN_FAILED_SQL_TRANSACTION)
        );
        conn.savepoint_restored();
        assert_eq!(conn.commit_plan().0, "COMMIT");
        // Errors without a SQLSTATE (no row, decode) do not abort.
        let _ = conn.finished::<()>(None, Err(Error::new(ErrorKind::RowNotFound)));
        assert_eq!(conn.commit_plan().0, "COMMIT");
    }

    #[test]
    fn a_session_limit_applies_while_its_transaction_lasts() {
        let engine_limit = Some(Duration::from_secs(300));
        let mut conn: ConnState<u32> = ConnState::new(Instant::now(), 4, None, engine_limit);
        assert_eq!(conn.query_timeout(), engine_limit);
        conn.begin_started().unwrap();
        conn.begin_succeeded(Some(Duration::from_secs(2)));
        assert_eq!(conn.query_timeout(), Some(Duration::from_secs(2)));
        conn.transaction_ended();
        assert_eq!(conn.query_timeout(), engine_limit);
        conn.begin_started().unwrap();
        conn.begin_succeeded(Some(Duration::from_secs(2)));
        conn.cleaned();
        assert_eq!(
            conn.query_timeout(),
            engine_limit,
            "a dropped session's limit goes too"
        );
    }

    #[test]
    fn a_cached_statement_keeps_what_its_sql_may_do() {
        let mut conn = state();
        let _ = conn.remember("SET ROLE other", 3);
        assert_eq!(conn.statement_started("SET ROLE other").unwrap(), Some(3));
        assert_eq!(conn.session_changed(), (true, false));
        let _ = conn.finished::<()>(None, Ok(()));
        conn.cleaned();
        assert_eq!(conn.statement_started("SET ROLE other").unwrap(), Some(3));
        assert_eq!(
            conn.session_changed(),
            (true, false),
            "read again from the cache"
        );
    }

    #[test]
    fn discard_all_empties_the_statement_cache() {
        let mut conn = state();
        let _ = conn.remember("SELECT 1", 1);
        conn.batch_started("DISCARD ALL").unwrap();
        assert_eq!(conn.cached("SELECT 1"), None);
        assert_eq!(conn.session_changed(), (true, true));
    }

    #[test]
    fn lifetime_is_jittered_by_at_most_ten_percent() {
        let now = Instant::now();
        for _ in 0..100 {
            let conn: ConnState<u32> = ConnState::new(now, 0, Some(Duration::from_secs(100)), None);
            assert!(!conn.is_expired(now + Duration::from_secs(89)));
            assert!(conn.is_expired(now + Duration::from_secs(100)));
        }
    }
}
