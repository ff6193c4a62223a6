//! `uno-db check`: the resolved configuration, every violation, then a
//! probe of every host.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;
use uno_db::nonblocking::EngineFactory as _;
use uno_db::{AsyncEngineFactory, ConnectionConfig, Endpoint, ErrorKind, ServerRole, SslMode};

use crate::cli::CheckArgs;
use crate::failure::{self, Failure};
use crate::source::{self, Violation};

/// The session settings every host reports, besides the configuration's
/// own `options`.
const SETTINGS: [&str; 5] = [
    "application_name",
    "search_path",
    "role",
    "statement_timeout",
    "default_transaction_read_only",
];

/// How many `SELECT 1` round trips the latency is the median of.
const PINGS: usize = 5;

/// The whole report: `--json` prints it as is.
#[derive(Debug, Serialize)]
struct Report {
    /// Exit code 0: a valid configuration, every host usable, and one that
    /// `target_session_attrs` accepts.
    ok: bool,
    /// `argument` or `environment`.
    source: &'static str,
    /// The resolved configuration as a URL, the password as `***` (when
    /// invalid: what was given, masked).
    configuration: String,
    /// Whether the configuration is valid.
    valid: bool,
    /// Every broken rule.
    violations: Vec<Violation>,
    /// The configuration error, when it is not a list of violations.
    error: Option<String>,
    /// What the pool would do (absent when the configuration is invalid).
    settings: Option<Settings>,
    /// One entry per host, in the configuration's order.
    hosts: Vec<HostReport>,
    /// Whether some usable host is of the kind `target_session_attrs`
    /// asks for.
    target_met: Option<bool>,
}

/// The pool and session settings of the configuration.
#[derive(Debug, Serialize)]
struct Settings {
    target_session_attrs: String,
    sslmode: String,
    ssl_root_cert: Option<String>,
    pool_size: usize,
    max_overflow: usize,
    min_idle: usize,
    pool_timeout: String,
    connect_timeout: String,
    pool_recycle: Option<String>,
    idle_timeout: Option<String>,
    pre_ping: bool,
    discard_on_return: bool,
    statement_timeout: Option<String>,
    query_timeout: Option<String>,
    statement_cache_size: usize,
    /// What every new connection runs or sends at start: startup options,
    /// `SET search_path`, `SET ROLE`.
    on_connect: Vec<String>,
}

impl Settings {
    fn of(config: &ConnectionConfig) -> Self {
        let mut on_connect: Vec<String> = Vec::new();
        if let Some(name) = config.application_name() {
            on_connect.push(format!("application_name={name}"));
        }
        if let Some(timeout) = config.statement_timeout() {
            on_connect.push(format!("statement_timeout={}ms", timeout.as_millis()));
        }
        for (key, value) in config.options() {
            on_connect.push(format!("{key}={value}"));
        }
        on_connect.extend(config.search_path_statement());
        on_connect.extend(config.set_role_statement());
        Self {
            target_session_attrs: config.target_session_attrs().to_string(),
            sslmode: config.ssl_mode().to_string(),
            ssl_root_cert: config.ssl_root_cert().map(ToOwned::to_owned),
            pool_size: config.pool_size(),
            max_overflow: config.max_overflow(),
            min_idle: config.min_idle(),
            pool_timeout: human(config.pool_timeout()),
            connect_timeout: human(config.connect_timeout()),
            pool_recycle: config.pool_recycle().map(human),
            idle_timeout: config.idle_timeout().map(human),
            pre_ping: config.pre_ping(),
            discard_on_return: config.discard_on_return(),
            statement_timeout: config.statement_timeout().map(human),
            query_timeout: config.query_timeout().map(human),
            statement_cache_size: config.statement_cache_size(),
            on_connect,
        }
    }
}

/// What one host said.
#[derive(Debug, Default, Serialize)]
struct HostReport {
    /// Host name, IP address or socket directory.
    host: String,
    port: u16,
    /// The `hostaddr` connected to instead of resolving `host`.
    hostaddr: Option<String>,
    /// Whether something accepted a connection at the address.
    answered: bool,
    /// Milliseconds to open the TCP (or Unix socket) connection.
    answer_ms: Option<f64>,
    /// Why nothing answered.
    answer_error: Option<String>,
    /// Whether the server accepted the credentials (`None`: not known, the
    /// connection failed before or for another reason).
    authenticated: Option<bool>,
    /// `ok`, `failed`, `not attempted` or `unknown`.
    authentication: String,
    /// The connection error, with its cause chain.
    error: Option<String>,
    /// `server_version`.
    server_version: Option<String>,
    /// Whether the session is encrypted (TLS).
    encrypted: Option<bool>,
    /// `TLSv1.3`...
    tls_version: Option<String>,
    /// Whether the server's certificate was verified (from the sslmode and
    /// root certificate the connection used).
    certificate_verified: Option<bool>,
    /// `primary`, `read-only primary` or `standby`.
    role: Option<String>,
    /// Whether `target_session_attrs` accepts this host (a primary counts
    /// for `prefer-standby`).
    accepted_by_target: Option<bool>,
    /// Median milliseconds of a `SELECT 1` round trip.
    latency_ms: Option<f64>,
    /// The session's settings as the pool left them.
    settings: BTreeMap<String, String>,
    /// Answered, authenticated and answered queries.
    usable: bool,
}

