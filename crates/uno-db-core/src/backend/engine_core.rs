//! [`EngineCore`]: the decisions an engine makes about its connections,
//! made once for both backends.

use std::fmt::Write as _;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::MakeTls;
use super::conn_state::ConnState;
use super::conn_state::HostMark;
use super::connect_plan::ConnectPlan;
use super::events::{EngineEvents, SPAN_TARGET, Telemetry, record_error};
use super::live_backends::{BACKEND_PID_QUERY, LiveBackends};
use super::pool_metrics::PoolMetrics;
use super::pool_ops::{LeakTicket, LeakTracker, PoolLimits};
use crate::config::{ConnectionConfig, Driver, Endpoint, PgBouncerMode, ServerRole};
use crate::error::{BoxError, Error, ErrorKind, Result};
use crate::retry::Backoff;
use crate::status::{CloseReason, CloseReport};

/// How long after its last use a pooled connection is handed out without
/// looking for a silent close (see
/// [`EngineCore::checkout_looks_for_silent_close`]); HikariCP's
/// `aliveBypassWindowMs`.
pub const ALIVE_BYPASS_WINDOW: Duration = Duration::from_millis(500);

/// The query that asks a server for its role, with the simple protocol:
/// one row, `pg_is_in_recovery()` (`t`/`f`) and the session's
/// `transaction_read_only` (`on`/`off`), as libpq asks for
/// `target_session_attrs`.
pub const ROLE_QUERY: &str = "SELECT pg_catalog.pg_is_in_recovery(), \
     pg_catalog.current_setting('transaction_read_only')";

/// One step of preparing a new physical connection, in the order the
/// kernel fixes: the search path, then the factory's callbacks (which may
/// rely on it), then the role (last, so callbacks run with the login
/// role's privileges).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenStep<'a> {
    /// Run this statement with the simple protocol.
    Run(&'a str),
    /// Run the factory's connection callbacks, in order.
    Callbacks,
    /// Run this query (simple protocol) and hand its first row to
    /// [`EngineCore::backend_identified`]: the connection's server process
    /// id, which a drain past its deadline needs.
    LearnBackendPid(&'a str),
}

/// What the return path does with a connection its user dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReturnPlan {
    /// Put it back as it is.
    Keep,
    /// Run these queries, one after the other (simple protocol; each may
    /// hold several `;`-separated statements), bounded by the clean-up
    /// timeout, then put it back; if they fail or time out, discard it.
    Clean(Vec<String>),
    /// Close it for this reason.
    Discard(CloseReason),
    /// A statement is still running on it: send a cancel request for it
    /// and close it ([`CloseReason::Dirty`]).
    CancelAndDiscard,
}

/// What an engine knows and decides, whatever its driver: its
/// configuration, counters and events, whether it is disposed, why
/// connecting fails, and every rule about its connections — what runs when
/// one opens, whether an idle one may be handed out, what a returned one
/// needs, and when one is discarded.
///
/// Backends hold one per engine and consult it at each of those points;
/// they only do the I/O it asks for.
#[derive(Debug)]
pub struct EngineCore {
    config: ConnectionConfig,
    metrics: PoolMetrics,
    telemetry: Arc<Telemetry>,
    disposed: AtomicBool,
    search_path_sql: Option<String>,
    set_role_sql: Option<String>,
    /// The last failed connect attempt to each host and when it failed;
    /// all cleared by a successful one.
    last_connect_error: Mutex<Vec<Option<(Instant, Error)>>>,
    /// Connect attempts under way.
    connecting: AtomicUsize,
    /// The servers of the host list, in the configuration's order.
    endpoints: Vec<Endpoint>,
    /// The driver's settings for a first attempt on each server; each
    /// attempt starts from a copy (see [`ConnectPlan::driver_config`]).
    drivers: Vec<tokio_postgres::Config>,
    /// Per server, bumped when a connection learns the server may have
    /// changed role: every pooled connection to it checks its role again
    /// before it is handed out.
    host_epochs: Vec<AtomicU64>,
    /// The TLS connector, built once from the configuration's files.
    tls: MakeTls,
    credentials: CredentialSource,
    /// `pool_size` and `max_overflow`, changed at runtime by `set_pool_size`
    /// and `set_max_overflow`.
    limits: PoolLimits,
    /// The checkouts held now, when `leak_detection_threshold` is set.
    leaks: LeakTracker,
    /// The server processes of the open connections.
    backends: Arc<LiveBackends>,
}

/// One checkout under way (see [`EngineCore::checkout_started`] and
/// [`EngineCore::checkout_begun`]): a pending request until dropped; its
/// span then records `wait_ms`.
#[derive(Debug)]
pub struct Checkout<'a> {
    core: &'a EngineCore,
    /// When it began to wait; `None` while it has not had to.
    started: Option<Instant>,
    /// `None` unless a subscriber wants it.
    span: Option<tracing::Span>,
}

impl Checkout<'_> {
    /// When the checkout began (what `pool_timeout` counts from), for one
    /// made with [`checkout_started`](EngineCore::checkout_started) or
    /// once it [must wait](Self::must_wait); `None` for a checkout that
    /// has not waited.
    #[must_use]
    pub fn started(&self) -> Option<Instant> {
        self.started
    }

    /// The checkout found no idle connection at once and must wait: when
    /// its wait began (read now, the first time), from which
    /// `pool_timeout` counts. A checkout served at once never reads the
    /// clock for it.
    pub fn must_wait(&mut self) -> Instant {
        *self.started.get_or_insert_with(Instant::now)
    }

    /// The checkout's span (`db.client.connection.acquire`); `None`
    /// unless a subscriber wants the `uno_db::span` target.
    #[must_use]
    pub fn span(&self) -> Option<&tracing::Span> {
        self.span.as_ref()
    }
}

impl Drop for Checkout<'_> {
    fn drop(&mut self) {
        self.core.metrics.record_pending(false);
        if let Some(span) = &self.span {
            let waited = self.started.map_or(0, |started| {
                u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
            });
            span.record("wait_ms", waited);
        }
    }
}

/// Where an engine's passwords come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    /// The configuration's password; without one, the password file.
    Configuration,
    /// The backend's credential provider, asked for every new connection.
    Provider,
}

