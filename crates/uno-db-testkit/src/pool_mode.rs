//! When PgBouncer gives a server connection back to its pool.

/// PgBouncer's `pool_mode`: when a client's server connection goes back to the pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PoolMode {
    /// When the client disconnects: session state (prepared statements, `SET`, temporary
    /// tables, advisory locks) behaves as on a direct connection.
    Session,
    /// After each transaction: consecutive transactions of one client may run on different
    /// server connections, so session state does not carry over reliably. The mode drivers
    /// most often meet in production, and the default here.
    #[default]
    Transaction,
    /// After each statement: multi-statement transactions are refused.
    Statement,
}

impl PoolMode {
    /// The value in `pgbouncer.ini` (and in the admin console's `SHOW CONFIG`):
    /// `session`, `transaction` or `statement`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Transaction => "transaction",
            Self::Statement => "statement",
        }
    }
}
