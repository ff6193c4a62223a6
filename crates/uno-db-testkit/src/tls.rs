//! TLS for a throwaway cluster: certificates made at start, the server's settings, and the
//! files a client needs.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};

use crate::TestkitError;
use crate::server_owner::ServerOwner;

/// The role that must log in with a client certificate.
pub(crate) const CERT_ROLE: &str = "cert_user";

/// The role that may only connect over TLS.
pub(crate) const SSL_ONLY_ROLE: &str = "ssl_only_user";

/// The password of [`SSL_ONLY_ROLE`] (asked for only on a `password_auth(true)` cluster).
pub(crate) const SSL_ONLY_PASSWORD: &str = "ssl-only-secret";

/// The server's files, in the data directory (names relative to it, as `postgresql.conf`
/// takes them).
pub(crate) const SERVER_CERT_FILE: &str = "server.crt";
pub(crate) const SERVER_KEY_FILE: &str = "server.key";
pub(crate) const SERVER_CA_FILE: &str = "root.crt";

/// The directory, in the cluster's directory, holding the client-side files.
const CLIENT_DIR: &str = "client-tls";

/// TLS options for a throwaway cluster, given to
/// [`TestClusterBuilder::tls`](crate::TestClusterBuilder::tls).
///
/// The default server certificate is for `localhost` and `127.0.0.1`, so a client checking
/// the host name (`sslmode=verify-full`) accepts it for either.
///
/// ```no_run
/// use uno_db_testkit::{TestCluster, TlsOptions};
///
/// # fn main() -> Result<(), uno_db_testkit::TestkitError> {
/// // A server whose certificate names another host: verify-full to 127.0.0.1 must fail.
/// let cluster = TestCluster::builder()
///     .tls(TlsOptions::default().server_names(["db.other.example"]))
///     .start()?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct TlsOptions {
    server_names: Vec<String>,
}

impl Default for TlsOptions {
    fn default() -> Self {
        Self {
            server_names: vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
        }
    }
}

impl TlsOptions {
    /// The names the server certificate is for (its subject alternative names), replacing
    /// the default `["localhost", "127.0.0.1"]`. A name that parses as an IP address becomes
    /// an IP address entry, anything else a DNS name entry. The first name is also the
    /// certificate's common name.
    pub fn server_names<I>(mut self, names: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.server_names = names.into_iter().map(Into::into).collect();
        self
    }

    /// The names the server certificate is for.
    pub fn names(&self) -> &[String] {
        &self.server_names
    }
}

/// The client side of a TLS cluster: where its certificate files are and which roles it
/// made for TLS tests. From [`TestCluster::tls`](crate::TestCluster::tls).
///
/// The files are PEM and are removed with the cluster. They belong to the user the tests run
/// as, and the key is readable by that user only (mode 0600), as libpq requires.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    ca_cert: PathBuf,
    other_ca_cert: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

impl TlsFiles {
    /// The certificate of the CA that signed the server's and the client's certificates:
    /// a client's trust root (libpq's `sslrootcert`).
    pub fn ca_cert(&self) -> &Path {
        &self.ca_cert
    }

    /// The certificate of another CA, which signed nothing the cluster uses: a trust root
    /// with which verifying the server must fail ("unknown CA").
    pub fn other_ca_cert(&self) -> &Path {
        &self.other_ca_cert
    }

    /// A client certificate for [`cert_role`](Self::cert_role) (its common name), signed by
    /// the cluster's CA (libpq's `sslcert`).
    pub fn client_cert(&self) -> &Path {
        &self.client_cert
    }

    /// The private key of [`client_cert`](Self::client_cert), PKCS#8 (libpq's `sslkey`).
    pub fn client_key(&self) -> &Path {
        &self.client_key
    }

    /// The role that must authenticate with a client certificate (`cert_user`): it can
    /// connect only over TLS, presenting [`client_cert`](Self::client_cert).
    pub fn cert_role(&self) -> &'static str {
        CERT_ROLE
    }

    /// A role that may only connect over TLS (`ssl_only_user`): a plaintext connection is
    /// rejected by `pg_hba.conf`. Over TLS it is trusted, or on a cluster with
    /// [`password_auth(true)`](crate::TestClusterBuilder::password_auth) it gives
    /// [`ssl_only_password`](Self::ssl_only_password) (`scram-sha-256`).
    pub fn ssl_only_role(&self) -> &'static str {
        SSL_ONLY_ROLE
    }

    /// The password of [`ssl_only_role`](Self::ssl_only_role).
    pub fn ssl_only_password(&self) -> &'static str {
        SSL_ONLY_PASSWORD
    }
}

