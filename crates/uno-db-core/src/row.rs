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
///
/// A column is picked by position or by name; a name matches exactly
/// first, then ignoring ASCII case, like the driver's own `Row::get`.
pub struct Row {
    repr: Repr,
}

enum Repr {
    // Nothing beside the driver's row: a `Row` is exactly as large as
    // the driver's, so that a `Vec` of the driver's rows becomes a `Vec` of
    // ours in place (`from_driver_rows`), with no second allocation. Our
    // column list is described from the driver's only when asked for
    // (`columns()`); positions and names are looked up in the driver's own
    // list.
    Driver(tokio_postgres::Row),
    Built(Arc<BuiltRow>),
}

// What `from_driver_rows` relies on to reuse the driver's allocation.
const _: () = assert!(
    std::mem::size_of::<Row>() == std::mem::size_of::<tokio_postgres::Row>()
        && std::mem::align_of::<Row>() == std::mem::align_of::<tokio_postgres::Row>()
);

struct BuiltRow {
    columns: Vec<Column>,
    values: Vec<Option<Bytes>>,
}

impl Row {
    /// Wraps one driver row. Nothing is copied or described.
    #[must_use]
    #[inline]
    pub fn from_driver(row: tokio_postgres::Row) -> Self {
        Self {
            repr: Repr::Driver(row),
        }
    }

