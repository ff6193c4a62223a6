//! Credentials that change while an engine runs: what a credential
//! provider is asked ([`CredentialRequest`]). The providers themselves are
//! [`blocking::CredentialProvider`](crate::blocking::CredentialProvider)
//! and [`nonblocking::CredentialProvider`](crate::nonblocking::CredentialProvider).
//!
//! An engine with a provider asks it for the password (or token) of every
//! new physical connection, so rotated passwords, IAM tokens and Vault
//! leases work without recreating the engine. When the server refuses the
//! password, the engine asks once more with
//! [`after_auth_failure`](CredentialRequest::after_auth_failure) set (a
//! caching provider should fetch afresh) and tries again before returning
//! the error.

use std::fmt;

use crate::config::ConnectionConfig;

/// What a credential provider is asked for: the password of `role` for a
/// connection to `database` on `hosts`.
#[derive(Clone, PartialEq, Eq)]
pub struct CredentialRequest {
    role: String,
    database: String,
    hosts: Vec<String>,
    port: u16,
    after_auth_failure: bool,
}

impl CredentialRequest {
    /// The request for a new connection of `config`.
    #[must_use]
    pub fn new(config: &ConnectionConfig, after_auth_failure: bool) -> Self {
        Self {
            role: config.role().to_owned(),
            database: config.database().to_owned(),
            hosts: config.hosts().to_vec(),
            port: config.port(),
            after_auth_failure,
        }
    }

    /// The login role.
    #[must_use]
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The database.
    #[must_use]
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The hosts the connection may go to, in order.
    #[must_use]
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// The port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server just refused the password this provider gave:
    /// a provider that caches should fetch a fresh one.
    #[must_use]
    pub fn after_auth_failure(&self) -> bool {
        self.after_auth_failure
    }
}

impl fmt::Debug for CredentialRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialRequest")
            .field("role", &self.role)
            .field("database", &self.database)
            .field("hosts", &self.hosts)
            .field("port", &self.port)
            .field("after_auth_failure", &self.after_auth_failure)
            .finish()
    }
}
