//! [`EngineShared`]: what an engine shares with its pool manager and its
//! connections.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use uno_db_core::BlockingCallbacks;
use uno_db_core::backend::EngineCore;
use uno_db_core::blocking::CredentialProvider;

use crate::wait_queue::WaitQueue;
use crate::watchdog::Watchdog;

/// The kernel's state and decisions for one engine, plus what this backend
/// needs to connect and wait. It does not own the pool, which owns the
/// manager that holds this.
pub(crate) struct EngineShared {
    pub(crate) core: EngineCore,
    /// Asked for the password of each new connection, when set.
    pub(crate) credentials: Option<Arc<dyn CredentialProvider>>,
    pub(crate) callbacks: BlockingCallbacks,
    pub(crate) queue: WaitQueue,
    /// Cancels statements that run past `query_timeout`.
    pub(crate) watchdog: Watchdog,
    /// Helper threads still running after their caller stopped waiting (a
    /// connect attempt or a clean-up that timed out); at most one per pool
    /// slot.
    lingering: AtomicUsize,
    /// Whether the background threads (`min_idle` refill, leak watch)
    /// were started; they start on the first checkout or warm-up.
    pub(crate) background_started: AtomicBool,
    /// One fill to `min_idle` at a time (`warm_up` and the background
    /// refill): two would each count the other's connections as in use
    /// and open too many.
    pub(crate) filling: Mutex<()>,
    /// Held while a checkout asks r2d2 for a new slot, so that checkouts
    /// racing past the kernel's maximum (r2d2's own is only a ceiling) do
    /// not open more connections than it allows.
    pub(crate) growing: Mutex<()>,
}

impl EngineShared {
    pub(crate) fn new(
        core: EngineCore,
        credentials: Option<Arc<dyn CredentialProvider>>,
        callbacks: BlockingCallbacks,
    ) -> Self {
        Self {
            watchdog: Watchdog::new(core.tls()),
            core,
            credentials,
            callbacks,
            queue: WaitQueue::default(),
            lingering: AtomicUsize::new(0),
            background_started: AtomicBool::new(false),
            filling: Mutex::new(()),
            growing: Mutex::new(()),
        }
    }

    /// Reserves a place for a helper thread that may outlive its caller's
    /// wait; `None` when every pool slot already has one.
    pub(crate) fn helper_permit(self: &Arc<Self>) -> Option<HelperPermit> {
        let limit = self.core.max_connections().max(1);
        self.lingering
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| HelperPermit(Arc::clone(self)))
    }
}

/// A reserved helper-thread place, moved into the thread and released when
/// the thread ends.
pub(crate) struct HelperPermit(Arc<EngineShared>);

impl Drop for HelperPermit {
    fn drop(&mut self) {
        self.0.lingering.fetch_sub(1, Ordering::AcqRel);
    }
}
