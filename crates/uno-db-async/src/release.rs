//! The return path of a checked-out connection: the kernel's
//! [`ReturnPlan`] carried out. Runs inside `Drop`, so it cannot wait:
//! cleaning statements and cancel requests run in spawned tasks.

use std::sync::Arc;
use std::time::Instant;

use deadpool::managed::Object;
use uno_db_core::backend::ReturnPlan;
use uno_db_core::{CloseReason, Error};

use crate::cancel::cancel_and_wait;
use crate::manager::ConnManager;

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
                runtime.spawn(async move {
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

async fn clean(mut object: Object<ConnManager>, queries: Vec<String>) {
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
    let core = &object.shared().core;
    if core.may_hold_surplus()
        && let Some(status) = Object::pool(&object).map(|pool| pool.status())
        && core.is_surplus(status.size, status.available, status.waiting)
    {
        discard(object, CloseReason::Overflow);
        return;
    }
    object.state.returned(now);
    drop(object);
}

/// Closes the connection for good, freeing its pool slot.
fn discard(mut object: Object<ConnManager>, reason: CloseReason) {
    object.state.close_for(reason);
    // `take` detaches it from the pool (which records the reason); dropping
    // the client closes the socket.
    drop(Object::take(object));
}