    /// Wraps the driver rows of one query (see
    /// [`from_driver`](Self::from_driver)) in the list they came in: a
    /// `Row` is the size of the driver's, so the list is not copied.
    #[must_use]
    pub fn from_driver_rows(rows: Vec<tokio_postgres::Row>) -> Vec<Self> {
        rows.into_iter().map(Self::from_driver).collect()
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

    /// A copy of this row, for a test double that hands the same row out
    /// more than once: a built row shares its values, a driver's row is
    /// copied into a built one (same columns, same raw values).
    ///
    /// # Errors
    ///
    /// A driver's value could not be read (never for a well-formed row).
    #[cfg(feature = "mock")]
    pub(crate) fn try_clone(&self) -> Result<Self> {
        match &self.repr {
            Repr::Built(row) => Ok(Self {
                repr: Repr::Built(Arc::clone(row)),
            }),
            Repr::Driver(row) => {
                let values = (0..row.len())
                    .map(|i| row.try_get::<_, RawValue>(i).map(|raw| raw.0))
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|e| Error::new(ErrorKind::Decode).with_source(e))?;
                Ok(Self {
                    repr: Repr::Built(Arc::new(BuiltRow {
                        columns: self.columns(),
                        values,
                    })),
                })
            }
        }
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

    /// The columns' names and types, in order, described anew on each
    /// call (a row keeps only what it needs to decode its values): when
    /// every row of a result set has the same columns, ask the first.
    #[must_use]
    pub fn columns(&self) -> Vec<Column> {
        match &self.repr {
            Repr::Driver(row) => describe(row),
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
    // Inline, with its errors built out of line: a row of a result set is
    // read column by column, and the call's own frame was most of what this
    // layer cost over the driver's `try_get` (about 20 instructions a
    // column, measured with callgrind).
    #[inline]
    pub fn try_get<'a, I, T>(&'a self, index: I) -> Result<T>
    where
        I: ColumnIndex,
        T: FromSql<'a>,
    {
        match &self.repr {
            Repr::Driver(row) => {
                let Some(position) = index.driver_position(row.columns()) else {
                    return Err(no_column(&index));
                };
                match row.try_get(position) {
                    Ok(value) => Ok(value),
                    Err(error) => Err(undecodable(&index, std::any::type_name::<T>(), error)),
                }
            }
            Repr::Built(row) => {
                let Some(position) = index.position(&row.columns) else {
                    return Err(no_column(&index));
                };
                row.try_get(&index, position)
            }
        }
    }
}

impl BuiltRow {
    fn try_get<'a, T: FromSql<'a>>(
        &'a self,
        index: &dyn ColumnIndex,
        position: usize,
    ) -> Result<T> {
        let column = &self.columns[position];
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
        T::from_sql_nullable(column.type_(), self.values[position].as_deref())
            .map_err(|e| wrong("").with_source(e))
    }
}

#[cold]
#[inline(never)]
fn no_column(index: &dyn ColumnIndex) -> Error {
    Error::with_message(
        ErrorKind::Decode,
        format!("no column {} in the row", index.describe()),
    )
}

#[cold]
#[inline(never)]
fn undecodable(index: &dyn ColumnIndex, type_name: &str, cause: tokio_postgres::Error) -> Error {
    Error::with_message(
        ErrorKind::Decode,
        format!(
            "could not decode column {} as `{type_name}`",
            index.describe()
        ),
    )
    .with_source(cause)
}

/// Our description of a driver row's columns.
fn describe(row: &tokio_postgres::Row) -> Vec<Column> {
    row.columns()
        .iter()
        .map(|c| Column::new(c.name(), c.type_().clone()))
        .collect()
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

/// A column's value as it came off the wire, whatever its type.
#[cfg(feature = "mock")]
struct RawValue(Option<Bytes>);

#[cfg(feature = "mock")]
impl<'a> FromSql<'a> for RawValue {
    fn from_sql(
        _: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Self(Some(Bytes::copy_from_slice(raw))))
    }

    fn from_sql_null(
        _: &Type,
    ) -> std::result::Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Self(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Something that picks a column: a position (`usize`) or a name (`&str`).
pub trait ColumnIndex: sealed::Sealed {
    /// The position of the column among `columns`, if present. A name
    /// matches exactly first, then ignoring ASCII case (as the driver does:
    /// unquoted SQL identifiers are folded to lower case, so `get("ID")`
    /// finds the column `id`).
    fn position(&self, columns: &[Column]) -> Option<usize>;

    /// How the index reads in an error message.
    fn describe(&self) -> String;
}

mod sealed {
    /// What [`ColumnIndex`](super::ColumnIndex) does for a driver's row,
    /// out of users' reach.
    pub trait Sealed {
        /// The position of the column among a driver row's `columns`, by
        /// the same rule as `ColumnIndex::position`.
        fn driver_position(&self, columns: &[tokio_postgres::Column]) -> Option<usize>;
    }

    impl Sealed for usize {
        #[inline]
        fn driver_position(&self, columns: &[tokio_postgres::Column]) -> Option<usize> {
            (*self < columns.len()).then_some(*self)
        }
    }

    impl Sealed for str {
        fn driver_position(&self, columns: &[tokio_postgres::Column]) -> Option<usize> {
            super::name_position(columns.iter().map(tokio_postgres::Column::name), self)
        }
    }

    impl Sealed for String {
        fn driver_position(&self, columns: &[tokio_postgres::Column]) -> Option<usize> {
            self.as_str().driver_position(columns)
        }
    }

    impl<T: Sealed + ?Sized> Sealed for &T {
        #[inline]
        fn driver_position(&self, columns: &[tokio_postgres::Column]) -> Option<usize> {
            (**self).driver_position(columns)
        }
    }
}

/// The position of the column called `name` among `names`: the first
/// exact match, else the first that matches ignoring ASCII case.
fn name_position<'a>(
    mut names: impl Iterator<Item = &'a str> + Clone,
    name: &str,
) -> Option<usize> {
    names
        .clone()
        .position(|n| n == name)
        .or_else(|| names.position(|n| n.eq_ignore_ascii_case(name)))
}

impl ColumnIndex for usize {
    fn position(&self, columns: &[Column]) -> Option<usize> {
        (*self < columns.len()).then_some(*self)
    }

    fn describe(&self) -> String {
        self.to_string()
    }
}

impl ColumnIndex for str {
    fn position(&self, columns: &[Column]) -> Option<usize> {
        name_position(columns.iter().map(Column::name), self)
    }

    fn describe(&self) -> String {
        format!("`{self}`")
    }
}

impl ColumnIndex for String {
    fn position(&self, columns: &[Column]) -> Option<usize> {
        self.as_str().position(columns)
    }

    fn describe(&self) -> String {
        self.as_str().describe()
    }
}

impl<T: ColumnIndex + ?Sized> ColumnIndex for &T {
    fn position(&self, columns: &[Column]) -> Option<usize> {
        (**self).position(columns)
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
    fn names_match_exactly_first_then_ignoring_ascii_case() {
        let row = Row::builder()
            .column("Name", Type::TEXT, "upper")
            .column("name", Type::TEXT, "lower")
            .column("id", Type::INT8, 7_i64)
            .build()
            .unwrap();
        assert_eq!(row.get::<_, &str>("Name"), "upper");
        assert_eq!(row.get::<_, &str>("name"), "lower");
        // No exact match: the first column equal ignoring case.
        assert_eq!(row.get::<_, &str>("NAME"), "upper");
        assert_eq!(row.get::<_, i64>("ID"), 7);
        assert_eq!(row.get::<_, i64>(String::from("Id")), 7);
        let error = row.try_get::<_, i64>("idx").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Decode);
    }

    async fn driver_rows(queries: usize) -> Vec<tokio_postgres::Row> {
        use crate::fake_server::{self, Script};

        let (client, connection) =
            fake_server::start(Script::Rows(vec![(1, "alice"), (2, "bob"), (3, "carol")]))
                .await
                .connect(tokio_postgres::NoTls)
                .await
                .unwrap();
        tokio::spawn(connection);
        let mut rows = Vec::new();
        for _ in 0..queries {
            rows.extend(
                client
                    .query("SELECT id, \"Name\" FROM t", &[])
                    .await
                    .unwrap(),
            );
        }
        rows
    }

    #[tokio::test]
    async fn driver_rows_describe_their_columns_when_asked() {
        let rows = Row::from_driver_rows(driver_rows(1).await);
        assert_eq!(rows.len(), 3);
        let expected = [
            Column::new("id", Type::INT4),
            Column::new("Name", Type::TEXT),
        ];
        for row in &rows {
            assert_eq!(row.len(), 2);
            assert_eq!(row.columns(), expected, "{row:?}");
        }
        assert_eq!(rows[1].get::<_, i32>("id"), 2);
        assert_eq!(rows[1].get::<_, &str>("Name"), "bob");
        // The driver's row keeps the driver's lookup rules.
        assert_eq!(rows[2].get::<_, &str>("name"), "carol");
        assert_eq!(rows[2].get::<_, i32>("ID"), 3);
        assert_eq!(
            rows[0].try_get::<_, String>("id").unwrap_err().kind(),
            ErrorKind::Decode
        );
        let missing = rows[0].try_get::<_, i32>("idx").unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::Decode);
        assert!(missing.to_string().contains("no column `idx`"), "{missing}");
        assert!(rows[0].try_get::<_, i32>(2).is_err());
    }

    #[tokio::test]
    async fn rows_of_different_statements_keep_their_own_columns() {
        let rows = Row::from_driver_rows(driver_rows(2).await);
        assert_eq!(rows.len(), 6);
        assert_eq!(rows[2].columns(), rows[3].columns());
        assert_eq!(rows[4].get::<_, &str>("NAME"), "bob");
    }

    #[tokio::test]
    async fn a_query_s_rows_are_wrapped_in_the_driver_s_list() {
        // The list the `postgres` crate hands a blocking `query` becomes
        // ours without a second allocation, whether wrapped directly or
        // taken by `query`'s shape.
        let driver = driver_rows(2).await;
        let list = driver.as_ptr() as usize;
        let rows = Row::from_driver_rows(driver);
        assert_eq!(rows.as_ptr() as usize, list);
        assert_eq!(rows[5].get::<_, &str>("Name"), "carol");

        let driver = driver_rows(1).await;
        let list = driver.as_ptr() as usize;
        let rows = crate::backend::RowsShape::output(crate::backend::AllRows, driver).unwrap();
        assert_eq!(rows.as_ptr() as usize, list);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].get::<_, i32>("id"), 1);
    }

    #[tokio::test]
    async fn a_single_driver_row_still_wraps() {
        let driver = driver_rows(1).await.remove(0);
        let row = Row::from_driver(driver);
        assert_eq!(row.len(), 2);
        assert_eq!(row.columns()[1], Column::new("Name", Type::TEXT));
        assert_eq!(row.get::<_, &str>("name"), "alice");
        assert!(row.as_driver().is_some());
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
