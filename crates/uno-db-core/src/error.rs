//! The one error type of uno-db and its classification.
//!
//! Driver errors are classified by what they are, never by their text:
//! the server's SQLSTATE, the driver's `is_closed`, and the types found in
//! the cause chain (`io::Error`, the TLS layer's [`TlsError`]). The
//! driver's messages are free to change between versions; its types and
//! the server's codes are not.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::error::{DbError, SqlState};

use crate::config_violation::ConfigViolation;
use crate::sqlstate::sqlstate_name;

/// A boxed error from any source, as callbacks and drivers return it.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// `Result` with uno-db's [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure an [`Error`] is.
///
/// Match on it with a wildcard arm: new kinds may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration is invalid; nothing was attempted.
    Config,
    /// A physical connection could not be established (refused, reset,
    /// timed out, unknown host, missing database, server refusing new
    /// connections...).
    Connect,
    /// The server rejected the credentials (SQLSTATE class 28).
    Auth,
    /// The TLS handshake failed or TLS was required but not available.
    Tls,
    /// No pooled connection became available within `pool_timeout`.
    PoolTimeout,
    /// The engine was disposed; it hands out no more connections.
    PoolClosed,
    /// The server reported an error for a statement.
    Database,
    /// The connection was lost or closed while in use.
    Closed,
    /// A statement was cancelled because it ran too long
    /// (`statement_timeout`, SQLSTATE 57014), or by a cancel request (a
    /// connection's cancel handle; also 57014).
    QueryTimeout,
    /// `query_one` found no row.
    RowNotFound,
    /// `query_one` found more than one row.
    TooManyRows,
    /// A column value could not be converted to the requested Rust type,
    /// or the column does not exist.
    Decode,
    /// A parameter could not be converted to its SQL type.
    Encode,
    /// A connection callback failed; the new connection was discarded.
    Callback,
    /// The operation is not supported in this context (for example the
    /// blocking backend called from inside an async runtime).
    Unsupported,
    /// Reading or writing data outside the connection failed: the source
    /// or destination of a `COPY` (see [`Error::from_io`]).
    Io,
}

impl ErrorKind {
    /// A short lowercase description of this kind, used by `Display`.
    #[must_use]
    pub fn description(self) -> &'static str {
        match self {
            Self::Config => "invalid connection configuration",
            Self::Connect => "could not connect to the database server",
            Self::Auth => "authentication failed",
            Self::Tls => "tls negotiation failed",
            Self::PoolTimeout => "timed out waiting for a pooled connection",
            Self::PoolClosed => "the engine is disposed",
            Self::Database => "the database server returned an error",
            Self::Closed => "the connection is closed",
            Self::QueryTimeout => "the statement timed out",
            Self::RowNotFound => "query returned no rows",
            Self::TooManyRows => "query returned more than one row",
            Self::Decode => "could not decode a column value",
            Self::Encode => "could not encode a parameter",
            Self::Callback => "a connection callback failed",
            Self::Unsupported => "unsupported operation",
            Self::Io => "reading or writing data failed",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// The error type of every uno-db operation.
///
/// Opaque: ask it what it is with [`kind`](Self::kind),
/// [`sqlstate`](Self::sqlstate), [`is_transient`](Self::is_transient) and
/// [`is_serialization_failure`](Self::is_serialization_failure). `Display`
/// describes only this layer; the underlying cause (driver, I/O, callback
/// error) is reached through [`std::error::Error::source`].
///
/// An error the server reported names its SQLSTATE, condition name and
/// primary message, so that logging `{e}` says what happened:
/// `database error 23505 unique_violation: duplicate key value violates
/// unique constraint "u_pkey"`. The server's DETAIL (which quotes row
/// values) is never printed, nor is the message of a class 22 error (data
/// exception), which quotes the offending input, often a parameter value:
/// `database error 22P02 invalid_text_representation`. Both stay available
/// through [`db_error`](Self::db_error).
///
/// Cloning is cheap and keeps the whole cause chain (the clones share it),
/// so a pool can hand the last connect error to every timed-out caller.
#[derive(Clone)]
pub struct Error(Arc<Inner>);

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct Inner {
    kind: ErrorKind,
    message: Cow<'static, str>,
    violations: Vec<ConfigViolation>,
    sqlstate: Option<SqlState>,
    // Whether `message` already tells the server's report (code, name,
    // message), so that `events::error_chain` does not repeat it.
    shows_server_report: bool,
    #[source]
    source: Option<BoxError>,
}

/// An error of the TLS layer, as the TLS connector reports it.
///
/// The driver wraps a connector's errors in its own error without a kind
/// one could ask for, so the connector marks them instead: a connector used
/// with uno-db returns its handshake and certificate failures as
/// `TlsError` (its `TlsConnect::Error` type, or boxed into it; from its
/// stream, inside an `io::Error`), and
/// [`backend::from_connect`](crate::backend::from_connect) then finds this type in the cause chain and
/// classifies the failure as [`ErrorKind::Tls`], which is not retried. A
/// connector should pass plain socket failures through unwrapped (as
/// `io::Error`), so that they stay transient [`ErrorKind::Connect`] errors.
/// The driver's own `NoTlsError` (TLS required but no connector) is
/// recognised as well.
///
/// ```
/// use std::io;
/// use uno_db_core::TlsError;
///
/// let handshake = io::Error::new(io::ErrorKind::InvalidData, "certificate expired");
/// let error = TlsError::new(handshake);
/// assert_eq!(error.to_string(), "tls handshake failed");
/// assert!(std::error::Error::source(&error).is_some());
/// ```
#[derive(Debug)]
pub struct TlsError {
    source: BoxError,
}

impl TlsError {
    /// Marks `source`, a failure of the TLS library, as a TLS error.
    #[must_use]
    pub fn new(source: impl Into<BoxError>) -> Self {
        Self {
            source: source.into(),
        }
    }
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tls handshake failed")
    }
}

impl StdError for TlsError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.source)
    }
}

