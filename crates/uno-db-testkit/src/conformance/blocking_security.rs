//! TLS and credential cases for the blocking family
//! ([`uno_db_core::blocking`]), against real servers: the shared TLS
//! cluster, the shared cluster without TLS, and a cluster whose
//! certificate names another host. Mirrored case for case by
//! [`nonblocking_security`](super::nonblocking_security).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_errors_doc
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::security_setup::{
    MODES, PassFile, SESSION_ENCRYPTED, SecretStore, chain_text, plaintext_cluster, testkit_error,
    tls_cluster, tls_config,
};
use super::unique_name::unique_application_name;
use crate::{TestCluster, TlsOptions};
use uno_db_core::blocking::{CredentialProvider, Engine, EngineFactory};
use uno_db_core::{
    ChannelBinding, ConnectionConfig, CredentialRequest, ErrorKind, Result, SecretString, SqlState,
    SslMode,
};

/// Makes a factory whose engines ask a credential provider.
pub type WithProvider<'a> = &'a dyn Fn(Arc<dyn CredentialProvider>) -> Box<dyn EngineFactory>;

fn encrypted(engine: &Arc<dyn Engine>) -> Result<bool> {
    engine
        .connect()?
        .query_one(SESSION_ENCRYPTED, &[])?
        .try_get(0)
}

/// Each `sslmode` against a server with TLS: the server says whether the
/// session is encrypted (`disable` and `allow` are not; the rest are).
pub fn tls_each_mode_against_a_tls_server(factory: &dyn EngineFactory) -> Result<()> {
    let cluster = tls_cluster()?;
    for (mode, expected, _) in MODES {
        let engine = factory.engine(&tls_config(cluster, "postgres", mode)?)?;
        assert_eq!(encrypted(&engine)?, expected, "sslmode={mode}");
        engine.dispose();
    }
    Ok(())
}

/// Each `sslmode` against a server without TLS: the weak modes connect in
/// plaintext, the strict ones fail with a TLS error.
pub fn tls_each_mode_against_a_plaintext_server(factory: &dyn EngineFactory) -> Result<()> {
    let cluster = plaintext_cluster()?;
    for (mode, _, expected) in MODES {
        let engine = factory.engine(&tls_config(cluster, "postgres", mode)?)?;
        match expected {
            Some(expected) => assert_eq!(encrypted(&engine)?, expected, "sslmode={mode}"),
            None => {
                let error = engine.connect().expect_err("no TLS, no connection");
                assert_eq!(error.kind(), ErrorKind::Tls, "sslmode={mode}: {error:?}");
                assert!(!error.is_transient(), "{error:?}");
            }
        }
        engine.dispose();
    }
    Ok(())
}

/// `allow` starts in plaintext and switches to TLS when the server refuses
/// plaintext for the role (`hostnossl ... reject`); `disable` just fails.
pub fn tls_allow_switches_to_tls_when_plaintext_is_refused(
    factory: &dyn EngineFactory,
) -> Result<()> {
    let cluster = tls_cluster()?;
    let files = cluster.tls().expect("a TLS cluster");
    let role = files.ssl_only_role();
    let password = files.ssl_only_password();
    let config = |mode| -> Result<ConnectionConfig> {
        tls_config(cluster, role, mode)?
            .to_builder()
            .password(password)
            .build()
    };
    let engine = factory.engine(&config(SslMode::Allow)?)?;
    assert!(encrypted(&engine)?, "allow ends up on TLS");
    let engine = factory.engine(&config(SslMode::Disable)?)?;
    let error = engine.connect().expect_err("plaintext is refused");
    assert_eq!(
        error.sqlstate(),
        Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION),
        "{error:?}"
    );
    Ok(())
}

