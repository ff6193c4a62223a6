//! `COPY`: [`CopyInSink`] / [`CopyOutStream`] for the async family,
//! [`CopyInWriter`] / [`CopyOutReader`] for the blocking one, from each
//! family's `copy_in` and `copy_out`.

use std::io::{self, BufRead, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;

use crate::error::Result;
use crate::{blocking, nonblocking};

/// The error of a client that does not implement `COPY` (the defaults of
/// the `copy_in` and `copy_out` methods, which the mocks keep).
pub(crate) fn not_supported() -> crate::Error {
    crate::Error::with_message(
        crate::ErrorKind::Unsupported,
        "this client does not implement COPY (test doubles keep the default copy_in and \
         copy_out; the backends implement them)",
    )
}

/// Where the data of [`nonblocking::Client::copy_in`] goes: write `COPY`
/// data (text, CSV or binary, as the statement says) with
/// [`send`](Self::send), then [`finish`](Self::finish) to end the `COPY`
/// and learn how many rows it loaded.
///
/// A sink dropped without `finish` (the caller's own error, a cancelled
/// task) aborts the `COPY`: the server rejects it and loads nothing, an
/// enclosing session's transaction is aborted, and a connection returned
/// to the pool before the server answered is closed rather than reused.
///
/// ```no_run
/// use uno_db_core::Result;
/// use uno_db_core::nonblocking::Client;
///
/// async fn load(client: &mut dyn Client) -> Result<u64> {
///     let mut sink = client.copy_in("COPY todo (id, title) FROM STDIN").await?;
///     sink.send("1\tbuy milk\n2\twrite docs\n").await?;
///     sink.finish().await // 2
/// }
/// ```
#[must_use = "the COPY is aborted unless finished"]
pub struct CopyInSink<'a> {
    target: Box<dyn nonblocking::CopyIn + 'a>,
}

impl<'a> CopyInSink<'a> {
    /// Wraps where the data goes: a backend's `COPY`, or a test double.
    pub fn new(target: impl nonblocking::CopyIn + 'a) -> Self {
        Self {
            target: Box::new(target),
        }
    }

    /// Sends `data`, the next bytes of the `COPY` stream; rows may span
    /// calls. Waits while the server is behind.
    ///
    /// # Errors
    ///
    /// The server rejected the data so far, or the connection broke.
    pub async fn send(&mut self, data: impl Into<Bytes>) -> Result<()> {
        self.target.send(data.into()).await
    }

    /// Ends the `COPY` and returns the number of rows loaded.
    ///
    /// # Errors
    ///
    /// The server rejected the data (malformed rows, a constraint); nothing
    /// was loaded.
    pub async fn finish(self) -> Result<u64> {
        self.target.finish().await
    }
}

impl std::fmt::Debug for CopyInSink<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyInSink").finish_non_exhaustive()
    }
}

/// The data of [`nonblocking::Client::copy_out`]: a [`Stream`] of chunks
/// of `COPY` data (text, CSV or binary, as the statement says), with
/// bounded memory. The same rules as [`RowStream`](crate::nonblocking::RowStream)'s
/// apply when it is dropped before its end.
#[must_use = "a stream does nothing unless polled"]
pub struct CopyOutStream<'a> {
    inner: Pin<Box<dyn Stream<Item = Result<Bytes>> + Send + 'a>>,
}

impl<'a> CopyOutStream<'a> {
    /// Wraps a stream of chunks: a backend's `COPY`, or a test double's.
    pub fn new(stream: impl Stream<Item = Result<Bytes>> + Send + 'a) -> Self {
        Self {
            inner: Box::pin(stream),
        }
    }

    /// Chunks already at hand, for test doubles.
    pub fn from_chunks(chunks: Vec<Bytes>) -> Self {
        Self::new(Chunks(chunks.into_iter()))
    }

    /// The next chunk, `Ok(None)` after the last one.
    ///
    /// # Errors
    ///
    /// The server failed the `COPY`, the connection broke, or the wait
    /// for the server exceeded `query_timeout`.
    pub async fn try_next(&mut self) -> Result<Option<Bytes>> {
        std::future::poll_fn(|cx| self.inner.as_mut().poll_next(cx))
            .await
            .transpose()
    }
}

impl Stream for CopyOutStream<'_> {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl std::fmt::Debug for CopyOutStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyOutStream").finish_non_exhaustive()
    }
}

struct Chunks(std::vec::IntoIter<Bytes>);

impl Stream for Chunks {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.0.next().map(Ok))
    }
}

/// Where the data of [`blocking::Client::copy_in`] goes: an
/// [`io::Write`] of `COPY` data, then [`finish`](Self::finish). The same
/// rules as [`CopyInSink`]'s apply when it is dropped unfinished.
///
/// Its `io::Error`s carry the [`Error`](crate::Error) inside
/// (`io_error.get_ref()` downcasts to it).
///
/// ```no_run
/// use std::io::Write;
/// use uno_db_core::Result;
/// use uno_db_core::blocking::Client;
///
/// fn load(client: &mut dyn Client) -> Result<u64> {
///     let mut writer = client.copy_in("COPY todo (id, title) FROM STDIN")?;
///     writer.write_all(b"1\tbuy milk\n2\twrite docs\n").map_err(uno_db_core::Error::from_io)?;
///     writer.finish() // 2
/// }
/// ```
#[must_use = "the COPY is aborted unless finished"]
pub struct CopyInWriter<'a> {
    target: Box<dyn blocking::CopyIn + 'a>,
}

impl<'a> CopyInWriter<'a> {
    /// Wraps where the data goes: a backend's `COPY`, or a test double.
    pub fn new(target: impl blocking::CopyIn + 'a) -> Self {
        Self {
            target: Box::new(target),
        }
    }

    /// Ends the `COPY` and returns the number of rows loaded.
    ///
    /// # Errors
    ///
    /// The server rejected the data (malformed rows, a constraint); nothing
    /// was loaded.
    pub fn finish(self) -> Result<u64> {
        self.target.finish()
    }
}

impl Write for CopyInWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.target.send(buf).map_err(io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl std::fmt::Debug for CopyInWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyInWriter").finish_non_exhaustive()
    }
}

/// The data of [`blocking::Client::copy_out`]: an [`io::Read`] (and
/// [`BufRead`]) of `COPY` data with bounded memory. The same rules as
/// [`RowStream`](crate::nonblocking::RowStream)'s apply when it is dropped before its
/// end. Its `io::Error`s carry the [`Error`](crate::Error) inside.
pub struct CopyOutReader<'a> {
    inner: Box<dyn BufRead + Send + 'a>,
}

impl<'a> CopyOutReader<'a> {
    /// Wraps a reader of `COPY` data: a backend's, or a test double's
    /// (`CopyOutReader::new(&b"1\talice\n"[..])`).
    pub fn new(reader: impl BufRead + Send + 'a) -> Self {
        Self {
            inner: Box::new(reader),
        }
    }
}

impl Read for CopyOutReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl BufRead for CopyOutReader<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.inner.consume(amount);
    }
}

impl std::fmt::Debug for CopyOutReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyOutReader").finish_non_exhaustive()
    }
}
