//! [`EngineShared`]: what an engine shares with its pool manager, its
//! connections and its background reaper.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use uno_db_core::AsyncCallbacks;
use uno_db_core::backend::EngineCore;
use uno_db_core::nonblocking::CredentialProvider;

use crate::watchdog::Watchdog;

/// The kernel's state and decisions for one engine, plus what this backend
/// needs to connect. It does not own the pool, which owns the manager that
/// holds this.
pub(crate) struct EngineShared {
    pub(crate) core: EngineCore,
    /// Asked for the password of each new connection, when set.
    pub(crate) credentials: Option<Arc<dyn CredentialProvider>>,
    pub(crate) callbacks: AsyncCallbacks,
    pub(crate) reaper_started: AtomicBool,
    /// Ends statements that run past `query_timeout`.
    pub(crate) watchdog: Watchdog,
}