impl Error {
    /// Creates an error of `kind` whose message is the kind's description.
    #[must_use]
    pub fn new(kind: ErrorKind) -> Self {
        Self::with_message(kind, kind.description())
    }

    /// Creates an error of `kind` with a message describing this layer's
    /// failure (lowercase, no trailing period, no cause text).
    #[must_use]
    pub fn with_message(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self(Arc::new(Inner {
            kind,
            message: message.into(),
            violations: Vec::new(),
            sqlstate: None,
            shows_server_report: false,
            source: None,
        }))
    }

    /// Attaches the underlying cause, reachable through `source()`.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.inner_mut().source = Some(source.into());
        self
    }

    /// Records the SQLSTATE of this error. Backends take it from the
    /// driver; test doubles use it to fake server errors of a kind they
    /// choose ([`from_sqlstate`](Self::from_sqlstate) classifies the kind
    /// as the driver's error would):
    ///
    /// ```
    /// use uno_db_core::{Error, ErrorKind, SqlState};
    ///
    /// let error = Error::with_message(ErrorKind::Database, "duplicate key")
    ///     .with_sqlstate(SqlState::UNIQUE_VIOLATION);
    /// assert_eq!(error.sqlstate(), Some(&SqlState::UNIQUE_VIOLATION));
    /// assert!(!error.is_transient());
    /// ```
    #[must_use]
    pub fn with_sqlstate(mut self, code: SqlState) -> Self {
        self.inner_mut().sqlstate = Some(code);
        self
    }

    /// The error inside an `io::Error` that a `COPY` reader or writer
    /// returned (as it was), or an [`ErrorKind::Io`] error caused by
    /// `error` when it came from elsewhere (the file being loaded, say).
    #[must_use]
    pub fn from_io(error: std::io::Error) -> Self {
        if let Some(ours) = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<Self>())
        {
            return ours.clone();
        }
        Self::new(ErrorKind::Io).with_source(error)
    }

    /// A [`ErrorKind::Config`] error listing every violation found.
    #[must_use]
    pub fn config(violations: Vec<ConfigViolation>) -> Self {
        let mut message = String::from("invalid connection configuration");
        for (i, violation) in violations.iter().enumerate() {
            message.push_str(if i == 0 { ": " } else { "; " });
            message.push_str(&violation.to_string());
        }
        let mut error = Self::with_message(ErrorKind::Config, message);
        error.inner_mut().violations = violations;
        error
    }

    /// A [`ErrorKind::PoolTimeout`] error after waiting `waited`, carrying the
    /// last connect error as its source so that a database that is down
    /// never shows up as a bare timeout.
    #[must_use]
    pub fn pool_timeout(waited: Duration, last_connect_error: Option<Error>) -> Self {
        let waited = humantime::format_duration(round_to_millis(waited));
        let message = match last_connect_error {
            Some(_) => format!(
                "timed out after {waited} waiting for a pooled connection; the last connection attempt failed"
            ),
            None => format!("timed out after {waited} waiting for a pooled connection"),
        };
        let error = Self::with_message(ErrorKind::PoolTimeout, message);
        match last_connect_error {
            Some(cause) => error.with_source(cause),
            None => error,
        }
    }

    /// A [`ErrorKind::Callback`] error for the callback registered as `name`.
    #[must_use]
    pub fn callback(name: &str, source: impl Into<BoxError>) -> Self {
        Self::with_message(
            ErrorKind::Callback,
            format!("connection callback `{name}` failed; the connection was discarded"),
        )
        .with_source(source)
    }

    /// A [`ErrorKind::Tls`] error connecting to `target`, for a TLS layer
    /// that fails outside the driver (loading certificates, building its
    /// configuration). Failures inside the driver's handshake are
    /// recognised through [`TlsError`] (see
    /// [`backend::from_connect`](crate::backend::from_connect)).
    #[must_use]
    pub fn tls(target: &str, source: impl Into<BoxError>) -> Self {
        Self::with_message(
            ErrorKind::Tls,
            format!("tls negotiation failed connecting to {target}"),
        )
        .with_source(source)
    }

    /// Classifies a driver error raised while establishing a connection to
    /// `target` (for example `"app@db.example:5432/orders"`).
    ///
    /// A server error is [`ErrorKind::Auth`] for class 28 and
    /// [`ErrorKind::Connect`] otherwise, and its message names the server's
    /// report (`could not connect to app@db:5432/x: database error 57P03
    /// cannot_connect_now: the database system is starting up`). Without a
    /// server error, a [`TlsError`], the driver's `NoTlsError` or an uno-db
    /// [`ErrorKind::Tls`] error in the cause chain makes it
    /// [`ErrorKind::Tls`]; anything else is [`ErrorKind::Connect`].
    #[must_use]
    pub(crate) fn from_connect(error: tokio_postgres::Error, target: &str) -> Self {
        if let Some(db) = error.as_db_error() {
            let code = db.code().clone();
            let (kind, doing) = if is_auth_sqlstate(&code) {
                (ErrorKind::Auth, "authentication failed connecting to")
            } else {
                (ErrorKind::Connect, "could not connect to")
            };
            let message = format!("{doing} {target}: {}", server_report(db));
            return Self::from_server(kind, message, code, error);
        }
        let (kind, message) = if chain_has_tls_error(&error) {
            (
                ErrorKind::Tls,
                format!("tls negotiation failed connecting to {target}"),
            )
        } else {
            (ErrorKind::Connect, format!("could not connect to {target}"))
        };
        Self::with_message(kind, message).with_source(error)
    }

    /// Classifies a driver error raised by a statement on an established
    /// connection.
    ///
    /// A server error is [`ErrorKind::QueryTimeout`] for 57014,
    /// [`ErrorKind::Auth`] for class 28 and [`ErrorKind::Database`]
    /// otherwise; its message names the server's report. Without one, a
    /// closed connection or an `io::Error` in the cause chain is
    /// [`ErrorKind::Closed`]; another cause can only be a parameter's
    /// `ToSql` failure ([`ErrorKind::Encode`]: decoding happens in
    /// [`Row::try_get`](crate::Row::try_get), which classifies its own
    /// errors); no cause at all is a protocol-level problem
    /// ([`ErrorKind::Database`] without SQLSTATE, such as a wrong number of
    /// parameters).
    #[must_use]
    pub(crate) fn from_driver(error: tokio_postgres::Error) -> Self {
        if let Some(db) = error.as_db_error() {
            let code = db.code().clone();
            let kind = statement_error_kind(&code, db.parsed_severity());
            let message = server_report(db);
            return Self::from_server(kind, message, code, error);
        }
        let kind = if error.is_closed() || socket_failed(&error) {
            ErrorKind::Closed
        } else if error.source().is_some() {
            ErrorKind::Encode
        } else {
            ErrorKind::Database
        };
        Self::new(kind).with_source(error)
    }

    /// The error a statement gets when the server reports `code` with
    /// `message` (its primary message, as PostgreSQL words it), for test
    /// doubles that fake server errors. It is classified as a driver's
    /// error with that SQLSTATE: [`ErrorKind::Closed`] for the codes that
    /// end a session (class 08, 57P01-57P03), [`ErrorKind::QueryTimeout`]
    /// for 57014, [`ErrorKind::Auth`] for class 28, else
    /// [`ErrorKind::Database`]; so [`sqlstate`](Self::sqlstate),
    /// [`is_transient`](Self::is_transient) and
    /// [`is_serialization_failure`](Self::is_serialization_failure) answer
    /// as they would for the server's error. `Display` reads like a
    /// server's error too (without the message for class 22, which quotes
    /// input). There is no [`db_error`](Self::db_error): no server sent a
    /// report.
    ///
    /// ```
    /// use uno_db_core::{Error, ErrorKind, SqlState};
    ///
    /// let error = Error::from_sqlstate(
    ///     SqlState::UNIQUE_VIOLATION,
    ///     "duplicate key value violates unique constraint \"users_email_key\"",
    /// );
    /// assert_eq!(error.kind(), ErrorKind::Database);
    /// assert_eq!(error.sqlstate(), Some(&SqlState::UNIQUE_VIOLATION));
    /// assert_eq!(
    ///     error.to_string(),
    ///     "database error 23505 unique_violation: duplicate key value violates unique constraint \"users_email_key\""
    /// );
    ///
    /// let lost = Error::from_sqlstate(SqlState::ADMIN_SHUTDOWN, "terminating connection");
    /// assert_eq!(lost.kind(), ErrorKind::Closed);
    /// assert!(lost.is_transient());
    /// assert!(Error::from_sqlstate(SqlState::T_R_SERIALIZATION_FAILURE, "could not serialize")
    ///     .is_serialization_failure());
    /// ```
    #[must_use]
    pub fn from_sqlstate(code: SqlState, message: &str) -> Self {
        let kind = statement_error_kind(&code, None);
        let mut error =
            Self::with_message(kind, report_text(code.code(), message)).with_sqlstate(code);
        error.inner_mut().shows_server_report = true;
        error
    }

    fn from_server(
        kind: ErrorKind,
        message: String,
        code: SqlState,
        error: tokio_postgres::Error,
    ) -> Self {
        let mut error = Self::with_message(kind, message)
            .with_sqlstate(code)
            .with_source(error);
        error.inner_mut().shows_server_report = true;
        error
    }

    // Builders run before an error is shared; should a clone exist, the
    // builder detaches this error from it (keeping everything but the source,
    // which the caller is about to replace or keep).
    fn inner_mut(&mut self) -> &mut Inner {
        if Arc::get_mut(&mut self.0).is_none() {
            let shared = &self.0;
            let detached = Inner {
                kind: shared.kind,
                message: shared.message.clone(),
                violations: shared.violations.clone(),
                sqlstate: shared.sqlstate.clone(),
                shows_server_report: shared.shows_server_report,
                source: Some(Box::new(Self(Arc::clone(shared)))),
            };
            self.0 = Arc::new(detached);
        }
        match Arc::get_mut(&mut self.0) {
            Some(inner) => inner,
            None => unreachable!("a freshly created Arc is unique"),
        }
    }

    /// What kind of failure this is.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// For [`ErrorKind::Config`] errors, every rule the configuration broke.
    #[must_use]
    pub fn config_violations(&self) -> &[ConfigViolation] {
        &self.0.violations
    }

    /// The SQLSTATE the server reported, found anywhere in the cause chain.
    #[must_use]
    pub fn sqlstate(&self) -> Option<&SqlState> {
        if let Some(code) = &self.0.sqlstate {
            return Some(code);
        }
        let mut cause: Option<&(dyn StdError + 'static)> = self.source_ref();
        while let Some(error) = cause {
            if let Some(code) = error
                .downcast_ref::<tokio_postgres::Error>()
                .and_then(tokio_postgres::Error::code)
            {
                return Some(code);
            }
            if let Some(db) = error.downcast_ref::<DbError>() {
                return Some(db.code());
            }
            cause = error.source();
        }
        None
    }

    /// The server's error report (message, detail, hint...), if the cause is
    /// a server error.
    #[must_use]
    pub fn db_error(&self) -> Option<&DbError> {
        let mut cause: Option<&(dyn StdError + 'static)> = self.source_ref();
        while let Some(error) = cause {
            if let Some(db) = error.downcast_ref::<DbError>() {
                return Some(db);
            }
            cause = error.source();
        }
        None
    }

    /// Whether retrying the same operation later, unchanged, may succeed:
    /// the connection was refused, reset or lost, the server is starting up
    /// or shutting down, or it has too many connections. See
    /// `docs/errors.md` for the whole table. Serialization failures and
    /// deadlocks are *not* transient here: only the whole transaction may be
    /// retried (see [`is_serialization_failure`](Self::is_serialization_failure)).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self.kind() {
            ErrorKind::Connect | ErrorKind::Closed | ErrorKind::Database => {
                match self.sqlstate() {
                    Some(code) => is_transient_sqlstate(code),
                    // No SQLSTATE: an I/O-level failure (refused, reset,
                    // timed out). A Database error without a code is a
                    // protocol problem, which retrying does not fix.
                    None => self.kind() != ErrorKind::Database,
                }
            }
            ErrorKind::PoolTimeout => true,
            ErrorKind::Callback => self
                .source_ref()
                .and_then(|cause| cause.downcast_ref::<Error>())
                .is_some_and(Error::is_transient),
            _ => false,
        }
    }

    /// Whether the whole transaction may be retried: serialization failure
    /// (40001) or deadlock (40P01).
    #[must_use]
    pub fn is_serialization_failure(&self) -> bool {
        self.sqlstate().is_some_and(|code| {
            *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED
        })
    }

    /// Whether `Display` already tells the server's report, which
    /// `events::error_chain` then does not repeat.
    pub(crate) fn shows_server_report(&self) -> bool {
        self.0.shows_server_report
    }

    fn source_ref(&self) -> Option<&(dyn StdError + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// Renders an error with its whole cause chain, `: `-separated: what a
/// log line should show (`Display` shows one layer only).
///
/// A server report in the chain is rendered as uno-db's `Display` renders
/// it (SQLSTATE, condition name, message; see [`Error`]), once: never its
/// DETAIL, which quotes row values, unlike the driver's own rendering.
#[must_use]
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    // Once a link has told the server's report, the driver's links that
    // carry it (its "db error" wrapper, the report itself) add nothing.
    let mut report_told = false;
    let mut link = Some(error);
    while let Some(e) = link {
        link = e.source();
        let rendered = if let Some(db) = e.downcast_ref::<DbError>() {
            if report_told {
                continue;
            }
            report_told = true;
            server_report(db)
        } else if report_told
            && e.downcast_ref::<tokio_postgres::Error>()
                .is_some_and(|driver| driver.as_db_error().is_some())
        {
            continue;
        } else {
            if let Some(ours) = e.downcast_ref::<Error>() {
                report_told |= ours.shows_server_report();
            }
            e.to_string()
        };
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&rendered);
    }
    text
}

