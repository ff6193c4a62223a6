//! Options for a [`TestCluster`].

use crate::{TestCluster, TestkitError};

/// Options for a throwaway cluster; [`start`](Self::start) creates and starts it.
///
/// ```no_run
/// use uno_db_testkit::TestCluster;
///
/// # fn main() -> Result<(), uno_db_testkit::TestkitError> {
/// let cluster = TestCluster::builder()
///     .max_connections(20)
///     .conf_line("log_min_duration_statement = 0")
///     .password_auth(true)
///     .start()?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `start` is called"]
pub struct TestClusterBuilder {
    pub(crate) max_connections: u32,
    pub(crate) conf_lines: Vec<String>,
    pub(crate) password_auth: bool,
}

impl Default for TestClusterBuilder {
    fn default() -> Self {
        Self {
            max_connections: 100,
            conf_lines: Vec::new(),
            password_auth: false,
        }
    }
}

impl TestClusterBuilder {
    /// The server's `max_connections` (default 100, Postgres's default). Three slots are
    /// reserved for superusers (`superuser_reserved_connections`), so it must be at least 4.
    pub fn max_connections(mut self, max_connections: u32) -> Self {
        self.max_connections = max_connections;
        self
    }

    /// Appends a line to `postgresql.conf`, e.g. `"statement_timeout = '5s'"`. Lines are
    /// appended after the test kit's own settings, so they override them.
    pub fn conf_line(mut self, line: impl Into<String>) -> Self {
        self.conf_lines.push(line.into());
        self
    }

    /// Whether TCP connections of users other than the `postgres` superuser must
    /// authenticate with a password (`scram-sha-256`). Default `false`: everyone is trusted.
    ///
    /// The superuser stays trusted so the test kit (and [`TestCluster::admin_url`]) can
    /// always administer the cluster; create password-protected users with
    /// [`TestCluster::create_role`].
    pub fn password_auth(mut self, password_auth: bool) -> Self {
        self.password_auth = password_auth;
        self
    }

    /// Creates the cluster's directories, copies a pristine data directory into them and
    /// starts the server on a free port of 127.0.0.1.
    ///
    /// # Errors
    ///
    /// If the Postgres binaries are missing, `initdb` fails (first cluster on the machine),
    /// or the server does not start.
    pub fn start(self) -> Result<TestCluster, TestkitError> {
        TestCluster::start_with(&self)
    }
}
