//! [`EngineShared`]: what an engine shares with its pool manager, its
//! connections and its background reaper.

use std::sync::atomic::AtomicBool;

use uno_db_core::AsyncCallbacks;
use uno_db_core::backend::EngineCore;

use crate::watchdog::Watchdog;

/// The kernel's state and decisions for one engine, plus what this backend
/// needs to connect. It does not own the pool, which owns the manager that
/// holds this.
pub(crate) struct EngineShared {
    pub(crate) core: EngineCore,
    /// The driver's settings, translated once from the configuration.
    pub(crate) driver: tokio_postgres::Config,
    pub(crate) callbacks: AsyncCallbacks,
    pub(crate) reaper_started: AtomicBool,
    /// Ends statements that run past `query_timeout`.
    pub(crate) watchdog: Watchdog,
}
