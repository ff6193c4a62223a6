use std::time::Duration;

/// An error from the test kit.
///
/// Each variant's message describes what the test kit was doing; the lower-level
/// cause (an I/O error, a driver error, ...) is reachable through
/// [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestkitError {
    /// No Postgres server could be found or started for [`TestDb::new`](crate::TestDb::new).
    #[error(
        "no PostgreSQL server is available for tests: UNO_DB_TEST_URL is not set, no superuser \
         `postgres` could connect to 127.0.0.1:5432, and no throwaway cluster could be started; \
         install the PostgreSQL server binaries (Debian/Ubuntu: `apt-get install postgresql`, \
         Fedora: `dnf install postgresql-server`, macOS: `brew install postgresql`) so that \
         `initdb`, `pg_ctl` and `postgres` are on PATH or under /usr/lib/postgresql/<version>/bin, \
         or set UNO_DB_TEST_URL to a superuser URL such as \
         postgres://postgres:secret@localhost:5432/postgres"
    )]
    NoServer {
        /// Why the throwaway cluster could not be started.
        #[source]
        source: Box<TestkitError>,
    },

    /// `UNO_DB_TEST_URL` is set but the server it names cannot be used.
    #[error("the server named by UNO_DB_TEST_URL cannot be used for tests")]
    EnvServer {
        /// Why the server cannot be used.
        #[source]
        source: Box<TestkitError>,
    },

    /// `UNO_DB_TEST_URL` (or a URL given to the test kit) is not valid UTF-8.
    #[error("{variable} is set but is not valid UTF-8")]
    NotUnicode {
        /// The environment variable.
        variable: &'static str,
    },

    /// A URL given to the test kit is not a valid Postgres connection URL.
    #[error(
        "not a valid PostgreSQL connection URL (expected postgres://user:password@host:port/database)"
    )]
    InvalidUrl {
        /// The parse error.
        #[source]
        source: tokio_postgres::Error,
    },

    /// The Postgres server binaries were not found.
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found on PATH, in \
         UNO_DB_TEST_PG_BIN or under /usr/lib/postgresql/<version>/bin; install the PostgreSQL \
         server (Debian/Ubuntu: `apt-get install postgresql`, Fedora: `dnf install \
         postgresql-server`, macOS: `brew install postgresql`)"
    )]
    BinariesNotFound,

    /// The test process runs as root but there is no `postgres` system user to run the server as.
    #[error(
        "running as root, but PostgreSQL refuses to run as root and there is no `postgres` system \
         user to run it as; create one (`useradd --system postgres`) or run the tests as a \
         non-root user"
    )]
    NoServerUser,

    /// A file-system or process operation failed.
    #[error("{action} failed")]
    Io {
        /// What was being done, e.g. "copying the data directory".
        action: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A Postgres program (`initdb`, `pg_ctl`, ...) failed.
    #[error("`{program}` failed ({status}); its output:\n{output}")]
    Command {
        /// The program and its subcommand, e.g. `pg_ctl start`.
        program: String,
        /// How it ended.
        status: String,
        /// What it printed (stdout and stderr).
        output: String,
    },

    /// A throwaway cluster's server did not start.
    #[error("the PostgreSQL server on port {port} did not start; its log ends with:\n{log_tail}")]
    ServerStart {
        /// The port it was to listen on.
        port: u16,
        /// The end of the server log.
        log_tail: String,
        /// Why `pg_ctl start` failed.
        #[source]
        source: Box<TestkitError>,
    },

    /// Connecting to a server failed.
    #[error("could not connect to PostgreSQL at {target}")]
    Connect {
        /// `host:port as user`.
        target: String,
        /// The driver error.
        #[source]
        source: postgres::Error,
    },

    /// An administrative SQL statement failed.
    #[error("{action} failed")]
    Sql {
        /// What was being done, e.g. "creating database `uno_db_test_1`".
        action: String,
        /// The driver error.
        #[source]
        source: postgres::Error,
    },

    /// The user the test kit connects as may not create databases.
    #[error("user `{user}` may not create databases (it needs SUPERUSER or CREATEDB)")]
    NotPrivileged {
        /// The user.
        user: String,
    },

    /// An operation did not finish in time.
    #[error("{action} did not finish within {after:?}")]
    Timeout {
        /// What was being done.
        action: String,
        /// How long the test kit waited.
        after: Duration,
    },

    /// A background thread of the test kit died.
    #[error("the test kit's background thread for {action} stopped unexpectedly")]
    BackgroundThread {
        /// What the thread was doing.
        action: String,
    },

    /// A role or database name the test kit cannot use.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// Why it is rejected.
        reason: &'static str,
    },

    /// The fault proxy could not apply a command.
    #[error("the fault proxy could not {action}")]
    Proxy {
        /// What it was asked to do.
        action: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A certificate or key for a TLS cluster could not be made.
    #[error("{action} failed")]
    Certificate {
        /// What was being done, e.g. "signing the server certificate".
        action: String,
        /// The certificate library's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A step of a [`TestReplicaSet`](crate::TestReplicaSet) failed (starting a standby,
    /// promoting, following, rewinding, waiting for replication).
    #[error("replica set: {action} failed; the log of member {member} ends with:\n{log_tail}")]
    ReplicaSet {
        /// What was being done, e.g. "promoting member 1".
        action: String,
        /// The index of the member the step was about.
        member: usize,
        /// The end of that member's server log.
        log_tail: String,
        /// The lower-level failure, if there was one (a timeout is described by `action`).
        #[source]
        source: Option<Box<TestkitError>>,
    },

    /// The PgBouncer binary was not found.
    #[error(
        "PgBouncer was not found on PATH or as /usr/sbin/pgbouncer; install it (Debian/Ubuntu: \
         `apt-get install pgbouncer`, Fedora: `dnf install pgbouncer`, macOS: `brew install \
         pgbouncer`)"
    )]
    PgBouncerNotFound,

    /// PgBouncer did not start or did not accept connections in time.
    #[error("PgBouncer on port {port} did not start: {reason}; its log ends with:\n{log_tail}")]
    PgBouncerStart {
        /// The port it was to listen on.
        port: u16,
        /// What went wrong, e.g. "it exited (exit status: 1)".
        reason: String,
        /// The end of PgBouncer's log (and of what it printed).
        log_tail: String,
        /// The lower-level failure, if there was one.
        #[source]
        source: Option<Box<TestkitError>>,
    },

    /// The server address has no TCP socket address (it is a unix socket or does not resolve).
    #[error("{host}:{port} is not a TCP address")]
    NotTcp {
        /// The host.
        host: String,
        /// The port.
        port: u16,
    },
}

impl TestkitError {
    pub(crate) fn io(action: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            action: action.into(),
            source,
        }
    }

    pub(crate) fn sql(action: impl Into<String>, source: postgres::Error) -> Self {
        Self::Sql {
            action: action.into(),
            source,
        }
    }
}