/// The kind of a statement's error the server reported as `code` with
/// `severity`: the connection is gone when the report ends the session
/// (terminated by an administrator, a shutdown or a crash, or any FATAL),
/// whatever was asked.
fn statement_error_kind(
    code: &SqlState,
    severity: Option<tokio_postgres::error::Severity>,
) -> ErrorKind {
    if ends_the_session(code, severity) {
        ErrorKind::Closed
    } else if *code == SqlState::QUERY_CANCELED {
        ErrorKind::QueryTimeout
    } else if is_auth_sqlstate(code) {
        ErrorKind::Auth
    } else {
        ErrorKind::Database
    }
}

/// Whether a server report ends the session it was sent on: `FATAL` or
/// `PANIC` severity, a connection exception (class 08), or an operator
/// intervention that terminates sessions (57P01 admin shutdown, 57P02 crash
/// shutdown, 57P03 cannot connect now). The one rule, for classifying
/// driver errors and for the kernel's view of any error with a SQLSTATE.
pub(crate) fn ends_the_session(
    code: &SqlState,
    severity: Option<tokio_postgres::error::Severity>,
) -> bool {
    use tokio_postgres::error::Severity;
    let code = code.code();
    matches!(severity, Some(Severity::Fatal | Severity::Panic))
        || code.starts_with("08")
        || code.starts_with("57P")
}

