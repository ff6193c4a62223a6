//! A real PgBouncer in front of a test server.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::bounded_command::run_bounded;
use crate::free_port::{PORT_ATTEMPTS, free_port};
use crate::janitor::Janitor;
use crate::log_tail::{LOG_TAIL_LINES, read_from, tail};
use crate::pgbouncer_binary::pgbouncer_binary;
use crate::pgbouncer_builder::TestPgBouncerBuilder;
use crate::pgbouncer_config::{CONFIG_FILE, LOG_FILE, OUTPUT_FILE, write_pgbouncer_config};
use crate::postgres_url::postgres_url;
use crate::pristine_data_dir::SUPERUSER;
use crate::scratch_dir::scratch_dir;
use crate::server_config::LISTEN_HOST;
use crate::server_owner::ServerOwner;
use crate::{TestCluster, TestkitError};

/// How long PgBouncer may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How long PgBouncer may take to exit after `SIGTERM` before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a starting or stopping PgBouncer is checked on.
const POLL_INTERVAL: Duration = Duration::from_millis(10);

/// The file the clean-up watchdog reads PgBouncer's pid from (written by the test kit, so it
/// is there from the moment PgBouncer runs).
const JANITOR_PID_FILE: &str = "janitor.pid";

/// A real PgBouncer (`/usr/sbin/pgbouncer` or the one on `PATH`) in front of a server, for
/// testing what drivers meet behind a pooler: transaction pooling, refused startup
/// parameters, the admin console.
///
/// It listens on a free port of 127.0.0.1 (TCP only), sends every database name to the one
/// server (`* = host=... port=...`), trusts every client it knows (`auth_type = trust`; the
/// auth file lists `postgres`, `root` and [`TestPgBouncerBuilder::user`]s) and has `postgres`
/// as admin user, so the admin console is the database `pgbouncer` (simple query protocol
/// only, e.g. `SHOW POOLS`). PgBouncer refuses to run as root; as with [`TestCluster`], a root
/// test process runs it as the `postgres` system user, which owns its directory.
///
/// Dropping it stops PgBouncer (`SIGTERM`, then `SIGKILL` after 5 s) and removes its
/// directory; should the test process die first, a watchdog does both.
///
/// ```no_run
/// use uno_db_testkit::{TestCluster, TestPgBouncer};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let cluster = TestCluster::new()?;
/// let bouncer = TestPgBouncer::start(&cluster)?; // transaction pooling
/// let mut client = postgres::Client::connect(&bouncer.url("postgres"), postgres::NoTls)?;
/// client.simple_query("SELECT 1")?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TestPgBouncer {
    port: u16,
    child: Child,
    /// PgBouncer's directory: configuration, auth file, log, pid files.
    dir: tempfile::TempDir,
    /// Declared after `dir` so that it is dropped after the directory is gone.
    _janitor: Janitor,
}

impl TestPgBouncer {
    /// Starts PgBouncer in front of `cluster` with the default options (transaction
    /// pooling; see [`TestPgBouncerBuilder`]).
    ///
    /// # Errors
    ///
    /// As [`TestPgBouncerBuilder::start`].
    pub fn start(cluster: &TestCluster) -> Result<Self, TestkitError> {
        Self::builder(cluster.host(), cluster.port()).start()
    }

    /// Options for a PgBouncer in front of the server at `host`:`port`.
    pub fn builder(host: &str, port: u16) -> TestPgBouncerBuilder {
        TestPgBouncerBuilder::new(host, port)
    }

