//! How a transaction begins.

use std::fmt;
use std::time::Duration;

/// The isolation level of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IsolationLevel {
    /// `READ UNCOMMITTED` (`PostgreSQL` treats it as `READ COMMITTED`).
    ReadUncommitted,
    /// `READ COMMITTED`, the server's default.
    ReadCommitted,
    /// `REPEATABLE READ`.
    RepeatableRead,
    /// `SERIALIZABLE`: may fail with 40001; retry the whole transaction.
    Serializable,
}

impl fmt::Display for IsolationLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ReadUncommitted => "READ UNCOMMITTED",
            Self::ReadCommitted => "READ COMMITTED",
            Self::RepeatableRead => "REPEATABLE READ",
            Self::Serializable => "SERIALIZABLE",
        })
    }
}

/// Options for beginning a transaction or session. The default is the
/// server's default isolation level, read-write, not deferrable.
///
/// ```
/// use uno_db_core::{IsolationLevel, TransactionOptions};
///
/// let options = TransactionOptions::new()
///     .isolation(IsolationLevel::Serializable)
///     .read_only(true)
///     .deferrable(true);
/// assert_eq!(
///     options.begin_statement(),
///     "BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE"
/// );
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TransactionOptions {
    isolation: Option<IsolationLevel>,
    read_only: bool,
    deferrable: bool,
    query_timeout: Option<Duration>,
}

impl TransactionOptions {
    /// The defaults: server isolation level, read-write, not deferrable.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the isolation level.
    #[must_use]
    pub fn isolation(mut self, level: IsolationLevel) -> Self {
        self.isolation = Some(level);
        self
    }

    /// Makes the transaction read-only (or read-write).
    #[must_use]
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Makes the transaction deferrable (meaningful for serializable
    /// read-only transactions).
    #[must_use]
    pub fn deferrable(mut self, deferrable: bool) -> Self {
        self.deferrable = deferrable;
        self
    }

    /// Limits every statement of this transaction to `limit` on the
    /// client's side, instead of the engine's `query_timeout`: a statement
    /// still running then fails with
    /// [`QueryTimeout`](crate::ErrorKind::QueryTimeout), is cancelled on
    /// the server, and the connection is discarded.
    #[must_use]
    pub fn query_timeout(mut self, limit: Duration) -> Self {
        self.query_timeout = Some(limit);
        self
    }

    /// The transaction's own statement limit, if set (else the engine's
    /// `query_timeout` applies).
    #[must_use]
    pub fn statement_limit(&self) -> Option<Duration> {
        self.query_timeout
    }

    /// The isolation level, if set.
    #[must_use]
    pub fn get_isolation(&self) -> Option<IsolationLevel> {
        self.isolation
    }

    /// Whether the transaction is read-only.
    #[must_use]
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Whether the transaction is deferrable.
    #[must_use]
    pub fn is_deferrable(&self) -> bool {
        self.deferrable
    }

    /// The `BEGIN` statement both backends send.
    #[must_use]
    pub fn begin_statement(&self) -> String {
        let mut modes = Vec::new();
        if let Some(level) = self.isolation {
            modes.push(format!("ISOLATION LEVEL {level}"));
        }
        if self.read_only {
            modes.push("READ ONLY".to_owned());
        }
        if self.deferrable {
            modes.push("DEFERRABLE".to_owned());
        }
        if modes.is_empty() {
            "BEGIN".to_owned()
        } else {
            format!("BEGIN {}", modes.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn begin_statements() {
        assert_eq!(TransactionOptions::new().begin_statement(), "BEGIN");
        assert_eq!(
            TransactionOptions::new()
                .isolation(IsolationLevel::RepeatableRead)
                .begin_statement(),
            "BEGIN ISOLATION LEVEL REPEATABLE READ"
        );
        assert_eq!(
            TransactionOptions::new().read_only(true).begin_statement(),
            "BEGIN READ ONLY"
        );
    }
}
