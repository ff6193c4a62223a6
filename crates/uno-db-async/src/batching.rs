//! [`Batching`]: how the driver task of a shared connection (the
//! multiplexed mode) is polled, so that statements of many tasks leave in
//! few writes.
//!
//! The driver writes every statement queued when it is polled, in one
//! write. Woken by the first statement of a burst, it would run before
//! the other tasks of the burst had queued theirs (the scheduler runs a
//! task woken by the running one next), and each statement would cost a
//! write and a wake-up of the server. Yielding once before each poll lets
//! the tasks that are ready queue their statements first.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A future polled only on every second wake-up: the first one yields.
pub(crate) struct Batching<F> {
    inner: Pin<Box<F>>,
    yielded: bool,
}

impl<F: Future> Batching<F> {
    pub(crate) fn new(inner: F) -> Self {
        Self {
            inner: Box::pin(inner),
            yielded: false,
        }
    }
}

impl<F: Future> Future for Batching<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if !self.yielded {
            self.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.yielded = false;
        self.inner.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn the_inner_future_is_polled_after_one_yield_per_wake_up() {
        let polls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&polls);
        let inner = std::future::poll_fn(move |cx| {
            if counted.fetch_add(1, Ordering::SeqCst) == 2 {
                return Poll::Ready(7);
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        });
        let mut batching = std::pin::pin!(Batching::new(inner));
        let mut outer_polls = 0;
        let value = std::future::poll_fn(|cx| {
            outer_polls += 1;
            batching.as_mut().poll(cx)
        })
        .await;
        assert_eq!(value, 7);
        assert_eq!(polls.load(Ordering::SeqCst), 3);
        assert_eq!(
            outer_polls, 6,
            "every poll of the inner future follows a yield"
        );
    }
}