/// Whether the socket failed: an I/O error in the chain other than the
/// driver's own refusal to encode (`InvalidInput`, `InvalidData`: a NUL
/// byte in the SQL, a message too large), which leaves the connection fine.
fn socket_failed(error: &tokio_postgres::Error) -> bool {
    let mut cause = error.source();
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return !matches!(
                io.kind(),
                std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData
            );
        }
        cause = e.source();
    }
    false
}

/// Whether a SQLSTATE means "try again later" (see `docs/errors.md`).
#[must_use]
pub fn is_transient_sqlstate(code: &SqlState) -> bool {
    let code = code.code();
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

fn is_auth_sqlstate(code: &SqlState) -> bool {
    code.code().starts_with("28")
}

/// The server's report as uno-db prints it: SQLSTATE, condition name and
/// primary message, as in `database error 23505 unique_violation: duplicate
/// key value violates unique constraint "u_pkey"`.
///
/// Never the DETAIL, which quotes row values (`Key (email)=(...) already
/// exists`), and no message for class 22 (data exception), whose messages
/// quote the offending input, often a bound parameter (`invalid input syntax
/// for type integer: "..."`). Both remain in [`Error::db_error`].
pub(crate) fn server_report(db: &DbError) -> String {
    report_text(db.code().code(), db.message())
}

/// How [`server_report`] renders a report of `code` with `message`.
fn report_text(code: &str, message: &str) -> String {
    let mut text = format!("database error {code}");
    if let Some(name) = sqlstate_name(code) {
        text.push(' ');
        text.push_str(name);
    }
    if !code.starts_with("22") {
        text.push_str(": ");
        text.push_str(message);
    }
    text
}

/// Whether `error`'s cause chain holds a failure of the TLS layer.
fn chain_has_tls_error(error: &tokio_postgres::Error) -> bool {
    let mut cause = error.source();
    while let Some(e) = cause {
        // A TLS stream can only report through an `io::Error`, whose
        // `source()` skips the error it wraps: look inside.
        let in_io = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .is_some_and(|inner| inner.is::<TlsError>());
        if in_io
            || e.is::<TlsError>()
            || e.is::<tokio_postgres::tls::NoTlsError>()
            || e.downcast_ref::<Error>()
                .is_some_and(|ours| ours.kind() == ErrorKind::Tls)
        {
            return true;
        }
        cause = e.source();
    }
    false
}

fn round_to_millis(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.0.kind)
            .field("message", &self.0.message);
        if let Some(code) = self.sqlstate() {
            d.field("sqlstate", &code.code());
        }
        if let Some(source) = &self.0.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::from_driver(error)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io;

    use super::*;

    fn db(kind: ErrorKind, code: &str) -> Error {
        Error::with_message(kind, "test").with_sqlstate(SqlState::from_code(code))
    }

    fn io_cause(kind: ErrorKind, io_kind: io::ErrorKind) -> Error {
        Error::new(kind).with_source(io::Error::from(io_kind))
    }

    /// The classification table of docs/errors.md, row by row:
    /// (error, transient, whole-transaction retry).
    #[test]
    fn classification_table() {
        let rows: Vec<(&str, Error, bool, bool)> = vec![
            (
                "connection refused",
                io_cause(ErrorKind::Connect, io::ErrorKind::ConnectionRefused),
                true,
                false,
            ),
            (
                "connection reset",
                io_cause(ErrorKind::Connect, io::ErrorKind::ConnectionReset),
                true,
                false,
            ),
            (
                "connect timed out",
                io_cause(ErrorKind::Connect, io::ErrorKind::TimedOut),
                true,
                false,
            ),
            (
                "connection lost in use",
                io_cause(ErrorKind::Closed, io::ErrorKind::UnexpectedEof),
                true,
                false,
            ),
            (
                "08000 connection exception",
                db(ErrorKind::Connect, "08000"),
                true,
                false,
            ),
            (
                "08006 connection failure",
                db(ErrorKind::Database, "08006"),
                true,
                false,
            ),
            (
                "08001 unable to connect",
                db(ErrorKind::Connect, "08001"),
                true,
                false,
            ),
            (
                "57P01 admin shutdown",
                db(ErrorKind::Database, "57P01"),
                true,
                false,
            ),
            (
                "57P02 crash shutdown",
                db(ErrorKind::Connect, "57P02"),
                true,
                false,
            ),
            (
                "57P03 cannot connect now",
                db(ErrorKind::Connect, "57P03"),
                true,
                false,
            ),
            (
                "53300 too many connections",
                db(ErrorKind::Connect, "53300"),
                true,
                false,
            ),
            (
                "40001 serialization failure",
                db(ErrorKind::Database, "40001"),
                false,
                true,
            ),
            (
                "40P01 deadlock",
                db(ErrorKind::Database, "40P01"),
                false,
                true,
            ),
            (
                "28P01 wrong password",
                db(ErrorKind::Auth, "28P01"),
                false,
                false,
            ),
            (
                "28000 no pg_hba entry",
                db(ErrorKind::Auth, "28000"),
                false,
                false,
            ),
            (
                "3D000 missing database",
                db(ErrorKind::Connect, "3D000"),
                false,
                false,
            ),
            (
                "42601 syntax error",
                db(ErrorKind::Database, "42601"),
                false,
                false,
            ),
            (
                "42P01 undefined table",
                db(ErrorKind::Database, "42P01"),
                false,
                false,
            ),
            (
                "42501 insufficient privilege",
                db(ErrorKind::Database, "42501"),
                false,
                false,
            ),
            (
                "23505 unique violation",
                db(ErrorKind::Database, "23505"),
                false,
                false,
            ),
            (
                "53200 out of memory",
                db(ErrorKind::Database, "53200"),
                false,
                false,
            ),
            (
                "57014 statement timeout",
                db(ErrorKind::QueryTimeout, "57014"),
                false,
                false,
            ),
            (
                "database error without sqlstate",
                Error::new(ErrorKind::Database),
                false,
                false,
            ),
            (
                "pool timeout",
                Error::pool_timeout(Duration::from_secs(1), None),
                true,
                false,
            ),
            (
                "pool closed",
                Error::new(ErrorKind::PoolClosed),
                false,
                false,
            ),
            ("config", Error::config(vec![]), false, false),
            ("tls", Error::new(ErrorKind::Tls), false, false),
            (
                "row not found",
                Error::new(ErrorKind::RowNotFound),
                false,
                false,
            ),
            (
                "too many rows",
                Error::new(ErrorKind::TooManyRows),
                false,
                false,
            ),
            ("decode", Error::new(ErrorKind::Decode), false, false),
            ("encode", Error::new(ErrorKind::Encode), false, false),
            (
                "unsupported",
                Error::new(ErrorKind::Unsupported),
                false,
                false,
            ),
            (
                "callback failing on a lost connection",
                Error::callback(
                    "init",
                    io_cause(ErrorKind::Closed, io::ErrorKind::ConnectionReset),
                ),
                true,
                false,
            ),
            (
                "callback failing on bad sql",
                Error::callback("init", db(ErrorKind::Database, "42601")),
                false,
                false,
            ),
            (
                "callback failing with a foreign error",
                Error::callback("init", "boom"),
                false,
                false,
            ),
        ];
        for (name, error, transient, serialization) in rows {
            assert_eq!(error.is_transient(), transient, "is_transient of {name}");
            assert_eq!(
                error.is_serialization_failure(),
                serialization,
                "is_serialization_failure of {name}"
            );
        }
    }

    #[test]
    fn transient_sqlstates() {
        for code in [
            "08000", "08003", "08006", "08001", "08004", "57P01", "57P02", "57P03", "53300",
        ] {
            assert!(is_transient_sqlstate(&SqlState::from_code(code)), "{code}");
        }
        for code in [
            "40001", "40P01", "28P01", "3D000", "42P01", "57014", "53100", "XX000",
        ] {
            assert!(!is_transient_sqlstate(&SqlState::from_code(code)), "{code}");
        }
    }

    #[test]
    fn display_describes_only_this_layer_and_source_has_the_cause() {
        let cause = io::Error::new(io::ErrorKind::ConnectionRefused, "refused by peer");
        let error = Error::with_message(ErrorKind::Connect, "could not connect to app@db:5432/x")
            .with_source(cause);
        assert_eq!(error.to_string(), "could not connect to app@db:5432/x");
        assert!(!error.to_string().contains("refused by peer"));
        let source = std::error::Error::source(&error).unwrap();
        assert_eq!(source.to_string(), "refused by peer");
    }

    #[test]
    fn pool_timeout_carries_the_last_connect_error() {
        let last = io_cause(ErrorKind::Connect, io::ErrorKind::ConnectionRefused);
        let error = Error::pool_timeout(Duration::from_millis(1500), Some(last));
        assert_eq!(error.kind(), ErrorKind::PoolTimeout);
        assert!(error.to_string().contains("1s 500ms"), "{error}");
        assert!(
            error.to_string().contains("last connection attempt failed"),
            "{error}"
        );
        let cause = std::error::Error::source(&error)
            .unwrap()
            .downcast_ref::<Error>()
            .unwrap();
        assert_eq!(cause.kind(), ErrorKind::Connect);
        let bare = Error::pool_timeout(Duration::from_secs(2), None);
        assert!(std::error::Error::source(&bare).is_none());
    }

    #[test]
    fn callback_error_names_the_callback() {
        let error = Error::callback("set_timezone", "boom");
        assert_eq!(error.kind(), ErrorKind::Callback);
        assert!(error.to_string().contains("`set_timezone`"));
        assert_eq!(
            std::error::Error::source(&error).unwrap().to_string(),
            "boom"
        );
    }

    #[test]
    fn config_error_lists_every_violation() {
        let error = Error::config(vec![
            ConfigViolation::new("port", "0", "must be between 1 and 65535"),
            ConfigViolation::new("database", "", "must not be empty"),
        ]);
        assert_eq!(error.config_violations().len(), 2);
        let text = error.to_string();
        assert!(
            text.starts_with("invalid connection configuration: port"),
            "{text}"
        );
        assert!(text.contains("database"), "{text}");
    }

    #[test]
    fn display_is_lowercase() {
        for kind in [
            ErrorKind::Config,
            ErrorKind::Connect,
            ErrorKind::Auth,
            ErrorKind::Tls,
            ErrorKind::PoolTimeout,
            ErrorKind::PoolClosed,
            ErrorKind::Database,
            ErrorKind::Closed,
            ErrorKind::QueryTimeout,
            ErrorKind::RowNotFound,
            ErrorKind::TooManyRows,
            ErrorKind::Decode,
            ErrorKind::Encode,
            ErrorKind::Callback,
            ErrorKind::Unsupported,
        ] {
            let text = Error::new(kind).to_string();
            assert_eq!(text, text.to_lowercase(), "{kind:?}");
        }
    }

    #[test]
    fn clones_share_the_cause_chain() {
        let error = Error::with_message(ErrorKind::Connect, "could not connect")
            .with_source(io::Error::from(io::ErrorKind::ConnectionRefused))
            .with_sqlstate(SqlState::CANNOT_CONNECT_NOW);
        let clone = error.clone();
        assert_eq!(clone.to_string(), error.to_string());
        assert_eq!(clone.sqlstate(), Some(&SqlState::CANNOT_CONNECT_NOW));
        let cause = std::error::Error::source(&clone).unwrap();
        assert!(cause.downcast_ref::<io::Error>().is_some());
        // Building on a shared error never changes the other clone.
        let extended = clone.with_sqlstate(SqlState::ADMIN_SHUTDOWN);
        assert_eq!(extended.sqlstate(), Some(&SqlState::ADMIN_SHUTDOWN));
        assert_eq!(error.sqlstate(), Some(&SqlState::CANNOT_CONNECT_NOW));
    }

    #[test]
    fn error_is_send_sync_and_static() {
        fn check<T: Send + Sync + 'static>() {}
        check::<Error>();
    }
}

