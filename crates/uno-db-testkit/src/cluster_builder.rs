//! Options for a [`TestCluster`].

use crate::{TestCluster, TestkitError, TlsOptions};

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
    pub(crate) tls: Option<TlsOptions>,
}

impl Default for TestClusterBuilder {
    fn default() -> Self {
        Self {
            max_connections: 100,
            conf_lines: Vec::new(),
            password_auth: false,
            tls: None,
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

    /// Switches TLS on (default: off).
    ///
    /// At [`start`](Self::start) the test kit makes a CA (ECDSA P-256), a server certificate
    /// signed by it for [`TlsOptions::server_names`], a client certificate for the role
    /// `cert_user`, and an unrelated second CA; [`TestCluster::tls`] tells where the client's
    /// copies are. The server runs with `ssl = on`, its certificate and key (mode 0600, owned
    /// by the server's user) as `ssl_cert_file` and `ssl_key_file`, and the CA as
    /// `ssl_ca_file` (the trust root for client certificates).
    ///
    /// `pg_hba.conf` then has, ahead of the usual rules (first match wins):
    ///
    /// ```text
    /// hostssl   all cert_user     127.0.0.1/32 cert
    /// hostssl   all cert_user     ::1/128      cert
    /// hostnossl all cert_user     all          reject
    /// hostssl   all ssl_only_user 127.0.0.1/32 <method>
    /// hostssl   all ssl_only_user ::1/128      <method>
    /// hostnossl all ssl_only_user all          reject
    /// ```
    ///
    /// - `cert_user` must present a client certificate signed by the cluster's CA whose
    ///   common name is `cert_user`; a plaintext connection is rejected.
    /// - `ssl_only_user` may connect only over TLS; `<method>` is `scram-sha-256` (password
    ///   [`TlsFiles::ssl_only_password`](crate::TlsFiles::ssl_only_password)) with
    ///   [`password_auth(true)`](Self::password_auth), else `trust`.
    /// - Everyone else is matched by the usual `host` rules, which take plaintext and TLS
    ///   connections alike: `postgres` is trusted, other roles use `scram-sha-256` with
    ///   `password_auth(true)` (so `channel_binding=require` works over TLS) or `trust`.
    ///   `local` (unix socket) rules are unchanged: everyone is trusted.
    ///
    /// Both roles are created at start.
    #[must_use = "a builder does nothing until `start` is called"]
    pub fn tls(mut self, options: TlsOptions) -> Self {
        self.tls = Some(options);
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
