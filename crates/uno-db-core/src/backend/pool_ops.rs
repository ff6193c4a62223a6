//! The kernel's part of the pool operations: leak detection
//! ([`LeakTracker`], [`LeakTicket`]), the pool's limits that change at
//! runtime ([`PoolLimits`]), keeping `min_idle` connections open
//! ([`EngineCore::idle_deficit`](super::EngineCore::idle_deficit)) and
//! what a drain reports ([`CloseReport`](crate::CloseReport)). The
//! backends only wait and do the I/O.

use std::collections::HashMap;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::limits::MAX_CONNECTIONS;
use crate::error::{Error, ErrorKind, Result};

/// The smallest and largest pause between two looks for leaked
/// connections.
const LEAK_SCAN_MIN: Duration = Duration::from_millis(10);
const LEAK_SCAN_MAX: Duration = Duration::from_secs(1);

/// One checkout watched for leaks; handed back with
/// [`EngineCore::checked_in`](super::EngineCore::checked_in) when the
/// connection returns.
#[derive(Debug)]
pub struct LeakTicket {
    id: u64,
}

#[derive(Debug)]
struct Held {
    since: Instant,
    location: &'static Location<'static>,
    reported: bool,
}

/// The checkouts of one engine held right now, with where and when each
/// began, when `leak_detection_threshold` is set.
#[derive(Debug)]
pub(super) struct LeakTracker {
    threshold: Option<Duration>,
    next_id: AtomicU64,
    held: Mutex<HashMap<u64, Held>>,
}

/// What a look for leaks found: the checkouts held past the threshold for
/// the first time, as `(where, held for)`.
pub(super) type Overdue = Vec<(&'static Location<'static>, Duration)>;

