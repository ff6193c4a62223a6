//! A scripted fake database for unit tests (feature `mock`), for both
//! families: [`FakeDatabase`].
//!
//! It answers statements from a script of rules written by the test
//! ([`FakeDatabase::on`]: SQL or a [`SqlPattern`], then rows, an
//! affected-row count or an error), and records what the code under test
//! did ([`events`](FakeDatabase::events),
//! [`statements`](FakeDatabase::statements) with their parameters as
//! [`Value`]s, [`commits`](FakeDatabase::commits),
//! [`rollbacks`](FakeDatabase::rollbacks)). Where the mockall mocks
//! (`blocking::MockEngine`, ...) check calls one expectation at a time,
//! the fake stands in for the whole database: engines, connections and
//! sessions come from it as from a backend, so a test scripts answers and
//! asserts on the record afterwards.

mod blocking;
mod connection;
mod nonblocking;
mod recorded;
mod script;
mod value;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::callbacks::{AsyncCallbacks, BlockingCallbacks};
use crate::config::ConnectionConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::status::{CloseReport, PoolCounters, PoolStatus};

pub use recorded::{Event, RecordedStatement};
use script::{Answer, Rule, Script};
pub use script::{ScriptLine, SqlPattern};
pub use value::Value;

/// A scripted database for unit tests, for both families: it is a
/// `blocking::EngineFactory` and a `nonblocking::EngineFactory`, and an
/// `Engine` of each family, whose connections and sessions answer from the
/// script and record what they are sent.
///
/// ```
/// use uno_db_core::blocking::{Client, EngineFactory};
/// use uno_db_core::fake::{Event, FakeDatabase, SqlPattern, Value};
/// use uno_db_core::{ConnectionConfig, Row, Type};
///
/// let fake = FakeDatabase::new();
/// fake.on("SELECT name FROM users WHERE id = $1")
///     .returns_row(Row::builder().column("name", Type::TEXT, "alice").build()?);
/// fake.on(SqlPattern::starts_with("UPDATE users")).affects(1);
///
/// // The code under test gets the fake as its factory (a clone shares it).
/// let factory: Box<dyn EngineFactory> = Box::new(fake.clone());
/// let engine = factory.engine(&ConnectionConfig::default())?;
/// let mut session = engine.session(&Default::default())?;
/// let row = session.query_one("SELECT name FROM users WHERE id = $1", &[&7_i64])?;
/// assert_eq!(row.get::<_, &str>("name"), "alice");
/// session.execute("UPDATE users SET seen = now() WHERE id = $1", &[&7_i64])?;
/// session.commit()?;
///
/// let statements = fake.statements();
/// assert_eq!(statements[0].params, [Value::Int(7)]);
/// assert!(statements[1].in_transaction);
/// assert_eq!(fake.events().last(), Some(&Event::Commit));
/// # Ok::<(), uno_db_core::Error>(())
/// ```
///
/// # Answers
///
/// A statement gets the answer of the first rule, in the order they were
/// scripted, whose pattern matches its SQL and that is not used up (a rule
/// answers every time unless limited with [`once`](ScriptLine::once) or
/// [`times`](ScriptLine::times)): script a limited rule before a lasting
/// one for "fails once, then works". A statement no rule answers fails
/// with [`ErrorKind::Unsupported`], naming its SQL; it is still recorded.
/// `query_one` and `query_opt` count the rows as the backends do
/// ([`RowNotFound`](ErrorKind::RowNotFound),
/// [`TooManyRows`](ErrorKind::TooManyRows)). `prepare` needs no rule: its
/// statement describes no parameters or columns, and runs as its SQL on
/// the connection that prepared it (another refuses it, as the backends
/// do).
///
/// Transaction control needs no script: `begin`, `commit` and `rollback`
/// succeed, unless a rule matches `BEGIN`, `COMMIT` or `ROLLBACK` with an
/// error (`fake.on("COMMIT").once().fails_with(...)` fails the next
/// commit; the work is then rolled back). Savepoints need no rule either.
///
/// Like a server, the fake aborts a session's transaction when one of its
/// statements fails, and breaks a connection on an error of kind
/// [`Closed`](ErrorKind::Closed) (see [`ScriptLine::fails_with`]).
///
/// # Engines
///
/// Every engine of the fake ([`EngineFactory::engine`] for any
/// configuration, or the fake itself, whose configuration is the default
/// one) shares its script and record. Each `connect` opens a new fake
/// connection (numbered from 1) and runs the factory's callbacks on it,
/// whose statements need answers like any other. Disposing the fake, by
/// any engine or the factory, makes later checkouts fail with
/// [`PoolClosed`](ErrorKind::PoolClosed). `status()` counts the
/// connections checked out and not yet dropped, `counters()` the
/// checkouts. `listener` is [`Unsupported`](ErrorKind::Unsupported), as
/// are `copy_in` and `copy_out` (the traits' defaults); `query_stream`
/// answers as `query`.
///
/// The fake is `Send + Sync` and cheap to clone: clones share everything.
///
/// [`EngineFactory::engine`]: crate::blocking::EngineFactory::engine
#[derive(Clone)]
pub struct FakeDatabase {
    shared: Arc<Shared>,
    config: ConnectionConfig,
}

