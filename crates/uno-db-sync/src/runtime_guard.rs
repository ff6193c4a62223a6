//! Living with async runtimes.
//!
//! The `postgres` crate drives each call with `block_on` on a private
//! runtime, which panics on a thread that is *inside* a tokio runtime: a
//! worker running an async task, or a runtime's `block_on` body. Blocking
//! there would also stall every task on that worker. A `spawn_blocking`
//! thread, or a task inside `tokio::task::block_in_place` on a
//! multi-threaded runtime, is not inside the runtime and may block.
//!
//! tokio does not say publicly which case a thread is in, so the guard
//! asks the way the driver would: it starts an empty `block_on` on a tiny
//! runtime of its own, which tokio refuses exactly where the driver's
//! would panic. That refusal is caught and silenced (a panic hook that
//! stays quiet for this thread's probe only) and becomes a clear error.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use uno_db_core::{Error, ErrorKind, Result};

thread_local! {
    static PROBING: Cell<bool> = const { Cell::new(false) };
    static PROBE_RUNTIME: RefCell<Option<tokio::runtime::Runtime>> = const { RefCell::new(None) };
}

static QUIET_PROBES: Once = Once::new();

/// Fails when the calling thread is inside an async runtime, where the
/// driver would panic; costs nothing on a thread without a runtime.
pub(crate) fn ensure_blocking_context() -> Result<()> {
    if tokio::runtime::Handle::try_current().is_err() || may_block_here() {
        return Ok(());
    }
    Err(Error::with_message(
        ErrorKind::Unsupported,
        "the blocking uno-db backend was called from inside an async runtime (an async \
         task or a block_on body), where it would stall the runtime; use uno-db-async, or \
         call it through tokio::task::spawn_blocking or, on a multi-threaded runtime, \
         tokio::task::block_in_place",
    ))
}

/// Whether this thread, which has a runtime handle, may block.
fn may_block_here() -> bool {
    QUIET_PROBES.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !PROBING.with(Cell::get) {
                previous(info);
            }
        }));
    });
    PROBE_RUNTIME.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = tokio::runtime::Builder::new_current_thread().build().ok();
        }
        let Some(runtime) = slot.as_ref() else {
            return false;
        };
        PROBING.with(|probing| probing.set(true));
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| runtime.block_on(async {})));
        PROBING.with(|probing| probing.set(false));
        outcome.is_ok()
    })
}
