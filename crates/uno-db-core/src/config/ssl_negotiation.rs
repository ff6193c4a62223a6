//! [`SslNegotiation`]: how TLS is started, with libpq's names.

use crate::config::libpq_enum::libpq_enum;

libpq_enum! {
    /// How TLS is started, as libpq's `sslnegotiation` (PostgreSQL 17).
    ///
    /// `direct` saves a round trip but needs a PostgreSQL 17 server (or a
    /// proxy that speaks it) and `sslmode=require` or stricter: libpq and
    /// the driver refuse it with weaker modes, because a server that does
    /// not expect TLS would see garbage.
    ///
    /// ```
    /// use uno_db_core::SslNegotiation;
    ///
    /// assert_eq!("direct".parse::<SslNegotiation>()?, SslNegotiation::Direct);
    /// # Ok::<(), uno_db_core::Error>(())
    /// ```
    pub enum SslNegotiation ("sslnegotiation", "`postgres` or `direct`") {
        /// Ask with PostgreSQL's `SSLRequest` message first (every server
        /// version).
        #[default]
        Postgres = "postgres",
        /// Start the TLS handshake at once, with ALPN `postgresql`.
        Direct = "direct",
    }
}

impl From<SslNegotiation> for tokio_postgres::config::SslNegotiation {
    fn from(negotiation: SslNegotiation) -> Self {
        match negotiation {
            SslNegotiation::Postgres => Self::Postgres,
            SslNegotiation::Direct => Self::Direct,
        }
    }
}
