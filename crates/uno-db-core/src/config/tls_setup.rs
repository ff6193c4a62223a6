//! What the TLS layer is given, taken from the configuration with libpq's
//! rules: the verification a mode implies, the trusted roots and the
//! client identity (libpq's default files under `~/.postgresql` included),
//! and the check of all of it when a configuration is built.

#[cfg(feature = "tls")]
use std::path::PathBuf;

#[cfg(feature = "tls")]
use crate::backend::{RootCerts, RustlsConnector, TlsSettings, Verification};
#[cfg(not(feature = "tls"))]
use crate::config::ChannelBinding;
use crate::config::SslMode;
use crate::config::table::Inner;
use crate::config::validate::{Context, Violations};

/// The `sslrootcert` value that names the platform's trusted roots.
pub(crate) const SYSTEM_ROOTS: &str = "system";

/// Reports what keeps the TLS settings of `c` from working in this build:
/// without the `tls` feature, any mode that insists on TLS; with it, every
/// unreadable, malformed or mismatched file.
pub(crate) fn check_build(at: &Context, mode: SslMode, c: &Inner, out: &mut Violations) {
    #[cfg(not(feature = "tls"))]
    {
        const NO_TLS: &str = "needs TLS, which this build of uno-db leaves out: enable the \
                              `tls` feature of the `uno-db` crate (on by default) or of \
                              `uno-db-core`";
        if mode.requires_tls() {
            out.push(at, mode.as_str(), NO_TLS);
        }
        if c.channel_binding == ChannelBinding::Require && mode != SslMode::Disable {
            let at = Context {
                field: "channel_binding",
                secret: false,
            };
            out.push(&at, "require", NO_TLS);
        }
    }
    #[cfg(feature = "tls")]
    {
        let _ = at;
        if mode == SslMode::Disable {
            return;
        }
        if let Err(problems) = RustlsConnector::new(&settings(c)) {
            for problem in problems {
                let field = match problem.param {
                    "sslrootcert" => "ssl_root_cert",
                    "sslcert" => "ssl_cert",
                    "sslkey" => "ssl_key",
                    _ => "ssl_mode",
                };
                let at = Context {
                    field,
                    secret: false,
                };
                out.push(&at, problem.value, &problem.rule);
            }
        }
    }
}

/// The TLS layer's settings for `c`.
#[cfg(feature = "tls")]
pub(crate) fn settings(c: &Inner) -> TlsSettings {
    let root_certs = match c.ssl_root_cert.as_deref() {
        Some(SYSTEM_ROOTS) => Some(RootCerts::System),
        Some(path) => Some(RootCerts::File(PathBuf::from(path))),
        None => default_file("root.crt").map(RootCerts::File),
    };
    let verification = match c.ssl_mode {
        SslMode::VerifyFull => Verification::Full,
        SslMode::VerifyCa => Verification::Chain,
        // libpq: "if a root CA file exists, the behavior of
        // sslmode=require will be the same as that of verify-ca".
        SslMode::Require if root_certs.is_some() => Verification::Chain,
        _ => Verification::None,
    };
    TlsSettings {
        root_certs: (verification != Verification::None)
            .then_some(root_certs)
            .flatten(),
        verification,
        client_cert: c
            .ssl_cert
            .as_deref()
            .map(PathBuf::from)
            .or_else(|| default_file("postgresql.crt")),
        client_key: c
            .ssl_key
            .as_deref()
            .map(PathBuf::from)
            .or_else(|| default_file("postgresql.key")),
    }
}

/// libpq's default file `~/.postgresql/<name>`, when it exists.
#[cfg(feature = "tls")]
fn default_file(name: &str) -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let path = PathBuf::from(home).join(".postgresql").join(name);
    path.exists().then_some(path)
}

impl crate::config::ConnectionConfig {
    /// The TLS connector for this configuration, its files read now.
    #[cfg(feature = "tls")]
    pub(crate) fn tls_connector(&self) -> crate::error::Result<RustlsConnector> {
        RustlsConnector::new(&settings(&self.inner)).map_err(|problems| {
            crate::error::Error::config(
                problems
                    .into_iter()
                    .map(|p| crate::ConfigViolation::new(p.param, p.value, p.rule))
                    .collect(),
            )
        })
    }

    /// The TLS connector for this configuration: none in this build.
    #[cfg(not(feature = "tls"))]
    #[allow(clippy::unnecessary_wraps)]
    pub(crate) fn tls_connector(&self) -> crate::error::Result<tokio_postgres::NoTls> {
        Ok(tokio_postgres::NoTls)
    }
}