impl EngineCore {
    /// The core of an engine for `config`, served by a backend of
    /// `family`, its passwords coming from `credentials`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when the configuration names the other driver
    /// family, when it has a password and the engine a credential provider
    /// too (which one wins would be a guess), or when a TLS file changed
    /// since the configuration was built and is no longer usable.
    pub fn new(
        config: &ConnectionConfig,
        family: Driver,
        credentials: CredentialSource,
    ) -> Result<Self> {
        config.ensure_backend(family)?;
        if credentials == CredentialSource::Provider && config.password().is_some() {
            return Err(Error::with_message(
                ErrorKind::Config,
                "the configuration has a password and the engine a credential provider; \
                 remove one of them",
            ));
        }
        let endpoints = config.endpoints();
        let metrics = PoolMetrics::for_config(config);
        Ok(Self {
            telemetry: Arc::new(Telemetry::new(config, &metrics)),
            drivers: endpoints
                .iter()
                .map(|endpoint| config.driver_config_for(endpoint))
                .collect(),
            host_epochs: endpoints.iter().map(|_| AtomicU64::new(0)).collect(),
            last_connect_error: Mutex::new(vec![None; endpoints.len()]),
            endpoints,
            tls: config.tls_connector()?,
            credentials,
            metrics,
            search_path_sql: config.search_path_statement(),
            set_role_sql: config.set_role_statement(),
            config: config.clone(),
            disposed: AtomicBool::new(false),
            connecting: AtomicUsize::new(0),
            limits: PoolLimits::new(config.pool_size(), config.max_overflow()),
            leaks: LeakTracker::new(config.leak_detection_threshold()),
            backends: Arc::default(),
        })
    }

    /// The engine's configuration.
    #[must_use]
    pub fn config(&self) -> &ConnectionConfig {
        &self.config
    }

    /// The TLS connector for this engine's connections and cancel
    /// requests (a cheap clone: the connector shares its settings).
    #[must_use]
    // Without the `tls` feature the connector is `NoTls`, which is `Copy`.
    #[allow(clippy::clone_on_copy)]
    pub fn tls(&self) -> MakeTls {
        self.tls.clone()
    }

    /// The servers of the host list, in the configuration's order.
    pub(super) fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The driver settings every attempt on server `index` starts from.
    pub(super) fn base_driver_config(&self, index: usize) -> &tokio_postgres::Config {
        &self.drivers[index]
    }

    /// Server `index`'s retirement epoch.
    pub(super) fn host_epoch(&self, index: usize) -> u64 {
        self.host_epochs
            .get(index)
            .map_or(0, |epoch| epoch.load(Ordering::Acquire))
    }

    /// A connection learned that server `index` may have changed role:
    /// every pooled connection to it checks its role again before it is
    /// handed out, rather than failing one by one.
    fn suspect_host(&self, index: usize) {
        if let Some(epoch) = self.host_epochs.get(index) {
            epoch.fetch_add(1, Ordering::AcqRel);
            self.events().host_suspected(&self.endpoints[index]);
        }
    }

    /// Where the engine's passwords come from.
    #[must_use]
    pub fn credentials(&self) -> CredentialSource {
        self.credentials
    }

    /// The error of a credential provider that failed: transient, so
    /// retried like a refused connection within `pool_timeout`.
    #[must_use]
    pub fn provider_failed(&self, error: BoxError) -> Error {
        Error::with_message(
            ErrorKind::Connect,
            format!(
                "the credential provider gave no password for role `{}` on {}",
                self.config.role(),
                self.config.target()
            ),
        )
        .with_source(error)
    }

    /// The engine's counters.
    #[must_use]
    pub fn metrics(&self) -> &PoolMetrics {
        &self.metrics
    }

