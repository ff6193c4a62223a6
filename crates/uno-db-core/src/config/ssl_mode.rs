//! [`SslMode`]: whether to use TLS and what to check, with libpq's names
//! and meaning.

use crate::config::libpq_enum::libpq_enum;

libpq_enum! {
    /// Whether to use TLS and how far to trust the server, as libpq's
    /// `sslmode`. What each mode protects against:
    ///
    /// | mode | encrypted | server identity checked | protects against |
    /// |---|---|---|---|
    /// | `disable` | never | no | nothing |
    /// | `allow` | only if the server refuses plaintext | no | nothing against an active attacker |
    /// | `prefer` (default) | if the server offers TLS | no | passive eavesdropping, if the server has TLS on |
    /// | `require` | always | no (but as `verify-ca` when a root certificate is configured, as libpq does) | passive eavesdropping |
    /// | `verify-ca` | always | chain to a trusted root | eavesdropping and impersonation by anyone without a certificate from your CA |
    /// | `verify-full` | always | chain and host name | eavesdropping and impersonation |
    ///
    /// Only `verify-full` (or `verify-ca` with a private CA that signs only
    /// database servers) stops a man in the middle. Modes above `prefer`
    /// need the `tls` feature (on by default in `uno-db`).
    ///
    /// ```
    /// use uno_db_core::SslMode;
    ///
    /// assert_eq!("verify-full".parse::<SslMode>()?, SslMode::VerifyFull);
    /// assert_eq!(SslMode::Prefer.to_string(), "prefer");
    /// assert!("maybe".parse::<SslMode>().is_err());
    /// # Ok::<(), uno_db_core::Error>(())
    /// ```
    pub enum SslMode ("sslmode", "`disable`, `allow`, `prefer`, `require`, `verify-ca` or `verify-full`") {
        /// Never use TLS.
        Disable = "disable",
        /// Plaintext first; TLS only if the server refuses plaintext (its
        /// `pg_hba.conf` has only `hostssl` rules for the role).
        Allow = "allow",
        /// TLS if the server offers it; plaintext only if it refuses TLS,
        /// never after a failed handshake.
        #[default]
        Prefer = "prefer",
        /// TLS or nothing; the certificate is not checked (unless a root
        /// certificate is configured: then as `verify-ca`).
        Require = "require",
        /// TLS, with a certificate that chains to a trusted root
        /// (`sslrootcert`), for any host name.
        VerifyCa = "verify-ca",
        /// TLS, with a certificate that chains to a trusted root and names
        /// the host connected to.
        VerifyFull = "verify-full",
    }
}

impl SslMode {
    /// Whether the mode never connects without TLS.
    #[must_use]
    pub fn requires_tls(self) -> bool {
        matches!(self, Self::Require | Self::VerifyCa | Self::VerifyFull)
    }

    /// Whether the mode checks the server's certificate.
    #[must_use]
    pub fn verifies_server(self) -> bool {
        matches!(self, Self::VerifyCa | Self::VerifyFull)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const ALL: [SslMode; 6] = [
        SslMode::Disable,
        SslMode::Allow,
        SslMode::Prefer,
        SslMode::Require,
        SslMode::VerifyCa,
        SslMode::VerifyFull,
    ];

    #[test]
    fn parses_and_displays_libpq_names() {
        for mode in ALL {
            assert_eq!(mode.to_string().parse::<SslMode>().unwrap(), mode);
        }
        assert_eq!("VERIFY-CA".parse::<SslMode>().unwrap(), SslMode::VerifyCa);
    }

    #[test]
    fn unknown_modes_are_errors_naming_the_parameter() {
        let error = "maybe".parse::<SslMode>().unwrap_err();
        let violation = &error.config_violations()[0];
        assert_eq!(violation.field(), "sslmode");
        assert_eq!(violation.value(), "maybe");
        assert!(violation.rule().contains("verify-full"), "{violation:?}");
    }

    #[test]
    fn only_the_top_three_modes_insist_on_tls() {
        let strict: Vec<_> = ALL.into_iter().filter(|m| m.requires_tls()).collect();
        assert_eq!(
            strict,
            [SslMode::Require, SslMode::VerifyCa, SslMode::VerifyFull]
        );
        let checked: Vec<_> = ALL.into_iter().filter(|m| m.verifies_server()).collect();
        assert_eq!(checked, [SslMode::VerifyCa, SslMode::VerifyFull]);
    }
}