/// `verify-full` refuses a certificate from an unknown CA and one for
/// another host name, with a TLS error that says why; `verify-ca` accepts
/// the other host name.
pub fn tls_verify_full_refuses_unknown_ca_and_wrong_host(
    factory: &dyn EngineFactory,
) -> Result<()> {
    let cluster = tls_cluster()?;
    let other_ca = cluster
        .tls()
        .expect("TLS")
        .other_ca_cert()
        .display()
        .to_string();
    let config = tls_config(cluster, "postgres", SslMode::VerifyFull)?
        .to_builder()
        .ssl_root_cert(other_ca)
        .build()?;
    let error = factory.engine(&config)?.connect().expect_err("unknown CA");
    assert_eq!(error.kind(), ErrorKind::Tls, "{error:?}");
    assert!(!error.is_transient());
    let text = chain_text(&error);
    assert!(
        text.contains("unknownissuer") || text.contains("unknown issuer"),
        "{text}"
    );

    let elsewhere = TestCluster::builder()
        .tls(TlsOptions::default().server_names(["db.other.example"]))
        .start()
        .map_err(testkit_error)?;
    let config = tls_config(&elsewhere, "postgres", SslMode::VerifyFull)?
        .to_builder()
        .ssl_root_cert(
            elsewhere
                .tls()
                .expect("TLS")
                .ca_cert()
                .display()
                .to_string(),
        )
        .build()?;
    let error = factory.engine(&config)?.connect().expect_err("wrong host");
    assert_eq!(error.kind(), ErrorKind::Tls, "{error:?}");
    let text = chain_text(&error);
    assert!(
        text.contains("not valid for name") || text.contains("notvalidforname"),
        "{text}"
    );
    let verify_ca = config.to_builder().ssl_mode(SslMode::VerifyCa).build()?;
    let engine = factory.engine(&verify_ca)?;
    assert!(encrypted(&engine)?, "verify-ca does not check the name");
    factory.dispose_all();
    Ok(())
}

/// A role that must authenticate with a client certificate connects with
/// one, and without one is refused clearly by the server.
pub fn tls_client_certificate_authenticates(factory: &dyn EngineFactory) -> Result<()> {
    let cluster = tls_cluster()?;
    let files = cluster.tls().expect("TLS");
    let without = tls_config(cluster, files.cert_role(), SslMode::VerifyFull)?;
    let with = without
        .to_builder()
        .ssl_cert(files.client_cert().display().to_string())
        .ssl_key(files.client_key().display().to_string())
        .build()?;
    let engine = factory.engine(&with)?;
    let mut conn = engine.connect()?;
    let user: String = conn
        .query_one("SELECT current_user::text", &[])?
        .try_get(0)?;
    assert_eq!(user, files.cert_role());
    assert!(
        conn.query_one(SESSION_ENCRYPTED, &[])?
            .try_get::<_, bool>(0)?
    );
    drop(conn);
    let error = factory
        .engine(&without)?
        .connect()
        .expect_err("no certificate");
    assert_eq!(error.kind(), ErrorKind::Auth, "{error:?}");
    assert!(chain_text(&error).contains("certificate"), "{error:?}");
    Ok(())
}

/// `channel_binding=require` authenticates with SCRAM-SHA-256-PLUS over
/// TLS, and refuses a server that cannot bind (no TLS).
pub fn tls_channel_binding_needs_tls(factory: &dyn EngineFactory) -> Result<()> {
    let cluster = tls_cluster()?;
    let files = cluster.tls().expect("TLS");
    let config = tls_config(cluster, files.ssl_only_role(), SslMode::VerifyFull)?
        .to_builder()
        .password(files.ssl_only_password())
        .channel_binding(ChannelBinding::Require)
        .build()?;
    assert!(encrypted(&factory.engine(&config)?)?);
    let plaintext = plaintext_cluster()?;
    let config = tls_config(plaintext, "postgres", SslMode::Prefer)?
        .to_builder()
        .channel_binding(ChannelBinding::Require)
        .build()?;
    let error = factory.engine(&config)?.connect().expect_err("no binding");
    assert!(!error.is_transient(), "{error:?}");
    assert!(chain_text(&error).contains("channel binding"), "{error:?}");
    Ok(())
}

