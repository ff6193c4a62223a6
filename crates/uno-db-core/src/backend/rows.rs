//! What `query`, `query_one` and `query_opt` make of a query's rows as they
//! arrive ([`RowsShape`]) and their row-count rules.

use crate::error::{Error, ErrorKind, Result};
use crate::row::Row;

/// A prepared statement, as the statement cache keeps it: the driver's
/// own (its rows need nothing kept beside it).
pub type PreparedStatement = tokio_postgres::Statement;

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

    /// Before the first row; `expected` is how many rows follow, when
    /// known (else 0).
    fn start(self, expected: usize) -> Self::Taken;

    /// Takes the next driver row.
    fn take(taken: &mut Self::Taken, row: tokio_postgres::Row);

    /// How many rows were kept in a list made room for at
    /// [`start`](Self::start) (see
    /// [`ConnState::rows_read`](super::ConnState::rows_read)); `None` for a
    /// shape that keeps no list.
    fn listed(_taken: &Self::Taken) -> Option<usize> {
        None
    }

    /// What the method returns, once the last row was taken.
    ///
    /// # Errors
    ///
    /// The row-count errors of `query_one` and `query_opt` (see
    /// [`exactly_one`] and [`at_most_one`]).
    fn finish(taken: Self::Taken) -> Result<Self::Output>;

    /// Takes every row of a driver that hands a whole answer over.
    fn take_all(self, rows: Vec<tokio_postgres::Row>) -> Self::Taken {
        let mut taken = self.start(rows.len());
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
    fn output(self, rows: Vec<tokio_postgres::Row>) -> Result<Self::Output> {
        Self::finish(self.take_all(rows))
    }
}

/// Every row, for `query`.
#[derive(Debug, Clone, Copy)]
pub struct AllRows;

impl RowsShape for AllRows {
    type Output = Vec<Row>;
    type Taken = Vec<Row>;

    fn start(self, expected: usize) -> Vec<Row> {
        Vec::with_capacity(expected)
    }

    #[inline]
    fn take(rows: &mut Vec<Row>, row: tokio_postgres::Row) {
        rows.push(Row::from_driver(row));
    }

    // The driver's list becomes ours in place (`Row::from_driver_rows`):
    // filling a new one cost a `blocking` `query` an allocation and a free.
    fn take_all(self, rows: Vec<tokio_postgres::Row>) -> Vec<Row> {
        Row::from_driver_rows(rows)
    }

    fn listed(rows: &Vec<Row>) -> Option<usize> {
        Some(rows.len())
    }

    fn finish(rows: Vec<Row>) -> Result<Vec<Row>> {
        Ok(rows)
    }
}

/// The one row, for `query_one`.
#[derive(Debug, Clone, Copy)]
pub struct OneRow;

/// The first row of an answer and whether more followed (they are
/// counted, not kept).
#[derive(Debug)]
pub struct FirstRow(FirstOf<tokio_postgres::Row>);

impl FirstRow {
    fn new() -> Self {
        Self(FirstOf {
            row: None,
            more: false,
        })
    }
}

/// The row-count rules of `query_one` and `query_opt`, kept once for a
/// list ([`exactly_one`], [`at_most_one`]) and for rows as they arrive
/// ([`FirstRow`]): the first row, and whether another followed.
#[derive(Debug)]
struct FirstOf<R> {
    row: Option<R>,
    more: bool,
}

impl<R> FirstOf<R> {
    /// The first two of `rows`: all a row-count rule looks at.
    fn of(rows: Vec<R>) -> Self {
        let mut rows = rows.into_iter();
        Self {
            row: rows.next(),
            more: rows.next().is_some(),
        }
    }

    fn take(&mut self, row: R) {
        if self.row.is_none() {
            self.row = Some(row);
        } else {
            self.more = true;
        }
    }

    fn at_most_one(self) -> Result<Option<R>> {
        if self.more {
            return Err(Error::new(ErrorKind::TooManyRows));
        }
        Ok(self.row)
    }

    fn exactly_one(self) -> Result<R> {
        self.at_most_one()?
            .ok_or_else(|| Error::new(ErrorKind::RowNotFound))
    }
}

impl RowsShape for OneRow {
    type Output = Row;
    type Taken = FirstRow;

    fn start(self, _: usize) -> FirstRow {
        FirstRow::new()
    }

    fn take(taken: &mut FirstRow, row: tokio_postgres::Row) {
        taken.0.take(row);
    }

    fn finish(FirstRow(first): FirstRow) -> Result<Row> {
        first.exactly_one().map(Row::from_driver)
    }
}

/// The row, if any, for `query_opt`.
#[derive(Debug, Clone, Copy)]
pub struct OptionalRow;

impl RowsShape for OptionalRow {
    type Output = Option<Row>;
    type Taken = FirstRow;

    fn start(self, _: usize) -> FirstRow {
        FirstRow::new()
    }

    fn take(taken: &mut FirstRow, row: tokio_postgres::Row) {
        taken.0.take(row);
    }

    fn finish(FirstRow(first): FirstRow) -> Result<Option<Row>> {
        Ok(first.at_most_one()?.map(Row::from_driver))
    }
}

/// The one row of a `query_one`.
///
/// # Errors
///
/// [`ErrorKind::RowNotFound`] for no row, [`ErrorKind::TooManyRows`] for
/// more than one.
pub fn exactly_one<R>(rows: Vec<R>) -> Result<R> {
    FirstOf::of(rows).exactly_one()
}

/// The row, if any, of a `query_opt`.
///
/// # Errors
///
/// [`ErrorKind::TooManyRows`] for more than one row.
pub fn at_most_one<R>(rows: Vec<R>) -> Result<Option<R>> {
    FirstOf::of(rows).at_most_one()
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

    #[test]
    fn rows_taken_one_at_a_time_follow_the_same_counts() {
        let taken = |n: u32| {
            let mut first = FirstOf {
                row: None,
                more: false,
            };
            (0..n).for_each(|row| first.take(row));
            first
        };
        assert_eq!(
            taken(0).exactly_one().unwrap_err().kind(),
            ErrorKind::RowNotFound
        );
        assert_eq!(taken(1).exactly_one().unwrap(), 0, "the first row is kept");
        assert_eq!(
            taken(3).exactly_one().unwrap_err().kind(),
            ErrorKind::TooManyRows
        );
        assert_eq!(taken(0).at_most_one().unwrap(), None);
        assert_eq!(taken(1).at_most_one().unwrap(), Some(0));
        assert_eq!(
            taken(2).at_most_one().unwrap_err().kind(),
            ErrorKind::TooManyRows
        );
    }
}
