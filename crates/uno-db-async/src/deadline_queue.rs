//! [`DeadlineQueue`]: waits that all have the same limit, bounded without
//! a runtime timer each: the checkouts that must wait (`pool_timeout`) and
//! the statements of the multiplexed mode (`query_timeout`). For the
//! checkouts it is also the line they wait in: a connection coming back
//! goes straight to the first of them ([`hand`](Held::hand)).
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
//! Statements' queues are [striped](Striped): each thread joins the queue
//! of its own stripe, so that waiters on different cores do not take one
//! lock (and its cache line) from each other twice per wait; the thread
//! looks at every stripe. A checkouts' queue is one line, as handing
//! connections out in arrival order needs.
//!
//! ## Handing connections over
//!
//! Waiting in the pool's own semaphore, a checkout paid for the pool's
//! bookkeeping twice: the connection went back into the pool and a permit
//! was added (waking the first waiter), then that waiter took the permit
//! and the connection out again. Here a checkout that finds nothing free
//! joins this queue instead, and a returned connection is handed to the
//! first waiter as it is ([`hand`](Held::hand)), still counted as
//! in use by the pool. What frees room without bringing a connection back
//! (a connection discarded, an open that failed or was cancelled, a larger
//! pool, the pool closed) [kicks](DeadlineQueue::freed) the first waiter,
//! which tries the pool again. A waiter that leaves with a connection
//! handed to it, or a kick it did not use, passes it on to the next.
//!
//! A waiter that joins tries the pool once more (anything given back
//! between its failed try and its joining went to the pool, which it
//! finds), and a returner that found nobody waiting looks again after
//! giving the connection to the pool (kicking anyone who joined
//! meanwhile): each side writes, then fences, then reads what the other
//! wrote, so that at least one of them sees the other.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use uno_db_core::backend::Striped;

/// The waits of one kind of one engine, and the thread that wakes those
/// past their deadline; `T` is what a waiter may be handed.
pub(crate) struct DeadlineQueue<T = ()> {
    shared: Arc<Waits<T>>,
    /// What keeps the queue alive for [`hold`](Self::hold): a reference
    /// per stripe, each counted on its own cache line.
    holds: Striped<Arc<Hold<T>>>,
}

/// One stripe's reference to the queue; aligned so that its count, at the
/// start of its allocation, shares its cache line with nothing else.
#[repr(align(128))]
struct Hold<T>(Arc<Waits<T>>);

/// The queue kept alive by a returner after its connection went into the
/// pool: see [`DeadlineQueue::hold`].
pub(crate) struct Held<T>(Arc<Hold<T>>);

impl<T> Held<T> {
    /// Hands `item` to the first waiter waiting for its turn and wakes it;
    /// `item` back when nobody waits. A returner given its item back puts
    /// it where it goes and then calls [`freed`](Self::freed), for a
    /// waiter that joined meanwhile.
    pub(crate) fn hand(&self, item: T) -> Result<(), T> {
        self.0.0.hand(item)
    }

    /// As [`DeadlineQueue::freed`].
    pub(crate) fn freed(&self, count: usize) {
        self.0.0.freed(count);
    }
}

struct Waits<T> {
    stripes: Striped<Mutex<Queue<T>>>,
    /// Whether waits join their thread's stripe (statements), or all the
    /// first one, in the one order hand-overs follow (checkouts).
    striped: bool,
    /// How many waiters wait for their turn (busy ones not counted): a
    /// returner that reads none goes straight to the pool.
    waiting: AtomicUsize,
    /// Where something handed to a waiter goes when the waiter leaves
    /// without taking it.
    pass_on: fn(T),
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
    refuse_thread: AtomicBool,
}

/// The waiters of one stripe.
struct Queue<T> {
    /// The ticket of `entries[0]`.
    first: u64,
    /// The thread woke every waiter before this ticket: their deadlines
    /// passed. (A waiter stays in the queue until it leaves.)
    woken_before: u64,
    /// In ticket (and deadline) order; `None` once its waiter left.
    entries: VecDeque<Option<Waiter<T>>>,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Self {
            first: 0,
            woken_before: 0,
            entries: VecDeque::new(),
        }
    }
}

