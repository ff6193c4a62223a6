//! Retrying a whole transaction on serialization failures and deadlocks.

use uno_db_core::nonblocking::{Engine, Session};
use uno_db_core::{BoxFuture, Result, RetryPolicy, TransactionOptions};

/// Runs `work` in a session and commits, retrying the whole unit (a new
/// session each time) when it fails with a serialization failure (40001)
/// or a deadlock (40P01), as [`Error::is_serialization_failure`] tells,
/// with `policy`'s attempts, backoff and deadline. Other errors return at
/// once; the session is rolled back.
///
/// `work` may run several times: it must not have effects outside the
/// transaction that cannot be repeated.
///
/// ```no_run
/// use uno_db_async::{AsyncEngine, transaction_with_retry};
/// use uno_db_core::RetryPolicy;
///
/// # async fn demo(engine: &AsyncEngine) -> uno_db_core::Result<()> {
/// let moved: u64 = transaction_with_retry(engine, &RetryPolicy::default().max_attempts(5), |session| {
///     Box::pin(async move {
///         session.execute("UPDATE account SET balance = balance - 10 WHERE id = 1", &[]).await?;
///         session.execute("UPDATE account SET balance = balance + 10 WHERE id = 2", &[]).await
///     })
/// })
/// .await?;
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// The last failure once the policy gives up, or the first error that is
/// not a serialization failure.
///
/// [`Error::is_serialization_failure`]: uno_db_core::Error::is_serialization_failure
pub async fn transaction_with_retry<E, T, F>(engine: &E, policy: &RetryPolicy, work: F) -> Result<T>
where
    E: Engine + ?Sized,
    T: Send,
    F: for<'s> FnMut(&'s mut dyn Session) -> BoxFuture<'s, Result<T>> + Send,
{
    transaction_with_retry_options(engine, policy, &TransactionOptions::default(), work).await
}

/// As [`transaction_with_retry`], beginning each attempt with `options`
/// (for example `SERIALIZABLE`).
///
/// # Errors
///
/// As [`transaction_with_retry`].
pub async fn transaction_with_retry_options<E, T, F>(
    engine: &E,
    policy: &RetryPolicy,
    options: &TransactionOptions,
    mut work: F,
) -> Result<T>
where
    E: Engine + ?Sized,
    T: Send,
    F: for<'s> FnMut(&'s mut dyn Session) -> BoxFuture<'s, Result<T>> + Send,
{
    let mut backoff = policy.backoff();
    loop {
        let error = match attempt(engine, options, &mut work).await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        match backoff.next_delay_if(error.is_serialization_failure()) {
            Some(delay) => tokio::time::sleep(delay).await,
            None => return Err(error),
        }
    }
}

async fn attempt<E, T, F>(engine: &E, options: &TransactionOptions, work: &mut F) -> Result<T>
where
    E: Engine + ?Sized,
    F: for<'s> FnMut(&'s mut dyn Session) -> BoxFuture<'s, Result<T>>,
{
    let mut session = engine.session(options).await?;
    // On error the session is dropped, which rolls it back.
    let value = work(&mut *session).await?;
    session.commit().await?;
    Ok(value)
}
