//! [`Multiplexer`]: an engine's shared connections of the multiplexed
//! mode. Asks the kernel which one takes the next statement
//! ([`pick_shared`]), opens them lazily, and replaces those that broke or
//! were retired: in the background while another one takes statements,
//! else before the statement that needs one.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Instant;

use uno_db_core::Result;
use uno_db_core::backend::{
    AdmittedSql, MAX_MULTIPLEX_CONNECTIONS, PreparedStatement, SharedPick, SharedStatement,
    pick_shared,
};

use crate::connect;
use crate::deadline_queue::DeadlineQueue;
use crate::shared::EngineShared;
use crate::shared_line::SharedLine;

/// An engine's shared connections.
pub(crate) struct Multiplexer {
    shared: Arc<EngineShared>,
    slots: Box<[Slot]>,
    /// Where the search for the least loaded connection starts, rotating
    /// so that equal loads spread.
    next: AtomicUsize,
    /// Bounds each statement by `query_timeout`, when set: many statements
    /// are in flight on one connection, so the pooled mode's per-connection
    /// watch does not apply, and a tokio timer per statement cost about 4 %
    /// of a multiplexed statement.
    statement_waits: Option<DeadlineQueue>,
    /// The statements already admitted onto shared connections.
    admitted: AdmittedSql,
}

impl std::fmt::Debug for Multiplexer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Multiplexer")
            .field("slots", &self.slots)
            .finish_non_exhaustive()
    }
}

/// The place of one shared connection.
#[derive(Debug, Default)]
struct Slot {
    line: Mutex<Option<Arc<SharedLine>>>,
    /// Held while a connection for this slot is being opened.
    opening: tokio::sync::Mutex<()>,
    /// A background task is replacing the connection.
    reopening: AtomicBool,
}

impl Slot {
    fn current(&self) -> Option<Arc<SharedLine>> {
        self.line
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn load(&self) -> Option<usize> {
        self.line
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .and_then(|line| line.load())
    }
}

impl Multiplexer {
    /// `count` shared connections of the engine `shared`, none open yet.
    pub(crate) fn new(shared: Arc<EngineShared>, count: usize) -> Self {
        let count = count.clamp(1, MAX_MULTIPLEX_CONNECTIONS);
        let statement_waits = shared.core.config().query_timeout().map(DeadlineQueue::new);
        // As many statements per stripe as a shared connection caches: a
        // program's working set of SQL texts.
        let admitted = AdmittedSql::new(shared.core.config().statement_cache_size());
        Self {
            shared,
            slots: (0..count).map(|_| Slot::default()).collect(),
            next: AtomicUsize::new(0),
            statement_waits,
            admitted,
        }
    }

    /// Whether `sql` may run on a shared connection (see
    /// [`AdmittedSql::admit`]).
    pub(crate) fn admit(&self, sql: &str, batch: bool) -> Result<()> {
        self.admitted.admit(sql, batch)
    }

    /// The queue that bounds each statement by `query_timeout`; `None`
    /// without one.
    pub(crate) fn statement_waits(&self) -> Option<&DeadlineQueue> {
        self.statement_waits.as_ref()
    }

    /// The shared connection that takes the next statement (`sql`), and
    /// that statement started there. A connection replaced between the pick and
    /// the start (nothing was sent) makes it pick again, a few times.
    ///
    /// # Errors
    ///
    /// As [`line`](Self::line), or the last refusal to start.
    pub(crate) async fn start(
        self: &Arc<Self>,
        sql: &str,
    ) -> Result<(Arc<SharedLine>, SharedStatement<PreparedStatement>)> {
        let mut tries = 0;
        loop {
            let line = self.line().await?;
            match line.start(sql) {
                Ok(statement) => return Ok((line, statement)),
                Err(error) if tries > self.slots.len() => return Err(error),
                Err(_) => tries += 1,
            }
        }
    }

