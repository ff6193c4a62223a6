//! An outer time limit for test bodies.

use std::sync::mpsc;
use std::time::Duration;

/// Runs `body` on its own thread and fails the test if it does not finish within `limit`.
/// A panic in `body` is passed on unchanged.
pub(crate) fn within<T: Send + 'static>(
    limit: Duration,
    body: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (done_tx, done_rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let _ = done_tx.send(body());
    });
    match done_rx.recv_timeout(limit) {
        Ok(value) => {
            let _ = thread.join();
            value
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("the test did not finish within {limit:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the body neither returned nor panicked"),
        },
    }
}

/// The limit for tests that start a cluster or two.
pub(crate) const CLUSTER_TEST_LIMIT: Duration = Duration::from_secs(60);

/// The limit for tests that only use databases and connections.
pub(crate) const QUICK_TEST_LIMIT: Duration = Duration::from_secs(30);
