//! [`RowStream`] and [`RowIter`]: a query's rows one at a time, with
//! bounded memory, from `query_stream` in each family.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::error::Result;
use crate::row::Row;

/// The rows of [`nonblocking::Client::query_stream`](crate::nonblocking::Client::query_stream),
/// one at a time: a [`Stream`] of `Result<Row>` that holds only the rows
/// the server sent and the caller has not read yet (the driver reads the
/// socket no further ahead than that), so memory stays bounded whatever
/// the row count.
///
/// It borrows its connection: the connection runs nothing else until the
/// stream is dropped. Dropped before its end, the rest of the rows are read
/// and thrown away before the connection's next statement runs; if the
/// connection goes back to the pool first, the pool cancels the query and
/// closes the connection instead of waiting, so no connection is handed out
/// with rows still coming.
///
/// ```no_run
/// use uno_db_core::Result;
/// use uno_db_core::nonblocking::Client;
///
/// async fn export(client: &mut dyn Client) -> Result<u64> {
///     let mut rows = client.query_stream("SELECT id FROM events", &[]).await?;
///     let mut sum = 0;
///     while let Some(row) = rows.try_next().await? {
///         sum += row.try_get::<_, i64>("id")? as u64;
///     }
///     Ok(sum)
/// }
/// ```
#[must_use = "a stream does nothing unless polled"]
pub struct RowStream<'a> {
    inner: Pin<Box<dyn Stream<Item = Result<Row>> + Send + 'a>>,
}

impl<'a> RowStream<'a> {
    /// Wraps a stream of rows: what a backend returns, or a test double's
    /// rows.
    pub fn new(stream: impl Stream<Item = Result<Row>> + Send + 'a) -> Self {
        Self {
            inner: Box::pin(stream),
        }
    }

    /// A stream of rows already at hand, for test doubles: a mock's
    /// `query_stream` can return `RowStream::from_rows(rows)`.
    pub fn from_rows(rows: Vec<Row>) -> Self {
        Self::new(Ready(rows.into_iter()))
    }

    /// The next row, `Ok(None)` after the last one (as
    /// `futures::TryStreamExt::try_next`, without that import).
    ///
    /// # Errors
    ///
    /// The server failed the query, the connection broke, or the wait for
    /// the server exceeded `query_timeout`; the stream ends after an error.
    pub async fn try_next(&mut self) -> Result<Option<Row>> {
        std::future::poll_fn(|cx| self.inner.as_mut().poll_next(cx))
            .await
            .transpose()
    }
}

impl Stream for RowStream<'_> {
    type Item = Result<Row>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl std::fmt::Debug for RowStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowStream").finish_non_exhaustive()
    }
}

/// Rows already read, as a stream.
struct Ready(std::vec::IntoIter<Row>);

impl Stream for Ready {
    type Item = Result<Row>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.0.next().map(Ok))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

/// The rows of [`blocking::Client::query_stream`](crate::blocking::Client::query_stream),
/// one at a time: an [`Iterator`] of `Result<Row>` with bounded memory, as
/// [`RowStream`] is for the async family, with the same rules for a
/// dropped iterator.
///
/// ```no_run
/// use uno_db_core::Result;
/// use uno_db_core::blocking::Client;
///
/// fn export(client: &mut dyn Client) -> Result<u64> {
///     let mut sum = 0;
///     for row in client.query_stream("SELECT id FROM events", &[])? {
///         sum += row?.try_get::<_, i64>("id")? as u64;
///     }
///     Ok(sum)
/// }
/// ```
#[must_use = "an iterator does nothing unless consumed"]
pub struct RowIter<'a> {
    inner: Box<dyn Iterator<Item = Result<Row>> + Send + 'a>,
}

impl<'a> RowIter<'a> {
    /// Wraps an iterator of rows: what a backend returns, or a test
    /// double's rows.
    pub fn new(rows: impl Iterator<Item = Result<Row>> + Send + 'a) -> Self {
        Self {
            inner: Box::new(rows),
        }
    }

    /// An iterator over rows already at hand, for test doubles.
    pub fn from_rows(rows: Vec<Row>) -> Self {
        Self::new(rows.into_iter().map(Ok))
    }
}

impl Iterator for RowIter<'_> {
    type Item = Result<Row>;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl std::fmt::Debug for RowIter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowIter").finish_non_exhaustive()
    }
}
