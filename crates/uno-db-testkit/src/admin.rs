//! Administrative sessions, each on a dedicated thread.
//!
//! The synchronous `postgres` driver runs its own Tokio runtime and panics when called from
//! inside another one, so every administrative session runs on a fresh std thread (which has
//! no runtime context) and the caller waits for its answer with a deadline. This makes the
//! test kit usable from plain `#[test]`s and from `#[tokio::test]`s of either flavour, and
//! means no administrative step can hang a test.

use std::sync::mpsc;
use std::time::Duration;

use crate::TestkitError;
use crate::server::Server;

/// How long an administrative session may take.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadlines {
    /// For establishing the TCP connection.
    pub(crate) connect: Duration,
    /// For the whole session: connecting, logging in, the statements, disconnecting.
    pub(crate) session: Duration,
}

impl Deadlines {
    /// For administrative work. Statements are also limited to 30 s by the session's
    /// `statement_timeout` and `lock_timeout`.
    pub(crate) const ADMIN: Self = Self {
        connect: Duration::from_secs(5),
        session: Duration::from_secs(45),
    };

    /// For checking quickly whether a server is there.
    pub(crate) const PROBE: Self = Self {
        connect: Duration::from_secs(1),
        session: Duration::from_secs(3),
    };
}

/// How an administrative session failed, before it is described as a [`TestkitError`].
enum SessionFailure {
    Connect(postgres::Error),
    Statement(postgres::Error),
}

/// Runs `work` in an administrative session on `server`'s admin database, on its own thread.
///
/// `action` describes the work for error messages. If the session outlives its deadline the
/// caller gets [`TestkitError::Timeout`] and the thread is left to finish on its own.
pub(crate) fn run_admin<T, F>(
    server: &Server,
    action: &str,
    deadlines: Deadlines,
    work: F,
) -> Result<T, TestkitError>
where
    T: Send + 'static,
    F: FnOnce(&mut postgres::Client) -> Result<T, postgres::Error> + Send + 'static,
{
    let config = server.admin_config(&server.admin_db, deadlines.connect);
    let (answer_tx, answer_rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("uno-db-testkit-admin".to_owned())
        .spawn(move || {
            let outcome = match config.connect(postgres::NoTls) {
                Ok(mut client) => work(&mut client).map_err(SessionFailure::Statement),
                Err(error) => Err(SessionFailure::Connect(error)),
            };
            // The caller may have given up waiting; nobody to tell then.
            let _ = answer_tx.send(outcome);
        })
        .map_err(|source| TestkitError::io(format!("starting a thread for {action}"), source))?;

    match answer_rx.recv_timeout(deadlines.session) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(SessionFailure::Connect(source))) => Err(TestkitError::Connect {
            target: server.describe(),
            source,
        }),
        Ok(Err(SessionFailure::Statement(source))) => Err(TestkitError::sql(action, source)),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(TestkitError::Timeout {
            action: action.to_owned(),
            after: deadlines.session,
        }),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(TestkitError::BackgroundThread {
            action: action.to_owned(),
        }),
    }
}
