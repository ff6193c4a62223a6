//! Log events go through the core events, without the password.

use uno_db_core::ConnectionConfig;
use uno_db_sync::SyncEngine;
use uno_db_testkit::{LogCapture, TestCluster};

use crate::support::{Fixture, LIMIT, within};

/// The captured lines that mention `marker`, after running `body`. The
/// capture is the test kit's process-wide subscriber, which the
/// conformance suite's log cases share.
fn capture(marker: &str, body: impl FnOnce()) -> String {
    let captured = LogCapture::global();
    body();
    captured.lines_with(marker).join("\n")
}

#[test]
fn connect_and_close_events_are_logged() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let marker = format!("database=\"{}\"", fx.db.name());
        let logs = capture(&marker, || {
            let engine = SyncEngine::new(&fx.config()).unwrap();
            drop(engine.checkout().unwrap());
            uno_db_core::blocking::Engine::dispose(&engine);
        });
        for event in [
            "engine created",
            "connecting",
            "connected",
            "connection closed",
            "engine disposed",
        ] {
            assert!(logs.contains(event), "no `{event}` in:\n{logs}");
        }
        assert!(logs.contains("uno_db"), "{logs}");
    });
}

#[test]
fn a_failed_login_is_logged_without_the_password() {
    within(LIMIT, || {
        let cluster = TestCluster::shared().expect("the shared test cluster");
        let name = format!("uno_sync_events_{}", std::process::id());
        let role = cluster.create_role(&name, "right-secret").unwrap();
        let secret = "Wr0ngSecretValue";
        let config: ConnectionConfig = role.url_with_password("postgres", secret).parse().unwrap();
        let logs = capture(&name, || {
            let engine = SyncEngine::new(&config).unwrap();
            engine.checkout().unwrap_err();
        });
        assert!(logs.contains("connection failed"), "{logs}");
        assert!(
            logs.contains("28P01") || logs.contains("password authentication failed"),
            "{logs}"
        );
        assert!(!logs.contains(secret), "the password leaked:\n{logs}");
    });
}
