//! An outer timeout for test bodies, so no test can hang.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// How long one conformance case may take, unless the macros' case list
/// gives it its own limit (`case_name within 30`).
pub const CASE_TIMEOUT: Duration = Duration::from_secs(60);

/// The outer timeout of a case: `secs` seconds when the case list gives
/// them (`&[30]`), else [`CASE_TIMEOUT`].
#[must_use]
pub fn case_timeout(secs: &[u64]) -> Duration {
    secs.first()
        .map_or(CASE_TIMEOUT, |&secs| Duration::from_secs(secs))
}

/// Runs `body` on its own thread and waits at most `timeout` for it.
/// A panic in `body` is re-raised here; a body still running at the
/// deadline fails the test (its thread is abandoned).
///
/// # Panics
///
/// When `body` panics or does not finish in time.
#[allow(clippy::panic)] // This is a test harness: failing means panicking.
pub fn run_with_timeout<T, F>(timeout: Duration, body: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (sender, receiver) = mpsc::channel();
    let worker = thread::Builder::new()
        .name("uno-db-test-body".into())
        .spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
            // The receiver is gone only after a timeout, which already failed.
            let _ = sender.send(outcome);
        });
    if let Err(error) = worker {
        panic!("could not spawn the test thread: {error}");
    }
    match receiver.recv_timeout(timeout) {
        Ok(Ok(value)) => value,
        Ok(Err(payload)) => std::panic::resume_unwind(payload),
        Err(_) => panic!("the test did not finish within {timeout:?}"),
    }
}
