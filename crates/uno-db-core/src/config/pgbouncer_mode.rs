//! [`PgBouncerMode`]: whether a PgBouncer sits between the pool and the
//! server, and in which pooling mode.

use crate::config::libpq_enum::libpq_enum;

libpq_enum! {
    /// The pooling mode of a PgBouncer between the pool and the server.
    ///
    /// In `transaction` mode PgBouncer hands each transaction (each
    /// statement, outside one) to whichever server connection is free, so
    /// nothing may outlive a transaction on a server connection: no named
    /// prepared statement is kept (the statement cache is off and
    /// statements go as the unnamed statement, their parameter types
    /// described once per engine inside a transaction), and the settings
    /// that would be session state (`schema`, `set_role`,
    /// `statement_timeout`, `options`) are refused by validation: set them
    /// on the role (`ALTER ROLE ... SET ...`) or use session mode.
    ///
    /// ```
    /// use uno_db_core::{ConnectionConfig, PgBouncerMode};
    ///
    /// let config: ConnectionConfig =
    ///     "postgresql://app@bouncer:6432/orders?pgbouncer_mode=transaction".parse()?;
    /// assert_eq!(config.pgbouncer_mode(), PgBouncerMode::Transaction);
    /// assert!("postgresql://app@bouncer:6432/orders?pgbouncer_mode=transaction&schema=app"
    ///     .parse::<ConnectionConfig>()
    ///     .is_err());
    /// # Ok::<(), uno_db_core::Error>(())
    /// ```
    pub enum PgBouncerMode ("pgbouncer_mode", "`none`, `session` or `transaction`") {
        /// No PgBouncer, or one the pool need not know about.
        #[default]
        None = "none",
        /// PgBouncer in session mode: a client keeps its server connection,
        /// so everything works as with a direct connection.
        Session = "session",
        /// PgBouncer in transaction mode: a server connection is the
        /// client's only for one transaction.
        Transaction = "transaction",
    }
}

impl PgBouncerMode {
    /// Whether a server connection may change between two transactions of
    /// one pooled connection, so that no server-side state may outlive a
    /// transaction.
    #[must_use]
    pub fn shares_server_connections(self) -> bool {
        self == Self::Transaction
    }
}
