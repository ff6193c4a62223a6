//! Both backends log the same events with the same fields, and never the
//! password.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};
use uno_db::{ConnectionConfig, RetryPolicy};
use uno_db_testkit::conformance::{CASE_TIMEOUT, run_with_timeout};

const PASSWORD: &str = "Pw-9f3c1d-never-log-me";

/// One captured event: level, message and the names of its fields, plus
/// everything it printed (to look for the password).
#[derive(Debug, Clone)]
struct Captured {
    target: String,
    level: String,
    message: String,
    fields: BTreeSet<String>,
    text: String,
}

/// Collects every event of the process: r2d2 connects on threads of its
/// own, so a thread-local subscriber would miss them. Tests tell their
/// events apart by a database name of their own.
#[derive(Clone, Default)]
pub(crate) struct Capture {
    events: Arc<Mutex<Vec<Captured>>>,
}

impl Capture {
    /// The text of every event captured so far, whatever its level.
    pub(crate) fn all_text(&self) -> String {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| format!("{} {} {}", e.target, e.level, e.text))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

pub(crate) fn global_capture() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry().with(capture.clone());
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
        capture
    })
}

struct Visitor<'a> {
    message: String,
    fields: BTreeSet<String>,
    text: &'a mut String,
}

impl Visit for Visitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.text, " {}={value:?}", field.name());
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.fields.insert(field.name().to_owned());
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut text = String::new();
        let mut visitor = Visitor {
            message: String::new(),
            fields: BTreeSet::new(),
            text: &mut text,
        };
        event.record(&mut visitor);
        let captured = Captured {
            target: event.metadata().target().to_owned(),
            level: event.metadata().level().to_string(),
            message: visitor.message,
            fields: visitor.fields,
            text,
        };
        self.events.lock().unwrap().push(captured);
    }
}

/// A server that refuses connections, with a password in the config, so
/// every connect path logs (attempts, retries, failure, timeout).
fn refusing_config(database: &str) -> ConnectionConfig {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    ConnectionConfig::builder()
        .host("127.0.0.1")
        .port(port)
        .role("app")
        .password(PASSWORD)
        .database(database)
        .pool_size(1)
        .max_overflow(0)
        .pool_timeout(Duration::from_millis(800))
        .connect_timeout(Duration::from_millis(300))
        .retry(
            RetryPolicy::default()
                .max_attempts(2)
                .initial_delay(Duration::from_millis(10))
                .max_delay(Duration::from_millis(10)),
        )
        .build()
        .unwrap()
}

/// The events about `database` logged while `body` ran, and their text.
fn capture<F: FnOnce()>(database: &str, body: F) -> (Vec<Captured>, String) {
    let capture = global_capture();
    body();
    let tag = format!("database={database:?}");
    let events: Vec<Captured> = capture
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.text.contains(&tag))
        .cloned()
        .collect();
    let text = events
        .iter()
        .map(|e| e.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    (events, text)
}

fn shapes(events: &[Captured]) -> BTreeSet<(String, String, BTreeSet<String>)> {
    events
        .iter()
        .filter(|e| e.target == "uno_db")
        .map(|e| (e.level.clone(), e.message.clone(), e.fields.clone()))
        .collect()
}

#[test]
fn both_backends_log_the_same_events_without_the_password() {
    run_with_timeout(CASE_TIMEOUT, || {
        let sync_db = format!("uno_log_sync_{}", std::process::id());
        let async_db = format!("uno_log_async_{}", std::process::id());
        let config = refusing_config(&sync_db);
        let (sync_events, sync_text) = capture(&sync_db, || {
            use uno_db::blocking::EngineFactory;
            let factory = uno_db::SyncEngineFactory::new();
            let engine = factory.engine(&config).unwrap();
            assert!(engine.connect().is_err());
            factory.dispose_all();
        });
        let config = refusing_config(&async_db);
        let (async_events, async_text) = capture(&async_db, || {
            use uno_db::nonblocking::EngineFactory;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let factory = uno_db::AsyncEngineFactory::new();
                let engine = factory.engine(&config).unwrap();
                assert!(engine.connect().await.is_err());
                factory.dispose_all();
            });
        });
        for (name, text) in [("sync", &sync_text), ("async", &async_text)] {
            assert!(!text.is_empty(), "{name}: nothing was logged");
            assert!(
                !text.contains(PASSWORD),
                "{name} logged the password: {text}"
            );
        }
        let sync_shapes = shapes(&sync_events);
        let async_shapes = shapes(&async_events);
        assert!(
            sync_shapes.iter().any(|(_, message, fields)| message
                == "connection attempt failed; retrying"
                && ["role", "host", "database", "attempt", "delay_ms", "error"]
                    .iter()
                    .all(|f| fields.contains(*f))),
            "a retry event with the core fields: {sync_shapes:#?}"
        );
        assert_eq!(sync_shapes, async_shapes, "the backends' log events differ");
    });
}
