//! The background task that closes idle connections past `idle_timeout`
//! or `pool_recycle`, one per engine.

use std::sync::Weak;
use std::time::{Duration, Instant};

use deadpool::managed::WeakPool;

use crate::manager::ConnManager;
use crate::shared::EngineShared;

/// How often the reaper looks: a quarter of the shortest limit, kept
/// between 10 ms and 30 s. `None` when no limit is set.
pub(crate) fn period(
    idle_timeout: Option<Duration>,
    pool_recycle: Option<Duration>,
) -> Option<Duration> {
    let shortest = match (idle_timeout, pool_recycle) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => return None,
    };
    Some((shortest / 4).clamp(Duration::from_millis(10), Duration::from_secs(30)))
}

/// Runs until the engine's pool is dropped or closed. It holds only weak
/// references, so it never keeps an engine alive.
pub(crate) async fn run(pool: WeakPool<ConnManager>, shared: Weak<EngineShared>, period: Duration) {
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let (Some(pool), Some(shared)) = (pool.upgrade(), shared.upgrade()) else {
            return;
        };
        if pool.is_closed() {
            return;
        }
        let now = Instant::now();
        // The kernel's checkout rules decide; removed connections pass
        // through `ConnManager::detach`, which records why.
        let removed = pool.retain(|conn, _| {
            shared
                .core
                .checkout_verdict(&conn.state, conn.is_closed(), now)
                .is_none()
        });
        drop(removed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn period_follows_the_shortest_limit() {
        let s = Duration::from_secs;
        assert_eq!(period(None, None), None);
        assert_eq!(period(Some(s(8)), Some(s(60))), Some(s(2)));
        assert_eq!(period(None, Some(s(3600))), Some(s(30)));
        assert_eq!(
            period(Some(Duration::from_millis(1)), None),
            Some(Duration::from_millis(10))
        );
    }
}
