//! The security sweep: known secrets (a configured password, a wrong
//! password, a credential provider's token, a client certificate's key)
//! go through every path of both backends against a real TLS server, and
//! then nothing uno-db shows may contain them: `Debug` and `Display` of
//! configurations, factories, requests and errors (with their cause
//! chains), every `tracing` event at every level (TRACE included), every
//! `log` record (the drivers log through `log`, at DEBUG too), every
//! metrics key and label, and the registry key.

use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};

use metrics_util::debugging::{DebuggingRecorder, Snapshotter};
use uno_db::{
    AsyncEngineFactory, ConnectionConfig, CredentialRequest, ErrorKind, SecretString, SslMode,
    SyncEngineFactory, blocking, error_chain, nonblocking,
};
use uno_db_testkit::conformance::{CASE_TIMEOUT, run_with_timeout};
use uno_db_testkit::{TestCluster, TestRole};

use crate::logging::global_capture;

const PASSWORD: &str = "Pw-Narwhal-7731-secret";
const WRONG_PASSWORD: &str = "Pw-Wrong-Axolotl-4402";
const TOKEN: &str = "Tok-Ocelot-5521-iam";

/// Every `log` record of the process, formatted.
struct LogCapture(Mutex<Vec<String>>);

impl log::Log for LogCapture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {} {}", record.target(), record.level(), record.args());
        self.0.lock().unwrap().push(line);
    }

    fn flush(&self) {}
}

fn log_capture() -> &'static LogCapture {
    static CAPTURE: OnceLock<&'static LogCapture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture: &'static LogCapture = Box::leak(Box::new(LogCapture(Mutex::default())));
        log::set_logger(capture).expect("no other logger");
        log::set_max_level(log::LevelFilter::Trace);
        capture
    })
}

fn metrics_snapshotter() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder.install().expect("no other metrics recorder");
        snapshotter
    })
}

/// The body lines of a PEM private key: what would leak if the key did.
fn key_material(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with("-----") && line.len() > 20)
        .map(str::to_owned)
        .collect()
}

/// Everything shown while both families run every credential path.
fn exercise(cluster: &TestCluster, role: &TestRole, token_role: &TestRole, shown: &mut String) {
    let files = cluster.tls().expect("a TLS cluster");
    let base = |role: &str| {
        ConnectionConfig::builder()
            .host("127.0.0.1")
            .port(cluster.port())
            .role(role)
            .database("postgres")
            .ssl_mode(SslMode::VerifyFull)
            .ssl_root_cert(files.ca_cert().display().to_string())
            .pool_size(1)
            .pool_timeout(std::time::Duration::from_secs(5))
    };
    let with_password = base(role.name()).password(PASSWORD).build().unwrap();
    let wrong = base(role.name()).password(WRONG_PASSWORD).build().unwrap();
    let with_cert = base(files.cert_role())
        .ssl_cert(files.client_cert().display().to_string())
        .ssl_key(files.client_key().display().to_string())
        .build()
        .unwrap();
    let for_token = base(token_role.name()).build().unwrap();
    for config in [&with_password, &wrong, &with_cert, &for_token] {
        let _ = write!(
            shown,
            "\n{config:?}\n{config}\n{}\n{:?}",
            config.to_url(),
            config.key()
        );
    }
    let _ = write!(shown, "\n{:?}", CredentialRequest::new(&for_token, true));

    // Blocking.
    let factory = SyncEngineFactory::new();
    for config in [&with_password, &with_cert] {
        let engine = blocking::EngineFactory::engine(&factory, config).unwrap();
        let mut conn = engine.connect().unwrap();
        conn.query_one("SELECT 1", &[]).unwrap();
    }
    let error = blocking::EngineFactory::engine(&factory, &wrong)
        .unwrap()
        .connect()
        .expect_err("a wrong password");
    assert_eq!(error.kind(), ErrorKind::Auth);
    let _ = write!(
        shown,
        "\n{error}\n{error:?}\n{}\n{factory:?}",
        error_chain(&error)
    );
    let token_factory = SyncEngineFactory::with_credential_provider(|_: &CredentialRequest| {
        Ok(SecretString::from(TOKEN.to_owned()))
    });
    let engine = blocking::EngineFactory::engine(&token_factory, &for_token).unwrap();
    engine
        .connect()
        .unwrap()
        .query_one("SELECT 1", &[])
        .unwrap();
    let _ = write!(shown, "\n{token_factory:?}");
    blocking::EngineFactory::dispose_all(&factory);
    blocking::EngineFactory::dispose_all(&token_factory);

    // Async.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let async_shown = runtime.block_on(async {
        let mut shown = String::new();
        let factory = AsyncEngineFactory::new();
        for config in [&with_password, &with_cert] {
            let engine = nonblocking::EngineFactory::engine(&factory, config).unwrap();
            let mut conn = engine.connect().await.unwrap();
            conn.query_one("SELECT 1", &[]).await.unwrap();
        }
        let error = nonblocking::EngineFactory::engine(&factory, &wrong)
            .unwrap()
            .connect()
            .await
            .expect_err("a wrong password");
        assert_eq!(error.kind(), ErrorKind::Auth);
        let _ = write!(
            shown,
            "\n{error}\n{error:?}\n{}\n{factory:?}",
            error_chain(&error)
        );
        let token_factory =
            AsyncEngineFactory::with_credential_provider(|_: CredentialRequest| async {
                Ok::<_, uno_db::BoxError>(SecretString::from(TOKEN.to_owned()))
            });
        let engine = nonblocking::EngineFactory::engine(&token_factory, &for_token).unwrap();
        let mut conn = engine.connect().await.unwrap();
        conn.query_one("SELECT 1", &[]).await.unwrap();
        drop(conn);
        let _ = write!(shown, "\n{token_factory:?}");
        nonblocking::EngineFactory::dispose_all(&factory);
        nonblocking::EngineFactory::dispose_all(&token_factory);
        shown
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    shown.push_str(&async_shown);
}

#[test]
fn no_secret_reaches_debug_display_errors_logs_or_metrics() {
    run_with_timeout(CASE_TIMEOUT, || {
        let cluster = TestCluster::shared_tls().expect("a TLS cluster");
        // The test kit creates the roles with the passwords in its SQL,
        // which the driver logs at DEBUG: before the capture starts, as it
        // is not uno-db's doing.
        let role = cluster.create_role("uno_sweep_pw", PASSWORD).unwrap();
        let token_role = cluster.create_role("uno_sweep_token", TOKEN).unwrap();
        let events = global_capture();
        let logs = log_capture();
        let metrics = metrics_snapshotter();
        let mut shown = String::new();
        exercise(cluster, &role, &token_role, &mut shown);

        let mut secrets: Vec<String> = vec![PASSWORD.into(), WRONG_PASSWORD.into(), TOKEN.into()];
        secrets.extend(key_material(cluster.tls().unwrap().client_key()));
        let events = events.all_text();
        let logs = logs.0.lock().unwrap().join("\n");
        let labels: String = metrics
            .snapshot()
            .into_vec()
            .iter()
            .map(|(key, ..)| format!("{key:?}\n"))
            .collect();
        assert!(events.contains("uno_db"), "the sweep saw uno-db's events");
        for (what, text) in [
            ("Debug/Display/errors", &shown),
            ("tracing events", &events),
            ("log records", &logs),
            ("metrics keys and labels", &labels),
        ] {
            for secret in &secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "{what} show a secret:\n{text}"
                );
            }
        }
    });
}