    /// The engine's spans and per-statement measures.
    #[must_use]
    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    /// The engine's log events.
    #[must_use]
    pub fn events(&self) -> EngineEvents<'_> {
        EngineEvents::new(&self.config)
    }

    /// Whether the engine was disposed.
    #[must_use]
    #[inline]
    pub fn is_disposed(&self) -> bool {
        self.disposed.load(Ordering::Acquire)
    }

    /// Marks the engine disposed; true for the one call that did it (which
    /// then closes the idle connections and logs the event).
    pub fn dispose(&self) -> bool {
        let first = !self.disposed.swap(true, Ordering::AcqRel);
        if first {
            self.events().engine_disposed();
        }
        first
    }

    /// The error of a checkout on a disposed engine.
    #[must_use]
    pub fn disposed_error(&self) -> Error {
        Error::with_message(
            ErrorKind::PoolClosed,
            "the engine is disposed; it hands out no more connections",
        )
    }

    // ---- opening -------------------------------------------------------

    /// The state of a connection that just connected to the first server
    /// (see [`ConnectPlan::new_conn_state`] for the server an attempt
    /// reached).
    #[must_use]
    pub fn new_conn_state<S: Clone>(&self) -> ConnState<S> {
        self.conn_state_on(0)
    }

    /// The state of a connection that just connected to server `index`,
    /// its role checked now if the target needs it.
    pub(super) fn conn_state_on<S: Clone>(&self, index: usize) -> ConnState<S> {
        self.metrics.record_created();
        let now = Instant::now();
        let state = ConnState::on_host(
            now,
            self.config.statement_cache_size(),
            self.config.pool_recycle(),
            self.config.query_timeout(),
            HostMark {
                index,
                epoch: self.host_epoch(index),
                checked_at: now,
            },
        );
        let state = state.with_telemetry(Arc::clone(&self.telemetry));
        if self.config.pgbouncer_mode().shares_server_connections() {
            state.sharing_server_connections(self.config.statement_cache_size())
        } else {
            state
        }
    }

    /// How one checkout opens a connection: retries with the configured
    /// backoff, bounded as a whole by `pool_timeout` from `started` (when
    /// the checkout began).
    #[must_use]
    pub fn connect_plan(&self, started: Instant) -> ConnectPlan<'_> {
        ConnectPlan::new(self, started)
    }

    /// The steps that prepare a new connection, in order.
    pub fn open_steps(&self) -> impl Iterator<Item = OpenStep<'_>> {
        // Behind PgBouncer the process belongs to the bouncer's pool (and
        // changes with each transaction in its transaction mode): never
        // ours to end.
        let learn_pid = (self.config.pgbouncer_mode() == PgBouncerMode::None)
            .then_some(OpenStep::LearnBackendPid(BACKEND_PID_QUERY));
        [
            learn_pid,
            self.search_path_sql.as_deref().map(OpenStep::Run),
            Some(OpenStep::Callbacks),
            self.set_role_sql.as_deref().map(OpenStep::Run),
        ]
        .into_iter()
        .flatten()
    }

    /// A new connection's [`OpenStep::LearnBackendPid`] query answered
    /// `row`: the engine knows its server process until it is dropped.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Decode`] when the row holds no process id.
    pub fn backend_identified<S: Clone>(
        &self,
        conn: &mut ConnState<S>,
        row: &[Option<String>],
    ) -> Result<()> {
        let pid = self.backends.register(conn.id(), row)?;
        conn.set_backend_pid(pid);
        Ok(())
    }

    /// The statement a drain whose deadline passed runs on a connection of
    /// its own ([`ForcedClose::sql`](super::ForcedClose::sql)): it ends the server processes of the connections still open
    /// (checked out, their users' threads or tasks holding the sockets)
    /// and waits, at most the housekeeping timeout, until the server no
    /// longer lists them. `None` when no connection is open (or behind
    /// PgBouncer, where the processes are not the engine's).
    #[must_use]
    pub(super) fn forced_close_sql(&self) -> Option<String> {
        self.backends.terminate_sql(self.housekeeping_timeout())
    }

    /// After the callbacks ran on a new connection: it must not have
    /// broken, and a transaction they left open is rolled back (the
    /// statement to run is returned). Settings they made (time zone, and
    /// so on) become the connection's baseline, which returns keep.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Closed`] when the connection broke or a statement of
    /// theirs is still running.
    pub fn settle_after_callbacks<S: Clone>(
        &self,
        conn: &mut ConnState<S>,
        driver_closed: bool,
    ) -> Result<Option<&'static str>> {
        if driver_closed || conn.is_lost() || conn.is_in_flight() {
            return Err(Error::with_message(
                ErrorKind::Closed,
                "the connection broke while its callbacks ran",
            ));
        }
        let rollback = conn.may_be_in_transaction().then_some("ROLLBACK");
        conn.cleaned();
        Ok(rollback)
    }

    /// Why a new connection whose open steps failed with `error` is
    /// closed: [`CloseReason::CallbackFailed`] when a callback failed, else
    /// [`CloseReason::Broken`].
    #[must_use]
    pub fn open_failed(&self, error: &Error) -> CloseReason {
        if error.kind() == ErrorKind::Callback {
            CloseReason::CallbackFailed
        } else {
            CloseReason::Broken
        }
    }

    pub(super) fn connect_started(&self) {
        self.connecting.fetch_add(1, Ordering::AcqRel);
    }

    /// An attempt on server `index` ended: with `outcome` when it failed.
    pub(super) fn connect_ended(&self, index: usize, outcome: Option<&Error>) {
        self.connecting.fetch_sub(1, Ordering::AcqRel);
        let mut last = self
            .last_connect_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match outcome {
            Some(error) => {
                if let Some(slot) = last.get_mut(index) {
                    *slot = Some((Instant::now(), error.clone()));
                }
            }
            None => last.iter_mut().for_each(|slot| *slot = None),
        }
    }

    /// Why a checkout that began at `started` could not get a connection,
    /// if connecting is the reason: the last connect error since then, or
    /// an attempt still waiting for an answer (a server that accepts and
    /// then says nothing fails no attempt before `connect_timeout`).
    #[must_use]
    pub fn connect_trouble(&self, started: Instant) -> Option<Error> {
        let failures: Vec<(usize, Error)> = self
            .last_connect_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .enumerate()
            .filter_map(|(index, slot)| {
                slot.as_ref()
                    .filter(|(at, _)| *at >= started)
                    .map(|(_, error)| (index, error.clone()))
            })
            .collect();
        self.every_host_failed(failures).or_else(|| {
            (self.connecting.load(Ordering::Acquire) > 0).then(|| {
                Error::with_message(
                    ErrorKind::Connect,
                    format!(
                        "a connection attempt to {} has had no answer yet",
                        self.config.target()
                    ),
                )
                .with_source(io::Error::from(io::ErrorKind::TimedOut))
            })
        })
    }

    /// One error for the failures of several servers: each server's own,
    /// in the message, and the last one as the cause; a single failure as
    /// it is.
    pub(super) fn every_host_failed(&self, mut failures: Vec<(usize, Error)>) -> Option<Error> {
        if failures.len() <= 1 {
            return failures.pop().map(|(_, error)| error);
        }
        let mut message = format!(
            "could not connect to any of the {} hosts of {}:",
            failures.len(),
            self.config.target()
        );
        for (index, error) in &failures {
            // With its causes: "connection refused" is the point.
            let _ = write!(
                message,
                " [{}] {};",
                self.endpoints[*index],
                crate::error::error_chain(error)
            );
        }
        message.pop();
        let (_, last) = failures.pop()?;
        let mut error = Error::with_message(last.kind(), message);
        if let Some(code) = last.sqlstate() {
            error = error.with_sqlstate(code.clone());
        }
        Some(error.with_source(last))
    }

    /// A checkout that began at `started` gave up: counts it, logs it and
    /// returns the [`ErrorKind::PoolTimeout`] error, carrying `cause` or
    /// else [`connect_trouble`](Self::connect_trouble).
    #[must_use]
    pub fn checkout_timed_out(&self, started: Instant, cause: Option<Error>) -> Error {
        let waited = started.elapsed();
        let cause = cause.or_else(|| self.connect_trouble(started));
        let error = Error::pool_timeout(waited, cause);
        self.metrics.record_acquire_timeout(waited);
        self.events().acquire_timeout(waited, &error);
        if tracing::enabled!(target: SPAN_TARGET, tracing::Level::DEBUG) {
            // The checkout's span, which the backend entered.
            record_error(&tracing::Span::current(), &error);
        }
        error
    }

    /// A checkout begins: it counts as a pending request until the
    /// returned guard is dropped, and its span
    /// ([`Telemetry::acquire_span`]) is for the backend to enter (or
    /// instrument the checkout's future with) until then, so that its
    /// connect attempts are its children.
    #[must_use]
    pub fn checkout_started(&self) -> Checkout<'_> {
        let mut checkout = self.checkout_begun();
        checkout.must_wait();
        checkout
    }

    /// A checkout begins that first tries for an idle connection without
    /// waiting: as [`checkout_started`](Self::checkout_started), but the
    /// clock is read only if it [must wait](Checkout::must_wait).
    #[inline]
    pub fn checkout_begun(&self) -> Checkout<'_> {
        self.metrics.record_pending(true);
        Checkout {
            core: self,
            started: None,
            span: self.telemetry.acquire_span(),
        }
    }

    /// A checkout that began waiting at `started` (`None`: it did not
    /// wait) hands `conn` to its user at `location`: counted as used until
    /// [`return_plan`](Self::return_plan) sees it back, its wait measured,
    /// and watched for leaks when `leak_detection_threshold` is set (the
    /// ticket goes back with [`checked_in`](Self::checked_in)). One clock
    /// read for all of it, none when the pool just
    /// [vetted](ConnState::vetted) the connection.
    pub fn handed_out<S: Clone>(
        &self,
        conn: &mut ConnState<S>,
        started: Option<Instant>,
        location: &'static std::panic::Location<'static>,
    ) -> Option<LeakTicket> {
        let now = conn.take_vetted().unwrap_or_else(Instant::now);
        self.metrics
            .record_acquired(started.map_or(Duration::ZERO, |started| {
                now.saturating_duration_since(started)
            }));
        conn.checked_out(now);
        self.metrics.record_handed_out();
        self.leaks.start(location, now)
    }

    // ---- checkout ------------------------------------------------------

    /// Whether an idle connection may be handed out at `now`; `None` when
    /// it may, else why it must be closed instead. `driver_closed` is what
    /// the driver knows.
    #[must_use]
    pub fn checkout_verdict<S: Clone>(
        &self,
        conn: &ConnState<S>,
        driver_closed: bool,
        now: Instant,
    ) -> Option<CloseReason> {
        if conn.is_in_flight() || conn.may_be_in_transaction() {
            // Its cleaning never ran (its task died with its runtime).
            Some(CloseReason::Dirty)
        } else if driver_closed || conn.is_lost() {
            Some(CloseReason::Broken)
        } else if conn.is_expired(now) {
            Some(CloseReason::Expired)
        } else if conn.is_idle_beyond(now, self.config.idle_timeout()) {
            Some(CloseReason::Idle)
        } else if self.wrong_role_after_refused_write(conn) {
            Some(CloseReason::WrongRole)
        } else {
            None
        }
    }

    /// Whether `conn`'s server refused a write (25006) under a target that
    /// needs writes: the server was likely demoted, so the connection goes
    /// and the other connections to that server check their role before
    /// their next checkout.
    fn wrong_role_after_refused_write<S: Clone>(&self, conn: &ConnState<S>) -> bool {
        use crate::config::TargetSessionAttrs::{Primary, ReadWrite};
        let needs_writes = matches!(self.config.target_session_attrs(), ReadWrite | Primary);
        if needs_writes && conn.refused_write() {
            self.suspect_host(conn.host().index);
            return true;
        }
        false
    }

    /// Whether a driver that only reads during calls should look, without
    /// a round trip, for what the server sent an idle connection (a `FATAL`
    /// from `pg_terminate_backend`, a restart's EOF) before handing it out:
    /// when it has been idle for [`ALIVE_BYPASS_WINDOW`] or longer. Within
    /// the window it is trusted, as HikariCP trusts a connection used less
    /// than 500 ms ago; if it did die, its first statement fails as
    /// [`ErrorKind::Closed`] (transient) and it is discarded, never handed
    /// out again.
    #[must_use]
    pub fn checkout_looks_for_silent_close<S: Clone>(
        &self,
        conn: &ConnState<S>,
        now: Instant,
    ) -> bool {
        conn.is_idle_beyond(now, Some(ALIVE_BYPASS_WINDOW))
    }

    /// Whether [`checkout_probe`](Self::checkout_probe) may ask for a
    /// round trip before a hand-out (a role check or `pre_ping` is
    /// configured). When not, a backend may judge an idle connection
    /// after its pool picked it, with a time the pool read anyway.
    #[must_use]
    pub fn checkout_may_probe(&self) -> bool {
        self.config.target_session_attrs().needs_role_check() || self.config.pre_ping()
    }

    /// The query that checks an idle connection at `now` before it is
    /// handed out, bounded by [`housekeeping_timeout`](Self::housekeeping_timeout):
    /// the role query ([`ROLE_QUERY`]) when `target_session_attrs` needs a
    /// role and the connection's was last checked `host_recheck_interval`
    /// ago or its server is suspected of a change, else `SELECT 1` with
    /// `pre_ping`. The backend runs it with the simple protocol and hands
    /// the first row to [`probe_answered`](Self::probe_answered); a
    /// connection that fails it is closed and the checkout takes another,
    /// silently.
    #[must_use]
    pub fn checkout_probe<S: Clone>(
        &self,
        conn: &ConnState<S>,
        now: Instant,
    ) -> Option<&'static str> {
        let host = conn.host();
        let role_due = self.config.target_session_attrs().needs_role_check()
            && (now.saturating_duration_since(host.checked_at)
                >= self.config.host_recheck_interval()
                || self.host_epoch(host.index) != host.epoch);
        if role_due {
            Some(ROLE_QUERY)
        } else {
            self.config.pre_ping().then_some("SELECT 1")
        }
    }

    /// Judges the first row of the probe [`checkout_probe`](Self::checkout_probe)
    /// asked for: `None` when the connection may be handed out, else why it
    /// is closed. A server whose role no longer qualifies (a demoted
    /// primary) is [`CloseReason::WrongRole`], and every other connection
    /// to it checks its role before its next checkout.
    pub fn probe_answered<S: Clone>(
        &self,
        conn: &mut ConnState<S>,
        probe: &str,
        row: &[Option<&str>],
        now: Instant,
    ) -> Option<CloseReason> {
        if probe != ROLE_QUERY {
            return None;
        }
        let index = conn.host().index;
        let epoch = self.host_epoch(index);
        match ServerRole::from_row(row) {
            Some(role) if self.config.target_session_attrs().accepts(role, false) => {
                conn.role_checked(now, epoch);
                None
            }
            Some(_) => {
                self.suspect_host(index);
                Some(CloseReason::WrongRole)
            }
            None => Some(CloseReason::Broken),
        }
    }

    /// How long to wait for a statement's cancel request to be delivered
    /// before closing its connection, when that order matters: behind
    /// PgBouncer (`pgbouncer_mode` other than `none`), which forwards a
    /// cancel request only while its client is connected, and, when the
    /// client goes, closes the server connection without stopping what
    /// runs there. `None`: close at once (a server takes the cancel request
    /// whether or not the connection is still open).
    #[must_use]
    pub fn cancel_before_closing(&self) -> Option<Duration> {
        (self.config.pgbouncer_mode() != PgBouncerMode::None).then(|| self.config.connect_timeout())
    }

    /// How long checks and cleaning statements the pool runs itself may
    /// take before the connection is given up on.
    #[must_use]
    pub fn housekeeping_timeout(&self) -> Duration {
        self.config.connect_timeout()
    }

    // ---- return --------------------------------------------------------

    /// What to do with a connection its user returned at `now`.
    #[must_use]
    pub fn return_plan<S: Clone>(
        &self,
        conn: &ConnState<S>,
        driver_closed: bool,
        now: Instant,
    ) -> ReturnPlan {
        if let Some(at) = conn.checked_out_at() {
            self.metrics.record_returned(at, now);
        }
        if driver_closed {
            return ReturnPlan::Discard(CloseReason::Broken);
        }
        // Before anything else: the server may still be running it.
        if conn.is_in_flight() {
            return ReturnPlan::CancelAndDiscard;
        }
        if self.is_disposed() {
            return ReturnPlan::Discard(CloseReason::Disposed);
        }
        if conn.is_lost() {
            return ReturnPlan::Discard(CloseReason::Broken);
        }
        if conn.is_expired(now) {
            return ReturnPlan::Discard(CloseReason::Expired);
        }
        if self.wrong_role_after_refused_write(conn) {
            return ReturnPlan::Discard(CloseReason::WrongRole);
        }
        match self.cleaning(conn) {
            Some(sql) => ReturnPlan::Clean(sql),
            None => ReturnPlan::Keep,
        }
    }

    /// The statements that restore what the pool promises about a
    /// connection's session: no transaction, the configured role (or the
    /// login role), the configured search path (or the server's default).
    // The check inline, the building out of line: nearly every return
    // has nothing to clean.
    #[inline]
    fn cleaning<S: Clone>(&self, conn: &ConnState<S>) -> Option<Vec<String>> {
        let (role_changed, search_path_changed) = conn.session_changed();
        // A session the user had the driver's client for is reset whole.
        let discard = self.config.discard_on_return() || conn.was_lent();
        if !discard && !conn.may_be_in_transaction() && !role_changed && !search_path_changed {
            return None;
        }
        Some(self.cleaning_sql(conn, discard, role_changed, search_path_changed))
    }

    #[inline(never)]
    fn cleaning_sql<S: Clone>(
        &self,
        conn: &ConnState<S>,
        discard: bool,
        role_changed: bool,
        search_path_changed: bool,
    ) -> Vec<String> {
        let mut sql = String::new();
        if conn.may_be_in_transaction() {
            sql.push_str("ROLLBACK;");
        }
        if discard {
            // Everything the session holds goes; what the configuration
            // promises is set again. `DISCARD ALL` goes alone: the server
            // runs a multi-statement query as one transaction block, where
            // it is refused.
            let mut queries = Vec::with_capacity(3);
            if !sql.is_empty() {
                queries.push(sql);
            }
            queries.push("DISCARD ALL".to_owned());
            let restore: String = [&self.search_path_sql, &self.set_role_sql]
                .into_iter()
                .flatten()
                .map(|statement| format!("{statement};"))
                .collect();
            if !restore.is_empty() {
                queries.push(restore);
            }
            return queries;
        }
        if role_changed {
            sql.push_str("RESET SESSION AUTHORIZATION;");
            match &self.set_role_sql {
                Some(set_role) => {
                    let _ = write!(sql, "{set_role};");
                }
                None => sql.push_str("RESET ROLE;"),
            }
        }
        if search_path_changed {
            match &self.search_path_sql {
                Some(search_path) => {
                    let _ = write!(sql, "{search_path};");
                }
                None => sql.push_str("RESET search_path;"),
            }
        }
        vec![sql]
    }

    /// Whether surplus connections may be open at all (more than
    /// `pool_size`): only then is the pool's own (locked) state worth
    /// asking for [`is_surplus`](Self::is_surplus), so the common return
    /// takes no lock.
    #[must_use]
    #[inline]
    pub fn may_hold_surplus(&self) -> bool {
        usize::try_from(self.metrics.open_connections())
            .map_or(true, |open| open > self.limits.pool_size())
    }

    /// The error of cleaning statements that did not finish within the
    /// housekeeping timeout (the connection is discarded).
    #[must_use]
    pub fn cleaning_timed_out(&self) -> Error {
        Error::with_message(
            ErrorKind::QueryTimeout,
            "cleaning the returned connection took longer than connect_timeout",
        )
    }

    /// Why a connection leaves the pool for good: the reason recorded on
    /// it, else [`CloseReason::Disposed`] once the engine is disposed, else
    /// what the checkout rules say (the pool's own reaper applies them),
    /// else `unexplained` (what the pool's way of dropping a connection
    /// without a reason means: a cancelled check, the pool going away).
    #[must_use]
    pub fn close_reason<S: Clone>(
        &self,
        conn: &ConnState<S>,
        driver_closed: bool,
        now: Instant,
        unexplained: CloseReason,
    ) -> CloseReason {
        conn.close_reason().unwrap_or_else(|| {
            if self.is_disposed() {
                CloseReason::Disposed
            } else {
                self.checkout_verdict(conn, driver_closed, now)
                    .unwrap_or(unexplained)
            }
        })
    }

    /// Whether a clean returned connection is surplus and closes
    /// ([`CloseReason::Overflow`]): the pool holds more than `pool_size`
    /// connections (`open`, this one included), `pool_size` of them idle,
    /// and nobody waits.
    #[must_use]
    pub fn is_surplus(&self, open: usize, idle: usize, waiting: usize) -> bool {
        let pool_size = self.limits.pool_size();
        // Beyond the (lowered) maximum, a returned connection retires.
        open > self.limits.max_connections()
            || (open > pool_size && idle >= pool_size && waiting == 0)
    }

    // ---- pool operations -----------------------------------------------

    /// The pool's `pool_size` now (the configuration's, unless changed by
    /// [`set_limits`](Self::set_limits)).
    #[must_use]
    pub fn pool_size(&self) -> usize {
        self.limits.pool_size()
    }

    /// The pool's `max_overflow` now.
    #[must_use]
    pub fn max_overflow(&self) -> usize {
        self.limits.max_overflow()
    }

    /// The most connections the pool may hold now: `pool_size +
    /// max_overflow` ([`PoolStatus::max_size`](crate::PoolStatus)).
    #[must_use]
    pub fn max_connections(&self) -> usize {
        self.limits.max_connections()
    }

    /// Changes `pool_size` and/or `max_overflow` (`None` keeps one as it
    /// is) and returns the new maximum, for the backend to resize its
    /// pool. Connections are not closed here: a returned one beyond the
    /// new limits retires ([`is_surplus`](Self::is_surplus)).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] naming the setting and the rule it breaks
    /// (`pool_size` between 1 and 1000 and at least `min_idle`, the sum at
    /// most 1000), nothing changed; [`ErrorKind::PoolClosed`] when the
    /// engine is disposed.
    pub fn set_limits(
        &self,
        pool_size: Option<usize>,
        max_overflow: Option<usize>,
    ) -> Result<usize> {
        if self.is_disposed() {
            return Err(self.disposed_error());
        }
        let max = self
            .limits
            .set(pool_size, max_overflow, self.config.min_idle())?;
        self.events()
            .pool_resized(self.limits.pool_size(), self.limits.max_overflow());
        Ok(max)
    }

    /// How many connections to open now to keep `min_idle` idle, given
    /// `open` connections of which `idle` are idle: never beyond
    /// `pool_size` (an overflow connection would retire as surplus when
    /// returned, so keeping one idle only churns; a connection still on
    /// its way back counts as open), none once disposed.
    #[must_use]
    pub fn idle_deficit(&self, open: usize, idle: usize) -> usize {
        if self.is_disposed() {
            return 0;
        }
        let pool_size = self.limits.pool_size();
        self.config
            .min_idle()
            .min(pool_size)
            .saturating_sub(idle)
            .min(pool_size.saturating_sub(open))
    }

    /// How long the background refill waits before its next look at the
    /// idle connections, after a fill that `failed` or not: 100 ms after
    /// a success (or nothing to do), else the retry policy's backoff
    /// (kept in `backoff` across failures, reset by a success; once the
    /// policy gives up, its `max_delay`), never less than 100 ms, so a
    /// server that stays down is never hammered.
    pub fn refill_delay(&self, backoff: &mut Option<Backoff>, failed: bool) -> Duration {
        const PERIOD: Duration = Duration::from_millis(100);
        if !failed {
            *backoff = None;
            return PERIOD;
        }
        let policy = self.config.retry();
        backoff
            .get_or_insert_with(|| policy.backoff())
            .next_delay_if(true)
            .unwrap_or_else(|| policy.get_max_delay())
            .max(PERIOD)
    }

    /// The error of a `warm_up` that could not open `min_idle` connections
    /// within `pool_timeout` from `started`, carrying `last` (the last
    /// connect error), else what [`connect_trouble`](Self::connect_trouble)
    /// knows.
    #[must_use]
    pub fn warm_up_failed(&self, started: Instant, last: Option<Error>) -> Error {
        let cause = last.or_else(|| self.connect_trouble(started));
        let mut error = Error::with_message(
            ErrorKind::PoolTimeout,
            format!(
                "warm_up could not open min_idle ({}) connections within pool_timeout ({:?})",
                self.config.min_idle(),
                self.config.pool_timeout()
            ),
        );
        if let Some(cause) = cause {
            error = error.with_source(cause);
        }
        error
    }

    /// A watched checkout returned; logs the return of one that was
    /// reported as a leak.
    #[inline]
    pub fn checked_in(&self, ticket: Option<LeakTicket>) {
        if let Some(ticket) = ticket
            && let Some((location, held)) = self.leaks.end(&ticket, Instant::now())
        {
            self.events().leaked_connection_returned(location, held);
        }
    }

    /// How often the backend calls [`leak_scan`](Self::leak_scan) (a
    /// quarter of the threshold, between 10 ms and 1 s); `None` when
    /// leak detection is off.
    #[must_use]
    pub fn leak_scan_period(&self) -> Option<Duration> {
        self.leaks.scan_period()
    }

    /// Reports (once each) the checkouts held past
    /// `leak_detection_threshold` at `now`.
    pub fn leak_scan(&self, now: Instant) {
        if let Some(threshold) = self.leaks.threshold() {
            for (location, held) in self.leaks.overdue(now) {
                self.events()
                    .connection_leak_suspected(location, held, threshold);
            }
        }
    }

    /// What a drain (`close(deadline)`) reports: of the `in_use` connections
    /// checked out when it began, `still_in_use` were not back by the
    /// deadline. Logs the outcome.
    #[must_use]
    pub fn close_report(&self, in_use: usize, still_in_use: usize) -> CloseReport {
        let report = CloseReport {
            returned: in_use.saturating_sub(still_in_use),
            forced: still_in_use,
        };
        self.events().engine_closed(report.returned, report.forced);
        report
    }

    /// Records a connection leaving the pool for good.
    pub fn record_closed(&self, reason: CloseReason) {
        self.metrics.record_closed(reason);
        self.events().connection_closed(reason);
    }

    /// Logs why a connection is being discarded before its time.
    pub fn record_discarded(&self, reason: CloseReason, error: Option<&Error>) {
        self.events().connection_discarded(reason, error);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn core(url: &str) -> EngineCore {
        EngineCore::new(
            &url.parse().unwrap(),
            Driver::Any,
            CredentialSource::Configuration,
        )
        .unwrap()
    }

    #[test]
    fn open_learns_the_pid_then_runs_search_path_then_callbacks_then_role() {
        let core = core("postgresql://app@db/x?schema=app&set_role=owner");
        let steps: Vec<_> = core.open_steps().collect();
        assert_eq!(steps.len(), 4);
        assert_eq!(steps[0], OpenStep::LearnBackendPid(BACKEND_PID_QUERY));
        assert!(matches!(steps[1], OpenStep::Run(sql) if sql.starts_with("SET search_path")));
        assert_eq!(steps[2], OpenStep::Callbacks);
        assert!(matches!(steps[3], OpenStep::Run(sql) if sql.starts_with("SET ROLE")));
        let plain = self::core("postgresql://app@db/x");
        assert_eq!(
            plain.open_steps().collect::<Vec<_>>(),
            [
                OpenStep::LearnBackendPid(BACKEND_PID_QUERY),
                OpenStep::Callbacks
            ]
        );
        // Behind PgBouncer the server process is not the engine's to end.
        let bouncer = self::core("postgresql://app@db/x?pgbouncer_mode=session");
        assert_eq!(
            bouncer.open_steps().collect::<Vec<_>>(),
            [OpenStep::Callbacks]
        );
    }

    /// With a target that needs a role, a pooled connection's role is
    /// checked again once `host_recheck_interval` has passed, and at once
    /// after another connection to the same server found it demoted.
    #[test]
    fn behind_transaction_mode_pgbouncer_describes_pin_a_transaction_and_are_kept() {
        use crate::backend::DescribePlan;
        let sql = "SELECT $1::int4";
        let direct = core("postgresql://app@db/x?statement_cache_size=0");
        let mut conn: ConnState<u32> = direct.conn_state_on(0);
        assert!(matches!(conn.describe_plan(sql), DescribePlan::Describe));

        let bouncer = core("postgresql://app@db/x?pgbouncer_mode=transaction");
        let mut conn: ConnState<u32> = bouncer.conn_state_on(0);
        assert!(!conn.caches_statements(), "no named statement may be kept");
        assert!(matches!(
            conn.describe_plan(sql),
            DescribePlan::DescribeInTransaction
        ));
        conn.described(sql, &[postgres_types::Type::INT4]);
        assert!(
            matches!(conn.describe_plan(sql), DescribePlan::Known(types) if types[..] == [postgres_types::Type::INT4])
        );
        // A failure forgets the description (DDL may have changed it).
        let _ = conn.statement_started(sql).unwrap();
        let failed: Result<()> = Err(Error::with_message(ErrorKind::Database, "x")
            .with_sqlstate(tokio_postgres::error::SqlState::DATATYPE_MISMATCH));
        assert!(conn.finished(Some(sql), failed).is_err());
        assert!(matches!(
            conn.describe_plan(sql),
            DescribePlan::DescribeInTransaction
        ));
        // Inside a transaction the server connection is ours already.
        conn.begin_started().unwrap();
        conn.begin_succeeded(None);
        assert!(matches!(
            conn.describe_plan("SELECT $1::text"),
            DescribePlan::Describe
        ));
    }

    #[test]
    fn roles_are_rechecked_on_interval_and_when_a_host_is_suspected() {
        let core = core(
            "postgresql://app@a,b/x?target_session_attrs=read-write&host_recheck_interval=10s",
        );
        let now = Instant::now();
        let mut first: ConnState<u32> = core.conn_state_on(0);
        let mut second: ConnState<u32> = core.conn_state_on(0);
        let other: ConnState<u32> = core.conn_state_on(1);
        assert_eq!(core.checkout_probe(&first, now), None);
        let later = now + Duration::from_secs(11);
        assert_eq!(core.checkout_probe(&first, later), Some(ROLE_QUERY));
        let primary = [Some("f"), Some("off")];
        assert_eq!(
            core.probe_answered(&mut first, ROLE_QUERY, &primary, later),
            None
        );
        assert_eq!(core.checkout_probe(&first, later), None, "checked just now");

        // The server was demoted: the first connection to see it goes...
        let standby = [Some("t"), Some("on")];
        assert_eq!(
            core.probe_answered(&mut first, ROLE_QUERY, &standby, later),
            Some(CloseReason::WrongRole)
        );
        // ...and every other connection to that server checks at once,
        // not those to other servers.
        assert_eq!(core.checkout_probe(&second, now), Some(ROLE_QUERY));
        assert_eq!(core.checkout_probe(&other, now), None);
        assert_eq!(
            core.probe_answered(&mut second, ROLE_QUERY, &primary, now),
            None
        );
        assert_eq!(core.checkout_probe(&second, now), None);

        // Without a role to keep, only pre_ping probes.
        let any = self::core("postgresql://app@a/x?pre_ping=true");
        let conn: ConnState<u32> = any.new_conn_state();
        assert_eq!(any.checkout_probe(&conn, later), Some("SELECT 1"));
    }

    /// A write refused with 25006 under a target that needs writes
    /// discards the connection and has the server's other connections
    /// checked; under `any` it is an ordinary error.
    #[test]
    fn a_refused_write_retires_the_connection_when_writes_are_needed() {
        let read_only = Error::with_message(ErrorKind::Database, "read-only")
            .with_sqlstate(tokio_postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION);
        let writes = core("postgresql://app@a/x?target_session_attrs=primary");
        let mut conn: ConnState<u32> = writes.new_conn_state();
        let other: ConnState<u32> = writes.new_conn_state();
        let _ = conn.statement_started("INSERT INTO t VALUES (1)").unwrap();
        let _ = conn.finished::<()>(None, Err(read_only.clone()));
        let now = Instant::now();
        assert_eq!(
            writes.return_plan(&conn, false, now),
            ReturnPlan::Discard(CloseReason::WrongRole)
        );
        assert_eq!(writes.checkout_probe(&other, now), Some(ROLE_QUERY));

        let any = self::core("postgresql://app@a/x");
        let mut conn: ConnState<u32> = any.new_conn_state();
        let _ = conn.statement_started("INSERT INTO t VALUES (1)").unwrap();
        let _ = conn.finished::<()>(None, Err(read_only));
        assert_eq!(any.return_plan(&conn, false, now), ReturnPlan::Keep);
    }

    #[test]
    fn a_clean_connection_goes_back_as_it_is() {
        let core = core("postgresql://app@db/x");
        let mut conn: ConnState<u32> = core.new_conn_state();
        let _ = conn.statement_started("SELECT 1").unwrap();
        conn.finished::<()>(None, Ok(())).unwrap();
        assert_eq!(
            core.return_plan(&conn, false, Instant::now()),
            ReturnPlan::Keep
        );
    }

    #[test]
    fn a_returned_connection_is_rolled_back_and_its_session_restored() {
        let core = core("postgresql://app@db/x?schema=app&set_role=owner");
        let mut conn: ConnState<u32> = core.new_conn_state();
        conn.batch_started("SET ROLE other; SET search_path = elsewhere; BEGIN")
            .unwrap();
        conn.finished::<()>(None, Ok(())).unwrap();
        let ReturnPlan::Clean(sql) = core.return_plan(&conn, false, Instant::now()) else {
            panic!("expected cleaning");
        };
        assert_eq!(
            sql,
            ["ROLLBACK;RESET SESSION AUTHORIZATION;SET ROLE \"owner\";SET search_path TO \"app\";"]
        );
        let plain = self::core("postgresql://app@db/x");
        let mut conn: ConnState<u32> = plain.new_conn_state();
        conn.batch_started("SET ROLE other; SET search_path = elsewhere")
            .unwrap();
        conn.finished::<()>(None, Ok(())).unwrap();
        let ReturnPlan::Clean(sql) = plain.return_plan(&conn, false, Instant::now()) else {
            panic!("expected cleaning");
        };
        assert_eq!(
            sql,
            ["RESET SESSION AUTHORIZATION;RESET ROLE;RESET search_path;"]
        );
    }

    #[test]
    fn a_session_lent_to_the_driver_is_rolled_back_and_reset_whole() {
        let core = core("postgresql://app@db/x?schema=app");
        let mut conn: ConnState<u32> = core.conn_state_on(0);
        assert!(matches!(
            core.return_plan(&conn, false, Instant::now()),
            ReturnPlan::Keep
        ));
        let _ = conn.remember("SELECT $1::int4", 1);
        conn.lent_to_driver();
        let ReturnPlan::Clean(queries) = core.return_plan(&conn, false, Instant::now()) else {
            panic!("a lent session was kept as it is");
        };
        assert_eq!(
            queries,
            ["ROLLBACK;", "DISCARD ALL", "SET search_path TO \"app\";"]
        );
        conn.cleaned_after(&queries);
        assert!(!conn.was_lent());
        assert!(
            conn.cached("SELECT $1::int4").is_none(),
            "DISCARD ALL dropped it"
        );
        assert!(matches!(
            core.return_plan(&conn, false, Instant::now()),
            ReturnPlan::Keep
        ));
    }

    #[test]
    fn discard_on_return_resets_everything_then_restores_the_configuration() {
        let core = core("postgresql://app@db/x?schema=app&set_role=owner&discard_on_return=true");
        let mut conn: ConnState<u32> = core.new_conn_state();
        let _ = conn.remember("SELECT 1", 1);
        let ReturnPlan::Clean(queries) = core.return_plan(&conn, false, Instant::now()) else {
            panic!("expected cleaning");
        };
        assert_eq!(
            queries,
            [
                "DISCARD ALL",
                "SET search_path TO \"app\";SET ROLE \"owner\";"
            ]
        );
        conn.cleaned_after(&queries);
        assert_eq!(
            conn.cached("SELECT 1"),
            None,
            "DISCARD ALL drops prepared statements"
        );
    }

    #[test]
    fn broken_cancelled_expired_and_disposed_connections_are_discarded() {
        let core = core("postgresql://app@db/x?pool_recycle=1s");
        let now = Instant::now();
        let mut conn: ConnState<u32> = core.new_conn_state();
        assert_eq!(
            core.return_plan(&conn, true, now),
            ReturnPlan::Discard(CloseReason::Broken)
        );
        let _ = conn.statement_started("SELECT pg_sleep(10)").unwrap();
        assert_eq!(
            core.return_plan(&conn, false, now),
            ReturnPlan::CancelAndDiscard
        );
        let conn: ConnState<u32> = core.new_conn_state();
        assert_eq!(
            core.return_plan(&conn, false, now + Duration::from_secs(2)),
            ReturnPlan::Discard(CloseReason::Expired)
        );
        assert!(core.dispose());
        assert!(!core.dispose());
        assert_eq!(
            core.return_plan(&conn, false, now),
            ReturnPlan::Discard(CloseReason::Disposed)
        );
    }

    #[test]
    fn a_vetted_connection_is_handed_out_at_its_vetting_time_once() {
        let core = core("postgresql://app@db/x");
        let mut conn: ConnState<u32> = core.new_conn_state();
        let vetted = Instant::now();
        conn.vetted(vetted);
        std::thread::sleep(Duration::from_millis(2));
        let _ = core.handed_out(&mut conn, None, std::panic::Location::caller());
        assert_eq!(conn.checked_out_at(), Some(vetted));
        // Not vetted again: the next hand-out reads the clock.
        let _ = core.handed_out(&mut conn, None, std::panic::Location::caller());
        assert!(conn.checked_out_at() > Some(vetted));
    }

    #[test]
    fn checkout_refuses_dirty_broken_expired_and_idle_connections() {
        let core = core("postgresql://app@db/x?idle_timeout=1s");
        let now = Instant::now();
        let mut conn: ConnState<u32> = core.new_conn_state();
        assert_eq!(core.checkout_verdict(&conn, false, now), None);
        assert_eq!(
            core.checkout_verdict(&conn, true, now),
            Some(CloseReason::Broken)
        );
        assert_eq!(
            core.checkout_verdict(&conn, false, now + Duration::from_secs(2)),
            Some(CloseReason::Idle)
        );
        conn.batch_started("BEGIN").unwrap();
        assert_eq!(
            core.checkout_verdict(&conn, false, now),
            Some(CloseReason::Dirty)
        );
    }

    #[test]
    fn close_reasons_recorded_then_disposed_then_checkout_rules_then_unexplained() {
        let core = core("postgresql://app@db/x?idle_timeout=1s");
        let now = Instant::now();
        let mut conn: ConnState<u32> = core.new_conn_state();
        let later = now + Duration::from_secs(2);
        assert_eq!(
            core.close_reason(&conn, false, now, CloseReason::Dirty),
            CloseReason::Dirty
        );
        assert_eq!(
            core.close_reason(&conn, false, later, CloseReason::Dirty),
            CloseReason::Idle
        );
        assert!(core.dispose());
        assert_eq!(
            core.close_reason(&conn, false, later, CloseReason::Dirty),
            CloseReason::Disposed
        );
        conn.close_for(CloseReason::Overflow);
        assert_eq!(
            core.close_reason(&conn, false, later, CloseReason::Dirty),
            CloseReason::Overflow
        );
        assert_eq!(
            core.open_failed(&Error::callback("init", "boom")),
            CloseReason::CallbackFailed
        );
        assert_eq!(
            core.open_failed(&Error::new(ErrorKind::Closed)),
            CloseReason::Broken
        );
    }

    #[test]
    fn surplus_only_beyond_pool_size_with_enough_idle_and_no_waiter() {
        let core = core("postgresql://app@db/x?pool_size=2&max_overflow=2");
        assert!(core.is_surplus(3, 2, 0));
        assert!(!core.is_surplus(3, 2, 1));
        assert!(!core.is_surplus(3, 1, 0));
        assert!(!core.is_surplus(2, 2, 0));
    }

    #[test]
    fn resized_limits_drive_surplus_status_and_refuse_bad_sizes() {
        let core = core("postgresql://app@db/x?pool_size=2&max_overflow=2&min_idle=1");
        assert_eq!(core.set_limits(Some(4), None).unwrap(), 6);
        assert!(
            !core.is_surplus(5, 3, 0),
            "under the new maximum, too few idle"
        );
        assert!(
            core.is_surplus(5, 4, 0),
            "beyond the new pool_size, enough idle"
        );
        assert_eq!(core.set_limits(Some(1), Some(0)).unwrap(), 1);
        assert!(
            core.is_surplus(2, 0, 3),
            "beyond the lowered maximum, even with waiters"
        );
        let error = core.set_limits(Some(0), None).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config);
        assert!(error.to_string().contains("pool_size"), "{error}");
        assert!(core.set_limits(Some(5), Some(996)).is_err());
        assert_eq!(
            core.max_connections(),
            1,
            "a refused change changes nothing"
        );
        core.dispose();
        assert_eq!(
            core.set_limits(Some(2), None).unwrap_err().kind(),
            ErrorKind::PoolClosed
        );
    }

    #[test]
    fn min_idle_deficit_is_bounded_by_the_maximum_and_ends_at_dispose() {
        let full = core("postgresql://app@db/x?pool_size=3&max_overflow=0&min_idle=2");
        assert_eq!(full.idle_deficit(0, 0), 2);
        assert_eq!(full.idle_deficit(3, 1), 0, "the pool is full");
        assert_eq!(full.idle_deficit(2, 1), 1);
        assert_eq!(full.idle_deficit(2, 2), 0);
        let overflowing = core("postgresql://app@db/x?pool_size=2&max_overflow=1&min_idle=2");
        assert_eq!(
            overflowing.idle_deficit(2, 0),
            0,
            "min_idle never opens overflow connections"
        );
        assert_eq!(overflowing.idle_deficit(1, 0), 1);
        full.dispose();
        assert_eq!(full.idle_deficit(0, 0), 0);
    }

    #[test]
    fn refill_backs_off_after_failures_and_resets_after_success() {
        let core = core(
            "postgresql://app@db/x?retry_initial_delay=200ms&retry_max_delay=1s&retry_max_attempts=2",
        );
        let mut backoff = None;
        assert_eq!(
            core.refill_delay(&mut backoff, false),
            Duration::from_millis(100)
        );
        let first = core.refill_delay(&mut backoff, true);
        assert!(first >= Duration::from_millis(100), "{first:?}");
        // The policy gave up: its max_delay from now on.
        assert_eq!(
            core.refill_delay(&mut backoff, true),
            Duration::from_secs(1)
        );
        assert_eq!(
            core.refill_delay(&mut backoff, false),
            Duration::from_millis(100)
        );
        assert!(backoff.is_none());
    }

    #[test]
    fn a_drain_reports_returned_and_forced() {
        let core = core("postgresql://app@db/x");
        assert_eq!(
            core.close_report(3, 1),
            CloseReport {
                returned: 2,
                forced: 1
            }
        );
    }

    #[test]
    fn a_timeout_blames_only_errors_seen_while_waiting() {
        let core = core("postgresql://app@db/x");
        core.connect_started();
        core.connect_ended(0, Some(&Error::new(ErrorKind::Connect)));
        let later = Instant::now();
        assert!(
            core.connect_trouble(later + Duration::from_secs(1))
                .is_none()
        );
        assert_eq!(
            core.connect_trouble(later - Duration::from_secs(1))
                .unwrap()
                .kind(),
            ErrorKind::Connect
        );
        core.connect_started();
        let waiting = core
            .connect_trouble(later + Duration::from_secs(1))
            .unwrap();
        assert!(waiting.to_string().contains("no answer yet"), "{waiting}");
        core.connect_ended(0, None);
        assert!(
            core.connect_trouble(later - Duration::from_secs(1))
                .is_none()
        );
    }
}
