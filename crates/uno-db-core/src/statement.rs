//! Descriptions of prepared statements.

use std::ops::Deref;
use std::sync::Arc;

use postgres_types::Type;

use crate::row::Column;

// The text a prepared statement passes as `&str`: its SQL behind a comment
// naming the connection that prepared it. A comment, so that the text is
// still valid SQL wherever it goes.
const MARK_OPEN: &str = "/* uno-db statement of connection ";
const MARK_CLOSE: &str = " */ ";

/// A prepared statement as the server described it: its SQL, parameter
/// types and result columns, and which physical connection prepared it.
///
/// Returned by `Client::prepare`, which also puts the statement in the
/// connection's statement cache so that later calls with the same SQL skip
/// the prepare round trip.
///
/// Every statement method (`execute`, `query`, `query_one`, `query_opt`,
/// `batch_execute`, `prepare`) takes it as well as SQL text: `&statement`
/// passes as `&str` (it dereferences to its SQL behind a comment naming its
/// connection). The connection that prepared it runs its SQL the way it
/// runs any text (from its statement cache, or as the kernel plans it);
/// any other connection refuses it with
/// [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported), because a
/// prepared statement exists only on the server session that prepared it.
/// To run the same SQL elsewhere, pass [`sql`](Self::sql) (or prepare it
/// there).
///
/// ```no_run
/// # use uno_db_core::blocking::Client;
/// # fn demo(conn: &mut dyn Client) -> uno_db_core::Result<()> {
/// let by_id = conn.prepare("SELECT name FROM users WHERE id = $1")?;
/// for id in [1_i64, 2, 3] {
///     let name: Option<String> = conn.query_opt(&by_id, &[&id])?.map(|row| row.get(0));
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The SQL, behind the mark of its connection when it has one.
    text: Arc<str>,
    /// Where the SQL starts in `text`.
    sql_start: usize,
    connection: Option<u64>,
    params: Vec<Type>,
    columns: Vec<Column>,
}

impl Statement {
    /// A statement description that no connection prepared: backends build
    /// it from the driver's, tests by hand. Passed to a statement method, it
    /// runs as its SQL text on any connection.
    #[must_use]
    pub fn new(sql: impl Into<Arc<str>>, params: Vec<Type>, columns: Vec<Column>) -> Self {
        Self {
            text: sql.into(),
            sql_start: 0,
            connection: None,
            params,
            columns,
        }
    }

    /// Describes a driver statement.
    #[must_use]
    pub fn from_driver(sql: &str, statement: &tokio_postgres::Statement) -> Self {
        Self::new(
            sql,
            statement.params().to_vec(),
            statement
                .columns()
                .iter()
                .map(|c| Column::new(c.name(), c.type_().clone()))
                .collect(),
        )
    }

    /// The statement as prepared by the physical connection whose id is
    /// `connection` (backends give their kernel state's
    /// [`ConnState::id`](crate::backend::ConnState::id)): only that
    /// connection will run it.
    #[must_use]
    pub fn prepared_on(self, connection: u64) -> Self {
        let sql = self.sql();
        let text: Arc<str> = format!("{MARK_OPEN}{connection}{MARK_CLOSE}{sql}").into();
        Self {
            sql_start: text.len() - sql.len(),
            text,
            connection: Some(connection),
            ..self
        }
    }

    /// The statement's SQL text.
    #[must_use]
    pub fn sql(&self) -> &str {
        &self.text[self.sql_start..]
    }

    /// The id of the physical connection that prepared it, if one did.
    #[must_use]
    pub fn connection(&self) -> Option<u64> {
        self.connection
    }

    /// The parameter types the server inferred.
    #[must_use]
    pub fn params(&self) -> &[Type] {
        &self.params
    }

    /// The result columns.
    #[must_use]
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }
}

/// The text statement methods receive for `&statement`: the SQL behind the
/// mark of the connection that prepared it. The statement methods take
/// `&str` so that they stay object-safe and mockable and SQL literals pass
/// as they are (a `&str` cannot become a `&dyn Trait`); this is how a
/// statement reaches them without losing which connection it belongs to.
impl Deref for Statement {
    type Target = str;

    fn deref(&self) -> &str {
        &self.text
    }
}

/// Splits the text of a marked statement into the id of its connection and
/// its SQL; `None` for any other text.
pub(crate) fn split_marked(text: &str) -> Option<(u64, &str)> {
    let (id, sql) = text.strip_prefix(MARK_OPEN)?.split_once(MARK_CLOSE)?;
    Some((id.parse().ok()?, sql))
}

/// The SQL to run for `text` on connection `connection`: `text` itself,
/// or the SQL of a statement that connection prepared.
///
/// # Errors
///
/// [`Unsupported`](crate::ErrorKind::Unsupported) when `text` is a
/// statement another connection prepared.
pub(crate) fn sql_on_connection(text: &str, connection: u64) -> crate::Result<&str> {
    match split_marked(text) {
        None => Ok(text),
        Some((id, sql)) if id == connection => Ok(sql),
        Some((id, _)) => Err(crate::Error::with_message(
            crate::ErrorKind::Unsupported,
            format!(
                "the statement was prepared on connection {id} and cannot run on \
                 connection {connection}: a prepared statement belongs to the connection that \
                 prepared it; prepare it on this connection or pass its sql()"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prepared_statement_passes_as_marked_text() {
        let statement = Statement::new("SELECT $1::int4", vec![Type::INT4], Vec::new());
        assert_eq!(&*statement, "SELECT $1::int4", "unmarked: just the SQL");
        assert_eq!(split_marked(&statement), None);
        let statement = statement.prepared_on(42);
        assert_eq!(statement.sql(), "SELECT $1::int4");
        assert_eq!(statement.connection(), Some(42));
        assert_eq!(statement.params(), &[Type::INT4]);
        assert_eq!(split_marked(&statement), Some((42, "SELECT $1::int4")));
        let again = statement.prepared_on(7);
        assert_eq!(split_marked(&again), Some((7, "SELECT $1::int4")));
    }

    #[test]
    fn ordinary_comments_are_not_marks() {
        assert_eq!(split_marked("/* hello */ SELECT 1"), None);
        assert_eq!(
            split_marked("/* uno-db statement of connection x */ SELECT 1"),
            None
        );
    }
}
