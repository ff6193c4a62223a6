//! [`SyncListener`]: `LISTEN`/`NOTIFY` on a dedicated connection, opened
//! and reopened through the engine's connect path. The kernel's
//! [`ListenerState`] decides; this does the I/O.

use std::sync::Arc;
use std::time::{Duration, Instant};

use uno_db_core::backend::ListenerState;
use uno_db_core::blocking::Listener;
use uno_db_core::{ListenerEvent, Notification, Result};

use crate::connect;
use crate::pg_conn::PgConn;
use crate::runtime_guard::ensure_blocking_context;
use crate::shared::EngineShared;

/// A dedicated connection receiving `NOTIFY`s: the blocking backend's
/// [`Listener`], from [`SyncEngine::open_listener`](crate::SyncEngine::open_listener)
/// or [`Engine::listener`](uno_db_core::blocking::Engine::listener).
///
/// Its connection is not pooled; it closes when the listener is dropped.
/// The driver reads the socket only during calls, so between calls
/// notifications wait in the server's queue (and in the socket), which is
/// the backpressure a slow consumer puts on the server. A lost connection
/// is replaced within the next call, every channel listened to again, and
/// [`ListenerEvent::Reconnected`] comes out of
/// [`next_timeout`](Listener::next_timeout) first.
pub struct SyncListener {
    shared: Arc<EngineShared>,
    state: ListenerState,
    /// `None` after the connection was lost and before a new one is open.
    conn: Option<PgConn>,
}

impl std::fmt::Debug for SyncListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncListener")
            .field("target", &self.shared.core.config().target())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// Opens one connection for a listener (not through the pool, which never
/// sees it; it is counted as created and, when dropped, closed).
fn open(shared: &Arc<EngineShared>) -> Result<PgConn> {
    if shared.core.is_disposed() {
        return Err(shared.core.disposed_error());
    }
    connect::open(shared, Instant::now())
}

impl SyncListener {
    /// Opens the listener's first connection.
    pub(crate) fn open(shared: Arc<EngineShared>) -> Result<Self> {
        ensure_blocking_context()?;
        let conn = open(&shared)?;
        Ok(Self {
            shared,
            state: ListenerState::new(),
            conn: Some(conn),
        })
    }

    /// The live connection, opening a new one (subscriptions restored)
    /// when the last one was lost.
    fn live(&mut self) -> Result<&mut PgConn> {
        let kept = self.conn.take().filter(|_| !self.state.needs_connection());
        let conn = match kept {
            Some(conn) => conn,
            None => {
                self.state.lost();
                let mut conn = open(&self.shared)?;
                if let Some(sql) = self.state.restore_sql() {
                    conn.internal(&sql)?;
                }
                self.state.reconnected();
                conn
            }
        };
        Ok(self.conn.insert(conn))
    }
}

impl Listener for SyncListener {
    fn listen(&mut self, channel: &str) -> Result<()> {
        ensure_blocking_context()?;
        let sql = ListenerState::listen_sql(channel)?;
        let outcome = self.live()?.internal(&sql);
        self.state.listen_finished(channel, outcome)
    }

    fn unlisten(&mut self, channel: &str) -> Result<()> {
        ensure_blocking_context()?;
        let sql = ListenerState::unlisten_sql(channel)?;
        self.state.unlistened(channel);
        let Some(conn) = self
            .conn
            .as_mut()
            .filter(|_| !self.state.needs_connection())
        else {
            // The lost session's subscription went with it.
            return Ok(());
        };
        let outcome = conn.internal(&sql);
        self.state.unlisten_finished(outcome)
    }

    fn channels(&self) -> Vec<String> {
        self.state.channels()
    }

    fn next_timeout(&mut self, timeout: Duration) -> Result<Option<ListenerEvent>> {
        ensure_blocking_context()?;
        let deadline = Instant::now() + timeout;
        loop {
            // A reconnect (here or in an earlier call) is reported before
            // anything the new connection receives.
            self.live()?;
            if let Some(event) = self.state.pending_event() {
                return Ok(Some(event));
            }
            let conn = self.live()?;
            let wait = deadline.saturating_duration_since(Instant::now());
            // The driver's wait ends early when the connection does, so a
            // dead connection is noticed within the same call.
            match conn.next_notification(wait) {
                Ok(Some(notification)) => {
                    return Ok(Some(Notification::from_driver(&notification).into()));
                }
                Ok(None) if !conn.is_closed() => return Ok(None),
                Ok(None) => self.state.lost(),
                Err(error) if conn.is_closed() || ListenerState::is_lost(&error) => {
                    self.state.lost();
                }
                Err(error) => return Err(error),
            }
        }
    }
}
