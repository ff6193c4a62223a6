//! [`StripedCounter`]: a counter that threads add to without sharing a
//! cache line.

use std::sync::atomic::{AtomicU64, Ordering};

use super::striped::Striped;

/// A counter added to on every checkout, from every thread at once: each
/// thread adds to its own stripe and a read adds the stripes up.
#[derive(Debug, Default)]
pub(crate) struct StripedCounter(Striped<AtomicU64>);

impl StripedCounter {
    /// Adds one.
    #[inline]
    pub(crate) fn increment(&self) {
        self.add(1);
    }

    /// Adds `n`.
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.0.local().1.fetch_add(n, Ordering::Relaxed);
    }

    /// The count: every increment that happened before the call, and
    /// perhaps some made during it.
    pub(crate) fn sum(&self) -> u64 {
        self.0
            .iter()
            .map(|stripe| stripe.load(Ordering::Relaxed))
            .fold(0, u64::saturating_add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::striped::STRIPES;

    #[test]
    fn increments_from_many_threads_all_count() {
        let counter = StripedCounter::default();
        std::thread::scope(|scope| {
            for _ in 0..(STRIPES * 2) {
                scope.spawn(|| {
                    for _ in 0..1000 {
                        counter.increment();
                    }
                });
            }
        });
        assert_eq!(counter.sum(), (STRIPES * 2 * 1000) as u64);
    }
}
