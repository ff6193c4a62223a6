//! [`DeadlineQueue`]: waits that all have the same limit, bounded without
//! a runtime timer each: the checkouts that must wait (`pool_timeout`) and
//! the statements of the multiplexed mode (`query_timeout`).
//!
//! Arming a tokio timer for every wait (a timer-wheel entry locked in on
//! the first poll and out on drop) cost about as much as the rest of a
//! waiting checkout. Every wait of a queue has the same limit, counted
//! from its start, so the waits in arrival order are also in deadline
//! order: a wait joins the back of the queue (one short lock) and leaves
//! it when done (another), and one thread per queue sleeps until the first
//! deadline and wakes the waiters whose time has come. The thread belongs
//! to no runtime, so a waiter is woken whatever runtime it runs on, also
//! when the runtime that first used the engine is gone or no longer
//! driven.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The waits of one kind of one engine, and the thread that wakes those
/// past their deadline.
#[derive(Debug)]
pub(crate) struct DeadlineQueue {
    shared: Arc<Waits>,
}

#[derive(Debug)]
struct Waits {
    queue: Mutex<Queue>,
    /// Wakes the thread when the queue goes.
    closed: Condvar,
    /// How long the thread sleeps with nobody waiting: no waiter that
    /// arrives meanwhile has an earlier deadline than its wake-up (bar the
    /// moment between a waiter's start and its arrival).
    limit: Duration,
    /// Tests: behave as if the thread could not be started.
    #[cfg(test)]
    refuse_thread: bool,
}

#[derive(Debug, Default)]
struct Queue {
    /// The ticket of `entries[0]`.
    first: u64,
    /// In ticket (and deadline) order; `None` once its waiter left.
    entries: VecDeque<Option<Waiter>>,
    thread_started: bool,
    closed: bool,
}

#[derive(Debug)]
struct Waiter {
    deadline: Instant,
    waker: Waker,
}

impl Queue {
    fn entry(&mut self, ticket: u64) -> Option<&mut Option<Waiter>> {
        let index = usize::try_from(ticket.checked_sub(self.first)?).ok()?;
        self.entries.get_mut(index)
    }

    fn pop_left(&mut self) {
        while matches!(self.entries.front(), Some(None)) {
            self.entries.pop_front();
            self.first += 1;
        }
    }
}

impl DeadlineQueue {
    /// A queue of waits that each last at most `limit`.
    pub(crate) fn new(limit: Duration) -> Self {
        Self {
            shared: Arc::new(Waits {
                queue: Mutex::default(),
                closed: Condvar::new(),
                limit,
                #[cfg(test)]
                refuse_thread: false,
            }),
        }
    }

    /// The limit of every wait in this queue.
    pub(crate) fn limit(&self) -> Duration {
        self.shared.limit
    }

    /// A wait that began at `started` and ends at most the queue's limit
    /// later; it joins the queue when first [polled](Wait::poll_expired).
    pub(crate) fn wait_from(&self, started: Instant) -> Wait<'_> {
        Wait {
            waits: &self.shared,
            deadline: started + self.shared.limit,
            ticket: None,
            timer: None,
        }
    }
}

impl Drop for DeadlineQueue {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.closed.notify_all();
    }
}

