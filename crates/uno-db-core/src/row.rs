//! Result rows: the driver's row without copying, or one built by hand.

use std::fmt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use postgres_types::{FromSql, IsNull, ToSql, Type};

use crate::error::{Error, ErrorKind, Result};

/// The name and type of a result column or statement parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    name: String,
    type_: Type,
}

impl Column {
    /// A column called `name` of SQL type `type_`.
    #[must_use]
    pub fn new(name: impl Into<String>, type_: Type) -> Self {
        Self {
            name: name.into(),
            type_,
        }
    }

    /// The column's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The column's SQL type.
    #[must_use]
    pub fn type_(&self) -> &Type {
        &self.type_
    }
}

/// One result row.
///
/// Wraps the driver's row as it came off the wire (no copy), or a row built
/// with [`Row::builder`] for tests. Either way, [`get`](Self::get) and
/// [`try_get`](Self::try_get) decode through the same `FromSql`
/// implementations, so a hand-built row behaves like a real one.
pub struct Row {
    repr: Repr,
}

enum Repr {
    Driver(tokio_postgres::Row),
    Built(Arc<BuiltRow>),
}

struct BuiltRow {
    columns: Vec<Column>,
    values: Vec<Option<Bytes>>,
}

impl Row {
    /// Wraps a driver row. Both backends' rows are this type.
    #[must_use]
    pub fn from_driver(row: tokio_postgres::Row) -> Self {
        Self {
            repr: Repr::Driver(row),
        }
    }

    /// Starts building a row by hand, for test doubles.
    ///
    /// ```
    /// use uno_db_core::{Row, Type};
    ///
    /// let row = Row::builder()
    ///     .column("id", Type::INT8, 7_i64)
    ///     .column("name", Type::TEXT, "alice")
    ///     .null("email", Type::TEXT)
    ///     .build()?;
    /// assert_eq!(row.get::<_, i64>("id"), 7);
    /// assert_eq!(row.get::<_, &str>(1), "alice");
    /// assert_eq!(row.get::<_, Option<String>>("email"), None);
    /// # Ok::<(), uno_db_core::Error>(())
    /// ```
    #[must_use]
    pub fn builder() -> RowBuilder {
        RowBuilder::default()
    }

    /// The driver's row, unless this row was built by hand.
    #[must_use]
    pub fn as_driver(&self) -> Option<&tokio_postgres::Row> {
        match &self.repr {
            Repr::Driver(row) => Some(row),
            Repr::Built(_) => None,
        }
    }

    /// The number of columns.
    #[must_use]
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Driver(row) => row.len(),
            Repr::Built(row) => row.columns.len(),
        }
    }

    /// Whether the row has no columns.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The columns' names and types, in order.
    #[must_use]
    pub fn columns(&self) -> Vec<Column> {
        match &self.repr {
            Repr::Driver(row) => row
                .columns()
                .iter()
                .map(|c| Column::new(c.name(), c.type_().clone()))
                .collect(),
            Repr::Built(row) => row.columns.clone(),
        }
    }

    /// Decodes column `index` (a position or a name) as `T`.
    ///
    /// # Panics
    ///
    /// Panics if the column does not exist or cannot be decoded as `T`,
    /// like the drivers' `Row::get`. Use [`try_get`](Self::try_get) to get an
    /// error instead.
    #[must_use]
    #[allow(clippy::panic)] // Mirrors the drivers' `get`; `try_get` is the fallible form.
    pub fn get<'a, I, T>(&'a self, index: I) -> T
    where
        I: ColumnIndex,
        T: FromSql<'a>,
    {
        match self.try_get(index) {
            Ok(value) => value,
            Err(error) => panic!("{error}: {}", cause_text(&error)),
        }
    }

    /// Decodes column `index` (a position or a name) as `T`, or returns an
    /// [`ErrorKind::Decode`] error saying which column and why.
    ///
    /// # Errors
    ///
    /// The column does not exist, its SQL type does not convert to `T`, or
    /// the value is NULL and `T` is not an `Option`.
    pub fn try_get<'a, I, T>(&'a self, index: I) -> Result<T>
    where
        I: ColumnIndex,
        T: FromSql<'a>,
    {
        let position = match &self.repr {
            Repr::Driver(row) => index.position(&mut row.columns().iter().map(|c| c.name())),
            Repr::Built(row) => index.position(&mut row.columns.iter().map(Column::name)),
        };
        let Some(position) = position else {
            return Err(Error::with_message(
                ErrorKind::Decode,
                format!("no column {} in the row", index.describe()),
            ));
        };
        match &self.repr {
            Repr::Driver(row) => row.try_get(position).map_err(|e| {
                Error::with_message(
                    ErrorKind::Decode,
                    format!(
                        "could not decode column {} as `{}`",
                        index.describe(),
                        std::any::type_name::<T>()
                    ),
                )
                .with_source(e)
            }),
            Repr::Built(row) => {
                let column = &row.columns[position];
                let wrong = |detail: &str| {
                    Error::with_message(
                        ErrorKind::Decode,
                        format!(
                            "could not decode column {} of type {} as `{}`{detail}",
                            index.describe(),
                            column.type_(),
                            std::any::type_name::<T>()
                        ),
                    )
                };
                if !T::accepts(column.type_()) {
                    return Err(wrong(": the types are incompatible"));
                }
                T::from_sql_nullable(column.type_(), row.values[position].as_deref())
                    .map_err(|e| wrong("").with_source(e))
            }
        }
    }
}

fn cause_text(error: &Error) -> String {
    std::error::Error::source(error).map_or_else(String::new, ToString::to_string)
}