/// A credential provider that missed a rotation is asked once more after
/// the server refuses its password, and the checkout succeeds; one that
/// keeps giving a wrong password is asked exactly twice, then the
/// authentication error is returned.
pub fn credentials_are_refreshed_once_after_auth_failure(
    with_provider: WithProvider<'_>,
) -> Result<()> {
    let cluster = tls_cluster()?;
    let role = cluster
        .create_role(&unique_application_name("rot"), "first-Secret-1")
        .map_err(testkit_error)?;
    let config = tls_config(cluster, role.name(), SslMode::Require)?;
    let store = Arc::new(SecretStore::new(role.password()));
    store.serve_stale("stale-Secret-0");
    let asked = Arc::clone(&store);
    let provider: Arc<dyn CredentialProvider> =
        Arc::new(move |r: &CredentialRequest| asked.answer(r));
    let factory = with_provider(provider);
    let engine = factory.engine(&config)?;
    drop(engine.connect()?);
    assert_eq!(store.calls.load(Ordering::SeqCst), 2);
    assert_eq!(store.refreshes.load(Ordering::SeqCst), 1);

    store.set("wrong-Secret-2");
    engine.dispose();
    let engine = factory.engine(&config)?;
    let error = engine.connect().expect_err("a wrong password");
    assert_eq!(error.kind(), ErrorKind::Auth, "{error:?}");
    assert_eq!(error.sqlstate(), Some(&SqlState::INVALID_PASSWORD));
    assert_eq!(
        store.calls.load(Ordering::SeqCst),
        4,
        "asked once more, no more"
    );
    factory.dispose_all();
    Ok(())
}

