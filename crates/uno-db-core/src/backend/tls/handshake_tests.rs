//! The connector against a real rustls server in the same process (over a
//! `tokio::io::duplex` pair, with certificates made by rcgen), and against
//! the local PostgreSQL.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect, TlsStream};
use tokio_rustls::TlsAcceptor;

use super::{RootCerts, RustlsConnector, RustlsStream, TlsFileProblem, TlsSettings, Verification};
use crate::error::{BoxError, ErrorKind, error_chain};

/// A certificate with its key, as rcgen made them.
struct Issued {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Issued {
    fn ca(name: &str) -> Self {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        Self { cert, key }
    }

    /// An end-entity certificate for `names` (DNS names or IP addresses).
    fn leaf(&self, names: &[&str], algorithm: &'static rcgen::SignatureAlgorithm) -> Self {
        let key = KeyPair::generate_for(algorithm).unwrap();
        let names: Vec<String> = names.iter().map(|&name| name.to_owned()).collect();
        let params = CertificateParams::new(names).unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Self { cert, key }
    }

    fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivatePkcs8KeyDer::from(self.key.serialize_der()).into()
    }
}

/// The test's certificates: a CA the client trusts, the server's
/// certificate it issued for `db.example` and 127.0.0.1, a CA nobody
/// trusts, and a client CA with a client certificate.
struct Pki {
    ca: Issued,
    server: Issued,
    client_ca: Issued,
    client: Issued,
    dir: TempDir,
}

impl Pki {
    fn new() -> Self {
        let ca = Issued::ca("uno-db test CA");
        let server = ca.leaf(&["db.example", "127.0.0.1"], &PKCS_ECDSA_P256_SHA256);
        let client_ca = Issued::ca("uno-db client CA");
        let client = client_ca.leaf(&["app"], &PKCS_ECDSA_P384_SHA384);
        let pki = Self {
            ca,
            server,
            client_ca,
            client,
            dir: tempfile::tempdir().unwrap(),
        };
        pki.write("ca.pem", &pki.ca.cert.pem());
        pki.write("client.pem", &pki.client.cert.pem());
        pki.write("client.key", &pki.client.key.serialize_pem());
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn settings(&self, verification: Verification) -> TlsSettings {
        TlsSettings {
            verification,
            root_certs: Some(RootCerts::File(self.path("ca.pem"))),
            client_cert: None,
            client_key: None,
        }
    }

    fn connector(&self, verification: Verification) -> RustlsConnector {
        RustlsConnector::new(&self.settings(verification)).unwrap()
    }

    /// A server presenting `cert`, requiring no client certificate.
    fn server_config(cert: &Issued) -> ServerConfig {
        ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der()], cert.key_der())
            .unwrap()
    }

    /// The server, requiring a client certificate issued by the client CA.
    fn server_requiring_client_cert(&self) -> ServerConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.client_ca.der()).unwrap();
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .unwrap();
        ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![self.server.der()], self.server.key_der())
            .unwrap()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server's side: the handshake, then one byte telling how many client
/// certificates it was shown.
async fn serve(config: ServerConfig, io: DuplexStream) -> io::Result<()> {
    let mut tls = TlsAcceptor::from(Arc::new(config)).accept(io).await?;
    let shown = tls.get_ref().1.peer_certificates().map_or(0, <[_]>::len);
    tls.write_all(&[u8::try_from(shown).unwrap()]).await?;
    tls.flush().await
}

/// A handshake of `connector` to `host` with `server`; the stream and the
/// number of client certificates the server saw.
async fn handshake(
    connector: &RustlsConnector,
    host: &str,
    server: ServerConfig,
) -> Result<(RustlsStream<DuplexStream>, u8), BoxError> {
    let (client_io, server_io) = duplex(64 * 1024);
    let server = tokio::spawn(serve(server, server_io));
    let connect = MakeTlsConnect::<DuplexStream>::make_tls_connect(&mut connector.clone(), host)?;
    let result = async {
        let mut stream = connect.connect(client_io).await?;
        let mut shown = [0];
        stream.read_exact(&mut shown).await?;
        Ok((stream, shown[0]))
    }
    .await;
    server.abort();
    result
}

/// The rustls error at the end of a failed handshake's chain.
fn rustls_error(error: &BoxError) -> &rustls::Error {
    let tls = error
        .downcast_ref::<crate::TlsError>()
        .unwrap_or_else(|| panic!("not a TlsError: {error:?}"));
    std::error::Error::source(tls)
        .and_then(|source| source.downcast_ref::<rustls::Error>())
        .unwrap_or_else(|| panic!("no rustls error under {tls:?}"))
}

