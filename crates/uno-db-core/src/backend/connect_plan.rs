//! [`ConnectPlan`]: how one checkout opens a connection: host by host
//! (checking each server's role when `target_session_attrs` asks), pass
//! after pass with backoff, bounded as a whole by `pool_timeout`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::error::SqlState;

use super::MakeTls;
use super::conn_state::ConnState;
use super::engine_core::{CredentialSource, EngineCore, ROLE_QUERY};
use super::passfile;
use crate::config::{Endpoint, LoadBalanceHosts, ServerRole, SslMode, TargetSessionAttrs};
use crate::credentials::CredentialRequest;
use crate::error::{Error, ErrorKind};
use crate::retry::Backoff;

/// The shortest connect attempt a checkout makes, even when `pool_timeout`
/// is nearly used up: a shorter one could hardly succeed.
const MIN_ATTEMPT: Duration = Duration::from_millis(250);

/// What to do after a failed connect attempt.
#[derive(Debug)]
pub enum ConnectStep {
    /// Sleep this long, then try again.
    Retry(Duration),
    /// Give up with this error: the failure is permanent (wrong password,
    /// missing database...), the retry policy's limits are reached, or the
    /// checkout's `pool_timeout` would pass first (then a
    /// [`PoolTimeout`](crate::ErrorKind::PoolTimeout) carrying the failure).
    GiveUp(Error),
}

/// One checkout's connect attempts. The backend loops:
///
/// ```text
/// loop {
///     let attempt = plan.start_attempt();
///     match connect_within(plan.attempt_timeout()) {
///         Ok(conn) => { plan.succeeded(attempt); break conn }
///         Err(error) => match plan.failed(attempt, error) {
///             ConnectStep::Retry(delay) => sleep(delay),
///             ConnectStep::GiveUp(error) => return Err(error),
///         },
///     }
/// }
/// ```
///
/// Each attempt goes to one server of the host list (in order, or
/// shuffled with `load_balance_hosts=random`) and is bounded by
/// `connect_timeout` and by what is left of `pool_timeout`. When the
/// configuration's `target_session_attrs` needs a role, the backend runs
/// [`role_check`](Self::role_check) on the new connection within the same
/// bound. A
/// transient failure or a server of the wrong kind moves on to the next
/// server at once; after a pass over every server (two for
/// `prefer-standby`: standbys first, then any) the configuration's backoff
/// applies (its attempts and deadline too). Permanent failures (a refused
/// password, a TLS failure) are returned at once, as libpq does. The
/// engine remembers each server's failure, so that a checkout that times
/// out anywhere reports every server's last error.
#[derive(Debug)]
pub struct ConnectPlan<'a> {
    core: &'a EngineCore,
    backoff: Backoff,
    started: Instant,
    deadline: Instant,
    /// The policy's own limits, when set explicitly: reaching them returns
    /// the connect error itself rather than a pool time-out.
    max_attempts: Option<u32>,
    retry_deadline: Option<Instant>,
    /// `allow` or `prefer` had the server refuse the first TLS choice; the
    /// next attempts take the other one.
    tls_switched: bool,
    /// The server refused the provider's password and the provider was
    /// asked afresh.
    credentials_refreshed: bool,
    /// Set once the current attempt's TLS handshake started.
    tls_started: Mutex<Option<Arc<AtomicBool>>>,
    /// The servers, as indices into the configuration's endpoints, in this
    /// checkout's order.
    order: Vec<usize>,
    /// Position in `order` of the current (or next) attempt's server.
    position: usize,
    /// `prefer-standby`'s first pass: only a standby will do.
    standby_pass: bool,
    /// Each server's error in the current pass.
    pass_errors: Vec<(usize, Error)>,
    /// A failed attempt of this checkout was logged at WARN already.
    warned: bool,
}

/// One attempt under way; counts as "connecting" until handed back to
/// [`ConnectPlan::succeeded`] or [`ConnectPlan::failed`], or dropped (a
/// cancelled checkout).
#[derive(Debug)]
pub struct Attempt<'a> {
    core: &'a EngineCore,
    host: usize,
    started: Instant,
    ended: bool,
    /// `db.client.connection.create`, open until the attempt ends.
    span: tracing::Span,
}

