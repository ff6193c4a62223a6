//! A throwaway Postgres cluster owned by a test.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Instant;

use crate::admin::{Deadlines, run_admin};
use crate::free_port::{PORT_ATTEMPTS, free_port};
use crate::janitor::Janitor;
use crate::pg_binaries::PgBinaries;
use crate::pg_ctl::{PgCtl, Shutdown, StartFailure};
use crate::postgres_url::postgres_url;
use crate::pristine_data_dir::{SUPERUSER, copy_data_dir, pristine_data_dir};
use crate::scratch_dir::scratch_dir;
use crate::server::Server;
use crate::server_config::{LISTEN_HOST, write_server_config};
use crate::server_owner::ServerOwner;
use crate::sql_quote::{quote_ident, quote_literal};
use crate::tls::{CERT_ROLE, SSL_ONLY_PASSWORD, SSL_ONLY_ROLE, write_tls_files};
use crate::{TestClusterBuilder, TestDb, TestRole, TestkitError, TlsFiles, TlsOptions};

/// The process-wide shared cluster.
static SHARED: OnceLock<TestCluster> = OnceLock::new();
/// Serialises the creation of the shared cluster.
static SHARED_INIT: Mutex<()> = Mutex::new(());
/// The process-wide shared TLS cluster.
static SHARED_TLS: OnceLock<TestCluster> = OnceLock::new();
/// Serialises the creation of the shared TLS cluster.
static SHARED_TLS_INIT: Mutex<()> = Mutex::new(());

/// A private, throwaway Postgres cluster (one server) that a test owns.
///
/// The server listens on a free port of 127.0.0.1 and on a unix socket in the cluster's own
/// temporary directory, has durability switched off for speed (`fsync`, `synchronous_commit`
/// and `full_page_writes` are off) and has a trusted superuser `postgres`. Dropping the
/// cluster stops the server and deletes its directory; should the test process die first
/// (even by `SIGKILL`), a watchdog process does both.
///
/// Starting takes a fraction of a second: `initdb` runs once per machine and each cluster
/// copies its result. When the tests run as root, the server programs run as the `postgres`
/// system user, which owns the cluster's directory.
///
/// ```no_run
/// use uno_db_testkit::TestCluster;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let cluster = TestCluster::builder().max_connections(20).start()?;
/// let mut client = postgres::Client::connect(&cluster.url("postgres"), postgres::NoTls)?;
/// client.batch_execute("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")?;
///
/// cluster.restart()?; // existing connections break; new ones work, data is kept
/// let mut client = postgres::Client::connect(&cluster.admin_url(), postgres::NoTls)?;
/// let row = client.query_one("SELECT count(*) FROM t", &[])?;
/// assert_eq!(row.get::<_, i64>(0), 1);
///
/// cluster.kill()?; // a crash: every connection drops at once
/// cluster.start()?; // crash recovery, then up again on the same port
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TestCluster {
    bins: &'static PgBinaries,
    owner: ServerOwner,
    port: u16,
    state: Mutex<ClusterState>,
    /// The client's TLS files (in `dir`) and roles, for a TLS cluster.
    tls: Option<TlsFiles>,
    /// The cluster's directory: `data/`, `server.log`, the unix socket and, for a TLS
    /// cluster, `client-tls/`.
    dir: tempfile::TempDir,
    /// Declared after `dir` so that it is dropped after the directory is gone.
    _janitor: Janitor,
}

#[derive(Debug)]
struct ClusterState {
    running: bool,
}

impl TestCluster {
    /// Options for a new cluster.
    pub fn builder() -> TestClusterBuilder {
        TestClusterBuilder::default()
    }

    /// Starts a new cluster with the default options.
    ///
    /// # Errors
    ///
    /// As [`TestClusterBuilder::start`].
    pub fn new() -> Result<Self, TestkitError> {
        Self::builder().start()
    }

