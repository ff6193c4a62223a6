//! The return path of a checked-out connection: the kernel's
//! [`ReturnPlan`] carried out. Runs inside `Drop`, so it cannot wait:
//! cleaning statements and cancel requests run in spawned tasks. A clean
//! connection goes to the first waiting checkout, else to the pool.

use std::sync::Arc;
use std::time::Instant;

use deadpool::managed::Object;
use uno_db_core::backend::ReturnPlan;
use uno_db_core::{CloseReason, Error};

use crate::cancel::cancel_and_wait;
use crate::deadline_queue::Held;
use crate::manager::ConnManager;

/// A connection handed from its returner to a waiting checkout, with the
/// time it came back (what the checkout judges it by).
pub(crate) type Handover = (Object<ConnManager>, Instant);

/// Takes back a connection its caller dropped. The pool counts it as in
/// use until its `Object` is dropped, whichever way the return ends (also
/// if a cleaning task is dropped with its runtime).
pub(crate) fn release(object: Object<ConnManager>) {
    let now = Instant::now();
    let core = &object.shared().core;
    let plan = core.return_plan(&object.state, object.is_closed(), now);
    match plan {
        ReturnPlan::Keep => put_back(object, now),
        ReturnPlan::Discard(reason) => discard(object, reason),
        ReturnPlan::CancelAndDiscard => {
            // Dropped mid-statement: the server may still be running it.
            let token = object.cancel_token();
            core.record_discarded(CloseReason::Dirty, None);
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                discard(object, CloseReason::Dirty);
                return;
            };
            let tls = core.tls();
            if let Some((wait, endpoint)) = object.cancel_first() {
                // Behind PgBouncer: closing first would lose the request.
                let freed = Freed::after(&object);
                runtime.spawn(async move {
                    // Declared before the connection, so dropped after it
                    // if the task is dropped with its runtime.
                    let _freed = freed;
                    let object = object;
                    cancel_and_wait(token, tls, endpoint, wait).await;
                    discard(object, CloseReason::Dirty);
                });
                return;
            }
            let timeout = core.housekeeping_timeout();
            runtime.spawn(async move {
                let _ = tokio::time::timeout(timeout, token.cancel_query(tls)).await;
            });
            discard(object, CloseReason::Dirty);
        }
        ReturnPlan::Clean(queries) => {
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                // No runtime to clean it on (dropped outside tokio): closing
                // it makes the server roll back.
                discard(object, CloseReason::Dirty);
                return;
            };
            runtime.spawn(clean(object, queries));
        }
    }
}

async fn clean(object: Object<ConnManager>, queries: Vec<String>) {
    // Also when the task is dropped with its runtime, the connection
    // going back to the pool with it: declared before the connection's
    // own binding, so dropped after it.
    let _freed = Freed::after(&object);
    let mut object = object;
    let shared = Arc::clone(object.shared());
    let timeout = shared.core.housekeeping_timeout();
    let run = async {
        for sql in &queries {
            object.internal(sql).await?;
        }
        Ok::<(), Error>(())
    };
    let error = match tokio::time::timeout(timeout, run).await {
        Ok(Ok(())) => {
            object.state.cleaned_after(&queries);
            put_back(object, Instant::now());
            return;
        }
        Ok(Err(error)) => error,
        Err(_) => shared.core.cleaning_timed_out(),
    };
    shared
        .core
        .record_discarded(CloseReason::Dirty, Some(&error));
    discard(object, CloseReason::Dirty);
}

/// Puts a clean connection back, unless the kernel finds it surplus.
fn put_back(mut object: Object<ConnManager>, now: Instant) {
    let shared = object.shared();
    let core = &shared.core;
    if core.may_hold_surplus()
        && let Some(status) = Object::pool(&object).map(|pool| pool.status())
        && core.is_surplus(
            status.size,
            status.available,
            status.waiting + shared.checkout_waits.waiting(),
        )
    {
        discard(object, CloseReason::Overflow);
        return;
    }
    object.state.returned(now);
    hand_on((object, now));
}

/// Hands a clean connection to the first waiting checkout, else gives it
/// to the pool (and then kicks a checkout that joined the queue meanwhile:
/// see [`DeadlineQueue`](crate::deadline_queue::DeadlineQueue)). Also
/// where a connection handed to a checkout that left without it goes.
pub(crate) fn hand_on(handover: Handover) {
    let shared = handover.0.shared();
    let disposed = shared.core.is_disposed();
    // Taken while the connection keeps the engine's shared state alive:
    // once the connection is in the pool, the engine may drop both.
    let waits = shared.checkout_waits.hold();
    let (object, _) = if disposed {
        handover
    } else {
        match waits.hand(handover) {
            Ok(()) => return,
            Err(handover) => handover,
        }
    };
    drop(object);
    waits.freed(1);
}

/// Closes the connection for good, freeing its pool slot.
fn discard(mut object: Object<ConnManager>, reason: CloseReason) {
    object.state.close_for(reason);
    let freed = Freed::after(&object);
    // `take` detaches it from the pool (which records the reason); dropping
    // the client closes the socket.
    drop(Object::take(object));
    drop(freed);
}

/// Tells the waiting checkouts, when dropped, that room was freed: a
/// connection discarded, or given back by a cleaning task that ended
/// early. It holds the queue, which outlives the connection and the engine.
struct Freed(Held<Handover>);

impl Freed {
    /// For a connection about to leave or go back to its pool.
    pub(crate) fn after(object: &Object<ConnManager>) -> Self {
        Self(object.shared().checkout_waits.hold())
    }
}

impl Drop for Freed {
    fn drop(&mut self) {
        self.0.freed(1);
    }
}
