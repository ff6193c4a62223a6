//! Descriptions of prepared statements.

use std::sync::Arc;

use postgres_types::Type;

use crate::row::Column;

/// A prepared statement as the server described it: its SQL, parameter
/// types and result columns.
///
/// Returned by `Connection::prepare`, which also puts the statement in the
/// connection's statement cache so that later `query`/`execute` calls with
/// the same SQL skip the prepare round trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    sql: Arc<str>,
    params: Vec<Type>,
    columns: Vec<Column>,
}

impl Statement {
    /// A statement description; backends build it from the driver's, tests
    /// by hand.
    #[must_use]
    pub fn new(sql: impl Into<Arc<str>>, params: Vec<Type>, columns: Vec<Column>) -> Self {
        Self {
            sql: sql.into(),
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

    /// The statement's SQL text.
    #[must_use]
    pub fn sql(&self) -> &str {
        &self.sql
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