fn assert_refused(result: Result<(RustlsStream<DuplexStream>, u8), BoxError>, expected: &str) {
    let Err(error) = result else {
        panic!("the handshake succeeded; expected {expected}")
    };
    let text = rustls_error(&error).to_string();
    assert!(
        text.contains(expected),
        "{text:?} does not contain {expected:?}"
    );
}

#[tokio::test]
async fn none_accepts_a_certificate_from_an_unknown_ca() {
    let pki = Pki::new();
    let stranger = Issued::ca("stranger").leaf(&["elsewhere.example"], &PKCS_ECDSA_P256_SHA256);
    let (_, shown) = handshake(
        &pki.connector(Verification::None),
        "db.example",
        Pki::server_config(&stranger),
    )
    .await
    .unwrap();
    assert_eq!(shown, 0);
}

#[tokio::test]
async fn none_needs_no_root_certificate() {
    let pki = Pki::new();
    let settings = TlsSettings {
        root_certs: None,
        ..pki.settings(Verification::None)
    };
    let connector = RustlsConnector::new(&settings).unwrap();
    handshake(&connector, "db.example", Pki::server_config(&pki.server))
        .await
        .unwrap();
}

#[tokio::test]
async fn chain_accepts_the_trusted_ca_under_another_name() {
    let pki = Pki::new();
    handshake(
        &pki.connector(Verification::Chain),
        "other.example",
        Pki::server_config(&pki.server),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn chain_refuses_an_unknown_ca() {
    let pki = Pki::new();
    let stranger = Issued::ca("stranger").leaf(&["db.example"], &PKCS_ECDSA_P256_SHA256);
    let result = handshake(
        &pki.connector(Verification::Chain),
        "db.example",
        Pki::server_config(&stranger),
    )
    .await;
    assert_refused(result, "invalid peer certificate: UnknownIssuer");
}

#[tokio::test]
async fn full_accepts_the_trusted_ca_and_name_or_ip_address() {
    let pki = Pki::new();
    let connector = pki.connector(Verification::Full);
    for host in ["db.example", "127.0.0.1"] {
        handshake(&connector, host, Pki::server_config(&pki.server))
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
    }
}

#[tokio::test]
async fn full_refuses_another_name_and_says_so() {
    let pki = Pki::new();
    let result = handshake(
        &pki.connector(Verification::Full),
        "other.example",
        Pki::server_config(&pki.server),
    )
    .await;
    assert_refused(result, "certificate not valid for name \"other.example\"");
}

#[tokio::test]
async fn full_refuses_an_unknown_ca() {
    let pki = Pki::new();
    let stranger = Issued::ca("stranger").leaf(&["db.example"], &PKCS_ECDSA_P256_SHA256);
    let result = handshake(
        &pki.connector(Verification::Full),
        "db.example",
        Pki::server_config(&stranger),
    )
    .await;
    assert_refused(result, "invalid peer certificate: UnknownIssuer");
}

#[tokio::test]
async fn the_client_certificate_is_presented_when_configured() {
    let pki = Pki::new();
    let settings = TlsSettings {
        client_cert: Some(pki.path("client.pem")),
        client_key: Some(pki.path("client.key")),
        ..pki.settings(Verification::Full)
    };
    let connector = RustlsConnector::new(&settings).unwrap();
    let (_, shown) = handshake(&connector, "db.example", pki.server_requiring_client_cert())
        .await
        .unwrap();
    assert_eq!(shown, 1);
}

#[tokio::test]
async fn the_postgresql_alpn_protocol_is_offered() {
    // PostgreSQL 17's direct TLS negotiation requires it.
    let pki = Pki::new();
    let mut server = Pki::server_config(&pki.server);
    server.alpn_protocols = vec![b"postgresql".to_vec()];
    let (stream, _) = handshake(&pki.connector(Verification::Full), "db.example", server)
        .await
        .unwrap();
    assert_eq!(stream.alpn_protocol(), Some(&b"postgresql"[..]));
}

#[tokio::test]
async fn channel_binding_is_the_sha256_of_an_ecdsa_p256_certificate() {
    let pki = Pki::new();
    let (stream, _) = handshake(
        &pki.connector(Verification::Full),
        "db.example",
        Pki::server_config(&pki.server),
    )
    .await
    .unwrap();
    let expected = ring::digest::digest(&ring::digest::SHA256, pki.server.cert.der());
    // `ChannelBinding` keeps its value to the driver: the stream's own
    // reading of the session is what `channel_binding()` wraps.
    assert_eq!(stream.end_point(), Some(expected.as_ref().to_vec()));
    let _binding = stream.channel_binding();
}

/// Through the driver: the fake server answers the `SSLRequest` with `S`,
/// then runs `server`'s handshake (or hangs up if `None`).
async fn driver_connect_error(
    connector: &RustlsConnector,
    host: &str,
    server: Option<ServerConfig>,
) -> crate::Error {
    let (client_io, mut server_io) = duplex(64 * 1024);
    let fake = tokio::spawn(async move {
        let mut ssl_request = [0; 8];
        server_io.read_exact(&mut ssl_request).await?;
        server_io.write_all(b"S").await?;
        match server {
            Some(server) => serve(server, server_io).await,
            None => Ok(()),
        }
    });
    let mut config = tokio_postgres::Config::new();
    config.user("app").dbname("test").ssl_mode(SslMode::Require);
    let connect =
        MakeTlsConnect::<DuplexStream>::make_tls_connect(&mut connector.clone(), host).unwrap();
    let error = match config.connect_raw(client_io, connect).await {
        Ok(_) => panic!("the driver connected"),
        Err(error) => crate::backend::from_connect(error, "app@db.example:5432/test"),
    };
    fake.abort();
    error
}

#[tokio::test]
async fn a_refused_certificate_is_a_tls_error_through_the_driver() {
    let pki = Pki::new();
    let stranger = Issued::ca("stranger").leaf(&["db.example"], &PKCS_ECDSA_P256_SHA256);
    let error = driver_connect_error(
        &pki.connector(Verification::Full),
        "db.example",
        Some(Pki::server_config(&stranger)),
    )
    .await;
    assert_eq!(error.kind(), ErrorKind::Tls, "{error:?}");
    assert!(!error.is_transient());
    let chain = error_chain(&error);
    assert!(
        chain.contains("invalid peer certificate: UnknownIssuer"),
        "{chain}"
    );

    let error = driver_connect_error(
        &pki.connector(Verification::Full),
        "other.example",
        Some(Pki::server_config(&pki.server)),
    )
    .await;
    assert_eq!(error.kind(), ErrorKind::Tls, "{error:?}");
    let chain = error_chain(&error);
    assert!(
        chain.contains("not valid for name \"other.example\""),
        "{chain}"
    );
}

#[tokio::test]
async fn a_client_certificate_refused_after_the_handshake_is_a_tls_error() {
    // TLS 1.3: the client is done before the server judges its (missing)
    // certificate; the server's alert comes with the first read.
    let pki = Pki::new();
    let error = driver_connect_error(
        &pki.connector(Verification::Full),
        "db.example",
        Some(pki.server_requiring_client_cert()),
    )
    .await;
    assert_eq!(error.kind(), ErrorKind::Tls, "{error:?}");
    let chain = error_chain(&error);
    assert!(chain.contains("CertificateRequired"), "{chain}");
}

#[test]
fn a_rustls_failure_mid_session_is_a_lost_connection_marked_tls() {
    let alert = io::Error::new(
        io::ErrorKind::InvalidData,
        rustls::Error::AlertReceived(rustls::AlertDescription::BadRecordMac),
    );
    let error = super::connector::session_error(alert);
    assert_eq!(error.kind(), io::ErrorKind::ConnectionAborted);
    let tls = error
        .get_ref()
        .unwrap()
        .downcast_ref::<crate::TlsError>()
        .unwrap();
    let rustls = std::error::Error::source(tls).unwrap();
    assert!(rustls.is::<rustls::Error>());
    // Plain socket failures pass through untouched.
    let reset = super::connector::session_error(io::Error::from(io::ErrorKind::ConnectionReset));
    assert_eq!(reset.kind(), io::ErrorKind::ConnectionReset);
    assert!(reset.get_ref().is_none());
}

#[tokio::test]
async fn a_hang_up_during_the_handshake_stays_a_connect_error() {
    let pki = Pki::new();
    let error = driver_connect_error(&pki.connector(Verification::Full), "db.example", None).await;
    assert_eq!(error.kind(), ErrorKind::Connect, "{error:?}");
    assert!(error.is_transient());
}

#[test]
fn an_invalid_host_name_is_a_tls_error_and_an_empty_one_is_deferred() {
    let pki = Pki::new();
    let mut connector = pki.connector(Verification::Full);
    let error = MakeTlsConnect::<DuplexStream>::make_tls_connect(&mut connector, "bad host!")
        .expect_err("an invalid DNS name is refused");
    assert!(std::error::Error::source(&error).is_some());
    // A Unix socket: the driver asks with no host; the server will decline
    // TLS before a handshake, so asking must not fail.
    assert!(MakeTlsConnect::<DuplexStream>::make_tls_connect(&mut connector, "").is_ok());
}

#[test]
fn every_file_problem_is_reported_at_once() {
    let pki = Pki::new();
    let stranger = Issued::ca("stranger").leaf(&["app"], &PKCS_ECDSA_P256_SHA256);
    let empty = pki.write("empty.pem", "");
    let encrypted = pki.write(
        "encrypted.key",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n",
    );
    let other_key = pki.write("stranger.key", &stranger.key.serialize_pem());
    let missing = pki.path("missing.pem");

    let problems = |settings: TlsSettings| RustlsConnector::new(&settings).err().unwrap();
    let rules = |problems: &[TlsFileProblem]| -> Vec<(String, String, String)> {
        problems
            .iter()
            .map(|p| (p.param.to_owned(), p.value.clone(), p.rule.clone()))
            .collect()
    };
    let shown = |path: &Path| path.display().to_string();

    // A missing root file and an encrypted key, in one call.
    let found = problems(TlsSettings {
        verification: Verification::Full,
        root_certs: Some(RootCerts::File(missing.clone())),
        client_cert: Some(pki.path("client.pem")),
        client_key: Some(encrypted.clone()),
    });
    assert_eq!(
        rules(&found),
        vec![
            (
                "sslrootcert".to_owned(),
                shown(&missing),
                "cannot be read: No such file or directory (os error 2)".to_owned()
            ),
            (
                "sslkey".to_owned(),
                shown(&encrypted),
                "is encrypted; uno-db reads only unencrypted PEM keys (PKCS#8, PKCS#1 or SEC1)"
                    .to_owned()
            ),
        ]
    );

    // An empty root file, a key of another certificate.
    let found = problems(TlsSettings {
        verification: Verification::Chain,
        root_certs: Some(RootCerts::File(empty.clone())),
        client_cert: Some(pki.path("client.pem")),
        client_key: Some(other_key.clone()),
    });
    assert_eq!(
        rules(&found),
        vec![
            (
                "sslrootcert".to_owned(),
                shown(&empty),
                "holds no PEM certificate".to_owned()
            ),
            (
                "sslkey".to_owned(),
                shown(&other_key),
                format!(
                    "does not match the certificate in sslcert `{}`",
                    pki.path("client.pem").display()
                )
            ),
        ]
    );

    // No roots for verify-full, a certificate without key, an empty
    // certificate file given as a key's certificate.
    let found = problems(TlsSettings {
        verification: Verification::Full,
        root_certs: None,
        client_cert: Some(pki.path("client.pem")),
        client_key: None,
    });
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].param, "sslrootcert");
    assert!(
        found[0]
            .rule
            .contains("verify-full needs a root certificate"),
        "{}",
        found[0].rule
    );
    // Without sslkey the certificate file must hold the key too.
    assert_eq!(found[1].param, "sslcert");
    assert!(
        found[1].rule.starts_with("holds no PEM private key"),
        "{}",
        found[1].rule
    );

    // A combined file (certificate and key) serves as either setting.
    let combined = pki.write(
        "combined.pem",
        &(std::fs::read_to_string(pki.path("client.pem")).unwrap()
            + &std::fs::read_to_string(pki.path("client.key")).unwrap()),
    );
    for (cert, key) in [(Some(combined.clone()), None), (None, Some(combined))] {
        let settings = TlsSettings {
            verification: Verification::None,
            root_certs: None,
            client_cert: cert,
            client_key: key,
        };
        assert!(RustlsConnector::new(&settings).is_ok(), "{settings:?}");
    }

    let found = problems(TlsSettings {
        verification: Verification::None,
        root_certs: None,
        client_cert: Some(empty.clone()),
        client_key: Some(pki.path("ca.pem")),
    });
    assert_eq!(
        rules(&found),
        vec![
            (
                "sslcert".to_owned(),
                shown(&empty),
                "holds no PEM certificate".to_owned()
            ),
            (
                "sslkey".to_owned(),
                shown(&pki.path("ca.pem")),
                "holds no PEM private key (PKCS#8, PKCS#1 or SEC1)".to_owned()
            ),
        ]
    );
    // The rendering, as a configuration violation is rendered.
    assert_eq!(
        found[0].to_string(),
        format!("sslcert = {:?}: holds no PEM certificate", shown(&empty))
    );
}

