//! [`ConnManager`]: the pool's manager. Opens connections, asks the kernel
//! whether an idle one may be handed out, and records every closed one.

use std::sync::Arc;
use std::time::Instant;

use deadpool::managed::{Manager, Metrics, RecycleError, RecycleResult};
use uno_db_core::{CloseReason, Error};

use crate::connect;
use crate::pg_conn::PgConn;
use crate::shared::EngineShared;

/// Creates and checks the physical connections of one engine.
pub(crate) struct ConnManager {
    pub(crate) shared: Arc<EngineShared>,
}

impl std::fmt::Debug for ConnManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnManager")
            .field("target", &self.shared.core.config().target())
            .finish_non_exhaustive()
    }
}

impl Manager for ConnManager {
    // Boxed: the pool moves its objects around several times per checkout,
    // and a box moves as one pointer where a `PgConn` is hundreds of bytes.
    type Type = Box<PgConn>;
    type Error = Error;

    async fn create(&self) -> Result<Box<PgConn>, Error> {
        // Boxed: connecting is rare and its future is large; inline, it
        // would bloat every checkout future.
        Box::pin(connect::open(&self.shared, Instant::now()))
            .await
            .map(Box::new)
    }

    /// Runs when an idle connection is about to be handed out. A failure
    /// makes the pool close it and take (or open) another within the same
    /// checkout. Without a probe to run, nothing: the checkout judges the
    /// connection once the pool hands it over, with the time the pool
    /// read then (see [`CheckoutFuture`](crate::checkout::CheckoutFuture)),
    /// which saves a clock read per checkout.
    async fn recycle(&self, conn: &mut Box<PgConn>, _: &Metrics) -> RecycleResult<Error> {
        let core = &self.shared.core;
        if !core.checkout_may_probe() {
            return Ok(());
        }
        // Judged first: no round trip for a connection that goes anyway.
        let now = Instant::now();
        if let Some(reason) = core.checkout_verdict(&conn.state, conn.is_closed(), now) {
            conn.state.close_for(reason);
            return Err(RecycleError::message(reason.as_str()));
        }
        if let Some(probe) = core.checkout_probe(&conn.state, now) {
            let outcome = Box::pin(tokio::time::timeout(
                core.housekeeping_timeout(),
                conn.internal_row(probe),
            ))
            .await;
            let reason = match outcome {
                Ok(Ok(row)) => {
                    let row: Vec<Option<&str>> = row.iter().map(Option::as_deref).collect();
                    core.probe_answered(&mut conn.state, probe, &row, now)
                }
                _ => Some(CloseReason::Broken),
            };
            if let Some(reason) = reason {
                conn.state.close_for(reason);
                return Err(RecycleError::message("the connection failed its check"));
            }
        }
        Ok(())
    }

    /// Every connection leaving the pool for good passes here.
    fn detach(&self, conn: &mut Box<PgConn>) {
        let core = &self.shared.core;
        // Without a recorded reason, deadpool drops a connection whose
        // check was cancelled half-way: its state is in doubt.
        let reason = core.close_reason(
            &conn.state,
            conn.is_closed(),
            Instant::now(),
            CloseReason::Dirty,
        );
        core.record_closed(reason);
    }
}