impl LeakTracker {
    pub(super) fn new(threshold: Option<Duration>) -> Self {
        Self {
            threshold,
            next_id: AtomicU64::new(0),
            held: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn threshold(&self) -> Option<Duration> {
        self.threshold
    }

    pub(super) fn scan_period(&self) -> Option<Duration> {
        self.threshold
            .map(|t| (t / 4).clamp(LEAK_SCAN_MIN, LEAK_SCAN_MAX))
    }

    #[inline]
    pub(super) fn start(
        &self,
        location: &'static Location<'static>,
        now: Instant,
    ) -> Option<LeakTicket> {
        self.threshold?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(
            id,
            Held {
                since: now,
                location,
                reported: false,
            },
        );
        Some(LeakTicket { id })
    }

    /// Marks and returns the checkouts newly past the threshold at `now`.
    pub(super) fn overdue(&self, now: Instant) -> Overdue {
        let Some(threshold) = self.threshold else {
            return Vec::new();
        };
        self.lock()
            .values_mut()
            .filter_map(|held| {
                let for_how_long = now.saturating_duration_since(held.since);
                (!held.reported && for_how_long >= threshold).then(|| {
                    held.reported = true;
                    (held.location, for_how_long)
                })
            })
            .collect()
    }

    /// Ends the watch of `ticket`; `Some` (where, held for) when it had
    /// been reported as a leak.
    pub(super) fn end(
        &self,
        ticket: &LeakTicket,
        now: Instant,
    ) -> Option<(&'static Location<'static>, Duration)> {
        let held = self.lock().remove(&ticket.id)?;
        held.reported
            .then(|| (held.location, now.saturating_duration_since(held.since)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Held>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The pool's size limits, which `set_pool_size` and `set_max_overflow`
/// change while the engine runs. They start as the configuration's.
#[derive(Debug)]
pub(super) struct PoolLimits {
    pool_size: AtomicUsize,
    max_overflow: AtomicUsize,
    /// Serializes changes, so that the sum is checked against the values
    /// it replaces.
    changing: Mutex<()>,
}

impl PoolLimits {
    pub(super) fn new(pool_size: usize, max_overflow: usize) -> Self {
        Self {
            pool_size: AtomicUsize::new(pool_size),
            max_overflow: AtomicUsize::new(max_overflow),
            changing: Mutex::new(()),
        }
    }

    pub(super) fn pool_size(&self) -> usize {
        self.pool_size.load(Ordering::Acquire)
    }

    pub(super) fn max_overflow(&self) -> usize {
        self.max_overflow.load(Ordering::Acquire)
    }

    pub(super) fn max_connections(&self) -> usize {
        self.pool_size().saturating_add(self.max_overflow())
    }

    /// Sets either limit after checking the new pair against the same
    /// rules as the configuration's; returns the new `max_connections`.
    pub(super) fn set(
        &self,
        pool_size: Option<usize>,
        max_overflow: Option<usize>,
        min_idle: usize,
    ) -> Result<usize> {
        let _changing = self.changing.lock().unwrap_or_else(PoisonError::into_inner);
        let size = pool_size.unwrap_or_else(|| self.pool_size());
        let overflow = max_overflow.unwrap_or_else(|| self.max_overflow());
        let refuse = |what: &str, value: usize, why: String| {
            Err(Error::with_message(
                ErrorKind::Config,
                format!("cannot set {what} to {value}: {why}"),
            ))
        };
        if let Some(size) = pool_size {
            if size == 0 || size > MAX_CONNECTIONS {
                return refuse(
                    "pool_size",
                    size,
                    format!("it must be between 1 and {MAX_CONNECTIONS}"),
                );
            }
            if size < min_idle {
                return refuse(
                    "pool_size",
                    size,
                    format!("it must be at least min_idle ({min_idle})"),
                );
            }
        }
        if size.saturating_add(overflow) > MAX_CONNECTIONS {
            let (what, value) = match pool_size {
                Some(size) => ("pool_size", size),
                None => ("max_overflow", overflow),
            };
            return refuse(
                what,
                value,
                format!(
                    "pool_size + max_overflow would be {}, more than {MAX_CONNECTIONS}",
                    size.saturating_add(overflow)
                ),
            );
        }
        self.pool_size.store(size, Ordering::Release);
        self.max_overflow.store(overflow, Ordering::Release);
        Ok(size + overflow)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_leak_is_reported_once_then_again_on_return() {
        let tracker = LeakTracker::new(Some(Duration::from_secs(1)));
        let t0 = Instant::now();
        let ticket = tracker.start(Location::caller(), t0).unwrap();
        let quiet = tracker.start(Location::caller(), t0).unwrap();
        assert!(tracker.overdue(t0 + Duration::from_millis(999)).is_empty());
        assert_eq!(tracker.overdue(t0 + Duration::from_secs(2)).len(), 2);
        assert!(tracker.overdue(t0 + Duration::from_secs(3)).is_empty());
        let (_, held) = tracker.end(&ticket, t0 + Duration::from_secs(4)).unwrap();
        assert_eq!(held, Duration::from_secs(4));
        let fresh = tracker.start(Location::caller(), t0).unwrap();
        assert!(tracker.end(&fresh, t0).is_none());
        assert!(tracker.end(&quiet, t0).is_some(), "reported, then returned");
    }

    #[test]
    fn without_a_threshold_nothing_is_watched() {
        let tracker = LeakTracker::new(None);
        assert!(tracker.start(Location::caller(), Instant::now()).is_none());
        assert_eq!(tracker.scan_period(), None);
    }

    #[test]
    fn limits_are_checked_like_the_configuration() {
        let limits = PoolLimits::new(2, 2);
        assert_eq!(limits.set(Some(5), None, 0).unwrap(), 7);
        assert_eq!(limits.set(None, Some(0), 0).unwrap(), 5);
        let error = limits.set(Some(0), None, 0).unwrap_err();
        assert!(error.to_string().contains("pool_size"), "{error}");
        assert!(limits.set(Some(1), None, 2).is_err());
        assert!(limits.set(None, Some(996), 0).is_err());
        assert!(limits.set(Some(1001), None, 0).is_err());
        assert_eq!(limits.max_connections(), 5);
    }
}