#[test]
fn debug_shows_nothing_secret() {
    let pki = Pki::new();
    let settings = TlsSettings {
        client_cert: Some(pki.path("client.pem")),
        client_key: Some(pki.path("client.key")),
        ..pki.settings(Verification::Chain)
    };
    let text = format!("{:?}", RustlsConnector::new(&settings).unwrap());
    assert_eq!(
        text,
        "RustlsConnector { verification: Chain, client_certificate: true, .. }"
    );
}

/// The bounds `postgres::Client::connect`, `r2d2_postgres` and
/// `deadpool_postgres` put on a connector, and `CancelToken::cancel_query`.
#[test]
fn the_connector_fits_both_drivers_and_their_pools() {
    fn blocking_and_r2d2<T>()
    where
        T: MakeTlsConnect<tokio_postgres::Socket> + Clone + Send + Sync + 'static,
        T::TlsConnect: Send,
        T::Stream: Send,
        <T::TlsConnect as TlsConnect<tokio_postgres::Socket>>::Future: Send,
    {
    }
    fn deadpool<T>()
    where
        T: MakeTlsConnect<tokio_postgres::Socket> + Clone + Sync + Send + 'static,
        T::Stream: Sync + Send,
        T::TlsConnect: Sync + Send,
        <T::TlsConnect as TlsConnect<tokio_postgres::Socket>>::Future: Send,
    {
    }
    blocking_and_r2d2::<RustlsConnector>();
    deadpool::<RustlsConnector>();
}

