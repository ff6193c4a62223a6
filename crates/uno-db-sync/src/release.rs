//! The return path of a checked-out connection: the kernel's
//! [`ReturnPlan`] carried out. Runs inside `Drop`: every wait here is
//! bounded by the housekeeping timeout, and statements run on a helper
//! thread so that a silent server cannot hang the caller (nor a runtime
//! thread make the driver panic).

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Instant;

use r2d2::Pool;
use uno_db_core::backend::ReturnPlan;
use uno_db_core::{CloseReason, Error};

use crate::manager::{ConnManager, Slot};
use crate::pg_conn::PgConn;
use crate::shared::EngineShared;

/// Takes back the connection in `slot`; r2d2 then keeps the slot or,
/// when the connection was closed or taken away, drops it.
pub(crate) fn release(shared: &Arc<EngineShared>, pool: &Pool<ConnManager>, slot: &mut Slot) {
    let Some(conn) = slot.0.as_mut() else {
        return;
    };
    let now = Instant::now();
    match shared.core.return_plan(&conn.state, conn.is_closed(), now) {
        ReturnPlan::Keep => put_back(shared, pool, conn, now),
        ReturnPlan::Discard(reason) => conn.state.close_for(reason),
        ReturnPlan::CancelAndDiscard => {
            // The caller unwound mid-statement: the server may still run
            // it. Without a helper place no cancel request goes out, and
            // the statement runs on (with its locks) until it next writes
            // to the closed socket: wait for a place, as the cleaning does,
            // within the same bound.
            let deadline = Instant::now() + shared.core.housekeeping_timeout();
            if let Some(token) = conn.cancel_token()
                && let Some(permit) = shared.helper_permit_until(deadline)
            {
                let tls = shared.core.tls();
                let spawned = std::thread::Builder::new()
                    .name("uno-db-sync-cancel".to_owned())
                    .spawn(move || {
                        let _permit = permit;
                        drop(token.cancel_query(tls));
                    });
                drop(spawned);
            }
            shared.core.record_discarded(CloseReason::Dirty, None);
            conn.state.close_for(CloseReason::Dirty);
        }
        ReturnPlan::Clean(queries) => clean(shared, pool, slot, queries),
    }
}

/// Runs the cleaning statements on a helper thread, waiting at most the
/// housekeeping timeout; a connection that fails them or is late is closed.
fn clean(
    shared: &Arc<EngineShared>,
    pool: &Pool<ConnManager>,
    slot: &mut Slot,
    queries: Vec<String>,
) {
    let core = &shared.core;
    // One bound for the whole return: waiting for a place, then for the
    // statements.
    let deadline = Instant::now() + core.housekeeping_timeout();
    // A helper normally frees its place within a round trip (a connect or
    // a cancel request still in flight), and closing a healthy connection
    // costs a new one: wait for a place, as a connect does.
    let Some(permit) = shared.helper_permit_until(deadline) else {
        // Every place is still held by a helper waiting on the server:
        // closing the connection makes the server roll back.
        discard(shared, slot, None);
        return;
    };
    let Some(mut conn) = slot.0.take() else {
        return;
    };
    let (sender, receiver) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("uno-db-sync-clean".to_owned())
        .spawn(move || {
            let result = queries.iter().try_for_each(|sql| conn.internal(sql));
            // The statements are done: the place is free before the caller
            // goes on, so that its next return finds one (with one pool
            // slot there is one place).
            drop(permit);
            if let Err(mpsc::SendError((mut late, _, _))) = sender.send((conn, result, queries)) {
                // The caller stopped waiting: close it.
                let late: &mut PgConn = &mut late;
                late.state.close_for(CloseReason::Dirty);
            }
        });
    if spawned.is_err() {
        return;
    }
    match receiver.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok((mut conn, Ok(()), queries)) => {
            conn.state.cleaned_after(&queries);
            put_back(shared, pool, &mut conn, Instant::now());
            slot.0 = Some(conn);
        }
        Ok((conn, Err(error), _)) => {
            slot.0 = Some(conn);
            discard(shared, slot, Some(&error));
        }
        Err(_) => {
            core.record_discarded(CloseReason::Dirty, Some(&core.cleaning_timed_out()));
        }
    }
}

fn discard(shared: &EngineShared, slot: &mut Slot, error: Option<&Error>) {
    shared.core.record_discarded(CloseReason::Dirty, error);
    if let Some(conn) = slot.0.as_mut() {
        conn.state.close_for(CloseReason::Dirty);
    }
}

/// Keeps a clean connection, unless the kernel finds it surplus.
fn put_back(shared: &EngineShared, pool: &Pool<ConnManager>, conn: &mut PgConn, now: Instant) {
    let core = &shared.core;
    if core.may_hold_surplus() {
        let state = pool.state();
        // r2d2 counts this connection as in use until the slot is back.
        if core.is_surplus(
            state.connections as usize,
            state.idle_connections as usize,
            shared.queue.len(),
        ) {
            conn.state.close_for(CloseReason::Overflow);
            return;
        }
    }
    conn.state.returned(now);
}
