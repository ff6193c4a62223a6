//! [`StripedCounter`]: a counter that threads add to without sharing a
//! cache line.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Stripes per counter: a few more than the cores of a small server, so
/// that busy threads rarely share one.
const STRIPES: usize = 8;

/// A counter incremented on every checkout, from every thread at once.
/// One atomic would be a cache line that each increment takes from the
/// core that wrote it last; here each thread adds to its own stripe (one
/// cache line each) and a read adds the stripes up, as `LongAdder` does.
#[derive(Debug, Default)]
pub(crate) struct StripedCounter {
    stripes: [Stripe; STRIPES],
}

#[derive(Debug, Default)]
#[repr(align(128))]
struct Stripe(AtomicU64);

impl StripedCounter {
    /// Adds one.
    #[inline]
    pub(crate) fn increment(&self) {
        self.stripes[stripe()].0.fetch_add(1, Ordering::Relaxed);
    }

    /// The count: every increment that happened before the call, and
    /// perhaps some made during it.
    pub(crate) fn sum(&self) -> u64 {
        self.stripes
            .iter()
            .map(|stripe| stripe.0.load(Ordering::Relaxed))
            .sum()
    }
}

/// This thread's stripe, handed out round-robin on first use.
#[inline]
fn stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    STRIPE.with(|stripe| {
        let mut index = stripe.get();
        if index == usize::MAX {
            index = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
            stripe.set(index);
        }
        index
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
