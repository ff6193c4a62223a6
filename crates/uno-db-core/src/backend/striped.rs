//! [`Striped`]: one value per group of threads, each on its own cache
//! line.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Stripes per value: a few more than the cores of a small server, so
/// that busy threads rarely share one.
pub(crate) const STRIPES: usize = 8;

/// A value kept once per stripe, where each thread uses the stripe it was
/// given on first use (round-robin). Something every checkout writes, from
/// every thread at once, would be one cache line taken from the core that
/// wrote it last on each write; striped, each core mostly writes its own
/// line, as Java's `LongAdder` and `ConcurrentHashMap`'s counters do. A
/// reader that needs the whole goes through [`iter`](Self::iter).
#[derive(Debug, Default)]
pub struct Striped<T> {
    stripes: [Stripe<T>; STRIPES],
}

#[derive(Debug, Default)]
#[repr(align(128))]
struct Stripe<T>(T);

impl<T> Striped<T> {
    /// A value per stripe, made by `make` from the stripe's index.
    pub fn from_fn(mut make: impl FnMut(usize) -> T) -> Self {
        Self {
            stripes: std::array::from_fn(|index| Stripe(make(index))),
        }
    }

    /// This thread's stripe, with its index (for [`get`](Self::get) from
    /// another thread later).
    #[inline]
    pub fn local(&self) -> (usize, &T) {
        let index = stripe();
        (index, &self.stripes[index].0)
    }

    /// The stripe at `index`, as [`local`](Self::local) gave it; `None`
    /// past the last.
    #[must_use]
    pub fn get(&self, index: usize) -> Option<&T> {
        self.stripes.get(index).map(|stripe| &stripe.0)
    }

    /// The first stripe (index 0): for a value that some uses keep in one
    /// place.
    #[must_use]
    pub fn first(&self) -> &T {
        &self.stripes[0].0
    }

    /// Every stripe, in index order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.stripes.iter().map(|stripe| &stripe.0)
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
    use std::sync::Mutex;

    #[test]
    fn a_thread_keeps_its_stripe_and_threads_spread_over_all_of_them() {
        let striped: Striped<Mutex<Vec<usize>>> = Striped::default();
        std::thread::scope(|scope| {
            for _ in 0..STRIPES {
                scope.spawn(|| {
                    let (first, _) = striped.local();
                    for _ in 0..10 {
                        let (index, stripe) = striped.local();
                        assert_eq!(index, first);
                        stripe
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(index);
                    }
                });
            }
        });
        let used = striped
            .iter()
            .filter(|stripe| {
                !stripe
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .is_empty()
            })
            .count();
        // Round-robin from a process-wide counter: other tests' threads
        // may take turns in between, so not every stripe need be used, but
        // eight threads never all land on one.
        assert!(used > 1, "{used}");
        for (index, stripe) in striped.iter().enumerate() {
            let seen = stripe
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            assert!(seen.iter().all(|&i| i == index));
            assert!(striped.get(index).is_some());
        }
        assert!(striped.get(STRIPES).is_none());
    }
}
