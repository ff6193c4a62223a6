//! [`WaitQueue`]: checkouts served first come, first served.
//!
//! r2d2 wakes waiters in no promised order, and a waiter that times out a
//! slice of its wait and comes back goes to the end. So only one checkout
//! at a time waits inside r2d2: the head of this queue. Everyone else parks
//! until the one ahead of them has been served (or gave up), so one
//! returned connection wakes exactly one waiter, the longest waiting.
//! Checkouts that find an idle connection while nobody waits never queue.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread::{self, Thread};
use std::time::Instant;

/// The queue of checkouts of one engine.
#[derive(Debug, Default)]
pub(crate) struct WaitQueue {
    waiters: Mutex<VecDeque<(u64, Thread)>>,
    next_ticket: AtomicU64,
    /// The queue's length, readable without its lock (the fast path).
    len: AtomicUsize,
}

/// A place in the queue; leaving (by drop) lets the next one in.
pub(crate) struct Place<'a> {
    queue: &'a WaitQueue,
    ticket: u64,
}

impl WaitQueue {
    /// Joins the end of the queue.
    pub(crate) fn join(&self) -> Place<'_> {
        let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        let mut waiters = self.lock();
        waiters.push_back((ticket, thread::current()));
        self.len.store(waiters.len(), Ordering::Release);
        drop(waiters);
        Place {
            queue: self,
            ticket,
        }
    }

    /// How many checkouts are queued (the head included).
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Wakes every waiter, for them to see that the engine was disposed.
    pub(crate) fn wake_all(&self) {
        for (_, thread) in self.lock().iter() {
            thread.unpark();
        }
    }

    /// Wakes the checkout at the head of the queue: a connection came
    /// back or closed, so it may now take one or open one.
    pub(crate) fn wake_head(&self) {
        if self.len() == 0 {
            return;
        }
        if let Some((_, thread)) = self.lock().front() {
            thread.unpark();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(u64, Thread)>> {
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Place<'_> {
    /// Waits until this place is at the head of the queue; false when
    /// `deadline` passed or `give_up` said so first.
    pub(crate) fn wait_turn(&self, deadline: Instant, give_up: impl Fn() -> bool) -> bool {
        loop {
            if self
                .queue
                .lock()
                .front()
                .is_some_and(|(t, _)| *t == self.ticket)
            {
                return true;
            }
            let now = Instant::now();
            if now >= deadline || give_up() {
                return false;
            }
            thread::park_timeout(deadline - now);
        }
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        let mut waiters = self.queue.lock();
        let was_head = waiters.front().is_some_and(|(t, _)| *t == self.ticket);
        waiters.retain(|(t, _)| *t != self.ticket);
        self.queue.len.store(waiters.len(), Ordering::Release);
        if was_head && let Some((_, next)) = waiters.front() {
            next.unpark();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::{Arc, Mutex as StdMutex};
    use std::time::Duration;

    use super::*;

    #[test]
    fn served_in_arrival_order() {
        let queue = Arc::new(WaitQueue::default());
        let order = Arc::new(StdMutex::new(Vec::new()));
        let head = queue.join();
        let mut threads = Vec::new();
        for i in 0..8 {
            let (shared, order) = (Arc::clone(&queue), Arc::clone(&order));
            threads.push(thread::spawn(move || {
                let place = shared.join();
                assert!(place.wait_turn(Instant::now() + Duration::from_secs(10), || false));
                order.lock().unwrap().push(i);
            }));
            // The next thread joins only once this one is queued.
            while queue.len() < i + 2 {
                thread::yield_now();
            }
        }
        drop(head);
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), (0..8).collect::<Vec<_>>());
    }

    #[test]
    fn a_waiter_gives_up_at_its_deadline_and_leaves() {
        let queue = WaitQueue::default();
        let head = queue.join();
        let second = queue.join();
        assert!(!second.wait_turn(Instant::now() + Duration::from_millis(20), || false));
        drop(second);
        assert_eq!(queue.len(), 1);
        drop(head);
        assert_eq!(queue.len(), 0);
    }
}