    pub(crate) fn start_with(options: &TestPgBouncerBuilder) -> Result<Self, TestkitError> {
        let binary = pgbouncer_binary()?;
        let owner = ServerOwner::detect()?;
        let dir = tempfile::Builder::new()
            .prefix("uno-db-pgbouncer-")
            .tempdir_in(scratch_dir())
            .map_err(|source| TestkitError::io("creating PgBouncer's directory", source))?;
        owner.chown(dir.path())?;
        let janitor = Janitor::watch_with_pid_file(dir.path(), &dir.path().join(JANITOR_PID_FILE))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port()?;
            write_pgbouncer_config(dir.path(), port, options)?;
            match launch(&binary, owner, dir.path(), port) {
                Ok(child) => {
                    return Ok(Self {
                        port,
                        child,
                        dir,
                        _janitor: janitor,
                    });
                }
                Err(failure) if failure.port_taken && attempt < PORT_ATTEMPTS => {
                    tracing::debug!(port, "port taken meanwhile; trying another");
                }
                Err(failure) => return Err(failure.error),
            }
        }
    }

    /// The TCP port PgBouncer listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The host PgBouncer listens on: `127.0.0.1`.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// PgBouncer's TCP address.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::from((LISTEN_HOST, self.port))
    }

    /// A URL for `database` through PgBouncer as the trusted `postgres` user
    /// (`postgres://postgres@127.0.0.1:<port>/<database>`). The database `pgbouncer` is
    /// PgBouncer's admin console.
    pub fn url(&self, database: &str) -> String {
        postgres_url(self.host(), self.port, SUPERUSER, None, database)
    }

    /// PgBouncer's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join(LOG_FILE)
    }
}

impl Drop for TestPgBouncer {
    fn drop(&mut self) {
        // SIGTERM is PgBouncer's immediate shutdown. `Child::kill` would send SIGKILL, so
        // `kill` (the program) sends it; it may signal the `postgres` user's process as root.
        let mut term = Command::new("kill");
        term.args(["-TERM", &self.child.id().to_string()]);
        if let Err(error) = run_bounded(term, "kill -TERM", STOP_TIMEOUT) {
            tracing::debug!(
                error = &error as &dyn std::error::Error,
                "could not SIGTERM PgBouncer"
            );
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        tracing::warn!(port = self.port, "PgBouncer ignored SIGTERM; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A failed start, and whether it failed because another process took the port.
struct LaunchFailure {
    port_taken: bool,
    error: TestkitError,
}

/// Runs PgBouncer (in the foreground, as `owner`) with the configuration in `dir` and waits
/// until it accepts TCP connections on `port`.
fn launch(
    binary: &Path,
    owner: ServerOwner,
    dir: &Path,
    port: u16,
) -> Result<Child, LaunchFailure> {
    let log_offset = std::fs::metadata(dir.join(LOG_FILE)).map_or(0, |m| m.len());
    let output_offset = std::fs::metadata(dir.join(OUTPUT_FILE)).map_or(0, |m| m.len());
    let failure = |reason: String, source: Option<TestkitError>| {
        let log = read_from(&dir.join(LOG_FILE), log_offset);
        let output = read_from(&dir.join(OUTPUT_FILE), output_offset);
        let port_taken = [&log, &output]
            .iter()
            .any(|text| text.contains("Address already in use"));
        let log_tail = tail(&format!("{output}{log}"), LOG_TAIL_LINES);
        LaunchFailure {
            port_taken,
            error: TestkitError::PgBouncerStart {
                port,
                reason,
                log_tail,
                source: source.map(Box::new),
            },
        }
    };
    let io_failure =
        |action: &str, source| failure(action.to_owned(), Some(TestkitError::io(action, source)));

    let output = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(OUTPUT_FILE))
        .map_err(|source| io_failure("opening pgbouncer.out", source))?;
    let stderr = output
        .try_clone()
        .map_err(|source| io_failure("opening pgbouncer.out", source))?;
    let mut command = Command::new(binary);
    command
        .arg(dir.join(CONFIG_FILE))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(stderr);
    owner.apply(&mut command);
    let mut child = command
        .spawn()
        .map_err(|source| io_failure("starting pgbouncer", source))?;
    if let Err(source) = std::fs::write(dir.join(JANITOR_PID_FILE), child.id().to_string()) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(io_failure(
            "writing PgBouncer's pid for the watchdog",
            source,
        ));
    }

    let addr = SocketAddr::from((LISTEN_HOST, port));
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Err(failure(format!("it exited ({status})"), None)),
            Ok(None) => {}
            Err(source) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io_failure("waiting for pgbouncer", source));
            }
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(child);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(failure(
                format!("it did not accept connections within {START_TIMEOUT:?}"),
                None,
            ));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}