/// Classification of the driver's real errors, produced by a scripted fake
/// server: the typed checks, not the driver's wording, must decide.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod driver_tests {
    use std::io;

    use tokio_postgres::config::SslMode;
    use tokio_postgres::tls::{MakeTlsConnect, NoTls, NoTlsStream};
    use tokio_postgres::{Client, Connection, Socket};

    use super::*;
    use crate::fake_server::{self, Report, Script};

    const TARGET: &str = "app@fake:5432/test";

    type Conn = Connection<Socket, NoTlsStream>;

    async fn connect(script: Script) -> std::result::Result<(Client, Conn), tokio_postgres::Error> {
        fake_server::start(script).await.connect(NoTls).await
    }

    async fn connect_error(script: Script) -> Error {
        match connect(script).await {
            Ok(_) => panic!("the fake server accepted the connection"),
            Err(e) => Error::from_connect(e, TARGET),
        }
    }

    /// A connected client whose connection task runs in the background.
    async fn client(script: Script) -> Client {
        let (client, connection) = connect(script).await.unwrap();
        tokio::spawn(connection);
        client
    }

    async fn query_error(report: Report) -> Error {
        let client = client(Script::FailQueries(report)).await;
        Error::from_driver(client.batch_execute("SELECT 1").await.unwrap_err())
    }

    /// The outcome of a connection task that ends on the server's side.
    async fn connection_task_error(script: Script) -> tokio_postgres::Error {
        let (_client, connection) = connect(script).await.unwrap();
        connection.await.unwrap_err()
    }

    /// A TLS connector that fails before the handshake with a [`TlsError`]
    /// wrapping an I/O error, as a rustls connector would report a bad
    /// certificate: the TLS marker must win over the I/O error.
    struct FailingTls;

    impl<S> MakeTlsConnect<S> for FailingTls {
        type Stream = NoTlsStream;
        type TlsConnect = NoTls;
        type Error = TlsError;

        fn make_tls_connect(&mut self, _domain: &str) -> std::result::Result<NoTls, TlsError> {
            Err(TlsError::new(io::Error::new(
                io::ErrorKind::InvalidData,
                "invalid peer certificate",
            )))
        }
    }

    /// Classification of real driver errors, row by row: (case, error,
    /// kind, transient, whole-transaction retry, `Display`).
    #[tokio::test]
    async fn driver_errors_classify_by_type() {
        let mut require_tls = fake_server::start(Script::OfferTls).await;
        require_tls.ssl_mode(SslMode::Require);
        let refused_port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let mut refused = tokio_postgres::Config::new();
        refused.host("127.0.0.1").port(refused_port).user("app");
        let mut failing_tls = fake_server::start(Script::HangUpAfterReady).await;
        failing_tls.ssl_mode(SslMode::Require);

        let encode = {
            let client = client(Script::OneTextParameter).await;
            client.query("SELECT $1", &[&7_i32]).await.unwrap_err()
        };
        let wrong_parameter_count = {
            let client = client(Script::OneTextParameter).await;
            client.query("SELECT $1", &[]).await.unwrap_err()
        };
        let statement_on_closed = {
            let client = client(Script::HangUpAfterReady).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            client.batch_execute("SELECT 1").await.unwrap_err()
        };

        let rows: Vec<(&str, Error, ErrorKind, bool, bool, &str)> = vec![
            (
                "connect: server starting up (FATAL 57P03)",
                connect_error(Script::RejectStartup(Report::fatal(
                    "57P03",
                    "the database system is starting up",
                )))
                .await,
                ErrorKind::Connect,
                true,
                false,
                "could not connect to app@fake:5432/test: database error 57P03 cannot_connect_now: the database system is starting up",
            ),
            (
                "connect: too many connections (FATAL 53300)",
                connect_error(Script::RejectStartup(Report::fatal(
                    "53300",
                    "sorry, too many clients already",
                )))
                .await,
                ErrorKind::Connect,
                true,
                false,
                "could not connect to app@fake:5432/test: database error 53300 too_many_connections: sorry, too many clients already",
            ),
            (
                "connect: missing database (FATAL 3D000)",
                connect_error(Script::RejectStartup(Report::fatal(
                    "3D000",
                    "database \"test\" does not exist",
                )))
                .await,
                ErrorKind::Connect,
                false,
                false,
                "could not connect to app@fake:5432/test: database error 3D000 invalid_catalog_name: database \"test\" does not exist",
            ),
            (
                "connect: wrong password (FATAL 28P01)",
                connect_error(Script::RejectStartup(Report::fatal(
                    "28P01",
                    "password authentication failed for user \"app\"",
                )))
                .await,
                ErrorKind::Auth,
                false,
                false,
                "authentication failed connecting to app@fake:5432/test: database error 28P01 invalid_password: password authentication failed for user \"app\"",
            ),
            (
                "connect: refused (io::Error)",
                Error::from_connect(refused.connect(NoTls).await.err().unwrap(), TARGET),
                ErrorKind::Connect,
                true,
                false,
                "could not connect to app@fake:5432/test",
            ),
            (
                "connect: TLS required, no connector (NoTlsError)",
                Error::from_connect(require_tls.connect(NoTls).await.err().unwrap(), TARGET),
                ErrorKind::Tls,
                false,
                false,
                "tls negotiation failed connecting to app@fake:5432/test",
            ),
            (
                "connect: the TLS connector fails (TlsError over io::Error)",
                Error::from_connect(failing_tls.connect(FailingTls).await.err().unwrap(), TARGET),
                ErrorKind::Tls,
                false,
                false,
                "tls negotiation failed connecting to app@fake:5432/test",
            ),
            (
                "statement: unique violation, DETAIL not printed",
                query_error(
                    Report::error(
                        "23505",
                        "duplicate key value violates unique constraint \"u_pkey\"",
                    )
                    .with_detail("Key (id)=(secret-42) already exists."),
                )
                .await,
                ErrorKind::Database,
                false,
                false,
                "database error 23505 unique_violation: duplicate key value violates unique constraint \"u_pkey\"",
            ),
            (
                "statement: class 22 message quotes the input, not printed",
                query_error(Report::error(
                    "22P02",
                    "invalid input syntax for type integer: \"secret-abc\"",
                ))
                .await,
                ErrorKind::Database,
                false,
                false,
                "database error 22P02 invalid_text_representation",
            ),
            (
                "statement: serialization failure",
                query_error(Report::error(
                    "40001",
                    "could not serialize access due to concurrent update",
                ))
                .await,
                ErrorKind::Database,
                false,
                true,
                "database error 40001 serialization_failure: could not serialize access due to concurrent update",
            ),
            (
                "statement: statement timeout",
                query_error(Report::error(
                    "57014",
                    "canceling statement due to statement timeout",
                ))
                .await,
                ErrorKind::QueryTimeout,
                false,
                false,
                "database error 57014 query_canceled: canceling statement due to statement timeout",
            ),
            (
                "statement: a code PostgreSQL 15 does not define",
                query_error(Report::error("ZZ999", "an extension failed")).await,
                ErrorKind::Database,
                false,
                false,
                "database error ZZ999: an extension failed",
            ),
            (
                "statement: FATAL 57P01 in flight",
                query_error(Report::fatal(
                    "57P01",
                    "terminating connection due to administrator command",
                ))
                .await,
                // The session is over: the pool must never reuse it.
                ErrorKind::Closed,
                true,
                false,
                "database error 57P01 admin_shutdown: terminating connection due to administrator command",
            ),
            (
                "statement: the connection was closed (is_closed)",
                Error::from_driver(statement_on_closed),
                ErrorKind::Closed,
                true,
                false,
                "the connection is closed",
            ),
            (
                "statement: a parameter's ToSql failed",
                Error::from_driver(encode),
                ErrorKind::Encode,
                false,
                false,
                "could not encode a parameter",
            ),
            (
                "statement: wrong number of parameters (no cause)",
                Error::from_driver(wrong_parameter_count),
                ErrorKind::Database,
                false,
                false,
                "the database server returned an error",
            ),
            (
                "connection task: terminated by the administrator (FATAL 57P01)",
                Error::from_driver(
                    connection_task_error(Script::TerminateAfterReady(Report::fatal(
                        "57P01",
                        "terminating connection due to administrator command",
                    )))
                    .await,
                ),
                ErrorKind::Closed,
                true,
                false,
                "database error 57P01 admin_shutdown: terminating connection due to administrator command",
            ),
            (
                "connection task: the server hung up (is_closed)",
                Error::from_driver(connection_task_error(Script::HangUpAfterReady).await),
                ErrorKind::Closed,
                true,
                false,
                "the connection is closed",
            ),
            (
                "connection task: reset (io::Error)",
                Error::from_driver(connection_task_error(Script::ResetAfterReady).await),
                ErrorKind::Closed,
                true,
                false,
                "the connection is closed",
            ),
        ];
        for (case, error, kind, transient, serialization, display) in rows {
            assert_eq!(error.kind(), kind, "kind of {case}: {error:?}");
            assert_eq!(error.is_transient(), transient, "is_transient of {case}");
            assert_eq!(
                error.is_serialization_failure(),
                serialization,
                "is_serialization_failure of {case}"
            );
            assert_eq!(error.to_string(), display, "Display of {case}");
            // The driver's error stays reachable as the cause.
            assert!(std::error::Error::source(&error).is_some(), "{case}");
        }
    }

    /// A test double's error made with `from_sqlstate` answers every
    /// question as the driver's error with that report does.
    #[tokio::test]
    async fn from_sqlstate_classifies_as_the_driver_error_it_fakes() {
        let reports = [
            (
                "23505",
                "duplicate key value violates unique constraint \"u_pkey\"",
            ),
            (
                "40001",
                "could not serialize access due to concurrent update",
            ),
            ("40P01", "deadlock detected"),
            ("57014", "canceling statement due to statement timeout"),
            ("22P02", "invalid input syntax for type integer: \"x\""),
            ("28000", "permission denied"),
            ("08006", "connection failure"),
            (
                "57P01",
                "terminating connection due to administrator command",
            ),
            ("53300", "sorry, too many clients already"),
            ("ZZ999", "an extension failed"),
        ];
        for (code, message) in reports {
            let driver = query_error(Report::error(code, message)).await;
            let fake = Error::from_sqlstate(SqlState::from_code(code), message);
            assert_eq!(fake.kind(), driver.kind(), "kind of {code}");
            assert_eq!(fake.sqlstate(), driver.sqlstate(), "{code}");
            assert_eq!(fake.is_transient(), driver.is_transient(), "{code}");
            assert_eq!(
                fake.is_serialization_failure(),
                driver.is_serialization_failure(),
                "{code}"
            );
            assert_eq!(fake.to_string(), driver.to_string(), "{code}");
            assert_eq!(error_chain(&fake), fake.to_string(), "{code}");
        }
    }

    #[tokio::test]
    async fn the_server_report_stays_reachable_with_its_detail() {
        let error = query_error(
            Report::error(
                "23505",
                "duplicate key value violates unique constraint \"u_pkey\"",
            )
            .with_detail("Key (id)=(secret-42) already exists."),
        )
        .await;
        assert_eq!(error.sqlstate(), Some(&SqlState::UNIQUE_VIOLATION));
        let db = error.db_error().unwrap();
        assert_eq!(db.detail(), Some("Key (id)=(secret-42) already exists."));
        let driver = std::error::Error::source(&error)
            .unwrap()
            .downcast_ref::<tokio_postgres::Error>()
            .unwrap();
        assert_eq!(driver.code(), Some(&SqlState::UNIQUE_VIOLATION));
    }
}
