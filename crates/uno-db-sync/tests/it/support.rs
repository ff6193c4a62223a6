//! Shared helpers: a database per test, configurations, outer timeouts.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use uno_db_core::blocking::Client;
use uno_db_core::{ConnectionConfig, ConnectionConfigBuilder};
use uno_db_testkit::TestDb;

/// A fresh database and a builder for configurations pointing at it.
pub(crate) struct Fixture {
    pub(crate) db: TestDb,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        Self {
            db: TestDb::new().expect("a test database"),
        }
    }

    /// A builder for this database with short timeouts suitable for tests.
    pub(crate) fn builder(&self) -> ConnectionConfigBuilder {
        let config: ConnectionConfig = self.db.url().parse().expect("the test URL parses");
        config
            .to_builder()
            .pool_size(2)
            .max_overflow(0)
            .pool_timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(5))
    }

    pub(crate) fn config(&self) -> ConnectionConfig {
        self.builder().build().expect("a valid configuration")
    }

    /// A plain driver client on the test database, for setup and checks.
    pub(crate) fn admin(&self) -> postgres::Client {
        postgres::Client::connect(self.db.url(), postgres::NoTls).expect("an admin connection")
    }
}

/// The server process behind `client` (`pg_backend_pid()`): what tells
/// one physical connection from another.
pub(crate) fn backend_pid(client: &mut impl Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .expect("the backend's pid")
        .get(0)
}

/// Polls `condition` every 10 ms until it holds; fails the test, naming
/// `what`, when it still does not after `limit`.
pub(crate) fn eventually(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "{what} (waited {limit:?})");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `body` on its own thread and fails the test if it takes longer than
/// `limit`, so that no test can hang.
pub(crate) fn within<F>(limit: Duration, body: F)
where
    F: FnOnce() + Send + 'static,
{
    let (done, finished) = mpsc::channel();
    let handle = thread::spawn(move || {
        body();
        let _ = done.send(());
    });
    match finished.recv_timeout(limit) {
        Ok(()) => handle.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Ok(()) => {}
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("test did not finish within {limit:?}"),
    }
}

/// The usual outer limit of one test.
pub(crate) const LIMIT: Duration = Duration::from_secs(60);
