//! How a fake database answers: rules pairing a SQL pattern with an answer.

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::row::Row;

use super::FakeDatabase;

/// Which statements a rule of a [`FakeDatabase`] answers, matched against
/// the statement's SQL with runs of whitespace (line breaks, indentation)
/// read as one space and the ends trimmed, on both sides. Case matters.
///
/// SQL text (`&str`, `String`) is an [`exact`](Self::exact) pattern.
///
/// ```
/// use uno_db_core::fake::SqlPattern;
///
/// let sql = "SELECT name\n  FROM users WHERE id = $1";
/// assert!(SqlPattern::exact("SELECT name FROM users WHERE id = $1").matches(sql));
/// assert!(SqlPattern::starts_with("SELECT name").matches(sql));
/// assert!(SqlPattern::contains("FROM users").matches(sql));
/// assert!(SqlPattern::matching(|sql| sql.ends_with("$1")).matches(sql));
/// assert!(!SqlPattern::contains("FROM orders").matches(sql));
/// ```
#[derive(Clone)]
pub struct SqlPattern(Matcher);

#[derive(Clone)]
enum Matcher {
    Exact(String),
    StartsWith(String),
    Contains(String),
    Predicate(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl SqlPattern {
    /// The statements whose SQL is `sql`.
    #[must_use]
    pub fn exact(sql: &str) -> Self {
        Self(Matcher::Exact(normalize(sql)))
    }

    /// The statements whose SQL starts with `prefix`.
    #[must_use]
    pub fn starts_with(prefix: &str) -> Self {
        Self(Matcher::StartsWith(normalize(prefix)))
    }

    /// The statements whose SQL contains `fragment`.
    #[must_use]
    pub fn contains(fragment: &str) -> Self {
        Self(Matcher::Contains(normalize(fragment)))
    }

    /// The statements whose SQL (whitespace folded) `predicate` accepts.
    #[must_use]
    pub fn matching(predicate: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        Self(Matcher::Predicate(Arc::new(predicate)))
    }

    /// Whether `sql` is one of the statements this pattern matches.
    #[must_use]
    pub fn matches(&self, sql: &str) -> bool {
        let sql = normalize(sql);
        match &self.0 {
            Matcher::Exact(exact) => sql == *exact,
            Matcher::StartsWith(prefix) => sql.starts_with(prefix.as_str()),
            Matcher::Contains(fragment) => sql.contains(fragment.as_str()),
            Matcher::Predicate(predicate) => predicate(&sql),
        }
    }
}

impl From<&str> for SqlPattern {
    fn from(sql: &str) -> Self {
        Self::exact(sql)
    }
}

impl From<String> for SqlPattern {
    fn from(sql: String) -> Self {
        Self::exact(&sql)
    }
}

impl From<&String> for SqlPattern {
    fn from(sql: &String) -> Self {
        Self::exact(sql)
    }
}

impl fmt::Debug for SqlPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Matcher::Exact(sql) => f.debug_tuple("Exact").field(sql).finish(),
            Matcher::StartsWith(prefix) => f.debug_tuple("StartsWith").field(prefix).finish(),
            Matcher::Contains(fragment) => f.debug_tuple("Contains").field(fragment).finish(),
            Matcher::Predicate(_) => f.write_str("Matching(..)"),
        }
    }
}

/// `sql` with every run of whitespace made one space, trimmed.
fn normalize(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A rule of the script, scripted with [`FakeDatabase::on`]: write its
/// answer with [`returns_row`](Self::returns_row),
/// [`returns_rows`](Self::returns_rows), [`affects`](Self::affects) or
/// [`fails_with`](Self::fails_with), which adds it to the script. A rule
/// answers every matching statement, unless limited first with
/// [`once`](Self::once) or [`times`](Self::times).
#[must_use = "a rule is scripted only once its answer is given (returns_row, affects, fails_with...)"]
#[derive(Debug)]
pub struct ScriptLine<'a> {
    fake: &'a FakeDatabase,
    pattern: SqlPattern,
    times: Option<usize>,
}