/// Makes the certificates and writes the server's files into `data_dir` (given to `owner`,
/// key mode 0600) and the client's into `<cluster_dir>/client-tls` (the current user's).
pub(crate) fn write_tls_files(
    cluster_dir: &Path,
    data_dir: &Path,
    owner: ServerOwner,
    options: &TlsOptions,
) -> Result<TlsFiles, TestkitError> {
    let ca = Authority::new("uno-db-testkit CA")?;
    let other_ca = Authority::new("uno-db-testkit unrelated CA")?;

    let server_key = new_key("the server")?;
    let mut server_params = CertificateParams::new(options.server_names.clone())
        .map_err(|source| cert_error("the server certificate's names", source))?;
    let common_name = options
        .server_names
        .first()
        .map_or("uno-db-testkit server", String::as_str);
    server_params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    server_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server_params.use_authority_key_identifier_extension = true;
    let server_cert = server_params
        .signed_by(&server_key, &ca.cert, &ca.key)
        .map_err(|source| cert_error("signing the server certificate", source))?;

    let client_key = new_key("the client")?;
    let mut client_params = CertificateParams::default();
    client_params.distinguished_name = rcgen::DistinguishedName::new();
    client_params
        .distinguished_name
        .push(DnType::CommonName, CERT_ROLE);
    client_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    client_params.use_authority_key_identifier_extension = true;
    let client_cert = client_params
        .signed_by(&client_key, &ca.cert, &ca.key)
        .map_err(|source| cert_error("signing the client certificate", source))?;

    // The server's side, owned by the server's user.
    let ca_pem = ca.cert.pem();
    write_file(
        &data_dir.join(SERVER_CERT_FILE),
        &server_cert.pem(),
        0o644,
        owner,
    )?;
    write_file(
        &data_dir.join(SERVER_KEY_FILE),
        &server_key.serialize_pem(),
        0o600,
        owner,
    )?;
    write_file(&data_dir.join(SERVER_CA_FILE), &ca_pem, 0o644, owner)?;

    // The client's side, owned by us.
    let client_dir = cluster_dir.join(CLIENT_DIR);
    DirBuilder::new()
        .mode(0o700)
        .create(&client_dir)
        .map_err(|source| TestkitError::io(format!("creating {}", client_dir.display()), source))?;
    let files = TlsFiles {
        ca_cert: client_dir.join("ca.crt"),
        other_ca_cert: client_dir.join("other-ca.crt"),
        client_cert: client_dir.join("client.crt"),
        client_key: client_dir.join("client.key"),
    };
    let me = ServerOwner::CurrentUser;
    write_file(&files.ca_cert, &ca_pem, 0o644, me)?;
    write_file(&files.other_ca_cert, &other_ca.cert.pem(), 0o644, me)?;
    write_file(&files.client_cert, &client_cert.pem(), 0o644, me)?;
    write_file(&files.client_key, &client_key.serialize_pem(), 0o600, me)?;
    Ok(files)
}

/// The `postgresql.conf` lines that switch TLS on with the files [`write_tls_files`] wrote.
pub(crate) fn server_conf_lines() -> String {
    format!(
        "ssl = on\n\
         ssl_cert_file = '{SERVER_CERT_FILE}'\n\
         ssl_key_file = '{SERVER_KEY_FILE}'\n\
         ssl_ca_file = '{SERVER_CA_FILE}'\n"
    )
}

/// A certificate authority: its self-signed certificate and its key.
struct Authority {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Authority {
    fn new(name: &str) -> Result<Self, TestkitError> {
        let key = new_key(name)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params
            .self_signed(&key)
            .map_err(|source| cert_error(&format!("signing the certificate of {name}"), source))?;
        Ok(Self { cert, key })
    }
}

/// A new ECDSA P-256 key.
fn new_key(whose: &str) -> Result<KeyPair, TestkitError> {
    KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(|source| cert_error(&format!("generating a key for {whose}"), source))
}

fn cert_error(action: &str, source: rcgen::Error) -> TestkitError {
    TestkitError::Certificate {
        action: action.to_owned(),
        source: Box::new(source),
    }
}

/// Writes `contents` to a new file `path` created with `mode`, then gives it to `owner`.
fn write_file(
    path: &Path,
    contents: &str,
    mode: u32,
    owner: ServerOwner,
) -> Result<(), TestkitError> {
    let io_error = |source| TestkitError::io(format!("writing {}", path.display()), source);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io_error)?;
    file.write_all(contents.as_bytes()).map_err(io_error)?;
    drop(file);
    owner.chown(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_are_localhost_and_its_address() {
        assert_eq!(TlsOptions::default().names(), ["localhost", "127.0.0.1"]);
        assert_eq!(
            TlsOptions::default()
                .server_names(["db.other.example"])
                .names(),
            ["db.other.example"]
        );
    }
}
