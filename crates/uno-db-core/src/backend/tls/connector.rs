//! The driver's `MakeTlsConnect` over rustls.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use rustls::ClientConfig;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

use super::channel_binding::tls_server_end_point;
use super::files::{self, TlsFileProblem};
use super::verifier::{AnyCertificate, ChainOnly};
use super::{TlsSettings, Verification};
use crate::error::{BoxError, TlsError};

/// The ALPN protocol of PostgreSQL 17's direct TLS negotiation
/// (`sslnegotiation=direct`), which requires it; servers reached through
/// the classic `SSLRequest` ignore it.
const ALPN_POSTGRESQL: &[u8] = b"postgresql";

/// The rustls connector both backends hand to the driver
/// (`tokio_postgres::Config::connect`, `postgres::Client::connect`,
/// `r2d2_postgres::PostgresConnectionManager::new`, `deadpool_postgres`,
/// `CancelToken::cancel_query`).
///
/// Built once per configuration by [`RustlsConnector::new`], which reads
/// every file; cloning shares the rustls configuration (an `Arc`).
///
/// A failed handshake or certificate check ends the connect future with a
/// [`TlsError`] wrapping rustls' error (`invalid peer certificate:
/// UnknownIssuer`, ...), which
/// [`from_connect`](crate::backend::from_connect) classifies as
/// [`ErrorKind::Tls`](crate::ErrorKind::Tls); a failed socket ends it with
/// the plain `io::Error`, a transient connect failure.
#[derive(Clone)]
pub struct RustlsConnector {
    config: Arc<ClientConfig>,
    verification: Verification,
    /// Set when a handshake starts, for a connector made by
    /// [`watched`](Self::watched).
    started: Option<Arc<AtomicBool>>,
}

impl RustlsConnector {
    /// Reads the files `settings` names and builds the rustls client
    /// configuration.
    ///
    /// # Errors
    ///
    /// Every problem found, not just the first: a root file, certificate
    /// or key that is missing, unreadable, not PEM, encrypted or rejected
    /// by rustls, a key that does not match its certificate, a client
    /// certificate without key (or the reverse), `verify-ca` or
    /// `verify-full` without root certificates, `system` roots on a machine
    /// that has none.
    pub fn new(settings: &TlsSettings) -> Result<Self, Vec<TlsFileProblem>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut problems = Vec::new();
        let roots = files::load_roots(settings, &mut problems);
        let identity = files::load_client_identity(settings, &provider, &mut problems);
        if !problems.is_empty() {
            return Err(problems);
        }
        let verifier = server_verifier(settings.verification, roots, &provider)?;
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| {
                vec![TlsFileProblem::new(
                    "sslmode",
                    "",
                    format!("rustls refuses its default protocol versions: {e}"),
                )]
            })?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match identity {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(|e| {
                vec![TlsFileProblem::new(
                    "sslkey",
                    settings
                        .client_key
                        .as_ref()
                        .map(|path| path.display().to_string())
                        .unwrap_or_default(),
                    format!("cannot be used with sslcert: {e}"),
                )]
            })?,
        };
        config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
        Ok(Self {
            config: Arc::new(config),
            verification: settings.verification,
            started: None,
        })
    }
}

fn server_verifier(
    verification: Verification,
    roots: Option<Arc<rustls::RootCertStore>>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, Vec<TlsFileProblem>> {
    let full = |roots: Option<Arc<rustls::RootCertStore>>| {
        let roots = roots.unwrap_or_else(|| Arc::new(rustls::RootCertStore::empty()));
        WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(provider))
            .build()
            .map_err(|e| {
                vec![TlsFileProblem::new(
                    "sslrootcert",
                    "",
                    format!("the root certificates cannot be used: {e}"),
                )]
            })
    };
    Ok(match verification {
        Verification::None => Arc::new(AnyCertificate::new(
            provider.signature_verification_algorithms,
        )),
        Verification::Chain => Arc::new(ChainOnly::new(full(roots)?)),
        Verification::Full => full(roots)?,
    })
}

/// Shows how certificates are checked, never a key or a file's contents.
impl fmt::Debug for RustlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RustlsConnector")
            .field("verification", &self.verification)
            .field(
                "client_certificate",
                &self.config.client_auth_cert_resolver.has_certs(),
            )
            .finish_non_exhaustive()
    }
}

impl RustlsConnector {
    /// A copy for one connection attempt, and a flag it sets when the
    /// server accepts TLS and the handshake starts: an attempt that fails
    /// without it never reached TLS (the kernel tells "the server does not
    /// do TLS" from other failures by it, as the driver's error has no
    /// typed kind).
    #[must_use]
    pub fn watched(&self) -> (Self, Arc<AtomicBool>) {
        let started = Arc::new(AtomicBool::new(false));
        let copy = Self {
            config: Arc::clone(&self.config),
            verification: self.verification,
            started: Some(Arc::clone(&started)),
        };
        (copy, started)
    }
}

