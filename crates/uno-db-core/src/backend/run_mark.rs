//! [`RunMark`], [`Sighting`] and [`LookPeriod`]: a `query_timeout` watched
//! without reading the clock on the statement's path.
//!
//! Writing a deadline means reading the clock for every statement (about
//! 0.1 k instructions with the arithmetic), and arming a timer costs more.
//! Instead the statement (or a stream's wait for the server) bumps its
//! [`RunMark`]: running while it runs, never the same value twice. A
//! watcher looks at the marks every [`look_period`] and keeps, per mark, a
//! [`Sighting`]: the value it last saw and when it first saw it. A run seen
//! unchanged for its whole limit ran at least that long (it began before it
//! was seen) and at most two periods longer (a tenth of the limit): the
//! bound a deadline checked every tenth of the limit would give. A watcher
//! of runs with different limits looks at the [`LookPeriod`] of the
//! shortest.
//!
//! A run that ends just as the watcher finds it overdue must not be
//! reported as done while the watcher goes on to cancel it (the cancel
//! would then hit the connection's next statement): the watcher
//! [claims](RunMark::claim) the run it saw, and [`stop`](RunMark::stop)
//! says whether it was claimed, in one atomic step each, so exactly one of
//! them wins.

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

/// Whether something runs, which run it is, and its limit. Written by the
/// one thread or task that holds the connection, and claimed by the
/// watcher.
#[derive(Debug)]
pub struct RunMark {
    /// The low bit says that a run is under way, the next that the watcher
    /// claimed it; the rest counts the runs.
    mark: AtomicU64,
    /// The running (or last) run's limit, in nanoseconds; `u64::MAX`
    /// before the first.
    limit: AtomicU64,
}

const RUNNING: u64 = 0b01;
const CLAIMED: u64 = 0b10;

impl Default for RunMark {
    fn default() -> Self {
        Self {
            mark: AtomicU64::new(0),
            limit: AtomicU64::new(u64::MAX),
        }
    }
}

impl RunMark {
    /// A run limited to `limit` starts; `true` when that limit is not the
    /// last run's (the first run, a transaction's own limit): its watcher
    /// must then [take it in](LookPeriod::include).
    ///
    /// A load and a store each: only the holder starts runs, and the
    /// watcher claims only a run it saw, which this one is not. Release: a
    /// watcher that sees the new mark sees the limit too.
    #[inline]
    pub fn start(&self, limit: Duration) -> bool {
        let limit = nanos(limit);
        let new_limit = self.limit.load(Ordering::Relaxed) != limit;
        if new_limit {
            self.limit.store(limit, Ordering::Relaxed);
        }
        let mark = self.mark.load(Ordering::Relaxed);
        // The next count, from a run that never ended too (its future
        // dropped): each run has a value of its own.
        self.mark.store(
            ((mark | RUNNING | CLAIMED) + 1) | RUNNING,
            Ordering::Release,
        );
        new_limit
    }

    /// The run ended; whether the watcher claimed it first (it is being
    /// cancelled: report the time-out, not the result).
    #[inline]
    pub fn stop(&self) -> bool {
        self.mark.fetch_and(!RUNNING, Ordering::AcqRel) & CLAIMED != 0
    }

    /// The mark as it is now.
    fn load(&self) -> u64 {
        self.mark.load(Ordering::Acquire)
    }

    /// The watcher takes the run it saw as `seen` (overdue) to cancel it;
    /// `false` when that run ended (or another began) meanwhile: nothing
    /// to cancel.
    fn claim(&self, seen: u64) -> bool {
        seen & (RUNNING | CLAIMED) == RUNNING
            && self
                .mark
                .compare_exchange(seen, seen | CLAIMED, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
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

    /// Looks at `run` at `now`: `true` when the same run has been seen
    /// running for its whole limit and is now claimed, so that its
    /// watcher cancels it (and its holder's [`stop`](RunMark::stop) says
    /// so); a run ending this instant is either claimed or goes on
    /// unharmed.
    pub fn claim_overdue(&mut self, run: &RunMark, now: Instant) -> bool {
        let mark = run.load();
        let limit = Duration::from_nanos(run.limit.load(Ordering::Relaxed));
        self.overdue(mark, now, limit) && run.claim(mark)
    }

    /// Looks at `mark` at `now`: whether the same run has been seen
    /// running for `limit` or longer.
    fn overdue(&mut self, mark: u64, now: Instant, limit: Duration) -> bool {
        if mark != self.seen {
            self.seen = mark;
            self.since = now;
            return false;
        }
        mark & (RUNNING | CLAIMED) == RUNNING && now.saturating_duration_since(self.since) >= limit
    }
}

/// How often a watcher of runs with different limits looks: the
/// [`look_period`] of the shortest limit it took in, between 10 ms and a
/// second (so a run is caught at most a tenth of its limit late, or 20 ms
/// for limits under 200 ms).
#[derive(Debug)]
pub struct LookPeriod(AtomicU64);

const MIN_PERIOD: Duration = Duration::from_millis(10);
const MAX_PERIOD: Duration = Duration::from_secs(1);

impl Default for LookPeriod {
    fn default() -> Self {
        Self(AtomicU64::new(nanos(MAX_PERIOD)))
    }
}

impl LookPeriod {
    /// How long the watcher waits between looks.
    #[must_use]
    pub fn get(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::Relaxed))
    }