/// What every clone and every engine of one fake share.
#[derive(Default)]
struct Shared {
    script: Mutex<Script>,
    events: Mutex<Vec<Event>>,
    /// The number of the last connection opened.
    connections: AtomicU64,
    /// Connections checked out and not yet dropped.
    open: AtomicUsize,
    disposed: AtomicBool,
    blocking_callbacks: BlockingCallbacks,
    async_callbacks: AsyncCallbacks,
}

impl Shared {
    fn add_rule(&self, rule: Rule) {
        lock(&self.script).push(rule);
    }

    /// The scripted answer to `sql`, if a rule has one.
    fn answer(&self, sql: &str) -> Option<Result<Answer>> {
        lock(&self.script).answer(sql)
    }

    fn record(&self, event: Event) {
        lock(&self.events).push(event);
    }

    /// Opens a connection: its number, unless the fake is disposed.
    fn open(&self) -> Result<u64> {
        if self.disposed.load(Ordering::Acquire) {
            return Err(Error::new(ErrorKind::PoolClosed));
        }
        self.open.fetch_add(1, Ordering::AcqRel);
        Ok(self.connections.fetch_add(1, Ordering::AcqRel) + 1)
    }

    fn closed(&self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The mutex's data, also after a panic while it was held (a test that
/// failed elsewhere must not hide its cause behind a poisoned lock).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FakeDatabase {
    /// A fake with an empty script and record.
    #[must_use]
    pub fn new() -> Self {
        Self {
            shared: Arc::default(),
            config: ConnectionConfig::default(),
        }
    }

    /// Starts a rule for the statements `pattern` matches: SQL text (an
    /// exact match, whitespace folded) or a [`SqlPattern`]. The rule is
    /// added once its answer is given:
    ///
    /// ```
    /// use uno_db_core::fake::{FakeDatabase, SqlPattern};
    /// use uno_db_core::{Error, Row, SqlState, Type};
    ///
    /// let fake = FakeDatabase::new();
    /// fake.on("DELETE FROM sessions WHERE expires < now()").affects(3);
    /// fake.on(SqlPattern::contains("INTO users"))
    ///     .once()
    ///     .fails_with(Error::from_sqlstate(SqlState::UNIQUE_VIOLATION, "duplicate key"));
    /// fake.on(SqlPattern::contains("INTO users"))
    ///     .returns_row(Row::builder().column("id", Type::INT8, 1_i64).build()?);
    /// # Ok::<(), uno_db_core::Error>(())
    /// ```
    pub fn on(&self, pattern: impl Into<SqlPattern>) -> ScriptLine<'_> {
        ScriptLine::new(self, pattern.into())
    }

    /// Everything recorded so far, in order.
    #[must_use]
    pub fn events(&self) -> Vec<Event> {
        lock(&self.shared.events).clone()
    }

    /// The statements recorded so far, in order.
    #[must_use]
    pub fn statements(&self) -> Vec<RecordedStatement> {
        lock(&self.shared.events)
            .iter()
            .filter_map(|event| match event {
                Event::Statement(statement) => Some(statement.clone()),
                _ => None,
            })
            .collect()
    }

    /// How many sessions committed.
    #[must_use]
    pub fn commits(&self) -> usize {
        self.count(|event| matches!(event, Event::Commit))
    }

    /// How many sessions rolled back (also by being dropped uncommitted).
    #[must_use]
    pub fn rollbacks(&self) -> usize {
        self.count(|event| matches!(event, Event::Rollback))
    }

    /// Forgets what was recorded so far, keeping the script: for a test
    /// that sets data up through the code under test before the part it
    /// checks.
    pub fn clear_events(&self) {
        lock(&self.shared.events).clear();
    }

    fn count(&self, what: impl Fn(&Event) -> bool) -> usize {
        lock(&self.shared.events)
            .iter()
            .filter(|event| what(event))
            .count()
    }

    /// This fake as an engine of `config`.
    fn with_config(&self, config: &ConnectionConfig) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            config: config.clone(),
        }
    }

    fn set_disposed(&self) -> bool {
        !self.shared.disposed.swap(true, Ordering::AcqRel)
    }

    fn disposed(&self) -> bool {
        self.shared.disposed.load(Ordering::Acquire)
    }

    fn pool_status(&self) -> PoolStatus {
        let open = self.shared.open.load(Ordering::Acquire);
        PoolStatus {
            max_size: self.config.pool_size() + self.config.max_overflow(),
            size: open,
            idle: 0,
            in_use: open,
            waiting: 0,
        }
    }

    fn pool_counters(&self) -> PoolCounters {
        let opened = self.shared.connections.load(Ordering::Acquire);
        PoolCounters {
            created: opened,
            acquired: opened,
            ..PoolCounters::default()
        }
    }

    fn check_open(&self) -> Result<()> {
        if self.disposed() {
            return Err(Error::new(ErrorKind::PoolClosed));
        }
        Ok(())
    }

    fn drain(&self) -> CloseReport {
        self.set_disposed();
        CloseReport {
            returned: 0,
            forced: self.shared.open.load(Ordering::Acquire),
        }
    }
}

impl Default for FakeDatabase {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for FakeDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeDatabase")
            .field("rules", &lock(&self.shared.script).len())
            .field("events", &lock(&self.shared.events).len())
            .field("disposed", &self.disposed())
            .finish_non_exhaustive()
    }
}

/// The error of `listener`, which the fake does not have.
fn no_listener() -> Error {
    Error::with_message(
        ErrorKind::Unsupported,
        "the fake database has no LISTEN/NOTIFY listener",
    )
}
