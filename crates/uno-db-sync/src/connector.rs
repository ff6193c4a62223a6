//! Opening one physical connection within a time limit.

use std::io;
use std::sync::mpsc;
use std::time::Duration;

use postgres::{Client, NoTls};
use r2d2::ManageConnection;
use r2d2_postgres::PostgresConnectionManager;
use uno_db_core::{Error, ErrorKind, Result};

/// Connects with `driver_config` through `r2d2_postgres`, giving up after
/// `limit` for the whole attempt (TCP connect, startup and authentication),
/// as libpq's `connect_timeout` does.
///
/// The driver bounds only the TCP connect: a server or proxy that accepts
/// the connection and then says nothing would block it forever. So the
/// attempt runs on a thread of its own; when `limit` passes, the caller gets
/// a timeout and the thread is left to finish on its own (the server's
/// `authentication_timeout`, or TCP keepalives and `tcp_user_timeout`, end
/// it) and closes whatever it got.
pub(crate) fn connect_within(
    driver_config: &postgres::Config,
    limit: Duration,
    target: &str,
) -> Result<Client> {
    let manager = PostgresConnectionManager::new(driver_config.clone(), NoTls);
    let (sender, receiver) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("uno-db-sync-connect".to_owned())
        .spawn(move || {
            // If the caller gave up, the client comes back and is closed.
            drop(sender.send(manager.connect()));
        })
        .map_err(|e| {
            Error::with_message(
                ErrorKind::Connect,
                format!("could not start a thread to connect to {target}"),
            )
            .with_source(e)
        })?;
    match receiver.recv_timeout(limit) {
        Ok(result) => result.map_err(|e| Error::from_connect(e, target)),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(Error::with_message(
            ErrorKind::Connect,
            format!(
                "could not connect to {target} within {}ms",
                limit.as_millis()
            ),
        )
        .with_source(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(Error::with_message(
            ErrorKind::Connect,
            format!("the attempt to connect to {target} ended without a result"),
        )),
    }
}
