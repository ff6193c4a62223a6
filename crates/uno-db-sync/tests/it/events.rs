//! Log events go through the core events, without the password.

use std::io;
use std::sync::{Arc, Mutex, OnceLock};

use uno_db_core::ConnectionConfig;
use uno_db_sync::SyncEngine;
use uno_db_testkit::TestCluster;

use crate::support::{Fixture, LIMIT, within};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Every `uno_db` event of this test process. One global subscriber, set
/// once: per-thread subscribers race with tracing's callsite interest cache
/// when tests run in parallel.
fn captured() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("uno_db=debug"))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
        captured
    })
}

/// The captured lines that mention `marker`, after running `body`.
fn capture(marker: &str, body: impl FnOnce()) -> String {
    let captured = captured();
    body();
    captured
        .text()
        .lines()
        .filter(|line| line.contains(marker))
        .collect::<Vec<_>>()
        .join("\n")
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
