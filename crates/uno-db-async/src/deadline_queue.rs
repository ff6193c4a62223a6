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
//! deadline and wakes the waiters whose time has come. A waiter keeps its
//! start, not its deadline: the sum (`Instant + Duration`, about 40
//! instructions with its overflow checks) is the thread's to make, for the
//! first waiter of each stripe as it looks, not every waiter's. The thread
//! belongs to no runtime, so a waiter is woken whatever runtime it runs
//! on, also when the runtime that first used the engine is gone or no
//! longer driven.
//!
//! The queue is [striped](Striped): each thread joins the queue of its own
//! stripe, so that waiters on different cores do not take one lock (and
//! its cache line) from each other twice per wait; the thread looks at
//! every stripe.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use uno_db_core::backend::Striped;

/// The waits of one kind of one engine, and the thread that wakes those
/// past their deadline.
#[derive(Debug)]
pub(crate) struct DeadlineQueue {
    shared: Arc<Waits>,
}

#[derive(Debug)]
struct Waits {
    stripes: Striped<Mutex<Queue>>,
    /// Whether the thread runs; set once, under `control`.
    thread_started: AtomicBool,
    /// The queue is gone (`true`): the thread ends. The thread sleeps on
    /// `closed` with this lock.
    control: Mutex<bool>,
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

/// The waiters of one stripe.
#[derive(Debug, Default)]
struct Queue {
    /// The ticket of `entries[0]`.
    first: u64,
    /// In ticket (and deadline) order; `None` once its waiter left.
    entries: VecDeque<Option<Waiter>>,
}

#[derive(Debug)]
struct Waiter {
    started: Instant,
    waker: Waker,
}

/// A waiter's place: its stripe and its ticket there.
#[derive(Debug, Clone, Copy)]
struct Ticket {
    stripe: usize,
    number: u64,
}

impl Queue {
    fn entry(&mut self, ticket: u64) -> Option<&mut Option<Waiter>> {
        let index = usize::try_from(ticket.checked_sub(self.first)?).ok()?;
        self.entries.get_mut(index)
    }

    /// Takes out the waiter with `ticket`: its waker (dropped by the
    /// caller, after the lock) unless the thread already took it.
    fn remove(&mut self, ticket: u64) -> Option<Waiter> {
        if ticket == self.first && !self.entries.is_empty() {
            // Served in arrival order, as the pool serves its waiters:
            // the first one leaves, with those that left before it.
            let waiter = self.entries.pop_front().flatten();
            self.first += 1;
            self.pop_left();
            return waiter;
        }
        self.entry(ticket).and_then(Option::take)
    }

    fn pop_left(&mut self) {
        while matches!(self.entries.front(), Some(None)) {
            self.entries.pop_front();
            self.first += 1;
        }
    }