/// Runs the check; returns the exit code.
pub(crate) async fn run(args: &CheckArgs) -> Result<u8, Failure> {
    let timeout = Duration::from_secs(args.timeout);
    let source = source::describe_source(args.url.as_deref());
    let report = match source::resolve(args.url.as_deref()) {
        Err(rejected) => Report {
            ok: false,
            source,
            configuration: rejected.given,
            valid: false,
            error: rejected.violations.is_empty().then_some(rejected.message),
            violations: rejected.violations,
            settings: None,
            hosts: Vec::new(),
            target_met: None,
        },
        Ok(config) => {
            let mut probes = Vec::new();
            for endpoint in config.endpoints() {
                let config = config.clone();
                probes.push(tokio::spawn(async move {
                    probe(&config, &endpoint, timeout).await
                }));
            }
            let mut hosts = Vec::new();
            for probe in probes {
                hosts.push(
                    probe
                        .await
                        .map_err(|error| Failure::failed(format!("probing a host: {error}")))?,
                );
            }
            let target_met = hosts
                .iter()
                .any(|host| host.usable && host.accepted_by_target == Some(true));
            Report {
                ok: target_met && hosts.iter().all(|host| host.usable),
                source,
                configuration: config.to_url(),
                valid: true,
                violations: Vec::new(),
                error: None,
                settings: Some(Settings::of(&config)),
                hosts,
                target_met: Some(target_met),
            }
        }
    };
    if args.quiet {
        // The exit code alone.
    } else if args.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|error| Failure::failed(format!("writing JSON: {error}")))?;
        outln!("{text}");
    } else {
        out!("{}", render(&report));
    }
    Ok(if !report.valid {
        failure::USAGE
    } else if report.ok {
        failure::OK
    } else {
        failure::FAILED
    })
}

/// Probes one host within `timeout`: the socket, then a connection through
/// uno-db's engine with this host alone, then the queries.
async fn probe(config: &ConnectionConfig, endpoint: &Endpoint, timeout: Duration) -> HostReport {
    let mut report = HostReport {
        host: endpoint.host().to_owned(),
        port: endpoint.port(),
        hostaddr: endpoint.address().map(|address| address.to_string()),
        authentication: "not attempted".to_owned(),
        ..HostReport::default()
    };
    let started = Instant::now();
    match tokio::time::timeout(timeout, reach(endpoint)).await {
        Ok(Ok(())) => {
            report.answered = true;
            report.answer_ms = Some(millis(started.elapsed()));
        }
        Ok(Err(error)) => {
            report.answer_error = Some(error);
            return report;
        }
        Err(_) => {
            report.answer_error = Some(format!("no answer within {}", human(timeout)));
            return report;
        }
    }
    let remaining = timeout
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(100));
    match tokio::time::timeout(remaining, session(config, endpoint, remaining, &mut report)).await {
        Ok(Ok(())) => report.usable = true,
        Ok(Err(error)) => report.error = Some(error),
        Err(_) => {
            report.error = Some(format!(
                "the server did not complete the checks within {}",
                human(timeout)
            ));
            if report.authentication == "not attempted" {
                report.authentication = "unknown".to_owned();
            }
        }
    }
    report
}

/// Opens a socket to the endpoint: TCP, or the Unix socket of a host that
/// is a directory.
pub(crate) async fn reach(endpoint: &Endpoint) -> Result<(), String> {
    let host = endpoint.host();
    let port = endpoint.port();
    if host.starts_with('/') {
        #[cfg(unix)]
        {
            let path = format!("{host}/.s.PGSQL.{port}");
            return tokio::net::UnixStream::connect(&path)
                .await
                .map(drop)
                .map_err(|error| format!("no answer at {path}: {error}"));
        }
        #[cfg(not(unix))]
        return Err("Unix sockets are not supported on this platform".to_owned());
    }
    let result = match endpoint.address() {
        Some(address) => tokio::net::TcpStream::connect(SocketAddr::new(address, port)).await,
        None => tokio::net::TcpStream::connect((host, port)).await,
    };
    result
        .map(drop)
        .map_err(|error| format!("no answer at {endpoint}: {error}"))
}

