//! The TLS connector both backends hand to the driver (feature `tls`):
//! rustls on ring, with libpq's meaning of `sslmode`, `sslrootcert`,
//! `sslcert` and `sslkey`.
//!
//! - [`TlsSettings`]: what the kernel takes from the configuration
//!   ([`Verification`] from `sslmode`, [`RootCerts`], the client
//!   certificate and key files).
//! - [`RustlsConnector::new`] reads every file once, when the
//!   configuration is built, and reports every problem it finds as a
//!   [`TlsFileProblem`]; the connector then never touches the file system.
//! - [`RustlsConnector`] is the driver's `MakeTlsConnect`: handshake and
//!   certificate failures come back as [`TlsError`](crate::TlsError) (so
//!   that [`from_connect`](super::from_connect) classifies them as
//!   [`ErrorKind::Tls`](crate::ErrorKind::Tls)), socket failures as plain
//!   `io::Error`; the stream offers `tls-server-end-point` channel binding
//!   for SCRAM-SHA-256-PLUS.

mod channel_binding;
mod connector;
mod files;
mod verifier;

#[cfg(test)]
mod handshake_tests;

use std::path::PathBuf;

pub use connector::{RustlsConnect, RustlsConnector, RustlsStream};
pub use files::TlsFileProblem;

/// How the server's certificate is checked, from libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// `allow`, `prefer`, `require`: encrypt, but accept any server
    /// certificate. The handshake's signatures are still verified, so the
    /// session is bound to the certificate's key; who holds that key is not
    /// checked.
    None,
    /// `verify-ca`: the certificate must chain to a trusted root; the host
    /// name is not checked.
    Chain,
    /// `verify-full`: the certificate must chain to a trusted root and name
    /// the host connected to.
    Full,
}

/// Where the trusted root certificates come from (libpq's `sslrootcert`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCerts {
    /// Every certificate in this PEM file.
    File(PathBuf),
    /// The machine's trusted roots (`sslrootcert=system`).
    System,
}

/// What the TLS layer needs, taken from the configuration by the kernel.
///
/// Taken as given: the kernel applies libpq's rules between settings (for
/// example `require` with a root certificate meaning `verify-ca`) before
/// building it.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// How the server's certificate is checked.
    pub verification: Verification,
    /// The trusted roots; required by [`Verification::Chain`] and
    /// [`Verification::Full`], ignored by [`Verification::None`].
    pub root_certs: Option<RootCerts>,
    /// The client certificate chain (PEM, `sslcert`), end-entity first;
    /// set together with [`client_key`](Self::client_key).
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key (unencrypted PEM: PKCS#8,
    /// PKCS#1 or SEC1; `sslkey`).
    pub client_key: Option<PathBuf>,
}