struct Waiter<T> {
    started: Instant,
    /// `None` from the moment it is woken until it is polled again.
    waker: Option<Waker>,
    standing: Standing<T>,
}

/// Where a waiter stands.
enum Standing<T> {
    /// Waits for something to come back (or for room).
    Waiting,
    /// Busy with its own try (opening a connection): only its deadline
    /// counts; nothing is handed to it.
    Busy,
    /// Room was freed: it is to try again.
    Kicked,
    /// Something came back for it, not yet taken.
    Handed(T),
}

/// What a waiter whose own try found nothing is to do next (see
/// [`Wait::poll_turn`]).
pub(crate) enum Turn<T> {
    /// Wait: its task is woken when its turn comes or its deadline passes.
    Pending,
    /// Its deadline passed.
    Expired,
    /// Try again: it just joined the queue (something may have come back
    /// meanwhile), or room was freed.
    TryAgain,
    /// This came back and is now its own.
    Handed(T),
}

/// A waiter's place: its stripe and its ticket there.
#[derive(Debug, Clone, Copy)]
struct Ticket {
    stripe: usize,
    number: u64,
}

impl<T> Queue<T> {
    fn push(&mut self, waiter: Waiter<T>) -> u64 {
        let number = self.first + self.entries.len() as u64;
        self.entries.push_back(Some(waiter));
        number
    }

    /// The place of `ticket`: `None` inside once its waiter left.
    fn slot(&mut self, ticket: u64) -> Option<&mut Option<Waiter<T>>> {
        let index = usize::try_from(ticket.checked_sub(self.first)?).ok()?;
        self.entries.get_mut(index)
    }

    fn entry(&mut self, ticket: u64) -> Option<&mut Waiter<T>> {
        self.slot(ticket)?.as_mut()
    }

    /// Takes out the waiter with `ticket`; what it held is dropped (or
    /// passed on) by the caller, after the lock.
    fn remove(&mut self, ticket: u64) -> Option<Waiter<T>> {
        if ticket == self.first && !self.entries.is_empty() {
            // Served in arrival order: the first one leaves, with those
            // that left before it.
            let waiter = self.entries.pop_front().flatten();
            self.first += 1;
            self.pop_left();
            return waiter;
        }
        self.slot(ticket)?.take()
    }

    fn pop_left(&mut self) {
        while matches!(self.entries.front(), Some(None)) {
            self.entries.pop_front();
            self.first += 1;
        }
        self.woken_before = self.woken_before.max(self.first);
    }

    /// The first waiter waiting for its turn, neither busy nor already
    /// told.
    fn first_waiting(&mut self) -> Option<&mut Waiter<T>> {
        self.entries
            .iter_mut()
            .flatten()
            .find(|waiter| matches!(waiter.standing, Standing::Waiting))
    }

    /// Takes the wakers of the waiters due at `now`, each `limit` after
    /// its start, into `due`; the deadline of the first one not due, if
    /// any.
    fn take_due(&mut self, now: Instant, limit: Duration, due: &mut Vec<Waker>) -> Option<Instant> {
        let woken = usize::try_from(self.woken_before - self.first).unwrap_or(usize::MAX);
        for waiter in self.entries.iter_mut().skip(woken) {
            if let Some(waiter) = waiter {
                let deadline = waiter.started + limit;
                if deadline > now {
                    return Some(deadline);
                }
                due.extend(waiter.waker.take());
            }
            self.woken_before += 1;
        }
        None
    }
}

impl<T> std::fmt::Debug for DeadlineQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadlineQueue")
            .field("limit", &self.shared.limit)
            .field("waiting", &self.waiting())
            .finish_non_exhaustive()
    }
}

impl DeadlineQueue {
    /// A queue of waits that each last at most `limit`, striped (nothing
    /// is handed over).
    pub(crate) fn new(limit: Duration) -> Self {
        Self::build(limit, true, drop)
    }
}