impl Attempt<'_> {
    /// The attempt's span (`db.client.connection.create`): a backend may
    /// enter it (or instrument its connect future with it) so that what
    /// the driver logs meanwhile is its child.
    #[must_use]
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.ended {
            // Abandoned half-way: the checkout that made it gave up
            // (`pool_timeout`) or was dropped. Its span says so rather
            // than closing without an outcome.
            self.core.connect_ended(self.host, None);
            if !self.span.is_disabled() {
                self.span.record("outcome", "cancelled");
            }
        }
    }
}

impl<'a> ConnectPlan<'a> {
    pub(super) fn new(core: &'a EngineCore, started: Instant) -> Self {
        let deadline = started + core.config().pool_timeout();
        let policy = core.config().retry();
        Self {
            // Bounded by pool_timeout; the policy's own limits only when set.
            backoff: policy.backoff_until(deadline),
            deadline,
            max_attempts: policy.max_attempts_set(),
            retry_deadline: policy.deadline_set().map(|d| Instant::now() + d),
            core,
            started,
            tls_switched: false,
            credentials_refreshed: false,
            tls_started: Mutex::new(None),
            order: host_order(core),
            position: 0,
            standby_pass: core.config().target_session_attrs() == TargetSessionAttrs::PreferStandby,
            pass_errors: Vec::new(),
            warned: false,
        }
    }

    /// The server the current (or next) attempt goes to.
    fn host(&self) -> usize {
        self.order[self.position]
    }

    /// The server the current attempt goes to.
    #[must_use]
    pub fn endpoint(&self) -> &Endpoint {
        &self.core.endpoints()[self.host()]
    }

    /// `role@host:port/database` of the current attempt, for messages.
    #[must_use]
    pub fn target(&self) -> String {
        let config = self.core.config();
        format!(
            "{}@{}/{}",
            config.role(),
            self.endpoint(),
            config.database()
        )
    }

    /// The check to run on a new connection before it counts as made,
    /// when `target_session_attrs` needs a role: run
    /// [`RoleCheck::QUERY`] with the simple protocol within the attempt's
    /// bound and hand its first row to [`RoleCheck::judge`].
    #[must_use]
    pub fn role_check(&self) -> Option<RoleCheck> {
        let attrs = self.core.config().target_session_attrs();
        attrs.needs_role_check().then(|| RoleCheck {
            attrs,
            standby_pass: self.standby_pass,
            endpoint: self.endpoint().clone(),
        })
    }

    /// The state of the connection the current attempt made.
    #[must_use]
    pub fn new_conn_state<S: Clone>(&self) -> ConnState<S> {
        self.core.conn_state_on(self.host())
    }

    /// The TLS connector for the next attempt (and only for it), or `None`
    /// when that attempt is plaintext ([`driver_config`](Self::driver_config)
    /// has `sslmode=disable`): connect with [`tokio_postgres::NoTls`]
    /// then, whose stream is the bare socket, so that every read and write
    /// of the connection's life skips the TLS stream's dispatch.
    #[must_use]
    pub fn tls(&self) -> Option<MakeTls> {
        let plaintext = self.driver_ssl_mode() == tokio_postgres::config::SslMode::Disable;
        #[cfg(feature = "tls")]
        {
            // A plaintext attempt starts no handshake: no flag, so that a
            // refusal is not judged by an earlier attempt's.
            let (tls, started) = if plaintext {
                (None, None)
            } else {
                let (tls, started) = self.core.tls().watched();
                (Some(tls), Some(started))
            };
            *self
                .tls_started
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = started;
            tls
        }
        #[cfg(not(feature = "tls"))]
        (!plaintext).then(|| self.core.tls())
    }

    /// The driver's `sslmode` for the next attempt: the configuration's
    /// first choice, or the other one once the server refused it.
    fn driver_ssl_mode(&self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as Driver;
        if self.tls_switched {
            match self.core.config().ssl_mode() {
                SslMode::Allow => Driver::Require,
                _ => Driver::Disable,
            }
        } else {
            self.core.base_driver_config(self.host()).get_ssl_mode()
        }
    }

