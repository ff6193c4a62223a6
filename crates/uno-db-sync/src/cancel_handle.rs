//! [`CancelHandle`]: cancels the statement a connection is running, from
//! another thread.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use postgres::CancelToken;
use uno_db_core::Result;
use uno_db_core::backend::{MakeTls, cancel_request_failed, cancel_request_timed_out};

/// Cancels whatever statement its connection is running, from any thread:
/// taken from [`SyncConnection::cancel_handle`](crate::SyncConnection::cancel_handle)
/// or [`SyncSession::cancel_handle`](crate::SyncSession::cancel_handle)
/// before the statement starts, then moved or cloned to where the decision
/// to cancel is made.
///
/// [`cancel`](Self::cancel) sends `PostgreSQL`'s cancel request (on a
/// connection of its own, with the same TLS settings as the connection).
/// A statement the server was running then fails with SQLSTATE 57014,
/// classified as every 57014 is: [`QueryTimeout`](uno_db_core::ErrorKind::QueryTimeout).
/// The connection stays usable (only the statement ended); inside a
/// session the transaction is aborted, as by any failed statement. A
/// request that arrives while nothing runs does nothing. As in libpq, a
/// request sent just as one statement ends may reach the next one.
///
/// ```no_run
/// # fn demo(engine: &uno_db_sync::SyncEngine) -> uno_db_core::Result<()> {
/// use uno_db_core::blocking::Client;
///
/// let mut conn = engine.checkout()?;
/// let handle = conn.cancel_handle()?;
/// let canceller = std::thread::spawn(move || {
///     std::thread::sleep(std::time::Duration::from_millis(200));
///     handle.cancel()
/// });
/// let error = conn.execute("SELECT pg_sleep(30)", &[]).unwrap_err();
/// assert_eq!(error.kind(), uno_db_core::ErrorKind::QueryTimeout);
/// canceller.join().expect("the canceller")?;
/// conn.execute("SELECT 1", &[])?; // still usable
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct CancelHandle {
    token: Arc<CancelToken>,
    tls: MakeTls,
    bound: Duration,
}

impl std::fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelHandle")
            .field("bound", &self.bound)
            .finish_non_exhaustive()
    }
}

impl CancelHandle {
    pub(crate) fn new(token: Arc<CancelToken>, tls: MakeTls, bound: Duration) -> Self {
        Self { token, tls, bound }
    }

    /// Sends the cancel request and waits until it was delivered, at most
    /// the engine's `connect_timeout`. It runs on a short-lived thread of
    /// its own, so it may be called from any thread (also inside an async
    /// runtime, where it blocks its caller for at most that long); a
    /// request still under way at the bound is left to finish there.
    ///
    /// # Errors
    ///
    /// [`Connect`](uno_db_core::ErrorKind::Connect): the request could not
    /// be sent (the server is unreachable, the TLS handshake failed) or was
    /// not delivered within `connect_timeout`. The statement then runs on.
    pub fn cancel(&self) -> Result<()> {
        let (sender, receiver) = mpsc::sync_channel(1);
        let token = Arc::clone(&self.token);
        // Without the `tls` feature the connector is `Copy`.
        #[allow(clippy::clone_on_copy)]
        let tls = self.tls.clone();
        std::thread::Builder::new()
            .name("uno-db-sync-cancel".to_owned())
            .spawn(move || {
                // The receiver is gone only after the bound passed.
                let _ = sender.send(token.cancel_query(tls));
            })
            .map_err(cancel_request_failed)?;
        match receiver.recv_timeout(self.bound) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(cancel_request_failed(error)),
            Err(_) => Err(cancel_request_timed_out(self.bound)),
        }
    }
}
