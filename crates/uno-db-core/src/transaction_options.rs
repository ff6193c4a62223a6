//! How a transaction begins.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};

/// The largest limit `PostgreSQL` takes for its time-out settings, in
/// milliseconds (`INT_MAX`, about 24.8 days).
const MAX_SERVER_LIMIT_MS: u128 = i32::MAX as u128;

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
/// server's default isolation level, read-write, not deferrable, and the
/// connection's own server-side time-outs.
///
/// Server-side limits for this transaction only
/// ([`statement_timeout`](Self::statement_timeout),
/// [`lock_timeout`](Self::lock_timeout),
/// [`idle_in_transaction_session_timeout`](Self::idle_in_transaction_session_timeout))
/// are sent as `SET LOCAL` in the same round trip as `BEGIN`
/// ([`begin_batch`](Self::begin_batch)); they end with the transaction,
/// so the pooled connection keeps its own settings afterwards.
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
    statement_timeout: Option<Duration>,
    lock_timeout: Option<Duration>,
    idle_in_transaction_timeout: Option<Duration>,
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

    /// Sets the server's `statement_timeout` for this transaction only
    /// (`SET LOCAL`): a statement of the transaction still running after
    /// `limit` is cancelled by the server and fails with SQLSTATE 57014
    /// ([`QueryTimeout`](crate::ErrorKind::QueryTimeout)); the connection
    /// stays usable, the transaction is aborted (roll it back, or back to
    /// a savepoint). `Duration::ZERO` means no limit, as in `PostgreSQL`
    /// (it lifts a `statement_timeout` of the configuration for this
    /// transaction). The value is sent in whole milliseconds, rounded up;
    /// more than `i32::MAX` milliseconds (about 24.8 days) is refused when
    /// the transaction begins (a [`Config`](crate::ErrorKind::Config)
    /// error, nothing sent).
    ///
    /// Unlike [`query_timeout`](Self::query_timeout) (the client's limit,
    /// which discards the connection), this limit is the server's.
    #[must_use]
    pub fn statement_timeout(mut self, limit: Duration) -> Self {
        self.statement_timeout = Some(limit);
        self
    }

    /// Sets the server's `lock_timeout` for this transaction only (`SET
    /// LOCAL`): a statement that waits longer than `limit` for a lock (a
    /// table lock, a row another transaction updates) fails with SQLSTATE
    /// 55P03 (`lock_not_available`,
    /// [`Database`](crate::ErrorKind::Database)) and aborts the
    /// transaction. `Duration::ZERO` means no limit; values as for
    /// [`statement_timeout`](Self::statement_timeout).
    #[must_use]
    pub fn lock_timeout(mut self, limit: Duration) -> Self {
        self.lock_timeout = Some(limit);
        self
    }

    /// Sets the server's `idle_in_transaction_session_timeout` for this
    /// transaction only (`SET LOCAL`): when the transaction sits idle (no
    /// statement running) for longer than `limit`, the server ends the
    /// whole session (SQLSTATE 25P03, `FATAL`). The connection is then
    /// lost: the next statement fails with
    /// [`Closed`](crate::ErrorKind::Closed) and the connection is
    /// discarded when returned, never handed out again. `Duration::ZERO`
    /// means no limit; values as for
    /// [`statement_timeout`](Self::statement_timeout).
    #[must_use]
    pub fn idle_in_transaction_session_timeout(mut self, limit: Duration) -> Self {
        self.idle_in_transaction_timeout = Some(limit);
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

    /// The `BEGIN` statement alone, with the transaction modes but without
    /// the server-side limits (see [`begin_batch`](Self::begin_batch),
    /// which both backends send).
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

impl TransactionOptions {
    /// What both backends send to begin the transaction, in one round trip
    /// (simple protocol): [`begin_statement`](Self::begin_statement), then
    /// a `SET LOCAL` per server-side limit set, in whole milliseconds
    /// (rounded up). Plain `BEGIN` (no mode, no limit: the common case) is
    /// borrowed, not built anew for every transaction.
    ///
    /// ```
    /// use std::time::Duration;
    /// use uno_db_core::TransactionOptions;
    ///
    /// let options = TransactionOptions::new()
    ///     .read_only(true)
    ///     .statement_timeout(Duration::from_millis(500))
    ///     .lock_timeout(Duration::ZERO);
    /// assert_eq!(
    ///     options.begin_batch()?,
    ///     "BEGIN READ ONLY; SET LOCAL statement_timeout = '500ms'; \
    ///      SET LOCAL lock_timeout = '0ms'"
    /// );
    /// # Ok::<(), uno_db_core::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Config`](crate::ErrorKind::Config) when a limit is beyond what
    /// `PostgreSQL` takes (`i32::MAX` milliseconds); the error names the
    /// setting.
    pub fn begin_batch(&self) -> Result<Cow<'static, str>> {
        // Everything but the client-side `query_timeout` shapes the text.
        let sent = Self {
            query_timeout: None,
            ..*self
        };
        if sent == Self::default() {
            return Ok(Cow::Borrowed("BEGIN"));
        }
        let mut sql = self.begin_statement();
        for (name, limit) in [
            ("statement_timeout", self.statement_timeout),
            ("lock_timeout", self.lock_timeout),
            (
                "idle_in_transaction_session_timeout",
                self.idle_in_transaction_timeout,
            ),
        ] {
            if let Some(limit) = limit {
                let millis = server_millis(name, limit)?;
                sql.push_str(&format!("; SET LOCAL {name} = '{millis}ms'"));
            }
        }
        Ok(Cow::Owned(sql))
    }
}

