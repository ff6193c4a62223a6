//! [`CopySink`]: the data of a `COPY ... FROM STDIN`, sent through its
//! connection so that the kernel learns how it ends.

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_sink::Sink;
use uno_db_core::Result;
use uno_db_core::backend::from_driver;
use uno_db_core::nonblocking::CopyIn;

use crate::pg_conn::{PgConn, timed};

/// A `COPY ... FROM STDIN` under way on `conn`. Each send and the finish
/// are bounded by `query_timeout`.
pub(crate) struct CopySink<'a> {
    conn: &'a mut PgConn,
    sink: Pin<Box<tokio_postgres::CopyInSink<Bytes>>>,
    ended: bool,
}

impl<'a> CopySink<'a> {
    pub(crate) fn new(conn: &'a mut PgConn, sink: tokio_postgres::CopyInSink<Bytes>) -> Self {
        Self {
            conn,
            sink: Box::pin(sink),
            ended: false,
        }
    }

    async fn send_now(&mut self, data: Bytes) -> Result<(), tokio_postgres::Error> {
        std::future::poll_fn(|cx| self.sink.as_mut().poll_ready(cx)).await?;
        self.sink.as_mut().start_send(data)
    }
}

#[async_trait]
impl CopyIn for CopySink<'_> {
    async fn send(&mut self, data: Bytes) -> Result<()> {
        if self.ended {
            return Err(uno_db_core::Error::with_message(
                uno_db_core::ErrorKind::Closed,
                "the COPY already failed; start a new one",
            ));
        }
        let result = timed!(self.conn, async {
            self.send_now(data).await.map_err(from_driver)
        });
        if result.is_err() {
            self.ended = true;
        }
        // The kernel learns from an error (a lost connection, an aborted
        // session); a success leaves the `COPY` in flight.
        result.map_err(|error| self.conn.state.stream_failed(None, error, None))
    }

    async fn finish(mut self: Box<Self>) -> Result<u64> {
        if self.ended {
            return Err(uno_db_core::Error::with_message(
                uno_db_core::ErrorKind::Closed,
                "the COPY already failed; start a new one",
            ));
        }
        self.ended = true;
        let result = timed!(self.conn, async {
            self.sink.as_mut().finish().await.map_err(from_driver)
        });
        self.conn.state.finished(None, result)
    }
}

impl Drop for CopySink<'_> {
    fn drop(&mut self) {
        if !self.ended {
            // The driver sends `CopyFail` when its sink is dropped.
            self.conn.state.copy_abandoned();
        }
    }
}