    /// Names what the driver reports without a typed kind: a connect
    /// failure with no server report, no I/O failure and no closed socket
    /// is the driver refusing to go on. Before any TLS handshake, with a
    /// mode that insists on TLS, that is a server without TLS
    /// ([`Tls`](ErrorKind::Tls)); otherwise an authentication the client
    /// cannot complete, such as a password the server asks for and
    /// nobody gave, or channel binding required and not offered
    /// ([`Auth`](ErrorKind::Auth)). Both are permanent.
    fn refine(&self, error: Error) -> Error {
        if error.kind() != ErrorKind::Connect {
            return error;
        }
        let Some(driver) = std::error::Error::source(&error)
            .and_then(|source| source.downcast_ref::<tokio_postgres::Error>())
        else {
            return error;
        };
        if driver.is_closed() || driver.as_db_error().is_some() || io_in_chain(driver) {
            return error;
        }
        let started = self
            .tls_started
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::Acquire));
        let config = self.core.config();
        let target = self.target();
        if config.ssl_mode().requires_tls() && !started && !self.tls_switched {
            Error::with_message(
                ErrorKind::Tls,
                format!(
                    "could not connect to {target}: the server does not accept TLS \
                     connections, and sslmode={} requires TLS",
                    config.ssl_mode()
                ),
            )
            .with_source(error)
        } else {
            Error::with_message(
                ErrorKind::Auth,
                format!(
                    "could not authenticate to {target}: the client could not complete the startup"
                ),
            )
            .with_source(error)
        }
    }

    /// What to ask the engine's credential provider for the next attempt;
    /// `None` when the engine has none (the configuration's password, or
    /// the password file, is used).
    #[must_use]
    pub fn credential_request(&self) -> Option<CredentialRequest> {
        (self.core.credentials() == CredentialSource::Provider)
            .then(|| CredentialRequest::new(self.core.config(), self.credentials_refreshed))
    }

    /// The driver settings of the next attempt: the TLS choice (`allow`
    /// and `prefer` switch once when the server refused the first) and the
    /// password: `provided` by the credential provider (an engine with a
    /// provider takes its password from nowhere else, so without one the
    /// driver asks the server for none), else the configuration's, else
    /// the password file's.
    #[must_use]
    pub fn driver_config(&self, provided: Option<SecretString>) -> tokio_postgres::Config {
        let core = self.core;
        let config = core.config();
        let endpoint = self.endpoint();
        let mut pg = core.base_driver_config(self.host()).clone();
        pg.ssl_mode(self.driver_ssl_mode());
        let password = provided.or_else(|| {
            if config.password().is_some() || core.credentials() == CredentialSource::Provider {
                return None;
            }
            let file = passfile::location(config.passfile())?;
            passfile::lookup(
                &file,
                endpoint.host(),
                endpoint.port(),
                config.database(),
                config.role(),
            )
        });
        if let Some(password) = password {
            pg.password(password.expose_secret().as_bytes());
        }
        pg
    }

    /// Whether the server's refusal `error` makes `allow` try TLS, or
    /// `prefer` plaintext, as libpq does. Only a `pg_hba.conf` refusal
    /// (28000) counts: a wrong password would be refused again, and a
    /// failed TLS handshake never falls back to plaintext.
    fn switches_tls(&self, error: &Error) -> bool {
        let mode = self.core.config().ssl_mode();
        !self.tls_switched
            && (mode == SslMode::Allow || (mode == SslMode::Prefer && cfg!(feature = "tls")))
            && error.sqlstate() == Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION)
    }

    /// Whether the server refused a password the provider gave, so that the
    /// provider is asked once more before the error is returned.
    fn refreshes_credentials(&self, error: &Error) -> bool {
        self.core.credentials() == CredentialSource::Provider
            && !self.credentials_refreshed
            && error.sqlstate() == Some(&SqlState::INVALID_PASSWORD)
    }

    /// Starts an attempt (logged, and counted for
    /// [`EngineCore::connect_trouble`]).
    #[must_use]
    pub fn start_attempt(&self) -> Attempt<'a> {
        self.core
            .events()
            .connect_attempt(self.backoff.attempt(), self.endpoint());
        self.core.connect_started();
        Attempt {
            core: self.core,
            host: self.host(),
            started: Instant::now(),
            ended: false,
            span: self
                .core
                .telemetry()
                .connect_span(self.host(), self.backoff.attempt()),
        }
    }

    /// How long the next attempt may take as a whole (TCP connect, TLS,
    /// startup and authentication, and the open steps).
    #[must_use]
    pub fn attempt_timeout(&self) -> Duration {
        self.deadline
            .saturating_duration_since(Instant::now())
            .max(MIN_ATTEMPT)
            .min(self.core.config().connect_timeout())
    }

    /// The error of an attempt that had no answer within `limit`.
    #[must_use]
    pub fn attempt_timed_out(&self, limit: Duration) -> Error {
        Error::with_message(
            ErrorKind::Connect,
            format!(
                "could not connect to {}: no answer within {}ms",
                self.target(),
                limit.as_millis()
            ),
        )
        .with_source(std::io::Error::from(std::io::ErrorKind::TimedOut))
    }

    /// The attempt connected.
    pub fn succeeded(&mut self, mut attempt: Attempt<'_>) {
        attempt.ended = true;
        self.core.connect_ended(attempt.host, None);
        let took = attempt.started.elapsed();
        self.core.metrics().record_create_time(took);
        attempt.span.record("outcome", "connected");
        self.core.events().connected(
            self.backoff.attempt(),
            self.endpoint(),
            attempt.started.elapsed(),
        );
    }

    /// The attempt failed with `error`: retry after a delay, or give up.
    pub fn failed(&mut self, mut attempt: Attempt<'_>, error: Error) -> ConnectStep {
        let error = self.refine(error);
        attempt.ended = true;
        self.core.connect_ended(attempt.host, Some(&error));
        if !attempt.span.is_disabled() {
            attempt.span.record("outcome", "failed");
            super::events::record_error(&attempt.span, &error);
        }
        let number = self.backoff.attempt();
        let events = self.core.events();
        // The first failure of this checkout warns; the next ones are DEBUG.
        let first = !self.warned;
        self.warned = true;
        if self.switches_tls(&error) {
            self.tls_switched = true;
            events.connect_retry(first, number, Duration::ZERO, &error);
            return ConnectStep::Retry(Duration::ZERO);
        }
        if self.refreshes_credentials(&error) {
            self.credentials_refreshed = true;
            events.connect_retry(first, number, Duration::ZERO, &error);
            return ConnectStep::Retry(Duration::ZERO);
        }
        self.tls_switched = false;
        self.pass_errors.retain(|(host, _)| *host != attempt.host);
        self.pass_errors.push((attempt.host, error.clone()));
        if error.is_transient() && self.position + 1 < self.order.len() {
            // The next server, at once.
            self.position += 1;
            events.connect_retry(first, number, Duration::ZERO, &error);
            return ConnectStep::Retry(Duration::ZERO);
        }
        self.position = 0;
        if error.is_transient() && self.standby_pass {
            // prefer-standby: no standby answered; now any server will do.
            self.standby_pass = false;
            events.connect_retry(first, number, Duration::ZERO, &error);
            return ConnectStep::Retry(Duration::ZERO);
        }
        self.standby_pass =
            self.core.config().target_session_attrs() == TargetSessionAttrs::PreferStandby;
        let error = if error.is_transient() {
            self.core
                .every_host_failed(std::mem::take(&mut self.pass_errors))
                .unwrap_or(error)
        } else {
            error
        };
        self.pass_errors.clear();
        if let Some(delay) = self.backoff.next_delay(&error) {
            events.connect_retry(first, number, delay, &error);
            return ConnectStep::Retry(delay);
        }
        events.connect_failed(number, &error);
        let policy_limit = self.max_attempts.is_some_and(|max| number >= max)
            || self.retry_deadline.is_some_and(|at| at < self.deadline);
        if !error.is_transient() || policy_limit {
            ConnectStep::GiveUp(error)
        } else {
            // pool_timeout would pass before the next attempt.
            ConnectStep::GiveUp(self.core.checkout_timed_out(self.started, Some(error)))
        }
    }
}

