//! [`LoadBalanceHosts`]: the order hosts are tried in, with libpq's names.

use crate::config::libpq_enum::libpq_enum;

libpq_enum! {
    /// The order in which the hosts of a configuration are tried, as
    /// libpq's `load_balance_hosts` (PostgreSQL 16).
    ///
    /// ```
    /// use uno_db_core::{ConnectionConfig, LoadBalanceHosts};
    ///
    /// let config: ConnectionConfig = "postgresql://r1,r2,r3/orders?load_balance_hosts=random".parse()?;
    /// assert_eq!(config.load_balance_hosts(), LoadBalanceHosts::Random);
    /// # Ok::<(), uno_db_core::Error>(())
    /// ```
    pub enum LoadBalanceHosts ("load_balance_hosts", "`disable` or `random`") {
        /// In the order given.
        #[default]
        Disable = "disable",
        /// In a random order, drawn for each new connection, so that
        /// connections spread over the hosts.
        Random = "random",
    }
}