/// Connects through an engine for this endpoint alone and fills in what
/// the server says.
async fn session(
    config: &ConnectionConfig,
    endpoint: &Endpoint,
    timeout: Duration,
    report: &mut HostReport,
) -> Result<(), String> {
    let mut builder = config
        .to_builder()
        .hosts([endpoint.host()])
        .ports([endpoint.port()])
        .hostaddrs(endpoint.address())
        .target_session_attrs(uno_db::TargetSessionAttrs::Any)
        // The probe runs on the async backend whichever the URL names.
        .driver(uno_db::Driver::Any)
        .pool_size(1)
        .max_overflow(0)
        .min_idle(0)
        .pool_timeout(timeout);
    if config.connect_timeout() > timeout {
        builder = builder.connect_timeout(timeout);
    }
    let single = builder
        .build()
        .map_err(|error| uno_db::error_chain(&error))?;
    let factory = AsyncEngineFactory::new();
    let engine = factory
        .engine(&single)
        .map_err(|error| uno_db::error_chain(&error))?;
    report.authentication = "unknown".to_owned();
    let outcome = async {
        let mut conn = match engine.connect().await {
            Ok(conn) => conn,
            Err(error) => {
                if let Some(auth) = auth_failure(&error) {
                    report.authenticated = Some(false);
                    report.authentication = "failed".to_owned();
                    return Err(auth);
                }
                return Err(uno_db::error_chain(&error));
            }
        };
        report.authenticated = Some(true);
        report.authentication = format!("ok as {}", single.role());
        let row = conn
            .query_one(
                "SELECT current_setting('server_version') AS server_version, \
                        pg_is_in_recovery() AS in_recovery, \
                        current_setting('transaction_read_only') = 'on' AS read_only, \
                        coalesce(s.ssl, false) AS ssl, s.version AS tls_version \
                 FROM (SELECT 1) AS one \
                 LEFT JOIN pg_stat_ssl AS s ON s.pid = pg_backend_pid()",
                &[],
            )
            .await
            .map_err(|error| uno_db::error_chain(&error))?;
        let decode = |error: uno_db::Error| uno_db::error_chain(&error);
        report.server_version = Some(row.try_get::<_, String>("server_version").map_err(decode)?);
        let role = ServerRole {
            in_recovery: row.try_get("in_recovery").map_err(decode)?,
            read_only: row.try_get("read_only").map_err(decode)?,
        };
        report.role = Some(role.describe().to_owned());
        report.accepted_by_target = Some(config.target_session_attrs().accepts(role, false));
        let encrypted: bool = row.try_get("ssl").map_err(decode)?;
        report.encrypted = Some(encrypted);
        report.tls_version = row
            .try_get::<_, Option<String>>("tls_version")
            .map_err(decode)?;
        report.certificate_verified = Some(encrypted && verifies(config));

        let mut pings = Vec::with_capacity(PINGS);
        for _ in 0..PINGS {
            let sent = Instant::now();
            conn.query("SELECT 1", &[]).await.map_err(decode)?;
            pings.push(sent.elapsed());
        }
        pings.sort();
        report.latency_ms = pings.get(PINGS / 2).copied().map(millis);

        let mut names: Vec<String> = SETTINGS.iter().map(|name| (*name).to_owned()).collect();
        for (key, _) in config.options() {
            if !names.contains(key) {
                names.push(key.clone());
            }
        }
        let rows = conn
            .query(
                "SELECT name, coalesce(current_setting(name, true), '(unknown)') AS value \
                 FROM unnest($1::text[]) AS name",
                &[&names],
            )
            .await
            .map_err(decode)?;
        for row in rows {
            report.settings.insert(
                row.try_get("name").map_err(decode)?,
                row.try_get("value").map_err(decode)?,
            );
        }
        Ok(())
    }
    .await;
    engine.dispose();
    outcome
}

/// The message of a rejected login (SQLSTATE class 28), wherever it sits in
/// the error's chain (a pool timeout carries the last connect error).
fn auth_failure(error: &uno_db::Error) -> Option<String> {
    let mut link: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = link {
        if let Some(ours) = current.downcast_ref::<uno_db::Error>()
            && ours.kind() == ErrorKind::Auth
        {
            return Some(uno_db::error_chain(ours));
        }
        link = current.source();
    }
    None
}

/// Whether the connection checks the server's certificate: `verify-ca`,
/// `verify-full`, or `require` with a root certificate (then as
/// `verify-ca`).
fn verifies(config: &ConnectionConfig) -> bool {
    config.ssl_mode().verifies_server()
        || (config.ssl_mode() == SslMode::Require && config.ssl_root_cert().is_some())
}

