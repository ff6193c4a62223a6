//! [`ChannelBinding`]: whether SCRAM authentication binds to the TLS
//! channel, with libpq's names.

use crate::config::libpq_enum::libpq_enum;

libpq_enum! {
    /// Whether SCRAM authentication is bound to the TLS channel
    /// (`SCRAM-SHA-256-PLUS`), as libpq's `channel_binding`.
    ///
    /// Channel binding proves that the server that checked the password is
    /// the one at the other end of the TLS connection, which defeats a man
    /// in the middle even without certificate checks. It needs TLS and a
    /// role that authenticates with SCRAM (`password_encryption =
    /// scram-sha-256`, a `scram-sha-256` rule in `pg_hba.conf`).
    ///
    /// ```
    /// use uno_db_core::ChannelBinding;
    ///
    /// assert_eq!("require".parse::<ChannelBinding>()?, ChannelBinding::Require);
    /// # Ok::<(), uno_db_core::Error>(())
    /// ```
    pub enum ChannelBinding ("channel_binding", "`disable`, `prefer` or `require`") {
        /// Never use channel binding.
        Disable = "disable",
        /// Use it when the connection is encrypted and the server offers it.
        #[default]
        Prefer = "prefer",
        /// Fail unless the server authenticates with channel binding: no
        /// plaintext, no trust or password authentication.
        Require = "require",
    }
}

impl From<ChannelBinding> for tokio_postgres::config::ChannelBinding {
    fn from(binding: ChannelBinding) -> Self {
        match binding {
            ChannelBinding::Disable => Self::Disable,
            ChannelBinding::Prefer => Self::Prefer,
            ChannelBinding::Require => Self::Require,
        }
    }
}
