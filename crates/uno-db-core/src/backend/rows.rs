//! The row-count rules of `query_one` and `query_opt`, and rows made from
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

    /// Wraps the driver rows this statement returned.
    #[must_use]
    pub fn rows(&self, rows: Vec<tokio_postgres::Row>) -> Vec<Row> {
        Row::from_driver_rows_sharing(rows, &self.columns)
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

/// What a statement method makes of the driver's rows: all of them
/// (`query`), exactly one (`query_one`), at most one (`query_opt`). The
/// count is checked on the driver's rows, so that only the rows returned
/// are wrapped (a `query_one` builds no second `Vec`). `prepared` is the
/// statement they answer, `None` for an unnamed one (its columns are then
/// described from the rows).
pub type RowsShape<T> = fn(Vec<tokio_postgres::Row>, Option<&PreparedStatement>) -> Result<T>;

/// Every row, for `query`.
///
/// # Errors
///
/// None; a [`RowsShape`].
pub fn all_rows(
    rows: Vec<tokio_postgres::Row>,
    prepared: Option<&PreparedStatement>,
) -> Result<Vec<Row>> {
    Ok(match prepared {
        Some(prepared) => prepared.rows(rows),
        None => Row::from_driver_rows(rows),
    })
}

/// The one row, for `query_one`.
///
/// # Errors
///
/// As [`exactly_one`].
pub fn one_row(
    rows: Vec<tokio_postgres::Row>,
    prepared: Option<&PreparedStatement>,
) -> Result<Row> {
    exactly_one(rows).map(|row| StreamColumns::of(prepared).row(row))
}

/// The row, if any, for `query_opt`.
///
/// # Errors
///
/// As [`at_most_one`].
pub fn optional_row(
    rows: Vec<tokio_postgres::Row>,
    prepared: Option<&PreparedStatement>,
) -> Result<Option<Row>> {
    at_most_one(rows).map(|row| row.map(|row| StreamColumns::of(prepared).row(row)))
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
