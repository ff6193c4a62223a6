//! [`CheckoutFuture`]: one checkout, written out as a future.
//!
//! Written by hand rather than as an `async fn`: the trait's boxed future
//! holds it, and each `async` layer around the pool's own (large) future
//! added its arguments and locals again, past the size the allocator
//! serves from its per-thread cache. A checkout that finds an idle
//! connection reads the clock once (when handing it out), arms no timer
//! and enters no span unless a subscriber wants spans.

use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::task::{Context, Poll};

use deadpool::managed::{Object, PoolError};
use uno_db_core::backend::{Checkout, EngineCore};
use uno_db_core::{Error, ErrorKind, Result};

use crate::connection::AsyncConnection;
use crate::deadline_queue::Wait;
use crate::engine::AsyncEngine;
use crate::manager::ConnManager;

type Got = std::result::Result<Object<ConnManager>, PoolError<Error>>;

pin_project_lite::pin_project! {
    /// The future of [`AsyncEngine::checkout`].
    pub(crate) struct CheckoutFuture<'a, G> {
        engine: &'a AsyncEngine,
        location: &'static Location<'static>,
        // `None` until first polled: the disposed check and the start of
        // the background tasks belong to the poll (a runtime is there).
        checkout: Option<Checkout<'a>>,
        // Set once the pool had no idle connection: the `pool_timeout`.
        wait: Option<Wait<'a>>,
        #[pin]
        get: G,
    }
}

impl<'a, G: Future<Output = Got>> CheckoutFuture<'a, G> {
    pub(crate) fn new(
        engine: &'a AsyncEngine,
        location: &'static Location<'static>,
        get: G,
    ) -> Self {
        Self {
            engine,
            location,
            checkout: None,
            wait: None,
            get,
        }
    }
}

impl<G: Future<Output = Got>> Future for CheckoutFuture<'_, G> {
    type Output = Result<AsyncConnection>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
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
        let _in_span = checkout.span().map(|span| span.clone().entered());
        let got = match this.get.poll(cx) {
            Poll::Ready(got) => got,
            Poll::Pending => {
                let wait = match this.wait {
                    Some(wait) => wait,
                    None => this
                        .wait
                        .insert(engine.checkout_waits().wait_from(checkout.must_wait())),
                };
                return match wait.poll_expired(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(()) => Poll::Ready(Err(timed_out(core, checkout))),
                };
            }
        };
        // Served: out of the waiters' queue before anything else.
        *this.wait = None;
        Poll::Ready(match got {
            Ok(mut object) => {
                let ticket = core.handed_out(&mut object.state, checkout.started(), this.location);
                Ok(AsyncConnection::pooled(object, ticket))
            }
            Err(PoolError::Backend(error)) => Err(error),
            Err(PoolError::Closed) => Err(core.disposed_error()),
            Err(PoolError::Timeout(_)) => Err(timed_out(core, checkout)),
            Err(PoolError::NoRuntimeSpecified | PoolError::PostCreateHook(_)) => {
                Err(Error::with_message(
                    ErrorKind::Unsupported,
                    "the pool is configured with a timeout but no runtime",
                ))
            }
        })
    }
}

fn timed_out(core: &EngineCore, checkout: &mut Checkout<'_>) -> Error {
    core.checkout_timed_out(checkout.must_wait(), None)
}