/// The local PostgreSQL 15 (`ssl=on`, the Debian snakeoil certificate for
/// `localhost`): TLS really encrypts, and the ALPN protocol we offer does
/// not upset it; `verify-ca` accepts the self-signed certificate as its own
/// root, `verify-full` refuses it for an address it does not name. Skipped,
/// saying so, where no server offering TLS answers.
#[tokio::test]
async fn the_local_postgres_encrypts_with_the_connector() {
    const SNAKEOIL: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
    let config = |host: &str| {
        let mut config = tokio_postgres::Config::new();
        config
            .host(host)
            .port(5432)
            .user("postgres")
            .dbname("postgres")
            .ssl_mode(SslMode::Require)
            .connect_timeout(std::time::Duration::from_secs(5));
        config
    };
    if let Err(e) = config("127.0.0.1").connect(tokio_postgres::NoTls).await {
        // NoTls with `require` fails with the driver's `NoTlsError` (a TLS
        // error) only once the server has agreed to TLS; down, or without
        // TLS, is another kind.
        if crate::backend::from_connect(e, "postgres@127.0.0.1:5432").kind() != ErrorKind::Tls {
            eprintln!("skipped: no PostgreSQL at 127.0.0.1:5432");
            return;
        }
    }

    let none = RustlsConnector::new(&TlsSettings {
        verification: Verification::None,
        root_certs: None,
        client_cert: None,
        client_key: None,
    })
    .unwrap();
    let (client, connection) = config("127.0.0.1").connect(none).await.unwrap();
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0));

    if !Path::new(SNAKEOIL).exists() {
        eprintln!("skipped the verify modes: no {SNAKEOIL}");
        return;
    }
    let with_root = |verification| {
        RustlsConnector::new(&TlsSettings {
            verification,
            root_certs: Some(RootCerts::File(SNAKEOIL.into())),
            client_cert: None,
            client_key: None,
        })
        .unwrap()
    };
    // The snakeoil certificate names `localhost`, not the address.
    let error = match config("127.0.0.1")
        .connect(with_root(Verification::Full))
        .await
    {
        Ok(_) => panic!("verify-full accepted a certificate for another name"),
        Err(e) => crate::backend::from_connect(e, "postgres@127.0.0.1:5432"),
    };
    assert_eq!(error.kind(), ErrorKind::Tls);
    let chain = error_chain(&error);
    assert!(
        chain.contains("not valid for name \"127.0.0.1\""),
        "{chain}"
    );

    // A self-signed end-entity certificate is its own trust anchor.
    let (client, connection) = config("127.0.0.1")
        .connect(with_root(Verification::Chain))
        .await
        .unwrap();
    tokio::spawn(connection);
    client.simple_query("SELECT 1").await.unwrap();
    let (client, connection) = config("localhost")
        .connect(with_root(Verification::Full))
        .await
        .unwrap();
    tokio::spawn(connection);
    client.simple_query("SELECT 1").await.unwrap();
}
