//! [`CheckoutFuture`]: one checkout, written out as a future.
//!
//! Written by hand rather than as an `async fn`: the trait's boxed future
//! holds it, and each `async` layer around the pool's own (large) future
//! added its arguments and locals again, past the size the allocator
//! serves from its per-thread cache. A checkout that finds an idle
//! connection reads no clock of its own (it judges the connection with the
//! time the pool read when it picked it), arms no timer and enters no span
//! unless a subscriber wants spans. One that finds nothing free waits in
//! the engine's queue of checkouts, where a returned connection is handed
//! to it (see [`DeadlineQueue`](crate::deadline_queue::DeadlineQueue)),
//! not in the pool's semaphore.

use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};

use deadpool::managed::{Object, PoolError, TimeoutType};
use uno_db_core::backend::{Checkout, EngineCore};
use uno_db_core::{Error, ErrorKind, Result};

use crate::connection::AsyncConnection;
use crate::deadline_queue::{Turn, Wait};
use crate::engine::AsyncEngine;
use crate::manager::ConnManager;
use crate::release::Handover;

type Got = std::result::Result<Object<ConnManager>, PoolError<Error>>;

pin_project_lite::pin_project! {
    /// The future of [`AsyncEngine::checkout`].
    pub(crate) struct CheckoutFuture<'a, G> {
        engine: &'a AsyncEngine,
        location: &'static Location<'static>,
        // `None` until first polled: the disposed check and the start of
        // the background tasks belong to the poll (a runtime is there).
        checkout: Option<Checkout<'a>>,
        // The pool's try again, after it found nothing or a connection
        // failed its verdict.
        again: fn(&'a AsyncEngine) -> G,
        // Whether `get` is under way (else it finished: the checkout waits
        // in the queue for its turn).
        getting: bool,
        // Declared before `wait`, so dropped first: the room an open under
        // way held is back in the pool before the wait, leaving, tells the
        // next waiter to look.
        #[pin]
        get: G,
        // Set once the pool had no idle connection: its place in the
        // waiters' queue, and its `pool_timeout`.
        wait: Option<Wait<'a, Handover>>,
    }
}

impl<'a, G: Future<Output = Got>> CheckoutFuture<'a, G> {
    /// A checkout from `engine` for the caller at `location`: `get` is the
    /// pool's own (non-waiting) try, which `again` makes anew.
    // `get` comes built, not made here through `again`: a future returned
    // through a function pointer is built aside and copied in (a `memcpy`
    // of the pool's large future on every checkout).
    pub(crate) fn new(
        engine: &'a AsyncEngine,
        location: &'static Location<'static>,
        get: G,
        again: fn(&'a AsyncEngine) -> G,
    ) -> Self {
        Self {
            engine,
            location,
            checkout: None,
            again,
            getting: true,
            get,
            wait: None,
        }
    }
}

impl<G: Future<Output = Got>> Future for CheckoutFuture<'_, G> {
    type Output = Result<AsyncConnection>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // A checkout spends the task's cooperative budget, as a wait on a
        // tokio semaphore does: the pool's try does not, and a task that
        // finds a connection idle every time would otherwise never yield
        // its worker (nor let it drive the timers).
        let budget = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        let polled = self.poll_checkout(cx);
        if polled.is_ready() {
            budget.made_progress();
        }
        polled
    }
}

