//! [`EngineShared`]: what an engine shares with its pool manager, its
//! connections and its background reaper.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use uno_db_core::AsyncCallbacks;
use uno_db_core::backend::EngineCore;
use uno_db_core::nonblocking::CredentialProvider;

use crate::deadline_queue::DeadlineQueue;
use crate::release::Handover;
use crate::watchdog::Watchdog;

/// The kernel's state and decisions for one engine, plus what this backend
/// needs to connect. It does not own the pool, which owns the manager that
/// holds this.
pub(crate) struct EngineShared {
    pub(crate) core: EngineCore,
    /// Asked for the password of each new connection, when set.
    pub(crate) credentials: Option<Arc<dyn CredentialProvider>>,
    pub(crate) callbacks: AsyncCallbacks,
    /// Whether the background tasks (reaper, `min_idle` refill, leak
    /// watch) were started; they start on the first checkout or warm-up.
    pub(crate) reaper_started: AtomicBool,
    /// Serializes `set_pool_size`/`set_max_overflow`, so that the pool is
    /// resized in the order the kernel's limits changed.
    pub(crate) resizing: Mutex<()>,
    /// One fill to `min_idle` at a time (`warm_up` and the background
    /// refill): two would each count the other's connections as in use
    /// and open too many.
    pub(crate) filling: tokio::sync::Mutex<()>,
    /// Ends statements that run past `query_timeout`.
    pub(crate) watchdog: Watchdog,
    /// The checkouts waiting for a connection, in arrival order, and their
    /// `pool_timeout`: returned connections are handed to them.
    pub(crate) checkout_waits: DeadlineQueue<Handover>,
}
