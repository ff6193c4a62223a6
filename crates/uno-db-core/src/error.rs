//! The one error type of uno-db and its classification.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::error::{DbError, SqlState};

use crate::config_violation::ConfigViolation;

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
    /// (`statement_timeout`, SQLSTATE 57014).
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
    #[source]
    source: Option<BoxError>,
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
    /// driver; test doubles use it to fake server errors:
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

    /// Classifies a driver error raised while establishing a connection to
    /// `target` (for example `"app@db.example:5432/orders"`).
    #[must_use]
    pub fn from_connect(error: tokio_postgres::Error, target: &str) -> Self {
        let kind = match error.code() {
            Some(code) if code.code().starts_with("28") => ErrorKind::Auth,
            Some(_) => ErrorKind::Connect,
            None if is_tls_error(&error) => ErrorKind::Tls,
            None => ErrorKind::Connect,
        };
        let message = match kind {
            ErrorKind::Auth => format!("authentication failed connecting to {target}"),
            ErrorKind::Tls => format!("tls negotiation failed connecting to {target}"),
            _ => format!("could not connect to {target}"),
        };
        let code = error.code().cloned();
        let error = Self::with_message(kind, message).with_source(error);
        match code {
            Some(code) => error.with_sqlstate(code),
            None => error,
        }
    }

    /// Classifies a driver error raised by a statement on an established
    /// connection.
    #[must_use]
    pub fn from_driver(error: tokio_postgres::Error) -> Self {
        let kind = match error.code() {
            Some(code) if *code == SqlState::QUERY_CANCELED => ErrorKind::QueryTimeout,
            Some(code) if code.code().starts_with("28") => ErrorKind::Auth,
            Some(_) => ErrorKind::Database,
            None => {
                let text = error.to_string();
                if error.is_closed() || chain_has_io_error(&error) {
                    ErrorKind::Closed
                } else if text.starts_with("error deserializing") {
                    ErrorKind::Decode
                } else if text.starts_with("error serializing") {
                    ErrorKind::Encode
                } else {
                    ErrorKind::Database
                }
            }
        };
        let code = error.code().cloned();
        let error = Self::new(kind).with_source(error);
        match code {
            Some(code) => error.with_sqlstate(code),
            None => error,
        }
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

    fn source_ref(&self) -> Option<&(dyn StdError + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// Whether a SQLSTATE means "try again later" (see `docs/errors.md`).
#[must_use]
pub fn is_transient_sqlstate(code: &SqlState) -> bool {
    let code = code.code();
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

fn is_tls_error(error: &tokio_postgres::Error) -> bool {
    let text = error.to_string();
    text.contains("TLS") || text.contains("tls") || text.contains("SSL") || text.contains("ssl")
}

fn chain_has_io_error(error: &tokio_postgres::Error) -> bool {
    let mut cause = error.source();
    while let Some(e) = cause {
        if e.is::<std::io::Error>() {
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
