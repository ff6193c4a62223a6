//! Retrying a whole transaction after a serialization failure or deadlock.

use uno_db_core::blocking::{Engine, Session};
use uno_db_core::{Result, RetryPolicy, TransactionOptions};

/// [`transaction_with_retry_options`] with the default transaction options
/// (the server's isolation level, where deadlocks are what gets retried).
///
/// # Errors
///
/// As [`transaction_with_retry_options`].
pub fn transaction_with_retry<E, T, F>(engine: &E, policy: &RetryPolicy, work: F) -> Result<T>
where
    E: Engine + ?Sized,
    F: FnMut(&mut dyn Session) -> Result<T>,
{
    transaction_with_retry_options(engine, &TransactionOptions::new(), policy, work)
}

/// Runs `work` in a session begun with `options` and commits it; when the
/// work or the commit fails with a serialization failure (40001) or a
/// deadlock (40P01), rolls back and runs the whole closure again, sleeping
/// per `policy` in between. Any other error, or running out of attempts,
/// returns the error; the session is rolled back.
///
/// `work` may run several times: it must not have effects outside the
/// transaction that cannot be repeated.
///
/// ```no_run
/// use uno_db_core::blocking::Session;
/// use uno_db_core::{IsolationLevel, RetryPolicy, TransactionOptions};
/// use uno_db_sync::{SyncEngine, transaction_with_retry_options};
///
/// let engine = SyncEngine::new(&"postgresql://postgres@127.0.0.1/test".parse()?)?;
/// let options = TransactionOptions::new().isolation(IsolationLevel::Serializable);
/// let total: i64 = transaction_with_retry_options(&engine, &options, &RetryPolicy::default(), |session| {
///     session.execute("UPDATE accounts SET balance = balance - 10 WHERE id = 1", &[])?;
///     session.execute("UPDATE accounts SET balance = balance + 10 WHERE id = 2", &[])?;
///     Ok(session.query_one("SELECT sum(balance)::int8 FROM accounts", &[])?.get(0))
/// })?;
/// # Ok::<(), uno_db_core::Error>(())
/// ```
///
/// # Errors
///
/// The first error that is not a serialization failure or deadlock, or the
/// last one when `policy` gives up.
pub fn transaction_with_retry_options<E, T, F>(
    engine: &E,
    options: &TransactionOptions,
    policy: &RetryPolicy,
    mut work: F,
) -> Result<T>
where
    E: Engine + ?Sized,
    F: FnMut(&mut dyn Session) -> Result<T>,
{
    let mut backoff = policy.backoff();
    loop {
        let mut session = engine.session(options)?;
        let error = match work(&mut *session) {
            Ok(value) => match session.commit() {
                Ok(()) => return Ok(value),
                Err(error) => error,
            },
            Err(error) => {
                // Rolled back as it drops; the error is what matters.
                drop(session);
                error
            }
        };
        match backoff.next_delay_if(error.is_serialization_failure()) {
            Some(delay) => {
                tracing::debug!(
                    target: uno_db_core::events::TARGET,
                    attempt = backoff.attempt(),
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    sqlstate = error.sqlstate().map(|c| c.code()),
                    "transaction failed to serialize; retrying"
                );
                std::thread::sleep(delay);
            }
            None => return Err(error),
        }
    }
}
