//! The waiting side of the pool operations: filling the pool to
//! `min_idle` (`warm_up` and the background refill) and watching for
//! leaked connections. What to open, when to retry and what counts as a
//! leak are the kernel's decisions.

use std::sync::Weak;
use std::time::{Duration, Instant};

use deadpool::managed::{Object, Pool, PoolError, WeakPool};
use uno_db_core::{Error, ErrorKind, Result};

use crate::deadline_queue::DeadlineQueue;
use crate::manager::ConnManager;
use crate::release::Handover;
use crate::shared::EngineShared;

/// Opens connections until the kernel sees `min_idle` idle ones (or the
/// pool's maximum), by holding checkouts until enough are out and then
/// returning them all; waits at most until `deadline`.
pub(crate) async fn fill(
    pool: &Pool<ConnManager>,
    shared: &EngineShared,
    started: Instant,
    deadline: Instant,
) -> Result<()> {
    let core = &shared.core;
    let remaining = deadline.saturating_duration_since(Instant::now());
    let Ok(_one_at_a_time) = tokio::time::timeout(remaining, shared.filling.lock()).await else {
        return Err(core.warm_up_failed(started, None));
    };
    let mut held = Held {
        objects: Vec::new(),
        waits: &shared.checkout_waits,
    };
    loop {
        if core.is_disposed() {
            return Err(core.disposed_error());
        }
        let status = pool.status();
        if core.idle_deficit(status.size, status.available + held.objects.len()) == 0 {
            // Dropped straight back into the pool: fresh or idle, they
            // are clean.
            drop(held);
            return Ok(());
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, pool.get()).await {
            Ok(Ok(object)) => held.objects.push(object),
            Ok(Err(PoolError::Backend(error))) => return Err(error),
            Ok(Err(PoolError::Closed)) => return Err(core.disposed_error()),
            Ok(Err(PoolError::Timeout(_))) | Err(_) => {
                return Err(core.warm_up_failed(started, None));
            }
            Ok(Err(PoolError::NoRuntimeSpecified | PoolError::PostCreateHook(_))) => {
                return Err(Error::with_message(
                    ErrorKind::Unsupported,
                    "the pool is configured with a timeout but no runtime",
                ));
            }
        }
    }
}

/// The connections a fill holds: given back to the pool together, then
/// the waiting checkouts are told (they wait in the engine's queue, not
/// the pool's), whichever way the fill ends.
struct Held<'a> {
    objects: Vec<Object<ConnManager>>,
    waits: &'a DeadlineQueue<Handover>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let count = self.objects.len();
        self.objects.clear();
        if count > 0 {
            self.waits.freed(count);
        }
    }
}

/// Keeps `min_idle` connections idle until the engine is dropped or
/// disposed, pausing between looks as the kernel says (its backoff after
/// failures). Holds only weak references.
pub(crate) async fn refill(pool: WeakPool<ConnManager>, shared: Weak<EngineShared>) {
    let mut backoff = None;
    let mut delay = Duration::ZERO;
    loop {
        tokio::time::sleep(delay).await;
        let (Some(pool), Some(shared)) = (pool.upgrade(), shared.upgrade()) else {
            return;
        };
        let core = &shared.core;
        if pool.is_closed() || core.is_disposed() {
            return;
        }
        let started = Instant::now();
        let outcome = fill(
            &pool,
            &shared,
            started,
            started + core.config().pool_timeout(),
        )
        .await;
        delay = core.refill_delay(&mut backoff, outcome.is_err());
    }
}

/// Reports connections held past `leak_detection_threshold`, every
/// `period`, until the engine's shared state is gone.
pub(crate) async fn watch_leaks(shared: Weak<EngineShared>, period: Duration) {
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.core.leak_scan(Instant::now());
    }
}
