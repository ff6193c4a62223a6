//! Shared helpers: per-test databases, configurations and an outer timeout.

use std::future::Future;
use std::time::Duration;

use uno_db_async::AsyncEngine;
use uno_db_core::nonblocking::Connection;
use uno_db_core::{ConnectionConfig, ConnectionConfigBuilder};
use uno_db_testkit::TestDb;

/// No test may hang: every one runs inside this.
pub(crate) async fn within<F: Future>(test: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("the test did not finish within 60s")
}

/// A fresh database, created off the async runtime's threads.
pub(crate) async fn test_db() -> TestDb {
    tokio::task::spawn_blocking(|| TestDb::new().expect("a test database"))
        .await
        .expect("creating the test database")
}

/// A configuration for `db`, ready to adjust.
pub(crate) fn builder(db: &TestDb) -> ConnectionConfigBuilder {
    let config: ConnectionConfig = db.url().parse().expect("the test database URL parses");
    config.to_builder()
}

/// An engine for `db` with the given adjustments.
pub(crate) fn engine(
    db: &TestDb,
    adjust: impl FnOnce(ConnectionConfigBuilder) -> ConnectionConfigBuilder,
) -> AsyncEngine {
    let config = adjust(builder(db)).build().expect("a valid configuration");
    AsyncEngine::new(&config).expect("an engine")
}

/// The server process id of a connection.
pub(crate) async fn backend_pid(conn: &mut dyn Connection) -> i32 {
    conn.query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

/// Waits until `check` holds, for at most five seconds.
pub(crate) async fn eventually(mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached within 5s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The error of a result whose success value cannot be printed.
pub(crate) fn failure<T>(result: uno_db_core::Result<T>) -> uno_db_core::Error {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(error) => error,
    }
}
