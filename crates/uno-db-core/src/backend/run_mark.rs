//! [`RunMark`] and [`Sighting`]: a `query_timeout` watched without reading
//! the clock on the statement's path.
//!
//! Writing a deadline means reading the clock for every statement (about
//! 0.1 k instructions with the arithmetic), and arming a timer costs more.
//! Instead the statement (or a stream's wait for the server) bumps its
//! [`RunMark`]: odd while it runs, never the same value twice. A watcher
//! looks at the marks every [`look_period`] and keeps, per mark, a
//! [`Sighting`]: the value it last saw and when it first saw it. A run seen
//! unchanged for its whole limit ran at least that long (it began before it
//! was seen) and at most two periods longer (a tenth of the limit): the
//! bound a deadline checked every tenth of the limit would give.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How many looks a watcher makes per limit: a late run is caught within
/// two looks, a tenth of its limit.
const LOOKS_PER_LIMIT: u32 = 20;

/// How often a watcher of runs limited to `limit` looks.
#[must_use]
pub fn look_period(limit: Duration) -> Duration {
    limit / LOOKS_PER_LIMIT
}

/// Whether something runs, and which run it is. Written by the one thread
/// or task that holds the connection (a load and a store, no
/// read-modify-write), read by the watcher.
#[derive(Debug, Default)]
pub struct RunMark(AtomicU64);

impl RunMark {
    /// A run starts. Release: a watcher that sees the new value sees what
    /// was written before it (the run's limit).
    #[inline]
    pub fn start(&self) {
        let mark = self.0.load(Ordering::Relaxed);
        // From an odd value too (a run that never ended, its future
        // dropped): the new run still gets a value of its own.
        self.0.store(mark.wrapping_add(1) | 1, Ordering::Release);
    }

    /// The run ended (a second call changes nothing).
    #[inline]
    pub fn stop(&self) {
        let mark = self.0.load(Ordering::Relaxed);
        self.0.store(mark.wrapping_add(mark & 1), Ordering::Release);
    }

    /// The mark as it is now, for [`Sighting::overdue`].
    #[must_use]
    pub fn load(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// What a watcher last saw of one [`RunMark`], and since when.
#[derive(Debug, Clone, Copy)]
pub struct Sighting {
    seen: u64,
    since: Instant,
}

impl Sighting {
    /// Nothing seen running yet, at `now`.
    #[must_use]
    pub fn new(now: Instant) -> Self {
        Self {
            seen: 0,
            since: now,
        }
    }

    /// Looks at `mark` at `now`: whether the same run has been seen
    /// running for `limit` or longer.
    pub fn overdue(&mut self, mark: u64, now: Instant, limit: Duration) -> bool {
        if mark != self.seen {
            self.seen = mark;
            self.since = now;
            return false;
        }
        mark & 1 == 1 && now.saturating_duration_since(self.since) >= limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(1);

    #[test]
    fn a_run_seen_for_its_whole_limit_is_overdue_and_not_before() {
        let t0 = Instant::now();
        let mark = RunMark::default();
        let mut sighting = Sighting::new(t0);
        mark.start();
        // First seen at t0 + 0.3 s: the limit counts from there.
        assert!(!sighting.overdue(mark.load(), t0 + LIMIT * 3 / 10, LIMIT));
        assert!(!sighting.overdue(mark.load(), t0 + LIMIT, LIMIT));
        assert!(sighting.overdue(mark.load(), t0 + LIMIT * 13 / 10, LIMIT));
    }

    #[test]
    fn runs_one_after_another_are_each_seen_anew() {
        let t0 = Instant::now();
        let mark = RunMark::default();
        let mut sighting = Sighting::new(t0);
        for step in 0..50_u32 {
            mark.start();
            assert!(
                !sighting.overdue(mark.load(), t0 + LIMIT * step / 10, LIMIT),
                "run {step}"
            );
            mark.stop();
        }
        // A run whose future was dropped (never stopped), then another.
        mark.start();
        let dropped = mark.load();
        mark.start();
        assert_ne!(mark.load(), dropped);
        assert_eq!(mark.load() & 1, 1);
    }

    #[test]
    fn a_stopped_run_is_never_overdue() {
        let t0 = Instant::now();
        let mark = RunMark::default();
        let mut sighting = Sighting::new(t0);
        mark.start();
        mark.stop();
        mark.stop();
        assert_eq!(mark.load() & 1, 0);
        assert!(!sighting.overdue(mark.load(), t0, LIMIT));
        assert!(!sighting.overdue(mark.load(), t0 + LIMIT * 5, LIMIT));
    }

    #[test]
    fn a_watcher_looks_twenty_times_per_limit() {
        assert_eq!(look_period(LIMIT), Duration::from_millis(50));
    }
}
