//! What `#[uno_db::test]` expands to calls: a fresh database from the
//! test kit, an engine of the test's family on it, and the clean-up
//! afterwards (also when the test panics: the database and the factory
//! are locals, dropped while unwinding).
// A test fails by panicking: that is how these report what went wrong,
// with the whole cause chain.
#![allow(clippy::panic)]

use std::sync::Arc;

use uno_db_testkit::TestDb;

use crate::ConnectionConfig;

/// The test's database and the configuration of an engine on it.
fn database(test: &str) -> (TestDb, ConnectionConfig) {
    let db = TestDb::new()
        .unwrap_or_else(|error| panic!("#[uno_db::test] {test}: no test database: {}", crate::error_chain(&error)));
    let config = db
        .url()
        .parse()
        .unwrap_or_else(|error| panic!("#[uno_db::test] {test}: {}", crate::error_chain(&error)));
    (db, config)
}

/// Runs a blocking test with an engine on a fresh database.
#[cfg(feature = "sync")]
pub fn run_blocking<T>(test: &str, body: impl FnOnce(Arc<dyn crate::blocking::Engine>) -> T) -> T {
    use crate::blocking::EngineFactory;
    let (_db, config) = database(test);
    let factory = crate::SyncEngineFactory::new();
    let engine = factory
        .engine(&config)
        .unwrap_or_else(|error| panic!("#[uno_db::test] {test}: {}", crate::error_chain(&error)));
    let outcome = body(engine);
    factory.dispose_all();
    outcome
}

/// Runs an async test, on a tokio runtime of its own, with an engine on a
/// fresh database.
#[cfg(feature = "async")]
pub fn run_async<T, F>(test: &str, body: impl FnOnce(Arc<dyn crate::nonblocking::Engine>) -> F) -> T
where
    F: std::future::Future<Output = T>,
{
    use crate::nonblocking::EngineFactory;
    let (_db, config) = database(test);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|error| panic!("#[uno_db::test] {test}: no tokio runtime: {error}"));
    let factory = crate::AsyncEngineFactory::new();
    let outcome = runtime.block_on(async {
        let engine = factory
            .engine(&config)
            .unwrap_or_else(|error| panic!("#[uno_db::test] {test}: {}", crate::error_chain(&error)));
        body(engine).await
    });
    factory.dispose_all();
    // The connections' tasks end before the database is dropped.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    outcome
}
