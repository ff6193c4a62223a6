//! What a fake database records: statements and transaction control.

use crate::transaction_options::TransactionOptions;

use super::value::Value;

/// A statement a [`FakeDatabase`](super::FakeDatabase) was sent, as
/// [`FakeDatabase::statements`](super::FakeDatabase::statements) and
/// [`Event::Statement`] give it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RecordedStatement {
    /// Its SQL, as the code passed it (for a prepared `Statement`, its
    /// [`sql`](crate::Statement::sql)).
    pub sql: String,
    /// Its parameters, in order, as typed values.
    pub params: Vec<Value>,
    /// Whether it ran inside a session's transaction.
    pub in_transaction: bool,
    /// Which fake connection ran it: connections are numbered from 1 in
    /// the order they were opened.
    pub connection: u64,
}

/// One thing a [`FakeDatabase`](super::FakeDatabase) saw, in the order
/// [`FakeDatabase::events`](super::FakeDatabase::events) lists them.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A statement (`execute`, `query`, `query_one`, `query_opt`,
    /// `query_stream`, `batch_execute`), also one that failed.
    Statement(RecordedStatement),
    /// A session began, with these options.
    Begin(TransactionOptions),
    /// A session committed.
    Commit,
    /// A session rolled back: by `rollback`, by being dropped uncommitted,
    /// or because its commit failed (the work was rolled back).
    Rollback,
    /// A savepoint was set.
    Savepoint(String),
    /// A session rolled back to a savepoint.
    RollbackToSavepoint(String),
    /// A savepoint was released.
    ReleaseSavepoint(String),
}
