//! [`FromRow`]: a row as a Rust value, by column name.

use crate::error::Result;
use crate::row::Row;

/// A value built from one row: the target of `query_as`, `query_one_as`
/// and `query_opt_as` (the `ClientExt` traits of both families).
///
/// Usually derived (`#[derive(FromRow)]` from the `uno-db` crate, feature
/// `derive`): each field is read by its name (or
/// `#[uno_db(rename = "column")]`) with [`Row::try_get`], an `Option`
/// field takes NULL, and `#[uno_db(flatten)]` builds a nested `FromRow`
/// from the same row. A missing or mistyped column is an
/// [`ErrorKind::Decode`](crate::ErrorKind::Decode) error naming it, never a
/// panic. Written by hand it is one `try_get` per field:
///
/// ```
/// use uno_db_core::{FromRow, Result, Row, Type};
///
/// struct User {
///     id: i64,
///     email: Option<String>,
/// }
///
/// impl FromRow for User {
///     fn from_row(row: &Row) -> Result<Self> {
///         Ok(Self {
///             id: row.try_get("id")?,
///             email: row.try_get("email")?,
///         })
///     }
/// }
///
/// let row = Row::builder()
///     .column("id", Type::INT8, 7_i64)
///     .column("email", Type::TEXT, None::<&str>)
///     .build()?;
/// let user = User::from_row(&row)?;
/// assert_eq!((user.id, user.email), (7, None));
/// # Ok::<(), uno_db_core::Error>(())
/// ```
pub trait FromRow: Sized {
    /// Builds the value from `row`.
    ///
    /// # Errors
    ///
    /// A column is missing, NULL for a non-`Option` field, or of a type
    /// that does not convert.
    fn from_row(row: &Row) -> Result<Self>;
}

/// Maps every row, stopping at the first that does not convert.
pub(crate) fn map_rows<T: FromRow>(rows: &[Row]) -> Result<Vec<T>> {
    rows.iter().map(T::from_row).collect()
}