/// 16 workers check out connections (each lives about a second, so new
/// ones open all the time) while the role's password is rotated on the
/// server and then in the secret store: the engine is never recreated,
/// and no checkout that starts after the store has the new password
/// fails.
pub fn credentials_rotate_under_load(with_provider: WithProvider<'_>) -> Result<()> {
    const WORKERS: usize = 16;
    let cluster = tls_cluster()?;
    let role = cluster
        .create_role(&unique_application_name("rot"), "old-Secret-1")
        .map_err(testkit_error)?;
    let config = tls_config(cluster, role.name(), SslMode::Require)?
        .to_builder()
        .pool_size(4)
        .max_overflow(4)
        .pool_recycle(Some(Duration::from_secs(1)))
        .pool_timeout(Duration::from_secs(10))
        .build()?;
    let store = Arc::new(SecretStore::new(role.password()));
    let asked = Arc::clone(&store);
    let provider: Arc<dyn CredentialProvider> =
        Arc::new(move |r: &CredentialRequest| asked.answer(r));
    let factory = with_provider(provider);
    let engine = factory.engine(&config)?;
    let stop = Arc::new(AtomicBool::new(false));
    let rotated: Arc<std::sync::OnceLock<Instant>> = Arc::default();
    let ok_after = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (engine, stop, rotated, ok_after) = (
                Arc::clone(&engine),
                Arc::clone(&stop),
                Arc::clone(&rotated),
                Arc::clone(&ok_after),
            );
            std::thread::spawn(move || {
                let mut late_failures = Vec::new();
                while !stop.load(Ordering::Acquire) {
                    let started = Instant::now();
                    let after = rotated.get().is_some_and(|at| started >= *at);
                    match engine.connect() {
                        Ok(mut conn) => {
                            drop(conn.query_one("SELECT 1", &[]));
                            if after {
                                ok_after.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(error) if after => late_failures.push(error),
                        Err(_) => {}
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                late_failures
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    role.rotate_password("new-Secret-2")
        .map_err(testkit_error)?;
    store.set("new-Secret-2");
    let calls_at_rotation = store.calls.load(Ordering::SeqCst);
    rotated.set(Instant::now()).expect("set once");
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Release);
    let late: Vec<_> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("a worker"))
        .collect();
    assert!(
        late.is_empty(),
        "checkouts failed after the rotation: {late:?}"
    );
    assert!(
        ok_after.load(Ordering::Relaxed) > 100,
        "the workers kept working"
    );
    assert!(
        store.calls.load(Ordering::SeqCst) >= calls_at_rotation + 4,
        "new connections asked the provider after the rotation"
    );
    assert!(
        Arc::ptr_eq(&engine, &factory.engine(&config)?),
        "one engine throughout"
    );
    factory.dispose_all();
    Ok(())
}

/// With no password configured, the password file's matching line is
/// used; a file that others can read is ignored (as libpq does), so the
/// server asks for a password nobody gives.
pub fn credentials_password_file_is_used_when_private(factory: &dyn EngineFactory) -> Result<()> {
    let cluster = tls_cluster()?;
    let role = cluster
        .create_role(&unique_application_name("pgpass"), "file-Secret-1")
        .map_err(testkit_error)?;
    let line = format!(
        "127.0.0.1:{}:*:{}:{}",
        cluster.port(),
        role.name(),
        role.password()
    );
    let private = PassFile::new(&line, 0o600)?;
    let config = tls_config(cluster, role.name(), SslMode::Require)?
        .to_builder()
        .passfile(private.path())
        .build()?;
    let engine = factory.engine(&config)?;
    let user: String = engine
        .connect()?
        .query_one("SELECT current_user::text", &[])?
        .try_get(0)?;
    assert_eq!(user, role.name());
    let public = PassFile::new(&line, 0o644)?;
    let config = config.to_builder().passfile(public.path()).build()?;
    let error = factory.engine(&config)?.connect().expect_err("no password");
    assert!(!error.is_transient(), "{error:?}");
    factory.dispose_all();
    Ok(())
}

/// A credential provider that hangs does not hang the checkout: the
/// provider's call counts against the attempt's `connect_timeout`, and
/// the checkout gives up within `pool_timeout` with a transient error.
pub fn credentials_hanging_provider_is_bounded(with_provider: WithProvider<'_>) -> Result<()> {
    let cluster = tls_cluster()?;
    let config = tls_config(cluster, "postgres", SslMode::Require)?
        .to_builder()
        .connect_timeout(Duration::from_millis(500))
        .pool_timeout(Duration::from_secs(2))
        .build()?;
    let released = Arc::new(AtomicBool::new(false));
    let hold = Arc::clone(&released);
    let provider: Arc<dyn CredentialProvider> = Arc::new(move |_: &CredentialRequest| {
        let until = Instant::now() + Duration::from_secs(30);
        while !hold.load(Ordering::SeqCst) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        Err::<SecretString, _>("released".into())
    });
    let factory = with_provider(provider);
    let engine = factory.engine(&config)?;
    let started = Instant::now();
    let error = engine.connect().expect_err("the provider never answers");
    let waited = started.elapsed();
    released.store(true, Ordering::SeqCst);
    assert!(
        waited < Duration::from_secs(4),
        "waited {waited:?}: {error:?}"
    );
    assert!(error.is_transient(), "{error:?}");
    factory.dispose_all();
    Ok(())
}

/// Turns every security case into a `#[test]` with an outer timeout, for
/// a backend's blocking factory (`$factory`) and a function that makes one
/// with a credential provider (`$with_provider`).
#[macro_export]
macro_rules! blocking_security_conformance {
    ($factory:expr, $with_provider:expr) => {
        $crate::blocking_security_conformance!(@plain $factory;
            tls_each_mode_against_a_tls_server,
            tls_each_mode_against_a_plaintext_server,
            tls_allow_switches_to_tls_when_plaintext_is_refused,
            tls_verify_full_refuses_unknown_ca_and_wrong_host,
            tls_client_certificate_authenticates,
            tls_channel_binding_needs_tls,
            credentials_password_file_is_used_when_private,
        );
        $crate::blocking_security_conformance!(@provider $with_provider;
            credentials_are_refreshed_once_after_auth_failure,
            credentials_rotate_under_load,
            credentials_hanging_provider_is_bounded,
        );
    };
    (@plain $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::run_with_timeout($crate::conformance::case_timeout(&[60]), || {
                    let factory = $factory;
                    $crate::conformance::blocking_security::$case(&factory).expect(stringify!($case));
                    $crate::conformance::uno_db_core::blocking::EngineFactory::dispose_all(&factory);
                });
            }
        )*
    };
    (@provider $with_provider:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::run_with_timeout($crate::conformance::case_timeout(&[60]), || {
                    $crate::conformance::blocking_security::$case(&$with_provider).expect(stringify!($case));
                });
            }
        )*
    };
}