impl<S> MakeTlsConnect<S> for RustlsConnector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = TlsError;

    /// A connector for `domain`, the host as configured: an IP address is
    /// checked against the certificate's IP addresses, anything else is a
    /// DNS name (also sent as SNI).
    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, TlsError> {
        // The driver asks with an empty domain for a Unix socket, where the
        // server declines TLS before any handshake: failing here would
        // break `prefer` over a socket, so the handshake itself fails, if
        // it is ever attempted.
        let server_name = if domain.is_empty() {
            None
        } else {
            Some(ServerName::try_from(domain.to_owned()).map_err(TlsError::new)?)
        };
        Ok(RustlsConnect {
            config: Arc::clone(&self.config),
            server_name,
            started: self.started.clone(),
        })
    }
}

/// One handshake to one host, as [`RustlsConnector`] makes it for the
/// driver.
pub struct RustlsConnect {
    config: Arc<ClientConfig>,
    server_name: Option<ServerName<'static>>,
    started: Option<Arc<AtomicBool>>,
}

impl fmt::Debug for RustlsConnect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RustlsConnect")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    // A boxed error, so that a socket failure stays a plain `io::Error`
    // while a TLS failure is a `TlsError`.
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<RustlsStream<S>, BoxError>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        if let Some(started) = &self.started {
            started.store(true, Ordering::Release);
        }
        Box::pin(async move {
            let Some(server_name) = self.server_name else {
                return Err(TlsError::new(
                    "no host name to check the server's certificate against",
                )
                .into());
            };
            tokio_rustls::TlsConnector::from(self.config)
                .connect(server_name, stream)
                .await
                .map(|stream| RustlsStream {
                    inner: Box::new(stream),
                })
                .map_err(handshake_error)
        })
    }
}

/// tokio-rustls reports rustls' errors inside an `io::Error`; those become
/// a [`TlsError`] over the rustls error (its text, `invalid peer
/// certificate: UnknownIssuer`, stays in the chain), other I/O errors stay
/// what they are.
fn handshake_error(error: io::Error) -> BoxError {
    if error
        .get_ref()
        .is_some_and(|inner| inner.is::<rustls::Error>())
    {
        if let Some(inner) = error.into_inner() {
            return Box::new(TlsError::new(inner));
        }
        // Unreachable: `get_ref` just found the inner error.
        return Box::new(TlsError::new("tls handshake failed"));
    }
    Box::new(error)
}

/// A rustls failure after the handshake (an alert, a bad record): the
/// driver only carries `io::Error`s from a stream, so the rustls error goes
/// inside one, marked as a [`TlsError`], with a kind that says the session
/// is over. tokio-rustls' own kind, `InvalidData`, would read as the
/// driver's refusal to encode a value on a sound connection.
///
/// It matters at connect time too: with TLS 1.3 the client's handshake is
/// over before the server judges the client certificate, so a refused or
/// missing certificate arrives as an alert on the first read.
pub(super) fn session_error(error: io::Error) -> io::Error {
    if !error
        .get_ref()
        .is_some_and(|inner| inner.is::<rustls::Error>())
    {
        return error;
    }
    match error.into_inner() {
        Some(inner) => io::Error::new(io::ErrorKind::ConnectionAborted, TlsError::new(inner)),
        // Unreachable: `get_ref` just found the inner error.
        None => io::Error::from(io::ErrorKind::ConnectionAborted),
    }
}

/// A TLS session with the server, as the driver reads and writes it.
pub struct RustlsStream<S> {
    // Boxed: rustls' connection state is large, and the driver moves the
    // stream around.
    inner: Box<tokio_rustls::client::TlsStream<S>>,
}

impl<S> fmt::Debug for RustlsStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RustlsStream").finish_non_exhaustive()
    }
}

impl<S> TlsStream for RustlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    /// `tls-server-end-point` of the server's certificate, or none when its
    /// signature algorithm names no usable hash (see RFC 5929 §4.1).
    fn channel_binding(&self) -> ChannelBinding {
        self.end_point()
            .map_or_else(ChannelBinding::none, ChannelBinding::tls_server_end_point)
    }
}

impl<S> RustlsStream<S> {
    /// The ALPN protocol the server agreed to.
    #[cfg(test)]
    pub(super) fn alpn_protocol(&self) -> Option<&[u8]> {
        self.inner.get_ref().1.alpn_protocol()
    }

    /// The `tls-server-end-point` value of the server's end-entity
    /// certificate.
    pub(super) fn end_point(&self) -> Option<Vec<u8>> {
        let (_, connection) = self.inner.get_ref();
        connection
            .peer_certificates()
            .and_then(|certs| certs.first())
            .and_then(|cert| tls_server_end_point(cert))
    }
}

impl<S> AsyncRead for RustlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner)
            .poll_read(cx, buf)
            .map_err(session_error)
    }
}

impl<S> AsyncWrite for RustlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.inner)
            .poll_write(cx, buf)
            .map_err(session_error)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.inner)
            .poll_write_vectored(cx, bufs)
            .map_err(session_error)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner)
            .poll_flush(cx)
            .map_err(session_error)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner)
            .poll_shutdown(cx)
            .map_err(session_error)
    }
}