    /// Takes out the waiters due at `now`, each `limit` after its start
    /// (their wakers go to `due`); the deadline of the first one left, if
    /// any.
    fn take_due(&mut self, now: Instant, limit: Duration, due: &mut Vec<Waker>) -> Option<Instant> {
        self.pop_left();
        while let Some(Some(waiter)) = self.entries.front() {
            let deadline = waiter.started + limit;
            if deadline > now {
                return Some(deadline);
            }
            if let Some(Some(waiter)) = self.entries.pop_front() {
                due.push(waiter.waker);
            }
            self.first += 1;
            self.pop_left();
        }
        None
    }
}

impl DeadlineQueue {
    /// A queue of waits that each last at most `limit`.
    pub(crate) fn new(limit: Duration) -> Self {
        Self {
            shared: Arc::new(Waits {
                stripes: Striped::default(),
                thread_started: AtomicBool::new(false),
                control: Mutex::new(false),
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
            started,
            ticket: None,
            timer: None,
        }
    }
}

impl Drop for DeadlineQueue {
    fn drop(&mut self) {
        *self.shared.control() = true;
        self.shared.closed.notify_all();
    }
}

fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    queue.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Waits {
    fn control(&self) -> MutexGuard<'_, bool> {
        self.control.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts a waiter in its thread's stripe; `None` when no thread watches
    /// the queue (the thread could not be started: the next waiter tries
    /// again).
    fn join(self: &Arc<Self>, started: Instant, waker: Waker) -> Option<Ticket> {
        if !self.thread_started.load(Ordering::Acquire) && !self.start_thread() {
            return None;
        }
        let (stripe, queue) = self.stripes.local();
        let mut queue = lock(queue);
        let number = queue.first + queue.entries.len() as u64;
        queue.entries.push_back(Some(Waiter { started, waker }));
        Some(Ticket { stripe, number })
    }

    /// Starts the thread unless it runs; whether it runs.
    fn start_thread(self: &Arc<Self>) -> bool {
        // Under the lock, so that two first waiters start one thread.
        let _control = self.control();
        if self.thread_started.load(Ordering::Acquire) {
            return true;
        }
        #[cfg(test)]
        if self.refuse_thread {
            return false;
        }
        let waits = Arc::clone(self);
        let started = std::thread::Builder::new()
            .name("uno-db-deadlines".into())
            .spawn(move || waits.watch())
            .is_ok();
        self.thread_started.store(started, Ordering::Release);
        started
    }

    fn leave(&self, ticket: Ticket) {
        let Some(queue) = self.stripes.get(ticket.stripe) else {
            return;
        };
        let waiter = lock(queue).remove(ticket.number);
        // Its waker is let go after the lock.
        drop(waiter);
    }

    /// Keeps the waiter's waker current; `false` when it is no longer in
    /// the queue (the thread found its deadline passed).
    fn refresh(&self, ticket: Ticket, waker: &Waker) -> bool {
        let Some(queue) = self.stripes.get(ticket.stripe) else {
            return false;
        };
        match lock(queue).entry(ticket.number) {
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
        loop {
            let now = Instant::now();
            let next = self
                .stripes
                .iter()
                .filter_map(|queue| lock(queue).take_due(now, self.limit, &mut due))
                .min();
            if !due.is_empty() {
                // Woken outside the locks, which each of them takes next.
                due.drain(..).for_each(Waker::wake);
                continue;
            }
            let sleep = next.map_or(self.limit, |next| next.saturating_duration_since(now));
            let closed = self.control();
            if *closed {
                return;
            }
            // A waiter joining meanwhile has a deadline no earlier than
            // this wake-up: no need to be told of it.
            let (closed, _) = self
                .closed
                .wait_timeout(closed, sleep)
                .unwrap_or_else(PoisonError::into_inner);
            if *closed {
                return;
            }
        }
    }
}

/// One wait's place in the queue (see [`DeadlineQueue::wait`]); it leaves
/// the queue when dropped.
#[derive(Debug)]
pub(crate) struct Wait<'a> {
    waits: &'a Arc<Waits>,
    /// When it began; it ends at most the queue's limit later.
    started: Instant,
    /// Its place in the queue, once it joined.
    ticket: Option<Ticket>,
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
        if self.started.elapsed() >= self.waits.limit {
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
        match self.waits.join(self.started, cx.waker().clone()) {
            Some(ticket) => {
                self.ticket = Some(ticket);
                Poll::Pending
            }
            None => self
                .timer
                .insert(Box::pin(tokio::time::sleep_until(
                    (self.started + self.waits.limit).into(),
                )))
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
        waits
            .shared
            .stripes
            .iter()
            .map(|queue| lock(queue).entries.len())
            .sum()
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

    #[test]
    fn waits_that_leave_out_of_order_leave_no_place_behind() {
        let waits = DeadlineQueue::new(Duration::from_secs(30));
        let started = Instant::now();
        let waker = std::task::Waker::noop();
        let mut joined: Vec<Wait<'_>> = (0..3).map(|_| waits.wait_from(started)).collect();
        for wait in &mut joined {
            assert!(
                wait.poll_expired(&mut Context::from_waker(waker))
                    .is_pending()
            );
        }
        assert_eq!(queued(&waits), 3);
        let last = joined.pop();
        // The middle one leaves first: its place stays, empty, until the
        // first one leaves too.
        let middle = joined.pop();
        drop(middle);
        assert_eq!(queued(&waits), 3);
        drop(joined);
        assert_eq!(queued(&waits), 1);
        drop(last);
        assert_eq!(queued(&waits), 0);
    }

    #[test]
    fn waits_that_joined_from_many_threads_each_end_at_their_deadline() {
        let waits = DeadlineQueue::new(Duration::from_millis(50));
        let started = Instant::now();
        let stripes: Vec<Option<usize>> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..6)
                .map(|_| {
                    scope.spawn(|| {
                        let runtime = tokio::runtime::Builder::new_current_thread()
                            .enable_time()
                            .build()
                            .ok()?;
                        let wait = waits.wait_from(Instant::now());
                        let out = runtime.block_on(async {
                            let mut wait = wait;
                            let stripe = std::future::poll_fn(|cx| {
                                let _ = wait.poll_expired(cx);
                                Poll::Ready(wait.ticket.map(|ticket| ticket.stripe))
                            })
                            .await;
                            (stripe, bounded(wait, std::future::pending::<()>()).await)
                        });
                        assert!(out.1.is_none());
                        out.0
                    })
                })
                .collect();
            threads.into_iter().filter_map(|t| t.join().ok()).collect()
        });
        let took = started.elapsed();
        assert_eq!(stripes.len(), 6);
        let mut used: Vec<usize> = stripes.into_iter().flatten().collect();
        used.sort_unstable();
        used.dedup();
        // Each thread joined its own stripe (other tests' threads take
        // turns too, so some may share one).
        assert!(used.len() > 1, "{used:?}");
        assert!(took >= Duration::from_millis(50), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
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
