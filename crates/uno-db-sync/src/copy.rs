//! [`CopyWriter`]: the data of a `COPY ... FROM STDIN`, written through
//! its connection so that the kernel learns how it ends.

use std::io::Write;

use uno_db_core::backend::{ConnState, PreparedStatement, from_driver};
use uno_db_core::blocking::CopyIn;
use uno_db_core::{Error, ErrorKind, Result};

use crate::streamed::{Waits, driver_io};

/// A `COPY ... FROM STDIN` under way. Each write and the finish are
/// waits for the server, bounded by `query_timeout`.
pub(crate) struct CopyWriter<'a> {
    // `None` once finished.
    writer: Option<postgres::CopyInWriter<'a>>,
    state: &'a mut ConnState<PreparedStatement>,
    waits: Waits,
    failed: bool,
}

impl<'a> CopyWriter<'a> {
    pub(crate) fn new(
        writer: postgres::CopyInWriter<'a>,
        state: &'a mut ConnState<PreparedStatement>,
        waits: Waits,
    ) -> Self {
        Self {
            writer: Some(writer),
            state,
            waits,
            failed: false,
        }
    }

    fn usable(&self) -> Result<()> {
        if self.failed || self.writer.is_none() {
            return Err(Error::with_message(
                ErrorKind::Closed,
                "the COPY already failed; start a new one",
            ));
        }
        Ok(())
    }
}

impl CopyIn for CopyWriter<'_> {
    fn send(&mut self, data: &[u8]) -> Result<()> {
        self.usable()?;
        let Self { writer, waits, .. } = self;
        let Some(writer) = writer else {
            return Err(Error::new(ErrorKind::Closed));
        };
        let (result, expired) = waits.around(|| writer.write_all(data));
        let Err(error) = result else {
            return Ok(());
        };
        self.failed = true;
        Err(self.state.stream_failed(None, driver_io(error), expired))
    }

    fn finish(mut self: Box<Self>) -> Result<u64> {
        self.usable()?;
        let Some(writer) = self.writer.take() else {
            return Err(Error::new(ErrorKind::Closed));
        };
        let (result, expired) = self.waits.around(|| writer.finish());
        match result {
            Ok(rows) => {
                self.state.stream_ended();
                Ok(rows)
            }
            Err(error) => Err(self.state.stream_failed(None, from_driver(error), expired)),
        }
    }
}

impl Drop for CopyWriter<'_> {
    fn drop(&mut self) {
        if self.writer.is_some() && !self.failed {
            // The driver sends `CopyFail` when its writer is dropped.
            self.state.copy_abandoned();
        }
    }
}
