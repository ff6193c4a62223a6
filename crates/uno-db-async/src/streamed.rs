//! [`Streamed`]: a driver stream (rows, `COPY` data) read through its
//! connection, so that the kernel learns how it ends and `query_timeout`
//! bounds every wait for the server.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use uno_db_core::Result;
use uno_db_core::backend::from_driver;

use crate::pg_conn::PgConn;

/// The items of `stream` (mapped by `map`), which the connection `conn`
/// runs. `query_timeout` bounds each wait for the server, not the time the
/// caller takes between items: the clock runs only while a poll finds
/// nothing buffered.
pub(crate) struct Streamed<'a, S, F> {
    conn: &'a mut PgConn,
    sql: Box<str>,
    stream: Pin<Box<S>>,
    map: F,
    /// The limit of the wait under way, when the clock runs.
    waiting: Option<Duration>,
    ended: bool,
}

impl<'a, S, F> Streamed<'a, S, F> {
    /// `sql` is the statement's text, for what the kernel learns from its
    /// errors (a stale cached plan).
    pub(crate) fn new(conn: &'a mut PgConn, sql: &str, stream: S, map: F) -> Self {
        Self {
            conn,
            sql: sql.into(),
            stream: Box::pin(stream),
            map,
            waiting: None,
            ended: false,
        }
    }
}

impl<S, T, U, F> Stream for Streamed<'_, S, F>
where
    S: Stream<Item = Result<T, tokio_postgres::Error>>,
    F: FnMut(T) -> U + Unpin,
{
    type Item = Result<U>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<U>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        let Poll::Ready(item) = this.stream.as_mut().poll_next(cx) else {
            if this.waiting.is_none() {
                this.waiting = this.conn.watch();
            }
            return Poll::Pending;
        };
        if let Some(limit) = this.waiting.take()
            && this.conn.clock().stop()
        {
            this.ended = true;
            return Poll::Ready(Some(Err(this.conn.state.statement_timed_out(limit))));
        }
        match item {
            Some(Ok(item)) => Poll::Ready(Some(Ok((this.map)(item)))),
            Some(Err(error)) => {
                this.ended = true;
                let error =
                    this.conn
                        .state
                        .stream_failed(Some(&this.sql), from_driver(error), None);
                Poll::Ready(Some(Err(error)))
            }
            None => {
                this.ended = true;
                this.conn.state.stream_ended();
                Poll::Ready(None)
            }
        }
    }
}

impl<S, F> Drop for Streamed<'_, S, F> {
    fn drop(&mut self) {
        // The statement stays in flight (see `ConnState::copy_started`), but
        // this wait is over: a clock left running would end the connection
        // later, while its owner may still use it.
        if self.waiting.is_some() {
            let _ = self.conn.clock().stop();
        }
    }
}