    /// Runs limited to `limit` are watched too; `true` when that made the
    /// period shorter (a watcher asleep for the old one must be woken).
    pub fn include(&self, limit: Duration) -> bool {
        let period = nanos(look_period(limit).clamp(MIN_PERIOD, MAX_PERIOD));
        self.0.fetch_min(period, Ordering::Relaxed) > period
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
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
        mark.start(LIMIT);
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
            mark.start(LIMIT);
            assert!(
                !sighting.overdue(mark.load(), t0 + LIMIT * step / 10, LIMIT),
                "run {step}"
            );
            assert!(!mark.stop());
        }
        // A run whose future was dropped (never stopped), then another.
        mark.start(LIMIT);
        let dropped = mark.load();
        mark.start(LIMIT);
        assert_ne!(mark.load(), dropped);
        assert_eq!(mark.load() & RUNNING, RUNNING);
    }

    #[test]
    fn a_stopped_run_is_never_overdue() {
        let t0 = Instant::now();
        let mark = RunMark::default();
        let mut sighting = Sighting::new(t0);
        mark.start(LIMIT);
        assert!(!mark.stop());
        assert!(!mark.stop());
        assert_eq!(mark.load() & RUNNING, 0);
        assert!(!sighting.overdue(mark.load(), t0, LIMIT));
        assert!(!sighting.overdue(mark.load(), t0 + LIMIT * 5, LIMIT));
    }

    #[test]
    fn a_claimed_run_stops_as_claimed_and_is_not_overdue_again() {
        let t0 = Instant::now();
        let mark = RunMark::default();
        let mut sighting = Sighting::new(t0);
        mark.start(LIMIT);
        let seen = mark.load();
        assert!(!sighting.overdue(seen, t0, LIMIT));
        assert!(sighting.overdue(seen, t0 + LIMIT, LIMIT));
        assert!(mark.claim(seen));
        assert!(!mark.claim(mark.load()), "claimed once");
        assert!(!sighting.overdue(mark.load(), t0 + LIMIT * 2, LIMIT));
        assert!(!sighting.overdue(mark.load(), t0 + LIMIT * 4, LIMIT));
        assert!(mark.stop(), "the holder learns its run was claimed");
        // The next run is its own, unclaimed.
        mark.start(LIMIT);
        assert!(!mark.stop());
    }

    #[test]
    fn a_run_that_ended_before_the_claim_is_not_claimed() {
        let mark = RunMark::default();
        mark.start(LIMIT);
        let seen = mark.load();
        assert!(!mark.stop());
        assert!(!mark.claim(seen), "it ended: nothing to cancel");
        mark.start(LIMIT);
        assert!(!mark.claim(seen), "another run began");
        assert!(!mark.stop());
    }

    #[test]
    fn a_watcher_looks_twenty_times_per_limit() {
        assert_eq!(look_period(LIMIT), Duration::from_millis(50));
    }

    #[test]
    fn a_run_tells_when_its_limit_is_new() {
        let mark = RunMark::default();
        assert!(mark.start(LIMIT), "the first run");
        assert!(!mark.stop());
        assert!(!mark.start(LIMIT), "the same limit again");
        assert!(!mark.stop());
        assert!(mark.start(LIMIT / 2), "a transaction's own limit");
    }

    #[test]
    fn a_claimed_overdue_run_is_the_one_seen_for_its_limit() {
        let t0 = Instant::now();
        let mark = RunMark::default();
        let mut sighting = Sighting::new(t0);
        mark.start(LIMIT);
        assert!(!sighting.claim_overdue(&mark, t0));
        assert!(!sighting.claim_overdue(&mark, t0 + LIMIT / 2));
        assert!(sighting.claim_overdue(&mark, t0 + LIMIT));
        assert!(!sighting.claim_overdue(&mark, t0 + LIMIT * 3), "once");
        assert!(mark.stop());
        // A shorter limit counts for the run that has it.
        mark.start(LIMIT / 4);
        assert!(!sighting.claim_overdue(&mark, t0 + LIMIT * 4));
        assert!(sighting.claim_overdue(&mark, t0 + LIMIT * 4 + LIMIT / 4));
    }

    #[test]
    fn the_look_period_follows_the_shortest_limit_within_its_bounds() {
        let period = LookPeriod::default();
        assert_eq!(period.get(), Duration::from_secs(1));
        assert!(!period.include(Duration::from_secs(300)), "capped at 1 s");
        assert!(period.include(LIMIT));
        assert_eq!(period.get(), Duration::from_millis(50));
        assert!(!period.include(LIMIT * 2), "never longer again");
        assert!(period.include(Duration::from_millis(20)));
        assert_eq!(period.get(), Duration::from_millis(10), "at least 10 ms");
    }
}
