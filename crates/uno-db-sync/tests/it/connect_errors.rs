//! Permanent connect failures fail fast with their real cause.

use std::time::{Duration, Instant};

use uno_db_core::blocking::Engine;
use uno_db_core::{ConnectionConfig, ErrorKind, SqlState};
use uno_db_sync::SyncEngine;
use uno_db_testkit::TestCluster;

use crate::support::{Fixture, LIMIT, within};

#[test]
fn a_wrong_password_fails_fast_as_auth() {
    within(Duration::from_secs(120), || {
        let cluster = TestCluster::shared().expect("the shared test cluster");
        let role = cluster
            .create_role(&format!("uno_sync_auth_{}", std::process::id()), "right")
            .unwrap();
        let url = role.url_with_password("postgres", "wrong");
        let config: ConnectionConfig = url.parse().unwrap();
        let config = config
            .to_builder()
            .pool_timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let engine = SyncEngine::new(&config).unwrap();
        let started = Instant::now();
        let error = engine.checkout().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Auth, "{error:?}");
        assert_eq!(error.sqlstate(), Some(&SqlState::INVALID_PASSWORD));
        assert!(!error.is_transient());
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "not fast: {:?}",
            started.elapsed()
        );
        let text = format!("{error} {error:?}");
        assert!(!text.contains("wrong"), "the password leaked: {text}");

        // The right password works.
        let config: ConnectionConfig = role.url_for("postgres").parse().unwrap();
        let engine = SyncEngine::new(&config).unwrap();
        engine.checkout().unwrap();
    });
}

#[test]
fn a_missing_database_fails_fast_as_connect() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let config = fx
            .builder()
            .database("uno_sync_no_such_database")
            .pool_timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let engine = SyncEngine::new(&config).unwrap();
        let started = Instant::now();
        let error = engine.checkout().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Connect, "{error:?}");
        assert_eq!(error.sqlstate(), Some(&SqlState::INVALID_CATALOG_NAME));
        assert!(!error.is_transient());
        assert!(error.db_error().is_some());
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(engine.status().size, 0);
    });
}

#[test]
fn the_async_driver_is_refused_at_creation() {
    let config = ConnectionConfig::builder()
        .driver(uno_db_core::Driver::TokioPostgres)
        .build()
        .unwrap();
    assert_eq!(
        SyncEngine::new(&config).unwrap_err().kind(),
        ErrorKind::Config
    );
}
