//! Opening one physical connection: connect as the kernel's plan says,
//! then run the kernel's open steps before the pool sees it.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use postgres::{Client, SimpleQueryMessage};
use r2d2::ManageConnection;
use r2d2_postgres::PostgresConnectionManager;
use uno_db_core::SqlState;
use uno_db_core::backend::{
    ConnectPlan, ConnectStep, OpenStep, RoleCheck, from_connect, from_driver,
};
use uno_db_core::{Error, ErrorKind, ExposeSecret, Result};

use crate::connection::SyncConnection;
use crate::pg_conn::PgConn;
use crate::shared::EngineShared;

/// Opens and prepares a new physical connection for a checkout that began
/// at `started`.
pub(crate) fn open(shared: &Arc<EngineShared>, started: Instant) -> Result<PgConn> {
    let mut plan = shared.core.connect_plan(started);
    let client = connect(shared, &mut plan)?;
    let state = plan.new_conn_state();
    prepare(shared, PgConn::new(client, state, Arc::clone(shared)))
}

/// Connects outside the pool (none of the open steps) and runs the
/// kernel's `sql` there, for a pool that can no longer lend a connection:
/// a drain ending what its deadline left open.
pub(crate) fn run_detached(shared: &Arc<EngineShared>, sql: &str) -> Result<()> {
    let mut plan = shared.core.connect_plan(Instant::now());
    let mut client = connect(shared, &mut plan)?;
    client.batch_execute(sql).map_err(from_driver)
}

/// Connects as `plan` says: each attempt bounded, retried with backoff.
fn connect(shared: &Arc<EngineShared>, plan: &mut ConnectPlan<'_>) -> Result<Client> {
    loop {
        let attempt = plan.start_attempt();
        match connect_within(shared, plan, plan.attempt_timeout()) {
            Ok(client) => {
                plan.succeeded(attempt);
                return Ok(client);
            }
            Err(error) => match plan.failed(attempt, error) {
                ConnectStep::Retry(delay) => std::thread::sleep(delay),
                ConnectStep::GiveUp(error) => return Err(error),
            },
        }
    }
}

/// One attempt, through `r2d2_postgres`, bounded as a whole by `limit`.
///
/// The driver bounds only the TCP connect: a server or proxy that accepts
/// and then says nothing would block it forever, and a credential provider
/// is the user's code, which may block too. So the attempt (the provider's
/// call included) runs on a helper thread; when `limit` passes the caller
/// gets a timeout and the thread finishes on its own (the server's
/// `authentication_timeout`, or TCP keepalives and `tcp_user_timeout`, end
/// it), closing what it got. At most one such thread per pool slot runs at
/// a time: an attempt that finds every place taken waits, within `limit`,
/// for one to end.
fn connect_within(
    shared: &Arc<EngineShared>,
    plan: &ConnectPlan<'_>,
    limit: Duration,
) -> Result<Client> {
    let target = plan.target();
    let Some(permit) = shared.helper_permit_until(Instant::now() + limit) else {
        return Err(Error::with_message(
            ErrorKind::Connect,
            format!(
                "could not connect to {target}: every pool slot still has an earlier \
                 connection attempt waiting for the server"
            ),
        )
        .with_source(std::io::Error::from(std::io::ErrorKind::TimedOut)));
    };
    let ask = plan.credential_request().zip(shared.credentials.clone());
    let mut driver = plan.driver_config(None);
    let tls = plan.tls();
    let check = plan.role_check();
    let engine = Arc::clone(shared);
    let attempt_target = target.clone();
    let (sender, receiver) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("uno-db-sync-connect".to_owned())
        .spawn(move || {
            let permit = permit;
            let attempt = || {
                if let Some((request, provider)) = ask {
                    let password = provider
                        .password(&request)
                        .map_err(|e| engine.core.provider_failed(e))?;
                    driver.password(password.expose_secret().as_bytes());
                }
                let mut driver = postgres::Config::from(driver);
                quiet_rollback_notices(&mut driver);
                // Plaintext connects without a TLS connector, so that the
                // stream is the bare socket (see `ConnectPlan::tls`).
                let connected = match tls {
                    Some(tls) => PostgresConnectionManager::new(driver, tls).connect(),
                    None => PostgresConnectionManager::new(driver, postgres::NoTls).connect(),
                };
                let mut client = connected.map_err(|e| from_connect(e, &attempt_target))?;
                if let Some(check) = check {
                    let messages = client
                        .simple_query(RoleCheck::QUERY)
                        .map_err(|e| from_connect(e, &attempt_target))?;
                    let row = messages.iter().find_map(|message| match message {
                        SimpleQueryMessage::Row(row) => {
                            Some((0..row.len()).map(|i| row.get(i)).collect::<Vec<_>>())
                        }
                        _ => None,
                    });
                    check.judge(&row.unwrap_or_default())?;
                }
                Ok(client)
            };
            let result = attempt();
            // The attempt is over: a connect waiting for a place may start
            // before this thread has closed anything.
            drop(permit);
            // If the caller gave up, the client comes back and is closed.
            drop(sender.send(result));
        })
        .map_err(|e| {
            Error::with_message(
                ErrorKind::Connect,
                format!("could not start a thread to connect to {target}"),
            )
            .with_source(e)
        })?;
    match receiver.recv_timeout(limit) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => Err(plan.attempt_timed_out(limit)),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(Error::with_message(
            ErrorKind::Connect,
            format!("the attempt to connect to {target} ended without a result"),
        )),
    }
}

/// Runs the kernel's open steps: search path, callbacks, role. On failure
/// the connection is closed, recorded with the reason.
fn prepare(shared: &Arc<EngineShared>, mut conn: PgConn) -> Result<PgConn> {
    for step in shared.core.open_steps() {
        let result = match step {
            OpenStep::Run(sql) => conn.internal(sql),
            OpenStep::LearnBackendPid(sql) => conn
                .internal_row(sql)
                .and_then(|row| shared.core.backend_identified(&mut conn.state, &row)),
            OpenStep::Callbacks if shared.callbacks.is_empty() => Ok(()),
            OpenStep::Callbacks => {
                let mut setup = SyncConnection::detached(conn);
                let result = shared.callbacks.run(&mut setup);
                conn = setup
                    .into_detached()
                    .ok_or_else(|| Error::new(ErrorKind::Closed))?;
                result.and_then(|()| conn.settle_callbacks())
            }
        };
        if let Err(error) = result {
            conn.state.close_for(shared.core.open_failed(&error));
            return Err(error);
        }
    }
    Ok(conn)
}

/// ROLLBACK on return may warn "no transaction in progress" when a
/// connection only looked like it might hold one; that warning is noise.
/// Every other notice keeps the driver's default handling.
fn quiet_rollback_notices(driver: &mut postgres::Config) {
    driver.notice_callback(|notice| {
        if notice.code() != &SqlState::NO_ACTIVE_SQL_TRANSACTION {
            log::info!("{}: {}", notice.severity(), notice.message());
        }
    });
}
