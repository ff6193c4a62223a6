//! The fake's connections and sessions, the same for both families: what
//! a statement, a commit or a rollback does to the script and the record.
//! `blocking.rs` and `nonblocking.rs` put the traits on them.

use std::sync::Arc;

use postgres_types::ToSql;

use crate::backend::{at_most_one, exactly_one};
use crate::error::{Error, ErrorKind, Result};
use crate::row::Row;
use crate::statement::Statement;
use crate::transaction_options::TransactionOptions;
use tokio_postgres::error::SqlState;

use super::script::{Answer, unscripted};
use super::{Event, FakeDatabase, RecordedStatement, Shared, Value};

/// Where a connection stands with transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transaction {
    None,
    Open,
    /// A statement failed inside it: nothing more runs until it ends.
    Aborted,
}

/// A connection of the fake.
pub(super) struct FakeConnection {
    shared: Arc<Shared>,
    id: u64,
    broken: bool,
    transaction: Transaction,
}

/// A session of the fake: a connection inside a transaction, rolled back
/// when dropped unless it ended.
pub(super) struct FakeSession {
    conn: FakeConnection,
    ended: bool,
}

/// What a statement returned.
enum Returned {
    Rows(Vec<Row>),
    Affected(u64),
}

impl FakeConnection {
    /// Checks a new connection out of `fake`.
    pub(super) fn open(fake: &FakeDatabase) -> Result<Self> {
        let id = fake.shared.open()?;
        Ok(Self {
            shared: Arc::clone(&fake.shared),
            id,
            broken: false,
            transaction: Transaction::None,
        })
    }

    pub(super) fn is_closed(&self) -> bool {
        self.broken
    }

    pub(super) fn execute(&mut self, text: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        Ok(match self.run(text, params)? {
            Returned::Rows(rows) => u64::try_from(rows.len()).unwrap_or(u64::MAX),
            Returned::Affected(n) => n,
        })
    }

    pub(super) fn query(&mut self, text: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        Ok(match self.run(text, params)? {
            Returned::Rows(rows) => rows,
            Returned::Affected(_) => Vec::new(),
        })
    }

    pub(super) fn query_one(&mut self, text: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        exactly_one(self.query(text, params)?)
    }

    pub(super) fn query_opt(
        &mut self,
        text: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        at_most_one(self.query(text, params)?)
    }

    pub(super) fn batch_execute(&mut self, text: &str) -> Result<()> {
        self.run(text, &[]).map(drop)
    }

    /// A statement prepared on this connection, describing no parameters
    /// and no columns: the fake has no server to ask.
    pub(super) fn prepare(&mut self, text: &str) -> Result<Statement> {
        let sql = self.statement_sql(text)?;
        self.usable()?;
        Ok(Statement::new(sql, Vec::new(), Vec::new()).prepared_on(self.id))
    }

    /// Begins a transaction.
    pub(super) fn begin(mut self, options: &TransactionOptions) -> Result<FakeSession> {
        self.usable()?;
        self.control("BEGIN")?;
        self.shared.record(Event::Begin(*options));
        self.transaction = Transaction::Open;
        Ok(FakeSession {
            conn: self,
            ended: false,
        })
    }

