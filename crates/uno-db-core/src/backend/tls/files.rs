//! Reading the TLS files (`sslrootcert`, `sslcert`, `sslkey`) once, at
//! configuration time, and reporting every problem with them.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::{RootCerts, TlsSettings, Verification};

/// A problem with a TLS file or setting, reported when the configuration
/// is built, before any connection is attempted.
///
/// Never quotes a file's contents: a key file may hold a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFileProblem {
    /// The libpq parameter at fault: `"sslrootcert"`, `"sslcert"` or
    /// `"sslkey"` (and `"sslmode"` should rustls refuse its own default
    /// protocol versions, which it does not with ring).
    pub param: &'static str,
    /// The parameter's value as given (a path, or `system`); empty when the
    /// problem is that it was not given.
    pub value: String,
    /// What is wrong, for example `cannot be read: No such file or
    /// directory (os error 2)` or `holds no PEM certificate`.
    pub rule: String,
}

impl TlsFileProblem {
    pub(super) fn new(
        param: &'static str,
        value: impl Into<String>,
        rule: impl Into<String>,
    ) -> Self {
        Self {
            param,
            value: value.into(),
            rule: rule.into(),
        }
    }

    fn at(param: &'static str, path: &Path, rule: impl Into<String>) -> Self {
        Self::new(param, path.display().to_string(), rule)
    }
}

/// Rendered as a [`ConfigViolation`](crate::ConfigViolation) is:
/// `sslkey = "/etc/app/client.key": is encrypted; ...`.
impl fmt::Display for TlsFileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {:?}: {}", self.param, self.value, self.rule)
    }
}

impl std::error::Error for TlsFileProblem {}

/// The client certificate chain and its key, checked to match.
pub(super) type ClientIdentity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The trusted roots `settings` asks for: `None` for
/// [`Verification::None`], which checks no chain and so reads no root file
/// (the kernel has already turned `require` with a root file into
/// [`Verification::Chain`], as libpq does).
pub(super) fn load_roots(
    settings: &TlsSettings,
    problems: &mut Vec<TlsFileProblem>,
) -> Option<Arc<RootCertStore>> {
    let mode = match settings.verification {
        Verification::None => return None,
        Verification::Chain => "verify-ca",
        Verification::Full => "verify-full",
    };
    let mut roots = RootCertStore::empty();
    match &settings.root_certs {
        None => problems.push(TlsFileProblem::new(
            "sslrootcert",
            "",
            format!(
                "sslmode {mode} needs a root certificate: set sslrootcert to a PEM file or `system`"
            ),
        )),
        Some(RootCerts::File(path)) => add_root_file(&mut roots, path, problems),
        Some(RootCerts::System) => add_system_roots(&mut roots, problems),
    }
    Some(Arc::new(roots))
}

fn add_root_file(roots: &mut RootCertStore, path: &Path, problems: &mut Vec<TlsFileProblem>) {
    let Some(certs) = read_certificates("sslrootcert", path, problems) else {
        return;
    };
    for (index, cert) in certs.into_iter().enumerate() {
        if let Err(e) = roots.add(cert) {
            problems.push(TlsFileProblem::at(
                "sslrootcert",
                path,
                format!("certificate #{} is not a usable root: {e}", index + 1),
            ));
        }
    }
}

fn add_system_roots(roots: &mut RootCertStore, problems: &mut Vec<TlsFileProblem>) {
    let native = rustls_native_certs::load_native_certs();
    // The loader reports unreadable stores alongside what it found; a
    // machine with some usable roots is fine, as libpq finds it.
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        let mut rule = "no trusted root certificate found on this machine".to_owned();
        if let Some(first) = native.errors.first() {
            rule.push_str(&format!(" ({first})"));
        }
        problems.push(TlsFileProblem::new("sslrootcert", "system", rule));
    }
}

