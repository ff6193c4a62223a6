//! What `query`, `query_one` and `query_opt` make of a query's rows as they
//! arrive ([`RowsShape`]), their row-count rules, and rows made from
//! a prepared statement's kept column list.

use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::row::{Column, Row};

/// A prepared statement together with its column list, built once when
/// it was prepared: what the statement cache keeps, so that no query
/// builds a column list again.
#[derive(Debug, Clone)]
pub struct PreparedStatement {
    /// The driver's statement.
    pub statement: tokio_postgres::Statement,
    /// Its columns, shared by every row it returns.
    pub columns: Arc<[Column]>,
}

impl PreparedStatement {
    /// Keeps `statement` with its column list.
    #[must_use]
    pub fn new(statement: tokio_postgres::Statement) -> Self {
        Self {
            columns: crate::row::statement_columns(&statement),
            statement,
        }
    }
}

/// The column list of a streamed query's rows, built once: taken from
/// its prepared statement, or described from its first row.
#[derive(Debug, Default)]
pub struct StreamColumns(Option<Arc<[Column]>>);

impl StreamColumns {
    /// The columns of `prepared`'s rows, or (for an unnamed statement)
    /// those the first row describes.
    #[must_use]
    pub fn of(prepared: Option<&PreparedStatement>) -> Self {
        Self(prepared.map(|prepared| Arc::clone(&prepared.columns)))
    }

    /// Wraps the next driver row.
    pub fn row(&mut self, row: tokio_postgres::Row) -> Row {
        Row::from_driver_streamed(row, &mut self.0)
    }
}

/// The first row of a simple-protocol answer, as text (empty when it has
/// none): what the pool's own queries (`pg_backend_pid()`, the role
/// check) hand to the kernel.
#[must_use]
pub fn first_simple_row(messages: &[tokio_postgres::SimpleQueryMessage]) -> Vec<Option<String>> {
    messages
        .iter()
        .find_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
        .unwrap_or_default()
}

/// What a statement method makes of a query's rows: all of them
/// ([`AllRows`], `query`), exactly one ([`OneRow`], `query_one`), at most
/// one ([`OptionalRow`], `query_opt`). The rows are taken one at a time as
/// the driver yields them, so that a backend reading a row stream builds
/// no list of the driver's rows before ours (`query` fills one `Vec`,
/// `query_one` keeps one row and counts the rest), and only the rows
/// returned are wrapped.
pub trait RowsShape: Copy {
    /// What the method returns.
    type Output;
    /// The rows taken so far.
    type Taken: Send;

    /// Before the first row of `prepared` (`None` for an unnamed
    /// statement: its columns are then described from its first row);
    /// `expected` is how many rows follow, when known (else 0).
    fn start(self, prepared: Option<&PreparedStatement>, expected: usize) -> Self::Taken;

    /// Takes the next driver row.
    fn take(taken: &mut Self::Taken, row: tokio_postgres::Row);

    /// What the method returns, once the last row was taken.
    ///
    /// # Errors
    ///
    /// The row-count errors of `query_one` and `query_opt` (see
    /// [`exactly_one`] and [`at_most_one`]).
    fn finish(taken: Self::Taken) -> Result<Self::Output>;

    /// Takes every row of a driver that hands a whole answer over.
    fn take_all(
        self,
        rows: Vec<tokio_postgres::Row>,
        prepared: Option<&PreparedStatement>,
    ) -> Self::Taken {
        let mut taken = self.start(prepared, rows.len());
        for row in rows {
            Self::take(&mut taken, row);
        }
        taken
    }

    /// [`take_all`](Self::take_all), then [`finish`](Self::finish).
    ///
    /// # Errors
    ///
    /// As [`finish`](Self::finish).
    fn output(
        self,
        rows: Vec<tokio_postgres::Row>,
        prepared: Option<&PreparedStatement>,
    ) -> Result<Self::Output> {
        Self::finish(self.take_all(rows, prepared))
    }
}

/// Every row, for `query`.
#[derive(Debug, Clone, Copy)]
pub struct AllRows;

impl RowsShape for AllRows {
    type Output = Vec<Row>;
    type Taken = (Vec<Row>, StreamColumns);

