//! Streamed results read through their connection: [`StreamedRows`]
//! (`query_stream`) and [`StreamedCopy`] (`copy_out`), so that the kernel
//! learns how they end and `query_timeout` bounds every wait for the
//! server (through the watchdog's [`StreamProgress`], not an arming per
//! row).
//!
//! [`StreamProgress`]: crate::watchdog::StreamProgress

use std::io::{self, BufRead, Read};
use std::time::Duration;

use fallible_iterator::FallibleIterator;
use uno_db_core::backend::{ConnState, PreparedStatement, from_driver};
use uno_db_core::{Error, ErrorKind, Result, Row};

use crate::watchdog::StreamProgressGuard;

/// How a stream's waits for the server are watched: not at all without a
/// `query_timeout`.
pub(crate) struct Waits(Option<(StreamProgressGuard, Duration)>);

impl Waits {
    pub(crate) fn new(watched: Option<(StreamProgressGuard, Duration)>) -> Self {
        Self(watched)
    }

    /// Runs one wait for the server (also the start: sending the statement
    /// and reading the first answer); the limit it overran, if the watchdog
    /// cancelled it.
    pub(crate) fn around<T>(&self, wait: impl FnOnce() -> T) -> (T, Option<Duration>) {
        let Some((progress, limit)) = &self.0 else {
            return (wait(), None);
        };
        progress.wait_starts();
        let result = wait();
        let expired = progress.wait_ends();
        (result, expired.then_some(*limit))
    }
}

/// The rows of `query_stream`.
pub(crate) struct StreamedRows<'a> {
    rows: postgres::RowIter<'a>,
    state: &'a mut ConnState<PreparedStatement>,
    waits: Waits,
    sql: Box<str>,
    ended: bool,
}

impl<'a> StreamedRows<'a> {
    pub(crate) fn new(
        rows: postgres::RowIter<'a>,
        state: &'a mut ConnState<PreparedStatement>,
        waits: Waits,
        sql: &str,
    ) -> Self {
        Self {
            rows,
            state,
            waits,
            sql: sql.into(),
            ended: false,
        }
    }
}

impl Iterator for StreamedRows<'_> {
    type Item = Result<Row>;

    fn next(&mut self) -> Option<Result<Row>> {
        if self.ended {
            return None;
        }
        let (item, expired) = self.waits.around(|| self.rows.next());
        match item {
            Ok(Some(row)) => Some(Ok(Row::from_driver(row))),
            Ok(None) => {
                self.ended = true;
                self.state.stream_ended();
                None
            }
            Err(error) => {
                self.ended = true;
                Some(Err(self.state.stream_failed(
                    Some(&self.sql),
                    from_driver(error),
                    expired,
                )))
            }
        }
    }
}

/// The data of `copy_out`.
pub(crate) struct StreamedCopy<'a> {
    reader: postgres::CopyOutReader<'a>,
    state: &'a mut ConnState<PreparedStatement>,
    waits: Waits,
    ended: bool,
}

impl<'a> StreamedCopy<'a> {
    pub(crate) fn new(
        reader: postgres::CopyOutReader<'a>,
        state: &'a mut ConnState<PreparedStatement>,
        waits: Waits,
    ) -> Self {
        Self {
            reader,
            state,
            waits,
            ended: false,
        }
    }
}

impl Read for StreamedCopy<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for StreamedCopy<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.ended {
            return Ok(&[]);
        }
        let Self {
            reader,
            state,
            waits,
            ended,
        } = self;
        let (filled, expired) = waits.around(|| reader.fill_buf().map(<[u8]>::is_empty));
        match filled {
            Ok(false) => reader.fill_buf(),
            Ok(true) => {
                *ended = true;
                state.stream_ended();
                Ok(&[])
            }
            Err(error) => {
                *ended = true;
                Err(io::Error::other(state.stream_failed(
                    None,
                    driver_io(error),
                    expired,
                )))
            }
        }
    }

    fn consume(&mut self, amount: usize) {
        self.reader.consume(amount);
    }
}

/// The driver's error inside an `io::Error` from its `COPY` reader or
/// writer, classified.
pub(crate) fn driver_io(error: io::Error) -> Error {
    const FAILED: &str = "reading or writing the COPY data failed";
    if !error
        .get_ref()
        .is_some_and(|inner| inner.is::<postgres::Error>())
    {
        return Error::with_message(ErrorKind::Closed, FAILED).with_source(error);
    }
    match error
        .into_inner()
        .map(|inner| inner.downcast::<postgres::Error>())
    {
        Some(Ok(driver)) => from_driver(*driver),
        Some(Err(other)) => Error::with_message(ErrorKind::Closed, FAILED).with_source(other),
        None => Error::with_message(ErrorKind::Closed, FAILED),
    }
}