impl fmt::Debug for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Row")
            .field("columns", &self.columns())
            .finish_non_exhaustive()
    }
}

/// Something that picks a column: a position (`usize`) or a name (`&str`).
pub trait ColumnIndex: sealed::Sealed {
    /// The position of the column among `names`, if present.
    fn position(&self, names: &mut dyn Iterator<Item = &str>) -> Option<usize>;

    /// How the index reads in an error message.
    fn describe(&self) -> String;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for usize {}
    impl Sealed for str {}
    impl Sealed for String {}
    impl<T: Sealed + ?Sized> Sealed for &T {}
}

impl ColumnIndex for usize {
    fn position(&self, names: &mut dyn Iterator<Item = &str>) -> Option<usize> {
        (*self < names.count()).then_some(*self)
    }

    fn describe(&self) -> String {
        self.to_string()
    }
}

impl ColumnIndex for str {
    fn position(&self, names: &mut dyn Iterator<Item = &str>) -> Option<usize> {
        for (index, name) in names.enumerate() {
            if name == self {
                return Some(index);
            }
        }
        None
    }

    fn describe(&self) -> String {
        format!("`{self}`")
    }
}

impl ColumnIndex for String {
    fn position(&self, names: &mut dyn Iterator<Item = &str>) -> Option<usize> {
        self.as_str().position(names)
    }

    fn describe(&self) -> String {
        self.as_str().describe()
    }
}

impl<T: ColumnIndex + ?Sized> ColumnIndex for &T {
    fn position(&self, names: &mut dyn Iterator<Item = &str>) -> Option<usize> {
        (**self).position(names)
    }

    fn describe(&self) -> String {
        (**self).describe()
    }
}

/// Builds a [`Row`] by hand from named, typed values (for test doubles).
///
/// Values are encoded with their `ToSql` implementation into the binary
/// wire format, so reading them back goes through the same `FromSql` code
/// as a real row.
#[derive(Default)]
pub struct RowBuilder {
    columns: Vec<Column>,
    values: Vec<Option<Bytes>>,
    error: Option<Error>,
}

impl RowBuilder {
    /// Adds a column `name` of SQL type `type_` holding `value`.
    #[must_use]
    pub fn column<T: ToSql>(mut self, name: &str, type_: Type, value: T) -> Self {
        if self.error.is_some() {
            return self;
        }
        let mut buf = BytesMut::new();
        match value.to_sql_checked(&type_, &mut buf) {
            Ok(IsNull::No) => self.values.push(Some(buf.freeze())),
            Ok(IsNull::Yes) => self.values.push(None),
            Err(e) => {
                self.error = Some(
                    Error::with_message(
                        ErrorKind::Encode,
                        format!("could not encode the value of column `{name}` as {type_}"),
                    )
                    .with_source(e),
                );
                return self;
            }
        }
        self.columns.push(Column::new(name, type_));
        self
    }

    /// Adds a column `name` of SQL type `type_` holding NULL.
    #[must_use]
    pub fn null(mut self, name: &str, type_: Type) -> Self {
        self.columns.push(Column::new(name, type_));
        self.values.push(None);
        self
    }

    /// Finishes the row.
    ///
    /// # Errors
    ///
    /// A value did not encode as its column's type ([`ErrorKind::Encode`]).
    pub fn build(self) -> Result<Row> {
        if let Some(error) = self.error {
            return Err(error);
        }
        Ok(Row {
            repr: Repr::Built(Arc::new(BuiltRow {
                columns: self.columns,
                values: self.values,
            })),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn sample() -> Row {
        Row::builder()
            .column("id", Type::INT8, 42_i64)
            .column("name", Type::TEXT, "alice")
            .null("email", Type::TEXT)
            .column("tags", Type::TEXT_ARRAY, vec!["a", "b"])
            .build()
            .unwrap()
    }

    #[test]
    fn built_row_decodes_by_name_and_position() {
        let row = sample();
        assert_eq!(row.len(), 4);
        assert_eq!(row.get::<_, i64>("id"), 42);
        assert_eq!(row.get::<_, String>(1), "alice");
        assert_eq!(row.get::<_, Option<&str>>("email"), None);
        assert_eq!(row.get::<_, Vec<String>>("tags"), vec!["a", "b"]);
        assert_eq!(row.columns()[1], Column::new("name", Type::TEXT));
    }

    #[test]
    fn wrong_type_is_a_decode_error_naming_the_column() {
        let error = sample().try_get::<_, i32>("id").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Decode);
        assert!(error.to_string().contains("`id`"), "{error}");
        assert!(error.to_string().contains("i32"), "{error}");
    }

    #[test]
    fn null_into_non_option_is_a_decode_error() {
        let error = sample().try_get::<_, String>("email").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Decode);
        assert!(std::error::Error::source(&error).is_some());
    }

    #[test]
    fn missing_column_is_a_decode_error() {
        let row = sample();
        assert_eq!(
            row.try_get::<_, i64>("nope").unwrap_err().kind(),
            ErrorKind::Decode
        );
        assert_eq!(
            row.try_get::<_, i64>(4).unwrap_err().kind(),
            ErrorKind::Decode
        );
    }

    #[test]
    #[should_panic(expected = "no column `nope`")]
    fn get_panics_like_the_driver() {
        let _: i64 = sample().get("nope");
    }

    #[test]
    fn unencodable_value_fails_the_build() {
        let error = Row::builder()
            .column("n", Type::BOOL, 1_i32)
            .build()
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Encode);
        assert!(error.to_string().contains("`n`"));
    }
}