impl<'a> ScriptLine<'a> {
    pub(super) fn new(fake: &'a FakeDatabase, pattern: SqlPattern) -> Self {
        Self {
            fake,
            pattern,
            times: None,
        }
    }

    /// The rule answers one statement, then gives way to later rules.
    pub fn once(self) -> Self {
        self.times(1)
    }

    /// The rule answers `n` statements, then gives way to later rules.
    pub fn times(mut self, n: usize) -> Self {
        self.times = Some(n);
        self
    }

    /// Matching statements return `row`: `query_one` and `query_opt` get
    /// it, `query` and `query_stream` get it alone, `execute` returns 1.
    pub fn returns_row(self, row: Row) {
        self.returns_rows([row]);
    }

    /// Matching statements return `rows` (each time, the same rows);
    /// `execute` returns their number. No rows is a query that found
    /// nothing: `query_one` fails with
    /// [`RowNotFound`](crate::ErrorKind::RowNotFound), `query_opt` returns
    /// `None`.
    pub fn returns_rows(self, rows: impl IntoIterator<Item = Row>) {
        self.answer(Answer::Rows(rows.into_iter().collect()));
    }

    /// Matching statements affect `rows` rows: `execute` returns `rows`,
    /// queries return no rows.
    pub fn affects(self, rows: u64) {
        self.answer(Answer::Affected(rows));
    }

    /// Matching statements fail with `error`, as a server's error would
    /// (build one with [`Error::from_sqlstate`]). Inside a session, the
    /// transaction is then aborted, as on a server: later statements fail
    /// with 25P02 until it rolls back (or back to a savepoint), and a
    /// commit rolls back and fails with 25P02. An error of kind
    /// [`Closed`](crate::ErrorKind::Closed) breaks the connection: its
    /// later statements fail with `Closed` too (unrecorded: nothing is
    /// sent on a broken connection), and `is_closed` says so.
    pub fn fails_with(self, error: Error) {
        self.answer(Answer::Fails(error));
    }

    fn answer(self, answer: Answer) {
        self.fake.shared.add_rule(Rule {
            pattern: self.pattern,
            answer,
            remaining: self.times,
        });
    }
}

/// What a rule answers.
pub(super) enum Answer {
    Rows(Vec<Row>),
    Affected(u64),
    Fails(Error),
}

impl Answer {
    /// The same answer again (rows are shared or copied).
    fn again(&self) -> Result<Self> {
        Ok(match self {
            Self::Rows(rows) => Self::Rows(rows.iter().map(Row::try_clone).collect::<Result<_>>()?),
            Self::Affected(n) => Self::Affected(*n),
            Self::Fails(error) => Self::Fails(error.clone()),
        })
    }
}

/// A scripted rule.
pub(super) struct Rule {
    pattern: SqlPattern,
    answer: Answer,
    /// How many more statements it answers; `None`: any number.
    remaining: Option<usize>,
}

/// The rules, in the order they were scripted.
#[derive(Default)]
pub(super) struct Script {
    rules: Vec<Rule>,
}

impl Script {
    pub(super) fn len(&self) -> usize {
        self.rules.len()
    }

    pub(super) fn push(&mut self, rule: Rule) {
        self.rules.push(rule);
    }

    /// The answer of the first rule that matches `sql` and is not used up,
    /// counting the use; `None` when no rule does.
    pub(super) fn answer(&mut self, sql: &str) -> Option<Result<Answer>> {
        let rule = self
            .rules
            .iter_mut()
            .find(|rule| rule.remaining != Some(0) && rule.pattern.matches(sql))?;
        if let Some(remaining) = &mut rule.remaining {
            *remaining = remaining.saturating_sub(1);
        }
        Some(rule.answer.again())
    }
}

/// The error of a statement no rule answers.
pub(super) fn unscripted(sql: &str) -> Error {
    Error::with_message(
        ErrorKind::Unsupported,
        format!(
            "the fake database has no answer for `{sql}`: script one with FakeDatabase::on \
             (no rule matches it, or the rules that do are used up)"
        ),
    )
}
