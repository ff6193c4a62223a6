//! Listeners as a [`Stream`] ([`ListenerStream`], async) and as an
//! [`Iterator`] that ends after a quiet wait ([`ListenerIter`], blocking).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;

use crate::error::{ErrorKind, Result};
use crate::listener_event::ListenerEvent;
use crate::{blocking, nonblocking};

type Waiting =
    Pin<Box<dyn Future<Output = (Box<dyn nonblocking::Listener>, Result<ListenerEvent>)> + Send>>;

/// A [`nonblocking::Listener`] as a [`Stream`] of its events, for
/// `StreamExt` combinators and `select!` loops:
///
/// ```no_run
/// use uno_db_core::ListenerEvent;
/// use uno_db_core::nonblocking::{Engine, ListenerStream};
///
/// # async fn demo(engine: &dyn Engine) -> uno_db_core::Result<()> {
/// let mut listener = engine.listener().await?;
/// listener.listen("jobs").await?;
/// let mut events = ListenerStream::new(listener);
/// while let Some(event) = events.try_next().await? {
///     match event {
///         ListenerEvent::Notification(n) => println!("{}: {}", n.channel(), n.payload()),
///         ListenerEvent::Reconnected => println!("reconnected: re-read what may have been missed"),
///         _ => {}
///     }
/// }
/// # Ok(()) }
/// ```
///
/// Each item is what [`next`](nonblocking::Listener::next) returns: an
/// error that reconnecting failed is an item, and the stream goes on (the
/// next poll tries again). The stream ends after the engine was disposed
/// ([`PoolClosed`](ErrorKind::PoolClosed)), once that error was handed
/// out.
#[must_use = "a stream does nothing unless polled"]
pub struct ListenerStream {
    state: State,
}

enum State {
    Idle(Box<dyn nonblocking::Listener>),
    Waiting(Waiting),
    Ended,
}

impl ListenerStream {
    /// Streams `listener`'s events.
    pub fn new(listener: Box<dyn nonblocking::Listener>) -> Self {
        Self {
            state: State::Idle(listener),
        }
    }

    /// The listener back, to listen to more channels, unless a wait was
    /// left under way (a `next` future dropped before it ended) or the
    /// stream ended.
    #[must_use]
    pub fn into_listener(self) -> Option<Box<dyn nonblocking::Listener>> {
        match self.state {
            State::Idle(listener) => Some(listener),
            State::Waiting(_) | State::Ended => None,
        }
    }

    /// The next event, `Ok(None)` once the stream ended (as
    /// `futures::TryStreamExt::try_next`, without that import).
    ///
    /// # Errors
    ///
    /// As [`next`](nonblocking::Listener::next).
    pub async fn try_next(&mut self) -> Result<Option<ListenerEvent>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx))
            .await
            .transpose()
    }
}

impl Stream for ListenerStream {
    type Item = Result<ListenerEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match std::mem::replace(&mut self.state, State::Ended) {
                State::Idle(mut listener) => {
                    self.state = State::Waiting(Box::pin(async move {
                        let event = listener.next().await;
                        (listener, event)
                    }));
                }
                State::Waiting(mut waiting) => {
                    let Poll::Ready((listener, event)) = waiting.as_mut().poll(cx) else {
                        self.state = State::Waiting(waiting);
                        return Poll::Pending;
                    };
                    let closed =
                        matches!(&event, Err(error) if error.kind() == ErrorKind::PoolClosed);
                    if !closed {
                        self.state = State::Idle(listener);
                    }
                    return Poll::Ready(Some(event));
                }
                State::Ended => return Poll::Ready(None),
            }
        }
    }
}

impl std::fmt::Debug for ListenerStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Idle(_) => "idle",
            State::Waiting(_) => "waiting",
            State::Ended => "ended",
        };
        f.debug_struct("ListenerStream")
            .field("state", &state)
            .finish()
    }
}

/// A [`blocking::Listener`]'s events as an [`Iterator`] that ends when
/// nothing arrives for `quiet` (or after the engine was disposed):
///
/// ```no_run
/// use std::time::Duration;
/// use uno_db_core::ListenerEvent;
/// use uno_db_core::blocking::{Engine, ListenerIter};
///
/// # fn demo(engine: &dyn Engine) -> uno_db_core::Result<()> {
/// let mut listener = engine.listener()?;
/// listener.listen("jobs")?;
/// for event in ListenerIter::new(&mut *listener, Duration::from_secs(5)) {
///     if let ListenerEvent::Notification(n) = event? {
///         println!("{}: {}", n.channel(), n.payload());
///     }
/// }
/// // Five quiet seconds: do something else, then listen again.
/// # Ok(()) }
/// ```
///
/// Errors are items, as [`next_timeout`](blocking::Listener::next_timeout)
/// returns them; the iterator goes on after them.
#[must_use = "an iterator does nothing unless consumed"]
pub struct ListenerIter<'a> {
    listener: &'a mut dyn blocking::Listener,
    quiet: Duration,
    ended: bool,
}

impl<'a> ListenerIter<'a> {
    /// Iterates over `listener`'s events until a wait of `quiet` brings
    /// nothing.
    pub fn new(listener: &'a mut dyn blocking::Listener, quiet: Duration) -> Self {
        Self {
            listener,
            quiet,
            ended: false,
        }
    }
}

impl Iterator for ListenerIter<'_> {
    type Item = Result<ListenerEvent>;

    fn next(&mut self) -> Option<Result<ListenerEvent>> {
        if self.ended {
            return None;
        }
        match self.listener.next_timeout(self.quiet) {
            Ok(Some(event)) => Some(Ok(event)),
            Ok(None) => {
                self.ended = true;
                None
            }
            Err(error) => {
                self.ended = error.kind() == ErrorKind::PoolClosed;
                Some(Err(error))
            }
        }
    }
}

impl std::fmt::Debug for ListenerIter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerIter")
            .field("quiet", &self.quiet)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}
