//! Opening one physical connection: connect with retry and backoff, then
//! prepare it (search path, callbacks, role) before the pool sees it.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio_postgres::NoTls;
use uno_db_core::{CloseReason, Error, ErrorKind, Result};

use crate::connection::AsyncConnection;
use crate::pg_conn::PgConn;
use crate::shared::EngineShared;

/// Opens and prepares a new physical connection, retrying transient
/// failures with the configuration's backoff. Permanent failures
/// (authentication, missing database...) return at once.
pub(crate) async fn open(shared: &Arc<EngineShared>) -> Result<PgConn> {
    let events = shared.events();
    let mut backoff = shared.config.retry().backoff();
    let conn = loop {
        let attempt = backoff.attempt();
        events.connect_attempt(attempt);
        let started = Instant::now();
        match connect_once(shared).await {
            Ok(conn) => {
                events.connected(attempt, started.elapsed());
                shared.forget_connect_error();
                break conn;
            }
            Err(error) => {
                shared.remember_connect_error(&error);
                match backoff.next_delay(&error) {
                    Some(delay) => {
                        events.connect_retry(attempt, delay, &error);
                        tokio::time::sleep(delay).await;
                    }
                    None => {
                        events.connect_failed(attempt, &error);
                        return Err(error);
                    }
                }
            }
        }
    };
    shared.metrics.record_created();
    // If this future is dropped while preparing (a checkout gave up), the
    // connection closes: the guard records that.
    let mut guard = ClosedUnlessKept {
        shared,
        reason: Some(CloseReason::Broken),
    };
    let result = prepare(shared, conn).await;
    guard.reason = match &result {
        Ok(_) => None,
        Err(error) if error.kind() == ErrorKind::Callback => Some(CloseReason::CallbackFailed),
        Err(_) => Some(CloseReason::Broken),
    };
    result
}

/// One attempt: TCP/startup/authentication and the search path, all within
/// `connect_timeout` (the driver's own timeout covers only the TCP connect).
async fn connect_once(shared: &EngineShared) -> Result<PgConn> {
    let config = &shared.config;
    let timeout = config.connect_timeout();
    shared.connecting.fetch_add(1, Ordering::AcqRel);
    let _connecting = Connecting(shared);
    let attempt = async {
        let (client, connection) = shared
            .driver
            .connect(NoTls)
            .await
            .map_err(|e| Error::from_connect(e, &config.target()))?;
        // The connection task ends when the client is dropped or the
        // socket fails; the client then reports `is_closed`.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut conn = PgConn::new(client, config.statement_cache_size(), config.pool_recycle());
        if let Some(sql) = &shared.search_path_sql {
            conn.internal(sql).await?;
        }
        Ok(conn)
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(Error::with_message(
            ErrorKind::Connect,
            format!(
                "could not connect to {}: no answer within the connect timeout of {}ms",
                config.target(),
                timeout.as_millis()
            ),
        )
        .with_source(io::Error::from(io::ErrorKind::TimedOut))),
    }
}

/// Runs the factory's callbacks on the new connection, then assumes the
/// configured role. A failing callback discards the connection.
async fn prepare(shared: &Arc<EngineShared>, mut conn: PgConn) -> Result<PgConn> {
    if !shared.callbacks.is_empty() {
        let mut setup = AsyncConnection::detached(conn);
        let result = shared.callbacks.run(&mut setup).await;
        conn = setup
            .into_detached()
            .ok_or_else(|| Error::new(ErrorKind::Closed))?;
        result?;
        if conn.in_flight || conn.is_closed() {
            return Err(Error::with_message(
                ErrorKind::Closed,
                "the connection broke while its callbacks ran",
            ));
        }
        if conn.needs_rollback {
            conn.internal("ROLLBACK").await?;
            conn.needs_rollback = false;
        }
    }
    if let Some(sql) = &shared.set_role_sql {
        conn.internal(sql).await?;
    }
    Ok(conn)
}

/// Counts a connection attempt under way until dropped.
struct Connecting<'a>(&'a EngineShared);

impl Drop for Connecting<'_> {
    fn drop(&mut self) {
        self.0.connecting.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Records a new connection as closed for `reason`, unless that is `None`
/// (the connection made it into the pool).
struct ClosedUnlessKept<'a> {
    shared: &'a EngineShared,
    reason: Option<CloseReason>,
}

impl Drop for ClosedUnlessKept<'_> {
    fn drop(&mut self) {
        if let Some(reason) = self.reason {
            self.shared.metrics.record_closed(reason);
            self.shared.events().connection_closed(reason);
        }
    }
}