/// Whether the server an attempt reached is the kind
/// `target_session_attrs` asks for; owned, so that a backend can run it on
/// the thread that connects.
#[derive(Debug, Clone)]
pub struct RoleCheck {
    attrs: TargetSessionAttrs,
    standby_pass: bool,
    endpoint: Endpoint,
}

impl RoleCheck {
    /// The query to run, with the simple protocol.
    pub const QUERY: &'static str = ROLE_QUERY;

    /// Judges the server from the first row of [`QUERY`](Self::QUERY).
    ///
    /// # Errors
    ///
    /// A transient [`ErrorKind::Connect`] error naming the server and its
    /// role when it is not the kind `target_session_attrs` asks for (the
    /// plan then tries the next server), or when the row is not a role.
    pub fn judge(&self, row: &[Option<&str>]) -> Result<(), Error> {
        let (attrs, endpoint) = (self.attrs, &self.endpoint);
        match ServerRole::from_row(row) {
            Some(role) if attrs.accepts(role, self.standby_pass) => Ok(()),
            Some(role) => Err(Error::with_message(
                ErrorKind::Connect,
                format!(
                    "{endpoint} is a {}, and target_session_attrs={attrs}{} does not take it",
                    role.describe(),
                    if self.standby_pass {
                        " (looking for a standby first)"
                    } else {
                        ""
                    }
                ),
            )),
            None => Err(Error::with_message(
                ErrorKind::Connect,
                format!("{endpoint} answered the role query with {row:?}"),
            )),
        }
    }
}

