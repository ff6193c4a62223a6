//! What the TLS and credential cases of both families share: the servers,
//! the configurations, what each `sslmode` must give, and a provider that
//! counts its calls.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use uno_db_core::{
    BoxError, ConnectionConfig, CredentialRequest, Error, RetryPolicy, SecretString, SslMode,
};

use crate::{TestCluster, TestkitError};

/// Whether this session is encrypted, asked of the server.
pub(super) const SESSION_ENCRYPTED: &str =
    "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

/// Every mode, with whether a session on a server with TLS is encrypted
/// (`postgres` may connect either way there), and whether one on a server
/// without TLS is (`None`: the connection must fail).
pub(super) const MODES: [(SslMode, bool, Option<bool>); 6] = [
    (SslMode::Disable, false, Some(false)),
    (SslMode::Allow, false, Some(false)),
    (SslMode::Prefer, true, Some(false)),
    (SslMode::Require, true, None),
    (SslMode::VerifyCa, true, None),
    (SslMode::VerifyFull, true, None),
];

/// The shared TLS cluster (password authentication for created roles).
///
/// # Errors
///
/// It could not be started.
pub(super) fn tls_cluster() -> Result<&'static TestCluster, Error> {
    TestCluster::shared_tls().map_err(testkit_error)
}

/// The shared cluster without TLS.
pub(super) fn plaintext_cluster() -> Result<&'static TestCluster, Error> {
    TestCluster::shared().map_err(testkit_error)
}

/// A test kit failure as an uno-db error, so cases can use `?`.
pub(super) fn testkit_error(error: TestkitError) -> Error {
    Error::with_message(uno_db_core::ErrorKind::Connect, "test kit").with_source(error)
}

/// A configuration for `role` on `cluster` at 127.0.0.1 with `mode`,
/// trusting the TLS cluster's CA; one connection, short waits.
pub(super) fn tls_config(
    cluster: &TestCluster,
    role: &str,
    mode: SslMode,
) -> Result<ConnectionConfig, Error> {
    let ca = tls_cluster()?
        .tls()
        .map(|files| files.ca_cert().display().to_string())
        .unwrap_or_default();
    ConnectionConfig::builder()
        .host("127.0.0.1")
        .port(cluster.port())
        .role(role)
        .database("postgres")
        .ssl_mode(mode)
        .ssl_root_cert(ca)
        .pool_size(1)
        .max_overflow(1)
        .pool_timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(5))
        .retry(
            RetryPolicy::default()
                .max_attempts(2)
                .initial_delay(Duration::from_millis(20))
                .deadline(Duration::from_secs(3)),
        )
        .build()
}

/// The text of `error` and all its causes, lower-cased.
pub(super) fn chain_text(error: &Error) -> String {
    uno_db_core::error_chain(error).to_lowercase()
}

/// A secret store for credential cases: the password it holds now, and
/// how often it was asked, and how often after an authentication failure.
#[derive(Debug)]
pub(super) struct SecretStore {
    password: Mutex<String>,
    /// Given instead when asked without `after_auth_failure` (a stale
    /// cache), if set.
    stale: Mutex<Option<String>>,
    pub(super) calls: AtomicUsize,
    pub(super) refreshes: AtomicUsize,
}

impl SecretStore {
    pub(super) fn new(password: &str) -> Self {
        Self {
            password: Mutex::new(password.to_owned()),
            stale: Mutex::new(None),
            calls: AtomicUsize::new(0),
            refreshes: AtomicUsize::new(0),
        }
    }

    /// Stores a new password.
    pub(super) fn set(&self, password: &str) {
        *self
            .password
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = password.to_owned();
    }

    /// Makes plain requests get `stale` (a cache that missed a rotation).
    pub(super) fn serve_stale(&self, stale: &str) {
        *self
            .stale
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(stale.to_owned());
    }

    /// Answers `request`.
    pub(super) fn answer(&self, request: &CredentialRequest) -> Result<SecretString, BoxError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if request.after_auth_failure() {
            self.refreshes.fetch_add(1, Ordering::SeqCst);
        } else if let Some(stale) = self
            .stale
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
        {
            return Ok(SecretString::from(stale));
        }
        let password = self
            .password
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        Ok(SecretString::from(password))
    }
}

/// A password file holding `line`, with `mode` permissions, removed on
/// drop.
pub(super) struct PassFile {
    path: std::path::PathBuf,
}

impl PassFile {
    pub(super) fn new(line: &str, mode: u32) -> Result<Self, Error> {
        use std::os::unix::fs::PermissionsExt as _;
        let path = std::env::temp_dir().join(format!(
            "uno-db-pgpass-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        let io = |e: std::io::Error| {
            Error::with_message(uno_db_core::ErrorKind::Config, "writing a password file")
                .with_source(e)
        };
        std::fs::write(&path, format!("{line}\n")).map_err(io)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).map_err(io)?;
        Ok(Self { path })
    }

    pub(super) fn path(&self) -> String {
        self.path.display().to_string()
    }
}

impl Drop for PassFile {
    fn drop(&mut self) {
        drop(std::fs::remove_file(&self.path));
    }
}