impl<T> DeadlineQueue<T> {
    /// A queue of waits that each last at most `limit` and are handed
    /// what comes back in arrival order; what a waiter leaves untaken
    /// goes to `pass_on`.
    pub(crate) fn line(limit: Duration, pass_on: fn(T)) -> Self {
        Self::build(limit, false, pass_on)
    }

    fn build(limit: Duration, striped: bool, pass_on: fn(T)) -> Self {
        let shared = Arc::new(Waits {
            stripes: Striped::default(),
            striped,
            waiting: AtomicUsize::new(0),
            pass_on,
            thread_started: AtomicBool::new(false),
            control: Mutex::new(false),
            closed: Condvar::new(),
            limit,
            #[cfg(test)]
            refuse_thread: AtomicBool::new(false),
        });
        Self {
            holds: Striped::from_fn(|_| Arc::new(Hold(Arc::clone(&shared)))),
            shared,
        }
    }

    /// The limit of every wait in this queue.
    pub(crate) fn limit(&self) -> Duration {
        self.shared.limit
    }

    /// How many waiters wait for their turn now.
    pub(crate) fn waiting(&self) -> usize {
        self.shared.waiting.load(Ordering::Relaxed)
    }

    /// A wait that began at `started` and ends at most the queue's limit
    /// later; it joins the queue when first polled.
    pub(crate) fn wait_from(&self, started: Instant) -> Wait<'_, T> {
        Wait {
            waits: &self.shared,
            started,
            ticket: None,
            timer: None,
            joined_now: false,
        }
    }

    /// The queue, kept alive for as long as the [`Held`] is, also when
    /// this queue is dropped meanwhile: what a returner holds to look for
    /// waiters after its connection went into the pool, where the engine
    /// may drop it (and this queue with it). A reference from this
    /// thread's stripe: the pool's own reference, or one count shared by
    /// every thread, was a cache line written from both cores by every
    /// return.
    pub(crate) fn hold(&self) -> Held<T> {
        Held(Arc::clone(self.holds.local().1))
    }

    /// Room for `count` more was freed (or everything is to look again,
    /// with `usize::MAX`): kicks as many waiters, which try again.
    pub(crate) fn freed(&self, count: usize) {
        self.shared.freed(count);
    }
}

impl<T> Drop for DeadlineQueue<T> {
    fn drop(&mut self) {
        *self.shared.control() = true;
        self.shared.closed.notify_all();
    }
}

