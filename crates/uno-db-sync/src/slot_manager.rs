//! The r2d2 side of the pool: slots that hold physical connections.
//!
//! r2d2 opens connections on its own worker threads and keeps only the text
//! of their errors, so a checkout could neither fail fast on a wrong
//! password nor report a typed cause. Instead r2d2 manages *slots*: a slot
//! is created instantly (empty) and the thread that checks it out opens the
//! physical connection itself, with our retry policy and callbacks, getting
//! the typed error directly. r2d2 still does what it is good at: bounding
//! the number of connections, waiting with a timeout, keeping idle
//! connections, testing them on checkout and reaping idle and old ones.

use std::fmt;
use std::sync::Arc;

use uno_db_core::{CloseReason, ConnectionConfig, Error};

use crate::engine_state::EngineState;
use crate::physical::PhysicalConnection;

/// One place in the pool: empty until a checkout connects it.
pub(crate) struct Slot(pub(crate) Option<PhysicalConnection>);

/// Creates empty slots and judges filled ones.
pub(crate) struct SlotManager {
    state: Arc<EngineState>,
}

impl SlotManager {
    pub(crate) fn new(state: Arc<EngineState>) -> Self {
        Self { state }
    }
}

impl r2d2::ManageConnection for SlotManager {
    type Connection = Slot;
    type Error = Error;

    fn connect(&self) -> Result<Slot, Error> {
        Ok(Slot(None))
    }

    /// The pre-ping (`test_on_check_out`), bounded by `connect_timeout`.
    fn is_valid(&self, slot: &mut Slot) -> Result<(), Error> {
        // A disposed engine drains its idle slots through checkouts; they
        // are closed right after, so pinging them is wasted time.
        if self.state.is_disposed() {
            return Ok(());
        }
        match &mut slot.0 {
            Some(physical) => physical
                .ping(self.state.config.connect_timeout())
                .inspect_err(|_| physical.mark_for_close(CloseReason::Broken)),
            None => Ok(()),
        }
    }

    /// Empty slots, connections marked for closing and dead connections are
    /// dropped rather than put back.
    fn has_broken(&self, slot: &mut Slot) -> bool {
        slot.0.as_ref().is_none_or(PhysicalConnection::is_unusable)
    }
}

/// Logs r2d2's errors (failed pre-pings) as uno-db events instead of
/// through the `log` crate.
pub(crate) struct EventErrorHandler {
    config: ConnectionConfig,
}

impl EventErrorHandler {
    pub(crate) fn new(config: ConnectionConfig) -> Self {
        Self { config }
    }
}

impl fmt::Debug for EventErrorHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventErrorHandler").finish_non_exhaustive()
    }
}

impl r2d2::HandleError<Error> for EventErrorHandler {
    fn handle_error(&self, error: Error) {
        uno_db_core::events::EngineEvents::new(&self.config)
            .connection_discarded(CloseReason::Broken, Some(&error));
    }
}
