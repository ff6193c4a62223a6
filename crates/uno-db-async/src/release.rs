//! The return path of a checked-out connection: discard it, clean it in
//! the background, or put it back (unless it is surplus overflow).

use std::sync::Arc;
use std::time::Instant;

use deadpool::managed::Object;
use tokio_postgres::NoTls;
use uno_db_core::{CloseReason, Error, ErrorKind};

use crate::manager::ConnManager;
use crate::shared::EngineShared;

/// A checked-out connection on its way back. The pool counts it as in use
/// until its `Object` is dropped, whichever way the return ends (also if a
/// cleanup task is dropped with its runtime).
struct Returning {
    shared: Arc<EngineShared>,
}

/// Takes back a connection its caller dropped. Runs inside `Drop`, so it
/// cannot wait: cleaning statements run in a spawned task.
pub(crate) fn release(shared: Arc<EngineShared>, mut object: Object<ConnManager>) {
    let returning = Returning { shared };
    let shared = &returning.shared;
    let now = Instant::now();
    let conn = &mut *object;
    let verdict = if shared.is_disposed() {
        Some(CloseReason::Disposed)
    } else if conn.is_closed() {
        Some(CloseReason::Broken)
    } else if conn.in_flight {
        // Dropped mid-statement: the server may still be running it and its
        // results are lost. Cancel it and discard the connection.
        let token = conn.cancel_token();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let timeout = shared.config.connect_timeout();
            runtime.spawn(async move {
                let _ = tokio::time::timeout(timeout, token.cancel_query(NoTls)).await;
            });
        }
        shared
            .events()
            .connection_discarded(CloseReason::Dirty, None);
        Some(CloseReason::Dirty)
    } else if conn.is_expired(now) {
        Some(CloseReason::Expired)
    } else {
        None
    };
    if let Some(reason) = verdict {
        discard(returning, object, reason);
        return;
    }
    let Some(sql) = cleanup_sql(conn.needs_rollback, shared.set_role_sql.is_some()) else {
        put_back(returning, object, now);
        return;
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        // No runtime to clean it on (dropped outside tokio): closing it makes
        // the server roll back.
        discard(returning, object, CloseReason::Dirty);
        return;
    };
    runtime.spawn(async move {
        let timeout = returning.shared.config.connect_timeout();
        let error = match tokio::time::timeout(timeout, object.internal(sql)).await {
            Ok(Ok(())) => {
                object.needs_rollback = false;
                put_back(returning, object, Instant::now());
                return;
            }
            Ok(Err(error)) => error,
            Err(_) => Error::with_message(
                ErrorKind::QueryTimeout,
                "cleaning the returned connection took longer than connect_timeout",
            ),
        };
        returning
            .shared
            .events()
            .connection_discarded(CloseReason::Dirty, Some(&error));
        discard(returning, object, CloseReason::Dirty);
    });
}

/// The statements that make a returned connection clean again.
fn cleanup_sql(needs_rollback: bool, role_was_set: bool) -> Option<&'static str> {
    match (needs_rollback, role_was_set) {
        (true, true) => Some("ROLLBACK; RESET ROLE"),
        (true, false) => Some("ROLLBACK"),
        (false, true) => Some("RESET ROLE"),
        (false, false) => None,
    }
}

/// Puts a clean connection back, unless the pool already holds `pool_size`
/// idle connections and nobody waits: then it is surplus overflow.
fn put_back(returning: Returning, mut object: Object<ConnManager>, now: Instant) {
    let shared = &returning.shared;
    let pool_size = shared.config.pool_size();
    // Only with overflow connections open is the pool's (locked) status
    // worth asking for: the common return takes no lock.
    let overflowing =
        usize::try_from(shared.metrics.open_connections()).map_or(true, |open| open > pool_size);
    let status = if overflowing {
        Object::pool(&object).map(|pool| pool.status())
    } else {
        None
    };
    if let Some(status) = status {
        // The pool still counts this connection as in use.
        let idle = status.available;
        if status.size > pool_size && idle >= pool_size && status.waiting == 0 {
            discard(returning, object, CloseReason::Overflow);
            return;
        }
    }
    object.returned_at = now;
    drop(returning);
    drop(object);
}

/// Closes the connection for good, freeing its pool slot.
fn discard(returning: Returning, mut object: Object<ConnManager>, reason: CloseReason) {
    object.close_reason = Some(reason);
    drop(returning);
    // `take` detaches it from the pool (which records the reason); dropping
    // the client closes the socket.
    drop(Object::take(object));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_statements() {
        assert_eq!(cleanup_sql(false, false), None);
        assert_eq!(cleanup_sql(true, false), Some("ROLLBACK"));
        assert_eq!(cleanup_sql(false, true), Some("RESET ROLE"));
        assert_eq!(cleanup_sql(true, true), Some("ROLLBACK; RESET ROLE"));
    }
}