fn lock<T>(queue: &Mutex<Queue<T>>) -> MutexGuard<'_, Queue<T>> {
    queue.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T> Waits<T> {
    fn control(&self) -> MutexGuard<'_, bool> {
        self.control.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The queue a waiter joins: its thread's stripe, or the one line.
    fn join_point(&self) -> (usize, &Mutex<Queue<T>>) {
        if self.striped {
            self.stripes.local()
        } else {
            (0, self.line())
        }
    }

    fn line(&self) -> &Mutex<Queue<T>> {
        self.stripes.first()
    }

    fn queue_of(&self, ticket: Ticket) -> &Mutex<Queue<T>> {
        self.stripes
            .get(ticket.stripe)
            .unwrap_or_else(|| self.line())
    }

    /// Puts a waiter at the back of its queue.
    fn join(&self, started: Instant, waker: Waker, standing: Standing<T>) -> Ticket {
        let waits = !matches!(standing, Standing::Busy);
        let (stripe, queue) = self.join_point();
        let number = lock(queue).push(Waiter {
            started,
            waker: Some(waker),
            standing,
        });
        if waits {
            self.now_waiting();
        }
        Ticket { stripe, number }
    }

    /// One more waiter waits for its turn, and is about to try again:
    /// counted first, so that a returner that gave its connection to the
    /// pool before this try sees it after (see the module's comment).
    fn now_waiting(&self) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    fn hand(&self, item: T) -> Result<(), T> {
        if self.waiting.load(Ordering::Relaxed) == 0 {
            return Err(item);
        }
        let mut queue = lock(self.line());
        let Some(waiter) = queue.first_waiting() else {
            return Err(item);
        };
        waiter.standing = Standing::Handed(item);
        let waker = waiter.waker.take();
        drop(queue);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    fn freed(&self, count: usize) {
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) == 0 {
            return;
        }
        for _ in 0..count {
            let mut queue = lock(self.line());
            let Some(waiter) = queue.first_waiting() else {
                return;
            };
            waiter.standing = Standing::Kicked;
            let waker = waiter.waker.take();
            drop(queue);
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }

    /// What a waiter that leaves, or becomes busy, held: a kick it did
    /// not use goes to the next waiter, an item it did not take is passed
    /// on, and an open it gave up frees room. Outside the queue's lock.
    fn settle(&self, standing: Standing<T>) {
        match standing {
            Standing::Waiting => {
                self.waiting.fetch_sub(1, Ordering::Relaxed);
            }
            Standing::Kicked => {
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                self.freed(1);
            }
            Standing::Handed(item) => {
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                (self.pass_on)(item);
            }
            Standing::Busy if !self.striped => self.freed(1),
            Standing::Busy => {}
        }
    }

    /// Starts the thread unless it runs; whether it runs.
    fn start_thread(self: &Arc<Self>) -> bool
    where
        T: Send + 'static,
    {
        if self.thread_started.load(Ordering::Acquire) {
            return true;
        }
        // Under the lock, so that two first waiters start one thread.
        let _control = self.control();
        if self.thread_started.load(Ordering::Acquire) {
            return true;
        }
        #[cfg(test)]
        if self.refuse_thread.load(Ordering::Relaxed) {
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

/// One wait's place in the queue (see [`DeadlineQueue::wait_from`]); it
/// leaves the queue when dropped, passing on what it did not take.
pub(crate) struct Wait<'a, T = ()> {
    waits: &'a Arc<Waits<T>>,
    /// When it began; it ends at most the queue's limit later.
    started: Instant,
    /// Its place in the queue, once it joined.
    ticket: Option<Ticket>,
    /// Its own runtime timer, only when no thread could watch the queue.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// It joined at its last poll: its deadline is a whole limit away, so
    /// the next poll need not read the clock.
    joined_now: bool,
}

impl<T> std::fmt::Debug for Wait<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wait")
            .field("started", &self.started)
            .field("ticket", &self.ticket)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Wait<'_, T> {
    /// Called by a waiter whose own try found nothing free, each time it
    /// is polled: see [`Turn`].
    pub(crate) fn poll_turn(&mut self, cx: &mut Context<'_>) -> Turn<T> {
        let Some(ticket) = self.ticket else {
            self.join(cx, Standing::Waiting);
            self.joined_now = true;
            return Turn::TryAgain;
        };
        let joined_now = std::mem::take(&mut self.joined_now);
        let queue = self.waits.queue_of(ticket);
        let mut guard = lock(queue);
        let Some(waiter) = guard.entry(ticket.number) else {
            // Never so (only the waiter takes its place out): join again.
            drop(guard);
            self.ticket = None;
            return self.poll_turn(cx);
        };
        match std::mem::replace(&mut waiter.standing, Standing::Waiting) {
            Standing::Handed(item) => return Turn::Handed(item),
            Standing::Kicked => return Turn::TryAgain,
            Standing::Busy => {
                drop(guard);
                self.waits.now_waiting();
                return Turn::TryAgain;
            }
            Standing::Waiting => refresh(&mut waiter.waker, cx.waker()),
        }
        drop(guard);
        // Polled again and still waiting: woken by the thread, or for
        // another reason. Only the clock says which (unless it just
        // joined, or its timer must be polled).
        if joined_now && self.timer.is_none() {
            return Turn::Pending;
        }
        if self.expired(cx) {
            self.leave();
            Turn::Expired
        } else {
            Turn::Pending
        }
    }

    /// Called each time the waiting future is polled while busy with its
    /// own try (nothing is handed to it meanwhile): `Ready` once the
    /// deadline passed, else `Pending` with `cx`'s task to be woken at the
    /// deadline.
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(ticket) = self.ticket else {
            // First call: the wait began a moment ago and its limit is
            // never zero (`pool_timeout`, `query_timeout` when set), so
            // the deadline is still ahead.
            self.join(cx, Standing::Busy);
            return match &mut self.timer {
                Some(timer) => timer.as_mut().poll(cx),
                None => Poll::Pending,
            };
        };
        if self.expired(cx) {
            self.leave();
            return Poll::Ready(());
        }
        let mut queue = lock(self.waits.queue_of(ticket));
        let Some(waiter) = queue.entry(ticket.number) else {
            return Poll::Pending;
        };
        refresh(&mut waiter.waker, cx.waker());
        if matches!(waiter.standing, Standing::Busy) {
            return Poll::Pending;
        }
        let held = std::mem::replace(&mut waiter.standing, Standing::Busy);
        drop(queue);
        self.waits.settle(held);
        Poll::Pending
    }

    /// Joins the queue; without a thread to watch it, arms a runtime timer
    /// of its own as well, so the wait stays bounded.
    fn join(&mut self, cx: &mut Context<'_>, standing: Standing<T>) {
        if !self.waits.start_thread() && self.timer.is_none() {
            self.timer = Some(Box::pin(tokio::time::sleep_until(
                (self.started + self.waits.limit).into(),
            )));
        }
        self.ticket = Some(self.waits.join(self.started, cx.waker().clone(), standing));
    }
}

impl<T> Wait<'_, T> {
    /// Leaves the queue (served, expired, or given up), settling what it
    /// held after the lock.
    fn leave(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            let waiter = lock(self.waits.queue_of(ticket)).remove(ticket.number);
            if let Some(waiter) = waiter {
                self.waits.settle(waiter.standing);
            }
        }
    }

    /// Whether the deadline passed (with `cx`'s task to be woken by the
    /// timer, if the wait has one).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        match &mut self.timer {
            Some(timer) => timer.as_mut().poll(cx).is_ready(),
            None => self.started.elapsed() >= self.waits.limit,
        }
    }
}