    fn start(self, prepared: Option<&PreparedStatement>, expected: usize) -> Self::Taken {
        (Vec::with_capacity(expected), StreamColumns::of(prepared))
    }

    fn take((rows, columns): &mut Self::Taken, row: tokio_postgres::Row) {
        rows.push(columns.row(row));
    }

    fn finish((rows, _): Self::Taken) -> Result<Vec<Row>> {
        Ok(rows)
    }
}

/// The one row, for `query_one`.
#[derive(Debug, Clone, Copy)]
pub struct OneRow;

/// The first row of an answer and whether more followed (they are
/// counted, not kept).
#[derive(Debug)]
pub struct FirstRow {
    row: Option<tokio_postgres::Row>,
    more: bool,
    columns: StreamColumns,
}

impl FirstRow {
    fn new(prepared: Option<&PreparedStatement>) -> Self {
        Self {
            row: None,
            more: false,
            columns: StreamColumns::of(prepared),
        }
    }

    fn take(&mut self, row: tokio_postgres::Row) {
        if self.row.is_none() {
            self.row = Some(row);
        } else {
            self.more = true;
        }
    }

    /// The row, if there was exactly one or none.
    fn at_most_one(mut self) -> Result<Option<Row>> {
        if self.more {
            return Err(Error::new(ErrorKind::TooManyRows));
        }
        Ok(self.row.take().map(|row| self.columns.row(row)))
    }
}

impl RowsShape for OneRow {
    type Output = Row;
    type Taken = FirstRow;

    fn start(self, prepared: Option<&PreparedStatement>, _: usize) -> FirstRow {
        FirstRow::new(prepared)
    }

    fn take(taken: &mut FirstRow, row: tokio_postgres::Row) {
        taken.take(row);
    }

    fn finish(taken: FirstRow) -> Result<Row> {
        taken
            .at_most_one()?
            .ok_or_else(|| Error::new(ErrorKind::RowNotFound))
    }
}

/// The row, if any, for `query_opt`.
#[derive(Debug, Clone, Copy)]
pub struct OptionalRow;

impl RowsShape for OptionalRow {
    type Output = Option<Row>;
    type Taken = FirstRow;

    fn start(self, prepared: Option<&PreparedStatement>, _: usize) -> FirstRow {
        FirstRow::new(prepared)
    }

    fn take(taken: &mut FirstRow, row: tokio_postgres::Row) {
        taken.take(row);
    }

    fn finish(taken: FirstRow) -> Result<Option<Row>> {
        taken.at_most_one()
    }
}

/// The one row of a `query_one`.
///
/// # Errors
///
/// [`ErrorKind::RowNotFound`] for no row, [`ErrorKind::TooManyRows`] for
/// more than one.
pub fn exactly_one<R>(rows: Vec<R>) -> Result<R> {
    let mut rows = rows.into_iter();
    match (rows.next(), rows.next()) {
        (Some(row), None) => Ok(row),
        (None, _) => Err(Error::new(ErrorKind::RowNotFound)),
        (Some(_), Some(_)) => Err(Error::new(ErrorKind::TooManyRows)),
    }
}

/// The row, if any, of a `query_opt`.
///
/// # Errors
///
/// [`ErrorKind::TooManyRows`] for more than one row.
pub fn at_most_one<R>(rows: Vec<R>) -> Result<Option<R>> {
    let mut rows = rows.into_iter();
    match (rows.next(), rows.next()) {
        (row, None) => Ok(row),
        (_, Some(_)) => Err(Error::new(ErrorKind::TooManyRows)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rows(n: usize) -> Vec<Row> {
        (0..n).map(|_| Row::builder().build().unwrap()).collect()
    }

    #[test]
    fn counts() {
        assert_eq!(
            exactly_one(rows(0)).unwrap_err().kind(),
            ErrorKind::RowNotFound
        );
        assert!(exactly_one(rows(1)).is_ok());
        assert_eq!(
            exactly_one(rows(2)).unwrap_err().kind(),
            ErrorKind::TooManyRows
        );
        assert!(at_most_one(rows(0)).unwrap().is_none());
        assert!(at_most_one(rows(1)).unwrap().is_some());
        assert_eq!(
            at_most_one(rows(2)).unwrap_err().kind(),
            ErrorKind::TooManyRows
        );
    }
}
