//! [`EngineShared`]: what an engine shares with its pool manager and its
//! connections.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Instant;

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
    /// Helper threads running (connect attempts, clean-ups, cancel
    /// requests), some perhaps after their caller stopped waiting; at most
    /// one per pool slot.
    helpers: Mutex<usize>,
    /// Signalled when a helper thread ends.
    helper_ended: Condvar,
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
            helpers: Mutex::new(0),
            helper_ended: Condvar::new(),
            background_started: AtomicBool::new(false),
            filling: Mutex::new(()),
            growing: Mutex::new(()),
        }
    }

    /// Reserves a place for a helper thread that may outlive its caller's
    /// wait (one per pool slot), waiting until `deadline` for a helper to
    /// end: one that has just handed over its result (or sent a cancel
    /// request) is on its way out, and a connect, a cleaning or a cancel
    /// request must not be given up for it. `None` when every place is
    /// still taken then.
    pub(crate) fn helper_permit_until(self: &Arc<Self>, deadline: Instant) -> Option<HelperPermit> {
        let limit = self.core.max_connections().max(1);
        let mut running = self.helpers.lock().unwrap_or_else(PoisonError::into_inner);
        while *running >= limit {
            let left = deadline.checked_duration_since(Instant::now())?;
            running = self
                .helper_ended
                .wait_timeout(running, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *running += 1;
        Some(HelperPermit(Arc::clone(self)))
    }
}

/// A reserved helper-thread place, moved into the thread and released when
/// the thread ends.
pub(crate) struct HelperPermit(Arc<EngineShared>);

impl Drop for HelperPermit {
    fn drop(&mut self) {
        let mut running = self
            .0
            .helpers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *running = running.saturating_sub(1);
        self.0.helper_ended.notify_one();
    }
}
