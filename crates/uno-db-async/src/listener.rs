//! [`AsyncListener`]: `LISTEN`/`NOTIFY` on a dedicated connection, opened
//! and reopened through the engine's connect path. The kernel's
//! [`ListenerState`] decides; this does the I/O.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use tokio::sync::mpsc;
use uno_db_core::backend::ListenerState;
use uno_db_core::nonblocking::Listener;
use uno_db_core::{CloseReason, ListenerEvent, Notification, Result};

use crate::connect;
use crate::pg_conn::PgConn;
use crate::shared::EngineShared;

/// How many notifications the connection's task may hold for a consumer
/// that has not asked yet. Beyond it the task stops reading the socket
/// until the consumer catches up, and the server queues the rest (its
/// notification queue, 8 GB).
const BUFFER: usize = 1024;

/// A dedicated connection receiving `NOTIFY`s: the async backend's
/// [`Listener`], from [`AsyncEngine::open_listener`](crate::AsyncEngine::open_listener)
/// or [`Engine::listener`](uno_db_core::nonblocking::Engine::listener).
///
/// Its connection is not pooled; it closes when the listener is dropped.
/// A lost connection is replaced on the next call, every channel listened
/// to again, and [`ListenerEvent::Reconnected`] comes out of
/// [`next`](Listener::next) first.
pub struct AsyncListener {
    shared: Arc<EngineShared>,
    state: ListenerState,
    /// `None` after the connection was lost and before a new one is open.
    link: Option<Link>,
}

impl std::fmt::Debug for AsyncListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncListener")
            .field("target", &self.shared.core.config().target())
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// One connection of a listener and what it delivered.
struct Link {
    conn: PgConn,
    /// From the connection's task; closed when the connection ends.
    notifications: mpsc::Receiver<tokio_postgres::Notification>,
    /// Notifications taken off the channel while a statement ran (the
    /// task must keep reading for the statement to finish), served first.
    backlog: VecDeque<tokio_postgres::Notification>,
    shared: Arc<EngineShared>,
}

impl Link {
    async fn open(shared: &Arc<EngineShared>) -> Result<Self> {
        if shared.core.is_disposed() {
            return Err(shared.core.disposed_error());
        }
        let (sender, notifications) = mpsc::channel(BUFFER);
        // Boxed: connecting is rare and its future is large.
        let conn = Box::pin(connect::open_forwarding(shared, Instant::now(), sender)).await?;
        Ok(Self {
            conn,
            notifications,
            backlog: VecDeque::new(),
            shared: Arc::clone(shared),
        })
    }

    /// Runs `sql` while keeping the notification channel drained: with a
    /// full channel the connection's task would stop reading, and the
    /// statement's answer would never arrive.
    async fn run(&mut self, sql: &str) -> Result<()> {
        let statement = self.conn.internal(sql);
        tokio::pin!(statement);
        loop {
            tokio::select! {
                biased;
                result = &mut statement => return result,
                Some(notification) = self.notifications.recv() => {
                    self.backlog.push_back(notification);
                }
            }
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Counted as closed like a pooled connection, so that the
        // engine's created and closed counters stay in step.
        let core = &self.shared.core;
        let reason = core.close_reason(
            &self.conn.state,
            self.conn.is_closed(),
            Instant::now(),
            CloseReason::Disposed,
        );
        core.record_closed(reason);
    }
}

impl AsyncListener {
    /// Opens the listener's first connection.
    pub(crate) async fn open(shared: Arc<EngineShared>) -> Result<Self> {
        let link = Link::open(&shared).await?;
        Ok(Self {
            shared,
            state: ListenerState::new(),
            link: Some(link),
        })
    }

    /// The live connection, opening a new one (subscriptions restored)
    /// when the last one was lost.
    async fn live(&mut self) -> Result<&mut Link> {
        let kept = self.link.take().filter(|_| !self.state.needs_connection());
        let link = match kept {
            Some(link) => link,
            None => {
                // The old connection is gone: nothing more is read from it.
                self.state.lost();
                let mut link = Link::open(&self.shared).await?;
                if let Some(sql) = self.state.restore_sql() {
                    link.run(&sql).await?;
                }
                self.state.reconnected();
                link
            }
        };
        Ok(self.link.insert(link))
    }
}

#[async_trait]
impl Listener for AsyncListener {
    async fn listen(&mut self, channel: &str) -> Result<()> {
        let sql = ListenerState::listen_sql(channel)?;
        let outcome = self.live().await?.run(&sql).await;
        self.state.listen_finished(channel, outcome)
    }

    async fn unlisten(&mut self, channel: &str) -> Result<()> {
        let sql = ListenerState::unlisten_sql(channel)?;
        self.state.unlistened(channel);
        let Some(link) = self
            .link
            .as_mut()
            .filter(|_| !self.state.needs_connection())
        else {
            // The lost session's subscription went with it.
            return Ok(());
        };
        let outcome = link.run(&sql).await;
        self.state.unlisten_finished(outcome)
    }

    fn channels(&self) -> Vec<String> {
        self.state.channels()
    }

    async fn next(&mut self) -> Result<ListenerEvent> {
        loop {
            if let Some(event) = self.state.pending_event() {
                return Ok(event);
            }
            if let Some(link) = self.link.as_mut() {
                if let Some(notification) = link.backlog.pop_front() {
                    return Ok(Notification::from_driver(&notification).into());
                }
                if self.state.needs_connection() {
                    // What the lost connection delivered still comes out.
                    match link.notifications.try_recv() {
                        Ok(notification) => {
                            return Ok(Notification::from_driver(&notification).into());
                        }
                        Err(_) => self.link = None,
                    }
                } else {
                    match link.notifications.recv().await {
                        Some(notification) => {
                            return Ok(Notification::from_driver(&notification).into());
                        }
                        // The connection's task ended: the connection did.
                        None => self.state.lost(),
                    }
                }
                continue;
            }
            self.live().await?;
        }
    }
}