/// The client certificate and key, when both are given and usable.
pub(super) fn load_client_identity(
    settings: &TlsSettings,
    provider: &CryptoProvider,
    problems: &mut Vec<TlsFileProblem>,
) -> Option<ClientIdentity> {
    // One of the two alone must name a file holding both (a combined PEM,
    // as many tools write): a certificate needs its key and the reverse.
    let (cert_path, cert_param, key_path, key_param) =
        match (&settings.client_cert, &settings.client_key) {
            (None, None) => return None,
            (Some(cert), Some(key)) => (cert, "sslcert", key, "sslkey"),
            (Some(cert), None) => (cert, "sslcert", cert, "sslcert"),
            (None, Some(key)) => (key, "sslkey", key, "sslkey"),
        };
    // Both are read whatever happens to the first, so that one call
    // reports every problem.
    let chain = read_certificates(cert_param, cert_path, problems);
    let key = read_private_key(key_param, key_path, problems);
    let (chain, key) = (chain?, key?);
    check_key_matches(&chain, &key, cert_path, key_path, provider, problems)?;
    Some((chain, key))
}

/// Every certificate of a PEM file; `None` (with a problem) when the file
/// cannot be read, is not PEM or holds none.
fn read_certificates(
    param: &'static str,
    path: &Path,
    problems: &mut Vec<TlsFileProblem>,
) -> Option<Vec<CertificateDer<'static>>> {
    let bytes = read_file(param, path, problems)?;
    match CertificateDer::pem_slice_iter(&bytes).collect::<Result<Vec<_>, _>>() {
        Ok(certs) if certs.is_empty() => {
            problems.push(TlsFileProblem::at(param, path, "holds no PEM certificate"));
            None
        }
        Ok(certs) => Some(certs),
        Err(e) => {
            problems.push(TlsFileProblem::at(
                param,
                path,
                format!("is not valid PEM: {e}"),
            ));
            None
        }
    }
}

fn read_private_key(
    param: &'static str,
    path: &Path,
    problems: &mut Vec<TlsFileProblem>,
) -> Option<PrivateKeyDer<'static>> {
    let bytes = read_file(param, path, problems)?;
    // rustls reads no encrypted key and would only say "no items found";
    // the markers of both encrypted forms (PKCS#8, and OpenSSL's legacy
    // PKCS#1 with a Proc-Type header) let us say why.
    if contains(&bytes, b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || contains(&bytes, b"Proc-Type: 4,ENCRYPTED")
    {
        problems.push(TlsFileProblem::at(
            param,
            path,
            "is encrypted; uno-db reads only unencrypted PEM keys (PKCS#8, PKCS#1 or SEC1)",
        ));
        return None;
    }
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => Some(key),
        Err(pem::Error::NoItemsFound) => {
            problems.push(TlsFileProblem::at(
                param,
                path,
                "holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
            ));
            None
        }
        // The parser's other errors name a marker line or a base64 fault,
        // never the key's bytes.
        Err(e) => {
            problems.push(TlsFileProblem::at(
                param,
                path,
                format!("is not valid PEM: {e}"),
            ));
            None
        }
    }
}

fn check_key_matches(
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
    problems: &mut Vec<TlsFileProblem>,
) -> Option<()> {
    let signing_key = match provider.key_provider.load_private_key(key.clone_key()) {
        Ok(signing_key) => signing_key,
        Err(e) => {
            problems.push(TlsFileProblem::at(
                "sslkey",
                key_path,
                format!("is not a private key uno-db can sign with: {e}"),
            ));
            return None;
        }
    };
    match CertifiedKey::new(chain.to_vec(), signing_key).keys_match() {
        // A key that cannot tell its public half is left to the server to
        // judge, as rustls itself does.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Some(())
        }
        Err(rustls::Error::InconsistentKeys(_)) => {
            problems.push(TlsFileProblem::at(
                "sslkey",
                key_path,
                format!(
                    "does not match the certificate in sslcert `{}`",
                    cert_path.display()
                ),
            ));
            None
        }
        Err(e) => {
            problems.push(TlsFileProblem::at(
                "sslcert",
                cert_path,
                format!("its first certificate cannot be parsed: {e}"),
            ));
            None
        }
    }
}

fn read_file(
    param: &'static str,
    path: &Path,
    problems: &mut Vec<TlsFileProblem>,
) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            problems.push(TlsFileProblem::at(
                param,
                path,
                format!("cannot be read: {e}"),
            ));
            None
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}
