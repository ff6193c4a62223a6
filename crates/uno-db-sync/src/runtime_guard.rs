//! Living with async runtimes.
//!
//! The `postgres` crate drives each connection with a private runtime and
//! `block_on`, which panics on a thread that is running a tokio runtime.
//! tokio does not say publicly whether a thread is running one: a
//! `spawn_blocking` thread has a runtime handle too, and may block. So:
//!
//! - a call from a runtime's `block_on` body (`#[tokio::main]`,
//!   `#[tokio::test]`: a handle but no task) is refused with an error that
//!   says what to do instead;
//! - otherwise, when a handle is present (`spawn_blocking`, or an async
//!   task, which cannot be told apart), driver calls run on a short-lived
//!   helper thread, so they never panic.

use uno_db_core::{Error, ErrorKind, Result};

/// Fails when called from a runtime's `block_on` body.
pub(crate) fn ensure_blocking_context() -> Result<()> {
    if tokio::runtime::Handle::try_current().is_ok() && tokio::task::try_id().is_none() {
        return Err(Error::with_message(
            ErrorKind::Unsupported,
            "the blocking uno-db backend cannot be used inside an async runtime; \
             use uno-db-async, or call it through tokio::task::spawn_blocking",
        ));
    }
    Ok(())
}

/// Runs a driver call: directly on a thread without a runtime, on a helper
/// thread otherwise (see the module documentation).
pub(crate) fn drive<T: Send>(call: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return call();
    }
    std::thread::scope(|scope| match scope.spawn(call).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}