impl<G: Future<Output = Got>> CheckoutFuture<'_, G> {
    fn poll_checkout(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<AsyncConnection>> {
        let mut this = self.project();
        let engine = *this.engine;
        let core = &engine.shared().core;
        let checkout = match this.checkout {
            Some(checkout) => checkout,
            None => {
                if core.is_disposed() {
                    return Poll::Ready(Err(core.disposed_error()));
                }
                engine.start_background();
                this.checkout.insert(core.checkout_begun())
            }
        };
        // Entered only when a subscriber wants spans: a `None` of
        // `Option<EnteredSpan>` still ran its drop glue (a call) every time.
        let _in_span;
        if let Some(span) = checkout.span() {
            _in_span = span.clone().entered();
        }
        loop {
            // The connection, the time it was last judged by (see below),
            // and whether it was idle (else just opened).
            let (mut object, now, idle) = if *this.getting {
                let got = match this.get.as_mut().poll(cx) {
                    Poll::Ready(got) => got,
                    Poll::Pending => {
                        // Opening a connection (the pool gave room): only
                        // `pool_timeout` bounds it.
                        let wait = this.wait.get_or_insert_with(|| {
                            engine.checkout_waits().wait_from(checkout.must_wait())
                        });
                        return match wait.poll_expired(cx) {
                            Poll::Pending => Poll::Pending,
                            Poll::Ready(()) => Poll::Ready(Err(timed_out(core, checkout))),
                        };
                    }
                };
                *this.getting = false;
                match got {
                    // The time the pool read as it picked an idle
                    // connection (after its recycle step), or opened this
                    // one: what the verdict and the hand-out go by, rather
                    // than a clock read of their own.
                    Ok(object) => {
                        let metrics = Object::metrics(&object);
                        match metrics.recycled {
                            Some(recycled) => (object, recycled, true),
                            None => {
                                let created = metrics.created;
                                (object, created, false)
                            }
                        }
                    }
                    // Nothing idle and no room: wait for a turn (below).
                    Err(PoolError::Timeout(TimeoutType::Wait)) => continue,
                    Err(error) => {
                        *this.wait = None;
                        // An open that failed gave its room back.
                        engine.checkout_waits().freed(1);
                        return Poll::Ready(Err(pool_error(core, checkout, error)));
                    }
                }
            } else {
                let wait = this
                    .wait
                    .get_or_insert_with(|| engine.checkout_waits().wait_from(checkout.must_wait()));
                match wait.poll_turn(cx) {
                    Turn::Pending => return Poll::Pending,
                    Turn::Expired => return Poll::Ready(Err(timed_out(core, checkout))),
                    Turn::TryAgain => {
                        this.get.set((this.again)(engine));
                        *this.getting = true;
                        continue;
                    }
                    // Handed over by its returner, who read the clock as it
                    // took it back.
                    Turn::Handed((object, returned)) => (object, returned, true),
                }
            };
            // A connection just opened is not judged, as the pool does not
            // recycle it: a server that closed each new one at once would
            // otherwise keep this loop opening more.
            if let Some(reason) = idle
                .then(|| core.checkout_verdict(&object.state, object.is_closed(), now))
                .flatten()
            {
                // As the pool does with a connection that fails its recycle
                // step: closed, and the checkout goes on with another (the
                // room it frees is this checkout's to take).
                object.state.close_for(reason);
                drop(Object::take(object));
                this.get.set((this.again)(engine));
                *this.getting = true;
                continue;
            }
            // Served: out of the waiters' queue before anything else.
            *this.wait = None;
            object.state.vetted(now);
            let ticket = core.handed_out(&mut object.state, checkout.started(), this.location);
            return Poll::Ready(Ok(AsyncConnection::pooled(object, ticket)));
        }
    }
}

fn pool_error(core: &EngineCore, checkout: &mut Checkout<'_>, error: PoolError<Error>) -> Error {
    match error {
        PoolError::Backend(error) => error,
        PoolError::Closed => core.disposed_error(),
        PoolError::Timeout(_) => timed_out(core, checkout),
        PoolError::NoRuntimeSpecified | PoolError::PostCreateHook(_) => Error::with_message(
            ErrorKind::Unsupported,
            "the pool is configured with a timeout but no runtime",
        ),
    }
}

fn timed_out(core: &EngineCore, checkout: &mut Checkout<'_>) -> Error {
    core.checkout_timed_out(checkout.must_wait(), None)
}