/// Keeps a waiter's waker current.
fn refresh(kept: &mut Option<Waker>, waker: &Waker) {
    match kept {
        Some(kept) if kept.will_wake(waker) => {}
        Some(kept) => kept.clone_from(waker),
        None => *kept = Some(waker.clone()),
    }
}

impl<T> Drop for Wait<'_, T> {
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

    fn queued<T>(waits: &DeadlineQueue<T>) -> usize {
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

    static PASSED_ON: Mutex<Vec<u32>> = Mutex::new(Vec::new());

    fn pass_on(item: u32) {
        PASSED_ON
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(item);
    }

    fn poll_turn(wait: &mut Wait<'_, u32>) -> Turn<u32> {
        wait.poll_turn(&mut Context::from_waker(std::task::Waker::noop()))
    }

    /// Joined, and its retry found nothing: waits for its turn.
    fn waiting(wait: &mut Wait<'_, u32>) {
        assert!(matches!(poll_turn(wait), Turn::TryAgain));
        assert!(matches!(poll_turn(wait), Turn::Pending));
    }

    #[test]
    fn a_hold_outlives_its_queue_and_threads_hold_through_their_own_counts() {
        let line = DeadlineQueue::line(Duration::from_secs(30), pass_on);
        let stripes = line.holds.iter().count();
        let holds: Vec<Held<u32>> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..stripes).map(|_| scope.spawn(|| line.hold())).collect();
            threads
                .into_iter()
                .filter_map(|thread| thread.join().ok())
                .collect()
        });
        assert_eq!(holds.len(), stripes);
        assert!(
            holds
                .iter()
                .all(|hold| Arc::ptr_eq(&hold.0.0, &line.shared))
        );
        // Threads take stripes round-robin: as many new threads as stripes
        // never all land on one (see `Striped`), so one shared count would
        // show here.
        assert!(
            holds.iter().any(|hold| !Arc::ptr_eq(&hold.0, &holds[0].0)),
            "every thread held through one count"
        );
        drop(line);
        assert_eq!(holds[0].hand(1).err(), Some(1), "nobody waits");
        holds[0].freed(1);
    }

    #[test]
    fn what_comes_back_goes_to_the_first_waiter_and_a_leaver_passes_it_on() {
        let line = DeadlineQueue::line(Duration::from_secs(30), pass_on);
        assert_eq!(line.hold().hand(1).err(), Some(1), "nobody waits");
        let started = Instant::now();
        let (mut first, mut second) = (line.wait_from(started), line.wait_from(started));
        waiting(&mut first);
        waiting(&mut second);
        assert_eq!(line.waiting(), 2);
        assert!(line.hold().hand(7).is_ok());
        assert!(line.hold().hand(8).is_ok());
        assert_eq!(
            line.hold().hand(9).err(),
            Some(9),
            "each waiter is handed one"
        );
        assert!(matches!(poll_turn(&mut second), Turn::Handed(8)));
        // The first leaves without taking its item: it goes on.
        drop(first);
        assert_eq!(
            *PASSED_ON.lock().unwrap_or_else(PoisonError::into_inner),
            [7]
        );
        drop(second);
        assert_eq!(line.waiting(), 0);
        assert_eq!(queued(&line), 0);
    }

    #[test]
    fn a_kick_a_leaver_did_not_use_goes_to_the_next_waiter() {
        let line = DeadlineQueue::line(Duration::from_secs(30), pass_on);
        let started = Instant::now();
        let (mut first, mut second) = (line.wait_from(started), line.wait_from(started));
        waiting(&mut first);
        waiting(&mut second);
        line.freed(1);
        assert!(
            matches!(poll_turn(&mut second), Turn::Pending),
            "one kick, to the first"
        );
        drop(first);
        assert!(matches!(poll_turn(&mut second), Turn::TryAgain));
        assert!(matches!(poll_turn(&mut second), Turn::Pending));
        // Nothing is handed to a waiter busy with its own try, and its
        // leaving counts as room freed.
        let mut busy = line.wait_from(started);
        let noop = std::task::Waker::noop();
        assert!(
            busy.poll_expired(&mut Context::from_waker(noop))
                .is_pending()
        );
        assert_eq!(line.waiting(), 1);
        drop(busy);
        assert!(matches!(poll_turn(&mut second), Turn::TryAgain));
    }

    #[tokio::test]
    async fn a_waiter_past_its_deadline_expires_unless_handed_something_first() {
        let line = DeadlineQueue::line(Duration::from_millis(50), pass_on);
        let mut late = line.wait_from(Instant::now());
        let waited = tokio::time::timeout(
            Duration::from_secs(10),
            std::future::poll_fn(|cx| match late.poll_turn(cx) {
                Turn::Pending => Poll::Pending,
                Turn::TryAgain => {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                Turn::Expired => Poll::Ready(true),
                Turn::Handed(_) => Poll::Ready(false),
            }),
        )
        .await;
        assert_eq!(waited.ok(), Some(true), "woken at its deadline");
        assert_eq!(line.waiting(), 0, "left as it expired");
        let mut served = line.wait_from(Instant::now() - Duration::from_secs(1));
        waiting(&mut served);
        assert!(line.hold().hand(3).is_ok());
        assert!(matches!(poll_turn(&mut served), Turn::Handed(3)));
    }

    #[tokio::test]
    async fn without_its_thread_a_wait_is_bounded_by_its_own_timer() {
        let waits = DeadlineQueue::new(Duration::from_millis(50));
        waits.shared.refuse_thread.store(true, Ordering::Relaxed);
        let started = Instant::now();
        let out = bounded(waits.wait_from(started), std::future::pending::<()>()).await;
        assert!(out.is_none());
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(50), "{took:?}");
        assert!(took < Duration::from_secs(5), "{took:?}");
        assert_eq!(queued(&waits), 0);
    }
}