    /// Runs a statement: records it and returns the script's answer.
    fn run(&mut self, text: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Returned> {
        let sql = self.statement_sql(text)?;
        if self.broken {
            return Err(Error::new(ErrorKind::Closed));
        }
        self.shared.record(Event::Statement(RecordedStatement {
            sql: sql.to_owned(),
            params: params
                .iter()
                .map(|param| Value::from_param(*param))
                .collect(),
            in_transaction: self.transaction != Transaction::None,
            connection: self.id,
        }));
        let answer = if self.transaction == Transaction::Aborted {
            Err(aborted())
        } else {
            self.shared
                .answer(sql)
                .unwrap_or_else(|| Err(unscripted(sql)))
        };
        let returned = match answer {
            Ok(Answer::Rows(rows)) => Ok(Returned::Rows(rows)),
            Ok(Answer::Affected(n)) => Ok(Returned::Affected(n)),
            Ok(Answer::Fails(error)) | Err(error) => Err(error),
        };
        if let Err(error) = &returned {
            self.failed(error);
        }
        returned
    }

    /// A transaction control statement (`BEGIN`, `COMMIT`, `ROLLBACK`):
    /// it succeeds unless a rule scripts an error for it.
    fn control(&mut self, sql: &str) -> Result<()> {
        match self.shared.answer(sql) {
            Some(Ok(Answer::Fails(error)) | Err(error)) => {
                self.failed(&error);
                Err(error)
            }
            Some(Ok(_)) | None => Ok(()),
        }
    }

    /// The SQL of `text`: itself, or the SQL of a statement this
    /// connection prepared; another connection's statement is refused, as
    /// the backends refuse it.
    fn statement_sql<'t>(&self, text: &'t str) -> Result<&'t str> {
        crate::statement::sql_on_connection(text, self.id)
    }

    /// Fails unless the connection works and its transaction (if any) is
    /// not aborted.
    fn usable(&self) -> Result<()> {
        if self.broken {
            return Err(Error::new(ErrorKind::Closed));
        }
        if self.transaction == Transaction::Aborted {
            return Err(aborted());
        }
        Ok(())
    }

    /// A statement failed with `error`: a lost connection is broken for
    /// good, an open transaction is aborted.
    fn failed(&mut self, error: &Error) {
        if error.kind() == ErrorKind::Closed {
            self.broken = true;
        }
        if self.transaction == Transaction::Open {
            self.transaction = Transaction::Aborted;
        }
    }
}

impl Drop for FakeConnection {
    fn drop(&mut self) {
        self.shared.closed();
    }
}

impl FakeSession {
    /// The session's connection, which runs its statements.
    pub(super) fn client(&mut self) -> &mut FakeConnection {
        &mut self.conn
    }

    pub(super) fn savepoint(&mut self, name: &str) -> Result<()> {
        self.conn.usable()?;
        self.conn.shared.record(Event::Savepoint(name.to_owned()));
        Ok(())
    }

    pub(super) fn rollback_to_savepoint(&mut self, name: &str) -> Result<()> {
        if self.conn.broken {
            return Err(Error::new(ErrorKind::Closed));
        }
        self.conn
            .shared
            .record(Event::RollbackToSavepoint(name.to_owned()));
        self.conn.transaction = Transaction::Open;
        Ok(())
    }

    pub(super) fn release_savepoint(&mut self, name: &str) -> Result<()> {
        self.conn.usable()?;
        self.conn
            .shared
            .record(Event::ReleaseSavepoint(name.to_owned()));
        Ok(())
    }

    /// Commits; a commit that fails rolls back, as on a server (an aborted
    /// transaction fails with 25P02, as the backends report it).
    pub(super) fn commit(&mut self) -> Result<()> {
        let outcome = if self.conn.broken {
            Err(Error::new(ErrorKind::Closed))
        } else if self.conn.transaction == Transaction::Aborted {
            Err(Error::with_message(
                ErrorKind::Database,
                "the transaction was aborted by an earlier error and has been rolled back",
            )
            .with_sqlstate(SqlState::IN_FAILED_SQL_TRANSACTION))
        } else {
            self.conn.control("COMMIT")
        };
        self.end(if outcome.is_ok() {
            Event::Commit
        } else {
            Event::Rollback
        });
        outcome
    }

    /// Rolls back; on a broken connection it fails, and the work is rolled
    /// back all the same.
    pub(super) fn rollback(&mut self) -> Result<()> {
        let outcome = if self.conn.broken {
            Err(Error::new(ErrorKind::Closed))
        } else {
            self.conn.control("ROLLBACK")
        };
        self.end(Event::Rollback);
        outcome
    }

    fn end(&mut self, event: Event) {
        self.ended = true;
        self.conn.transaction = Transaction::None;
        self.conn.shared.record(event);
    }
}

impl Drop for FakeSession {
    fn drop(&mut self) {
        if !self.ended {
            self.end(Event::Rollback);
        }
    }
}

/// The error of a statement in an aborted transaction, as the server
/// reports it.
fn aborted() -> Error {
    Error::from_sqlstate(
        SqlState::IN_FAILED_SQL_TRANSACTION,
        "current transaction is aborted, commands ignored until end of transaction block",
    )
}