impl Waits {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts a waiter in the queue; `None` when no thread watches it (the
    /// thread could not be started: the next waiter tries again).
    fn join(self: &Arc<Self>, deadline: Instant, waker: Waker) -> Option<u64> {
        let mut queue = self.lock();
        if !queue.thread_started {
            // Under the lock, once per queue: the thread takes the lock
            // first thing and waits for it.
            if !self.start_thread() {
                return None;
            }
            queue.thread_started = true;
        }
        let ticket = queue.first + queue.entries.len() as u64;
        queue.entries.push_back(Some(Waiter { deadline, waker }));
        Some(ticket)
    }

    fn start_thread(self: &Arc<Self>) -> bool {
        #[cfg(test)]
        if self.refuse_thread {
            return false;
        }
        let waits = Arc::clone(self);
        std::thread::Builder::new()
            .name("uno-db-deadlines".into())
            .spawn(move || waits.watch())
            .is_ok()
    }

    fn leave(&self, ticket: u64) {
        let mut queue = self.lock();
        if let Some(entry) = queue.entry(ticket) {
            *entry = None;
        }
        queue.pop_left();
    }

    /// Keeps the waiter's waker current; `false` when it is no longer in
    /// the queue (the thread found its deadline passed).
    fn refresh(&self, ticket: u64, waker: &Waker) -> bool {
        let mut queue = self.lock();
        match queue.entry(ticket) {
            Some(Some(waiter)) => {
                if !waiter.waker.will_wake(waker) {
                    waiter.waker.clone_from(waker);
                }
                true
            }
            _ => false,
        }
    }

    /// The thread: wakes each waiter at its deadline, until the queue goes.
    fn watch(&self) {
        let mut due = Vec::new();
        let mut queue = self.lock();
        while !queue.closed {
            let now = Instant::now();
            queue.pop_left();
            while let Some(Some(waiter)) = queue.entries.front() {
                if waiter.deadline > now {
                    break;
                }
                if let Some(Some(waiter)) = queue.entries.pop_front() {
                    due.push(waiter.waker);
                }
                queue.first += 1;
                queue.pop_left();
            }
            let sleep = match queue.entries.front() {
                Some(Some(waiter)) => waiter.deadline.saturating_duration_since(now),
                _ => self.limit,
            };
            if !due.is_empty() {
                // Woken outside the lock, which each of them takes next.
                drop(queue);
                due.drain(..).for_each(Waker::wake);
                queue = self.lock();
                continue;
            }
            queue = self
                .closed
                .wait_timeout(queue, sleep)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// One wait's place in the queue (see [`DeadlineQueue::wait`]); it leaves
/// the queue when dropped.
#[derive(Debug)]
pub(crate) struct Wait<'a> {
    waits: &'a Arc<Waits>,
    deadline: Instant,
    /// Its place in the queue, once it joined.
    ticket: Option<u64>,
    /// Its own runtime timer, only when no thread could watch the queue.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Wait<'_> {
    /// Called each time the waiting future is polled and what it waits for
    /// is not there yet: `Ready` once the deadline passed, else `Pending`
    /// with `cx`'s task to be woken at the deadline.
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(timer) = &mut self.timer {
            return timer.as_mut().poll(cx);
        }
        let Some(ticket) = self.ticket else {
            // First call: the wait began a moment ago and its limit is
            // never zero (`pool_timeout`, `query_timeout` when set), so
            // the deadline is still ahead.
            return self.join(cx);
        };
        // Polled again and still waiting: woken by the thread, or for
        // another reason. Only the clock says which.
        if Instant::now() >= self.deadline {
            self.leave();
            return Poll::Ready(());
        }
        if self.waits.refresh(ticket, cx.waker()) {
            return Poll::Pending;
        }
        self.join(cx)
    }

    /// Joins the queue; without a thread to watch it, arms a runtime timer
    /// of its own instead, so the wait stays bounded.
    fn join(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self.waits.join(self.deadline, cx.waker().clone()) {
            Some(ticket) => {
                self.ticket = Some(ticket);
                Poll::Pending
            }
            None => self
                .timer
                .insert(Box::pin(tokio::time::sleep_until(self.deadline.into())))
                .as_mut()
                .poll(cx),
        }
    }

    fn leave(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.waits.leave(ticket);
        }
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        // Served, or a caller that gave up (its future dropped).
        self.leave();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits on `until` (a stand-in for the pool) within `wait`; a wait
    /// nobody wakes fails the test instead of hanging it.
    async fn bounded<F: Future + Unpin>(mut wait: Wait<'_>, mut until: F) -> Option<F::Output> {
        let waiting = std::future::poll_fn(|cx| {
            if let Poll::Ready(out) = Pin::new(&mut until).poll(cx) {
                return Poll::Ready(Some(out));
            }
            wait.poll_expired(cx).map(|()| None)
        });
        let out = tokio::time::timeout(Duration::from_secs(10), waiting).await;
        assert!(out.is_ok(), "a waiter past its deadline was never woken");
        out.ok().flatten()
    }

    fn queued(waits: &DeadlineQueue) -> usize {
        waits.shared.lock().entries.len()
    }

    #[tokio::test]
    async fn a_wait_past_its_deadline_ends_without_a_runtime_timer() {
        let waits = DeadlineQueue::new(Duration::from_millis(50));
        let started = Instant::now();
        let wait = waits.wait_from(started);
        let out = bounded(wait, std::future::pending::<()>()).await;
        assert!(out.is_none());
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(50), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert_eq!(queued(&waits), 0);
    }

    #[tokio::test]
    async fn a_served_wait_leaves_the_queue() {
        let waits = DeadlineQueue::new(Duration::from_secs(30));
        let (tx, rx) = tokio::sync::oneshot::channel::<u8>();
        let serve = async {
            tokio::task::yield_now().await;
            assert_eq!(queued(&waits), 1);
            assert!(tx.send(7).is_ok());
        };
        let wait = waits.wait_from(Instant::now());
        let (out, ()) = tokio::join!(bounded(wait, rx), serve);
        assert_eq!(out, Some(Ok(7)));
        assert_eq!(queued(&waits), 0);
    }

    #[tokio::test]
    async fn waiters_end_in_deadline_order_and_a_dropped_one_leaves() {
        let waits = DeadlineQueue::new(Duration::from_millis(40));
        let started = Instant::now();
        let mut gone = waits.wait_from(started + Duration::from_secs(60));
        let waker = std::task::Waker::noop();
        assert!(
            gone.poll_expired(&mut Context::from_waker(waker))
                .is_pending()
        );
        assert_eq!(queued(&waits), 1);
        drop(gone);
        assert_eq!(queued(&waits), 0);
        let first = bounded(waits.wait_from(started), std::future::pending::<()>());
        let second = async {
            let out = bounded(
                waits.wait_from(started + Duration::from_millis(40)),
                std::future::pending::<()>(),
            )
            .await;
            (out, started.elapsed())
        };
        let (a, (b, b_took)) = tokio::join!(first, second);
        assert!(a.is_none() && b.is_none());
        assert!(b_took >= Duration::from_millis(80), "{b_took:?}");
        assert!(b_took < Duration::from_secs(5), "{b_took:?}");
        assert_eq!(queued(&waits), 0);
    }

    #[tokio::test]
    async fn without_its_thread_a_wait_is_bounded_by_its_own_timer() {
        let mut waits = DeadlineQueue::new(Duration::from_millis(50));
        if let Some(shared) = Arc::get_mut(&mut waits.shared) {
            shared.refuse_thread = true;
        }
        assert!(waits.shared.refuse_thread);
        let started = Instant::now();
        let out = bounded(waits.wait_from(started), std::future::pending::<()>()).await;
        assert!(out.is_none());
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(50), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert_eq!(queued(&waits), 0);
    }
}