/// `limit` in whole milliseconds, rounded up (so that a limit under a
/// millisecond is never sent as 0, which means none), within what the
/// server takes for `name`.
fn server_millis(name: &str, limit: Duration) -> Result<u128> {
    let millis = limit.as_nanos().div_ceil(1_000_000);
    if millis > MAX_SERVER_LIMIT_MS {
        return Err(Error::with_message(
            ErrorKind::Config,
            format!(
                "TransactionOptions::{name}: {limit:?} is more than PostgreSQL takes \
                 ({MAX_SERVER_LIMIT_MS} ms, about 24.8 days); use Duration::ZERO for no limit"
            ),
        ));
    }
    Ok(millis)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
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

    #[test]
    fn limits_follow_begin_in_one_batch() {
        assert_eq!(TransactionOptions::new().begin_batch().unwrap(), "BEGIN");
        let options = TransactionOptions::new()
            .isolation(IsolationLevel::Serializable)
            .statement_timeout(Duration::from_millis(1500))
            .lock_timeout(Duration::from_micros(1))
            .idle_in_transaction_session_timeout(Duration::from_secs(2));
        assert_eq!(
            options.begin_batch().unwrap(),
            "BEGIN ISOLATION LEVEL SERIALIZABLE; SET LOCAL statement_timeout = '1500ms'; \
             SET LOCAL lock_timeout = '1ms'; \
             SET LOCAL idle_in_transaction_session_timeout = '2000ms'"
        );
        assert_eq!(
            options.begin_statement(),
            "BEGIN ISOLATION LEVEL SERIALIZABLE"
        );
        assert_eq!(
            TransactionOptions::new()
                .statement_timeout(Duration::ZERO)
                .begin_batch()
                .unwrap(),
            "BEGIN; SET LOCAL statement_timeout = '0ms'",
            "zero is sent: no limit, as in PostgreSQL"
        );
    }

    #[test]
    fn limits_beyond_the_server_are_refused() {
        let max = Duration::from_millis(i32::MAX as u64);
        assert!(
            TransactionOptions::new()
                .lock_timeout(max)
                .begin_batch()
                .is_ok()
        );
        for options in [
            TransactionOptions::new().statement_timeout(max + Duration::from_micros(1)),
            TransactionOptions::new().lock_timeout(Duration::MAX),
            TransactionOptions::new()
                .idle_in_transaction_session_timeout(Duration::from_secs(u64::from(u32::MAX))),
        ] {
            let error = options.begin_batch().unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Config);
            assert!(
                error.to_string().contains("more than PostgreSQL takes"),
                "{error}"
            );
        }
    }
}
