//! [`ConnManager`]: the pool's manager. r2d2 manages *slots*; a slot is
//! created instantly (empty) and the thread that checks it out opens the
//! physical connection itself, as the kernel's connect plan says, getting
//! typed errors directly (r2d2 would connect on its own threads and keep
//! only their text). r2d2 still bounds the number of connections, keeps
//! the idle ones and reaps old ones.

use std::fmt;
use std::sync::Arc;

use uno_db_core::{CloseReason, Error};

use crate::pg_conn::PgConn;
use crate::shared::EngineShared;

/// One place in the pool: empty until a checkout connects it. Boxed: r2d2
/// moves its connections around on every checkout and return, and a box
/// moves as one pointer where a `PgConn` is hundreds of bytes.
pub(crate) struct Slot(pub(crate) Option<Box<PgConn>>);

/// Creates empty slots and tells r2d2 which filled ones to drop.
pub(crate) struct ConnManager {
    pub(crate) shared: Arc<EngineShared>,
}

impl fmt::Debug for ConnManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnManager")
            .field("target", &self.shared.core.config().target())
            .finish_non_exhaustive()
    }
}

impl r2d2::ManageConnection for ConnManager {
    type Connection = Slot;
    type Error = Error;

    fn connect(&self) -> Result<Slot, Error> {
        Ok(Slot(None))
    }

    /// Not used: checkout checks are the kernel's (`pre_ping`), run by the
    /// engine so that a failure is replaced within the same checkout.
    fn is_valid(&self, _: &mut Slot) -> Result<(), Error> {
        Ok(())
    }

    /// Empty slots, connections the kernel closed and dead connections are
    /// dropped rather than put back.
    fn has_broken(&self, slot: &mut Slot) -> bool {
        slot.0
            .as_ref()
            .is_none_or(|conn| conn.state.close_reason().is_some() || conn.is_closed())
    }
}

/// Logs r2d2's own errors through the kernel's events.
pub(crate) struct EventErrorHandler(pub(crate) Arc<EngineShared>);

impl fmt::Debug for EventErrorHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventErrorHandler").finish_non_exhaustive()
    }
}

impl r2d2::HandleError<Error> for EventErrorHandler {
    fn handle_error(&self, error: Error) {
        self.0
            .core
            .record_discarded(CloseReason::Broken, Some(&error));
    }
}