/// The order in which one checkout tries the servers: as configured, or
/// shuffled for each new connection with `load_balance_hosts=random`.
fn host_order(core: &EngineCore) -> Vec<usize> {
    let mut order: Vec<usize> = (0..core.endpoints().len()).collect();
    if core.config().load_balance_hosts() == LoadBalanceHosts::Random {
        fastrand::shuffle(&mut order);
    }
    order
}

/// Whether an I/O error is among `error`'s causes.
fn io_in_chain(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = error.source();
    while let Some(current) = cause {
        if current.is::<std::io::Error>() {
            return true;
        }
        cause = current.source();
    }
    false
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use std::io;

    use super::*;
    use crate::config::Driver;
    use crate::error::ErrorKind;

    fn core(url: &str) -> EngineCore {
        EngineCore::new(
            &url.parse().unwrap(),
            Driver::Any,
            CredentialSource::Configuration,
        )
        .unwrap()
    }

    fn refused() -> Error {
        Error::new(ErrorKind::Connect)
            .with_source(io::Error::from(io::ErrorKind::ConnectionRefused))
    }

    #[test]
    fn a_plaintext_attempt_has_no_tls_connector() {
        // sslmode=disable: plaintext on every attempt.
        let disable = core("postgresql://app@db/x?sslmode=disable");
        assert!(disable.connect_plan(Instant::now()).tls().is_none());
    }

    #[cfg(feature = "tls")]
    #[test]
    fn a_tls_attempt_has_a_tls_connector() {
        let require = core("postgresql://app@db/x?sslmode=require");
        assert!(require.connect_plan(Instant::now()).tls().is_some());
        // sslmode=allow: plaintext first; TLS once the server refused it.
        let allow = core("postgresql://app@db/x?sslmode=allow");
        let mut plan = allow.connect_plan(Instant::now());
        assert!(plan.tls().is_none());
        let attempt = plan.start_attempt();
        let refusal = Error::with_message(ErrorKind::Auth, "no pg_hba.conf entry")
            .with_sqlstate(SqlState::INVALID_AUTHORIZATION_SPECIFICATION);
        assert!(matches!(
            plan.failed(attempt, refusal),
            ConnectStep::Retry(_)
        ));
        assert!(plan.tls().is_some());
        assert_eq!(
            plan.driver_config(None).get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
    }

    #[test]
    fn permanent_errors_give_up_at_once() {
        let core = core("postgresql://app@db/x");
        let mut plan = core.connect_plan(Instant::now());
        let attempt = plan.start_attempt();
        let auth = Error::new(ErrorKind::Auth);
        let ConnectStep::GiveUp(error) = plan.failed(attempt, auth) else {
            panic!("retried a permanent error");
        };
        assert_eq!(error.kind(), ErrorKind::Auth);
    }

    #[test]
    fn running_out_of_pool_timeout_gives_a_pool_timeout_with_the_cause() {
        let core = core("postgresql://app@db/x?pool_timeout=1ms&retry_initial_delay=50ms");
        let started = Instant::now() - Duration::from_millis(5);
        let mut plan = core.connect_plan(started);
        let attempt = plan.start_attempt();
        let ConnectStep::GiveUp(error) = plan.failed(attempt, refused()) else {
            panic!("retried past the deadline");
        };
        assert_eq!(error.kind(), ErrorKind::PoolTimeout);
        let cause = std::error::Error::source(&error)
            .unwrap()
            .downcast_ref::<Error>()
            .unwrap();
        assert_eq!(cause.kind(), ErrorKind::Connect);
        assert_eq!(core.metrics().snapshot().acquire_timeouts, 1);
    }

    /// The server each attempt goes to, until the plan backs off or gives
    /// up, when every attempt fails with what `fail` says for its server.
    fn walk(
        plan: &mut ConnectPlan<'_>,
        fail: impl Fn(&Endpoint) -> Error,
    ) -> (Vec<String>, ConnectStep) {
        let mut visited = Vec::new();
        loop {
            let attempt = plan.start_attempt();
            let endpoint = plan.endpoint().clone();
            visited.push(endpoint.to_string());
            match plan.failed(attempt, fail(&endpoint)) {
                ConnectStep::Retry(delay) if delay.is_zero() => {}
                step => return (visited, step),
            }
        }
    }

    #[test]
    fn each_host_is_tried_in_order_then_the_pass_backs_off() {
        let core = core("postgresql://app@a:1,b:2,c:3/x?pool_timeout=30s&retry_initial_delay=10ms");
        let mut plan = core.connect_plan(Instant::now());
        let (visited, step) = walk(&mut plan, |_| refused());
        assert_eq!(visited, ["a:1", "b:2", "c:3"]);
        assert!(matches!(step, ConnectStep::Retry(_)), "{step:?}");
        // The next pass starts over at the first host.
        assert_eq!(plan.endpoint().to_string(), "a:1");
        // A checkout that times out now names every host's error.
        let trouble = core
            .connect_trouble(Instant::now() - Duration::from_secs(1))
            .unwrap();
        let text = trouble.to_string();
        for host in ["a:1", "b:2", "c:3"] {
            assert!(text.contains(host), "{text}");
        }
        assert!(trouble.is_transient());
    }

    #[test]
    fn a_permanent_error_on_one_host_stops_the_walk_as_libpq_does() {
        let core = core("postgresql://app@a:1,b:2/x?pool_timeout=30s");
        let mut plan = core.connect_plan(Instant::now());
        let (visited, step) = walk(&mut plan, |_| Error::new(ErrorKind::Auth));
        assert_eq!(visited, ["a:1"]);
        assert!(matches!(step, ConnectStep::GiveUp(e) if e.kind() == ErrorKind::Auth));
    }

    #[test]
    fn random_balancing_visits_every_host_once_per_pass() {
        let core =
            core("postgresql://app@a:1,b:2,c:3,d:4/x?load_balance_hosts=random&pool_timeout=30s");
        let mut firsts = std::collections::HashSet::new();
        for _ in 0..64 {
            let mut plan = core.connect_plan(Instant::now());
            let (mut visited, _) = walk(&mut plan, |_| refused());
            firsts.insert(visited[0].clone());
            visited.sort();
            assert_eq!(visited, ["a:1", "b:2", "c:3", "d:4"]);
        }
        assert!(firsts.len() > 1, "never shuffled: {firsts:?}");
    }

    #[test]
    fn role_checks_follow_target_session_attrs() {
        let primary = [Some("f"), Some("off")];
        let standby = [Some("t"), Some("on")];
        let any = core("postgresql://app@a,b/x");
        assert!(any.connect_plan(Instant::now()).role_check().is_none());

        let writes = core("postgresql://app@a,b/x?target_session_attrs=read-write");
        let plan = writes.connect_plan(Instant::now());
        let check = plan.role_check().unwrap();
        assert!(check.judge(&primary).is_ok());
        let refused = check.judge(&standby).unwrap_err();
        assert!(refused.is_transient());
        assert!(
            refused.to_string().contains("a:5432 is a standby"),
            "{refused}"
        );
        assert!(check.judge(&[Some("x")]).is_err());

        // prefer-standby: a pass for standbys only, then any server.
        let prefer =
            core("postgresql://app@a,b/x?target_session_attrs=prefer-standby&pool_timeout=30s");
        let mut plan = prefer.connect_plan(Instant::now());
        let mut visited = Vec::new();
        loop {
            let attempt = plan.start_attempt();
            visited.push(plan.endpoint().host().to_owned());
            match plan.role_check().unwrap().judge(&primary) {
                Ok(()) => break,
                Err(error) => {
                    assert!(
                        matches!(plan.failed(attempt, error), ConnectStep::Retry(d) if d.is_zero())
                    );
                }
            }
        }
        assert_eq!(
            visited,
            ["a", "b", "a"],
            "standbys first, then the first server"
        );
    }

    #[test]
    fn transient_errors_are_retried_within_the_deadline() {
        let core = core("postgresql://app@db/x?pool_timeout=30s");
        let mut plan = core.connect_plan(Instant::now());
        let attempt = plan.start_attempt();
        assert!(matches!(
            plan.failed(attempt, refused()),
            ConnectStep::Retry(_)
        ));
        assert!(plan.attempt_timeout() <= core.config().connect_timeout());
    }
}