    /// A cluster shared by every test of this process, started on first use.
    ///
    /// For tests that need a server but not one of their own: isolate them with
    /// [`TestDb::on_cluster`], not by stopping or reconfiguring this cluster. It has
    /// `max_connections = 200` and password authentication for users other than `postgres`
    /// (so [`create_role`](Self::create_role) works on it), and it is removed when the
    /// process exits.
    ///
    /// # Errors
    ///
    /// As [`TestClusterBuilder::start`]; a failed start is retried by the next call.
    pub fn shared() -> Result<&'static TestCluster, TestkitError> {
        if let Some(cluster) = SHARED.get() {
            return Ok(cluster);
        }
        let _guard = SHARED_INIT.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cluster) = SHARED.get() {
            return Ok(cluster);
        }
        let cluster = Self::builder()
            .max_connections(200)
            .password_auth(true)
            .start()?;
        Ok(SHARED.get_or_init(|| cluster))
    }

    /// A TLS cluster shared by every test of this process, started on first use: like
    /// [`shared`](Self::shared) (`max_connections = 200`, password authentication, removed
    /// when the process exits) but built with [`TlsOptions::default`], so
    /// [`tls`](Self::tls) is always `Some`. Plaintext connections work on it too, except for
    /// the roles [`TestClusterBuilder::tls`] describes.
    ///
    /// ```no_run
    /// use uno_db_testkit::TestCluster;
    ///
    /// # fn main() -> Result<(), uno_db_testkit::TestkitError> {
    /// let cluster = TestCluster::shared_tls()?;
    /// let tls = cluster.tls().expect("a TLS cluster");
    /// let conninfo = format!(
    ///     "host=127.0.0.1 port={} user=postgres sslmode=verify-full sslrootcert={}",
    ///     cluster.port(),
    ///     tls.ca_cert().display()
    /// );
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`TestClusterBuilder::start`]; a failed start is retried by the next call.
    pub fn shared_tls() -> Result<&'static TestCluster, TestkitError> {
        if let Some(cluster) = SHARED_TLS.get() {
            return Ok(cluster);
        }
        let _guard = SHARED_TLS_INIT
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(cluster) = SHARED_TLS.get() {
            return Ok(cluster);
        }
        let cluster = Self::builder()
            .max_connections(200)
            .password_auth(true)
            .tls(TlsOptions::default())
            .start()?;
        Ok(SHARED_TLS.get_or_init(|| cluster))
    }

    pub(crate) fn start_with(options: &TestClusterBuilder) -> Result<Self, TestkitError> {
        let bins = PgBinaries::locate()?;
        let owner = ServerOwner::detect()?;
        let pristine = pristine_data_dir(bins, owner)?;
        let cluster = Self::launch(bins, owner, |dir| {
            let data_dir = dir.join("data");
            copy_data_dir(&pristine, &data_dir, owner)?;
            let tls = options
                .tls
                .as_ref()
                .map(|tls| write_tls_files(dir, &data_dir, owner, tls))
                .transpose()?;
            write_server_config(&data_dir, dir, options)?;
            Ok(tls)
        })?;
        if cluster.tls.is_some() {
            cluster.create_tls_roles()?;
        }
        Ok(cluster)
    }

    /// Creates a cluster directory (watched by a [`Janitor`]), lets `prepare` fill in its
    /// `data/` directory, and starts the server on a free port.
    ///
    /// `prepare` gets the cluster directory (owned by `owner`) and returns the cluster's TLS
    /// files, if any. It is shared by fresh clusters (a copy of the pristine data directory)
    /// and standbys (a base backup of their primary).
    pub(crate) fn launch(
        bins: &'static PgBinaries,
        owner: ServerOwner,
        prepare: impl FnOnce(&Path) -> Result<Option<TlsFiles>, TestkitError>,
    ) -> Result<Self, TestkitError> {
        let started = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix("uno-db-cluster-")
            .tempdir_in(scratch_dir())
            .map_err(|source| TestkitError::io("creating the cluster directory", source))?;
        owner.chown(dir.path())?;
        let janitor = Janitor::watch(dir.path())?;
        let tls = prepare(dir.path())?;

        let mut cluster = Self {
            bins,
            owner,
            port: 0,
            state: Mutex::new(ClusterState { running: false }),
            tls,
            dir,
            _janitor: janitor,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            cluster.port = free_port()?;
            match cluster.start_server() {
                Ok(()) => break,
                Err(failure) if failure.port_taken && attempt < PORT_ATTEMPTS => {
                    tracing::debug!(port = cluster.port, "port taken meanwhile; trying another");
                }
                Err(failure) => return Err(failure.error),
            }
        }
        cluster.lock_state().running = true;
        tracing::debug!(
            port = cluster.port,
            dir = %cluster.dir.path().display(),
            elapsed = ?started.elapsed(),
            "throwaway cluster started"
        );
        Ok(cluster)
    }

    /// The server programs this cluster runs.
    pub(crate) fn bins(&self) -> &'static PgBinaries {
        self.bins
    }

    /// The user this cluster's programs run as.
    pub(crate) fn owner(&self) -> ServerOwner {
        self.owner
    }

    /// The cluster's directory (`data/`, `server.log`, the unix socket).
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The TCP port the server listens on (on 127.0.0.1). It stays the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The host the server listens on: `127.0.0.1`.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// The server's TCP address, e.g. to put a [`FaultProxy`](crate::FaultProxy) in front of it.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::from((LISTEN_HOST, self.port))
    }

    /// The superuser's name: `postgres`.
    pub fn superuser(&self) -> &'static str {
        SUPERUSER
    }

    /// A URL for `database` as the (trusted, password-less) superuser over TCP.
    pub fn url(&self, database: &str) -> String {
        postgres_url(self.host(), self.port, SUPERUSER, None, database)
    }

    /// A URL for the `postgres` database as the superuser.
    pub fn admin_url(&self) -> String {
        self.url("postgres")
    }

    /// The directory holding the server's unix socket.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The data directory (`PGDATA`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The client side of a TLS cluster (certificate files and roles), or `None` if the
    /// cluster was built without [`TestClusterBuilder::tls`].
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// The Postgres version of the server, e.g. `15.4`.
    pub fn pg_version(&self) -> &str {
        &self.bins.version
    }

    /// Whether the server is running (as far as this handle's own operations know).
    pub fn is_running(&self) -> bool {
        self.lock_state().running
    }

    /// Starts the server again after [`stop`](Self::stop) or [`kill`](Self::kill), on the
    /// same port. Does nothing if it is running. After `kill` the server first runs crash
    /// recovery (a few milliseconds for a test's amount of data).
    ///
    /// # Errors
    ///
    /// If the server does not come up within 30 s (the error carries its log's last lines).
    pub fn start(&self) -> Result<(), TestkitError> {
        let mut state = self.lock_state();
        if !state.running {
            self.start_server().map_err(|failure| failure.error)?;
            state.running = true;
        }
        Ok(())
    }

    /// Stops the server with a fast shutdown (`pg_ctl stop -m fast`): open sessions are
    /// terminated (their clients get an "administrator command" error or a closed
    /// connection), and the server checkpoints and exits. Does nothing if it is stopped.
    ///
    /// # Errors
    ///
    /// If `pg_ctl stop` fails.
    pub fn stop(&self) -> Result<(), TestkitError> {
        let mut state = self.lock_state();
        if state.running {
            self.pg_ctl().stop(Shutdown::Fast)?;
            state.running = false;
        }
        Ok(())
    }

    /// Stops the server with a fast shutdown and starts it again on the same port.
    ///
    /// # Errors
    ///
    /// As [`stop`](Self::stop) and [`start`](Self::start).
    pub fn restart(&self) -> Result<(), TestkitError> {
        let mut state = self.lock_state();
        if state.running {
            self.pg_ctl().stop(Shutdown::Fast)?;
            state.running = false;
        }
        self.start_server().map_err(|failure| failure.error)?;
        state.running = true;
        Ok(())
    }

    /// Crashes the server: an immediate shutdown (`pg_ctl stop -m immediate`), in which every
    /// server process quits at once without a checkpoint, so every client connection drops.
    /// [`start`](Self::start) brings it back after crash recovery. With
    /// `synchronous_commit = off`, transactions committed in the last moments before the
    /// crash may be lost, as on a real crash.
    ///
    /// # Errors
    ///
    /// If `pg_ctl stop` fails.
    pub fn kill(&self) -> Result<(), TestkitError> {
        let mut state = self.lock_state();
        if state.running {
            self.pg_ctl().stop(Shutdown::Immediate)?;
            state.running = false;
        }
        Ok(())
    }

    /// Creates a login role with a (`scram-sha-256` hashed) password.
    ///
    /// On a cluster built with [`password_auth(true)`](TestClusterBuilder::password_auth)
    /// (like [`shared`](Self::shared)) the role must give that password to connect over TCP;
    /// a wrong one fails with SQLSTATE `28P01` (`invalid_password`). The role is dropped when
    /// the returned [`TestRole`] is dropped.
    ///
    /// ```no_run
    /// use uno_db_testkit::TestCluster;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let cluster = TestCluster::builder().password_auth(true).start()?;
    /// let alice = cluster.create_role("alice", "s3cret")?;
    /// postgres::Client::connect(alice.url(), postgres::NoTls)?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// If the name is empty, longer than 63 bytes or contains NUL, if the role exists, or if
    /// the server cannot be reached.
    pub fn create_role(&self, name: &str, password: &str) -> Result<TestRole, TestkitError> {
        TestRole::create(self.server(), name, password)
    }

    /// A fresh database on this cluster, dropped when the returned [`TestDb`] is dropped.
    ///
    /// # Errors
    ///
    /// As [`TestDb::on_cluster`].
    pub fn test_db(&self) -> Result<TestDb, TestkitError> {
        TestDb::on_cluster(self)
    }

    /// The server as the test kit administers it.
    pub(crate) fn server(&self) -> Server {
        Server {
            host: self.host().to_owned(),
            port: self.port,
            user: SUPERUSER.to_owned(),
            password: None,
            admin_db: "postgres".to_owned(),
        }
    }

    /// Creates the roles `pg_hba.conf` has TLS rules for.
    fn create_tls_roles(&self) -> Result<(), TestkitError> {
        let statement = format!(
            "CREATE ROLE {} LOGIN; CREATE ROLE {} LOGIN PASSWORD {}",
            quote_ident(CERT_ROLE),
            quote_ident(SSL_ONLY_ROLE),
            quote_literal(SSL_ONLY_PASSWORD)
        );
        run_admin(
            &self.server(),
            "creating the TLS test roles",
            Deadlines::ADMIN,
            move |client| client.batch_execute(&statement),
        )
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, ClusterState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `pg_ctl` for this cluster.
    fn pg_ctl(&self) -> PgCtl<'_> {
        PgCtl {
            bins: self.bins,
            owner: self.owner,
            cluster_dir: self.dir.path(),
        }
    }

    fn start_server(&self) -> Result<(), StartFailure> {
        self.pg_ctl().start(self.port)
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if self.lock_state().running
            && let Err(error) = self.pg_ctl().stop(Shutdown::Immediate)
        {
            tracing::warn!(
                port = self.port,
                error = &error as &dyn std::error::Error,
                "could not stop a throwaway cluster; its watchdog will"
            );
        }
        // `dir` is removed next, then the watchdog is released.
    }
}