    /// The shared connection that takes the next statement.
    ///
    /// # Errors
    ///
    /// [`PoolClosed`](uno_db_core::ErrorKind::PoolClosed) after the engine
    /// was disposed, or, when no connection takes statements, the connect
    /// error of a permanent failure or
    /// [`PoolTimeout`](uno_db_core::ErrorKind::PoolTimeout) (carrying the
    /// last connect error) when none opened within `pool_timeout`.
    async fn line(self: &Arc<Self>) -> Result<Arc<SharedLine>> {
        let index = match self.pick()? {
            Ok(line) => return Ok(line),
            Err(index) => index,
        };
        // Boxed: opening is rare and its future large; inline, it would
        // weigh on every statement's future (which the trait boxes).
        Box::pin(self.open_within_pool_timeout(index)).await
    }

    /// The least loaded shared connection that takes statements (`Ok`),
    /// or the slot to open one in (`Err`).
    fn pick(self: &Arc<Self>) -> Result<std::result::Result<Arc<SharedLine>, usize>> {
        let core = &self.shared.core;
        if core.is_disposed() {
            return Err(core.disposed_error());
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let count = self.slots.len();
        let mut loads = [None; MAX_MULTIPLEX_CONNECTIONS];
        for (load, slot) in loads.iter_mut().zip(self.slots.iter()) {
            *load = slot.load();
        }
        let loads = &loads[..count];
        Ok(match pick_shared(loads, start % count) {
            Some(SharedPick::Use { index, replace }) => {
                if replace {
                    self.replace_in_background(loads);
                }
                // `None`: emptied since (the engine was disposed): open it
                // again.
                self.slots[index].current().ok_or(index)
            }
            Some(SharedPick::Open(index)) => Err(index),
            // No place at all: `new` makes at least one.
            None => Err(0),
        })
    }

    /// Opens a connection in slot `index` within `pool_timeout`.
    async fn open_within_pool_timeout(&self, index: usize) -> Result<Arc<SharedLine>> {
        let core = &self.shared.core;
        // Waiting behind another caller's failed attempt must not add up:
        // the whole wait is bounded by `pool_timeout`, as a checkout's.
        let started = Instant::now();
        match tokio::time::timeout(core.config().pool_timeout(), self.open(index)).await {
            Ok(opened) => opened,
            Err(_) => Err(core.checkout_timed_out(started, None)),
        }
    }

    /// Opens a connection in slot `index` unless one there takes
    /// statements (someone else opened it meanwhile).
    async fn open(&self, index: usize) -> Result<Arc<SharedLine>> {
        let slot = &self.slots[index];
        let _one_at_a_time = slot.opening.lock().await;
        if let Some(line) = slot.current()
            && line.load().is_some()
        {
            return Ok(line);
        }
        let conn = connect::open_shared(&self.shared, Instant::now()).await?;
        let line = Arc::new(SharedLine::new(conn, Arc::clone(&self.shared)));
        let core = &self.shared.core;
        if core.is_disposed() {
            return Err(core.disposed_error());
        }
        let old = slot
            .line
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(Arc::clone(&line));
        // Closes once the statements still in flight on it end.
        drop(old);
        Ok(line)
    }

    /// Replaces, each in a task of its own, the connections that take no
    /// statements (`loads` says which), unless a task already does.
    fn replace_in_background(self: &Arc<Self>, loads: &[Option<usize>]) {
        for (index, _) in loads.iter().enumerate().filter(|(_, load)| load.is_none()) {
            if self.slots[index].reopening.swap(true, Ordering::AcqRel) {
                continue;
            }
            tokio::spawn(reopen(Arc::downgrade(self), index));
        }
    }

    /// Closes the shared connections (each once the statements in flight
    /// on it end); new statements fail with `PoolClosed`.
    pub(crate) fn dispose(&self) {
        for slot in &*self.slots {
            drop(
                slot.line
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take(),
            );
        }
    }

    /// How many shared connections are open and take statements.
    pub(crate) fn open_count(&self) -> usize {
        self.slots
            .iter()
            .filter(|slot| slot.load().is_some())
            .count()
    }
}

/// Replaces the connection of slot `index` in the background; a failure
/// leaves the slot for the next statement that needs it.
async fn reopen(multiplexer: Weak<Multiplexer>, index: usize) {
    let Some(multiplexer) = multiplexer.upgrade() else {
        return;
    };
    let outcome = multiplexer.open(index).await;
    if let Err(error) = &outcome {
        multiplexer
            .shared
            .core
            .events()
            .shared_connection_failed(error);
    }
    multiplexer.slots[index]
        .reopening
        .store(false, Ordering::Release);
}