/// The report as text.
fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "configuration ({}): {}",
        report.source, report.configuration
    );
    if report.valid {
        let _ = writeln!(out, "violations: none");
    } else if report.violations.is_empty() {
        let _ = writeln!(
            out,
            "invalid configuration: {}",
            report.error.as_deref().unwrap_or("unknown error")
        );
    } else {
        let _ = writeln!(out, "violations: {}", report.violations.len());
        for violation in &report.violations {
            let _ = writeln!(
                out,
                "  - {} = {:?}: {}",
                violation.field, violation.value, violation.rule
            );
        }
    }
    if let Some(settings) = &report.settings {
        let _ = writeln!(
            out,
            "pool: pool_size {}, max_overflow {}, min_idle {}, pool_timeout {}, connect_timeout {}, \
             pool_recycle {}, idle_timeout {}, pre_ping {}, discard_on_return {}, \
             statement_cache_size {}",
            settings.pool_size,
            settings.max_overflow,
            settings.min_idle,
            settings.pool_timeout,
            settings.connect_timeout,
            settings.pool_recycle.as_deref().unwrap_or("off"),
            settings.idle_timeout.as_deref().unwrap_or("off"),
            settings.pre_ping,
            settings.discard_on_return,
            settings.statement_cache_size,
        );
        let _ = writeln!(
            out,
            "session: target_session_attrs {}, sslmode {}, statement_timeout {}, query_timeout {}",
            settings.target_session_attrs,
            settings.sslmode,
            settings.statement_timeout.as_deref().unwrap_or("off"),
            settings.query_timeout.as_deref().unwrap_or("off"),
        );
        if !settings.on_connect.is_empty() {
            let _ = writeln!(out, "on connect: {}", settings.on_connect.join("; "));
        }
    }
    for host in &report.hosts {
        render_host(&mut out, host);
    }
    if let Some(met) = report.target_met {
        let unusable = report.hosts.iter().filter(|host| !host.usable).count();
        let mut verdict = if report.ok {
            "ok: every host is usable".to_owned()
        } else if unusable > 0 {
            format!(
                "FAILED: {unusable} of {} hosts unusable",
                report.hosts.len()
            )
        } else {
            "FAILED".to_owned()
        };
        if !met {
            verdict.push_str(if unusable > 0 { ";" } else { ":" });
            let target = report
                .settings
                .as_ref()
                .map_or("?", |settings| settings.target_session_attrs.as_str());
            let _ = write!(
                verdict,
                " no usable host is what target_session_attrs={target} asks for"
            );
        }
        let _ = writeln!(out, "{verdict}");
    } else {
        let _ = writeln!(out, "FAILED: invalid configuration, no host was probed");
    }
    out
}

fn render_host(out: &mut String, host: &HostReport) {
    let address = host
        .hostaddr
        .as_deref()
        .map(|address| format!(" (hostaddr {address})"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "host {}:{}{address}: {}",
        host.host,
        host.port,
        if host.usable { "usable" } else { "UNUSABLE" }
    );
    match (&host.answer_error, host.answer_ms) {
        (Some(error), _) => {
            let _ = writeln!(out, "  answered: no ({error})");
            return;
        }
        (None, Some(ms)) => {
            let _ = writeln!(out, "  answered: yes, in {ms:.1} ms");
        }
        (None, None) => {}
    }
    let _ = writeln!(out, "  authentication: {}", host.authentication);
    if let Some(error) = &host.error {
        let _ = writeln!(out, "  error: {error}");
    }
    if let Some(version) = &host.server_version {
        let _ = writeln!(out, "  server version: {version}");
    }
    if let Some(encrypted) = host.encrypted {
        let tls = if encrypted {
            format!(
                "yes, {}, certificate {}",
                host.tls_version.as_deref().unwrap_or("TLS"),
                if host.certificate_verified == Some(true) {
                    "verified"
                } else {
                    "not verified"
                }
            )
        } else {
            "no".to_owned()
        };
        let _ = writeln!(out, "  encrypted: {tls}");
    }
    if let Some(role) = &host.role {
        let accepted = if host.accepted_by_target == Some(true) {
            "accepted by target_session_attrs"
        } else {
            "not what target_session_attrs asks for"
        };
        let _ = writeln!(out, "  role: {role} ({accepted})");
    }
    if let Some(latency) = host.latency_ms {
        let _ = writeln!(
            out,
            "  latency: {latency:.2} ms (median of {PINGS} round trips)"
        );
    }
    if !host.settings.is_empty() {
        let settings: Vec<String> = host
            .settings
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let _ = writeln!(out, "  settings: {}", settings.join(", "));
    }
}

/// A duration for people: `30s`, `1m 30s`, `250ms`.
pub(crate) fn human(duration: Duration) -> String {
    let rounded = Duration::from_millis(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX));
    let text = humantime::format_duration(rounded).to_string();
    if text.is_empty() {
        "0s".to_owned()
    } else {
        text
    }
}

/// A duration in milliseconds.
pub(crate) fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
