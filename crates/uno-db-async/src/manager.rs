//! The deadpool [`Manager`]: creates prepared connections, checks idle ones
//! before they are handed out, and records every closed one.

use std::sync::Arc;
use std::time::Instant;

use deadpool::managed::{Manager, Metrics, RecycleError, RecycleResult};
use uno_db_core::{CloseReason, Error};

use crate::connect;
use crate::pg_conn::PgConn;
use crate::shared::EngineShared;

/// Creates and recycles the physical connections of one engine.
pub(crate) struct ConnManager {
    pub(crate) shared: Arc<EngineShared>,
}

impl std::fmt::Debug for ConnManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnManager")
            .field("target", &self.shared.config.target())
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
        Box::pin(connect::open(&self.shared)).await.map(Box::new)
    }

    /// Runs when an idle connection is about to be handed out: it must be
    /// open, within its lifetime and idle limit, and (with `set_role` or
    /// `pre_ping`) answer a statement.
    async fn recycle(&self, conn: &mut Box<PgConn>, _: &Metrics) -> RecycleResult<Error> {
        let config = &self.shared.config;
        // Normally cleaned on return; this catches a cleanup that never ran
        // (its task was dropped with its runtime).
        if conn.in_flight || conn.needs_rollback {
            conn.close_reason = Some(CloseReason::Dirty);
            return Err(RecycleError::message("returned without being cleaned"));
        }
        if let Some(reason) = conn.reap_reason(Instant::now(), config.idle_timeout()) {
            conn.close_reason = Some(reason);
            return Err(RecycleError::message(reason.as_str()));
        }
        // `SET ROLE` needs a round trip anyway, so it doubles as the ping.
        let check = match &self.shared.set_role_sql {
            Some(sql) => Some(sql.as_str()),
            None if config.pre_ping() => Some("SELECT 1"),
            None => None,
        };
        if let Some(sql) = check {
            let outcome = Box::pin(tokio::time::timeout(
                config.connect_timeout(),
                conn.internal(sql),
            ))
            .await;
            if !matches!(outcome, Ok(Ok(()))) {
                conn.close_reason = Some(CloseReason::Broken);
                return Err(RecycleError::message("the connection failed its check"));
            }
        }
        Ok(())
    }

    /// Every connection leaving the pool for good passes here.
    fn detach(&self, conn: &mut Box<PgConn>) {
        let reason = conn.close_reason.take().unwrap_or_else(|| {
            if self.shared.is_disposed() {
                CloseReason::Disposed
            } else {
                // Removed by the reaper, which applies the same rules; else a
                // check was cancelled half-way, leaving it in doubt.
                conn.reap_reason(Instant::now(), self.shared.config.idle_timeout())
                    .unwrap_or(CloseReason::Dirty)
            }
        });
        self.shared.metrics.record_closed(reason);
        self.shared.events().connection_closed(reason);
    }
}
