//! Opening one physical connection: connect as the kernel's plan says,
//! then run the kernel's open steps before the pool sees it.

use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, NoTls, Notification, SimpleQueryMessage};
use uno_db_core::backend::events::EngineEvents;
use uno_db_core::backend::{ConnectPlan, ConnectStep, OpenStep, RoleCheck, from_connect};
use uno_db_core::{CloseReason, Error, ErrorKind, Result};

use crate::batching::Batching;
use crate::connection::AsyncConnection;
use crate::pg_conn::PgConn;
use crate::shared::EngineShared;

/// How a connection's driver task runs.
#[derive(Clone)]
enum Driving {
    /// Notifications (and notices) are dropped.
    Plain,
    /// Notifications go to a listener.
    Forwarding(mpsc::Sender<Notification>),
    /// A shared connection of the multiplexed mode: polled so that
    /// statements of many tasks leave together (see [`Batching`]).
    Batching,
}

/// Opens and prepares a new physical connection for a checkout that began
/// at `started`.
pub(crate) async fn open(shared: &Arc<EngineShared>, started: Instant) -> Result<PgConn> {
    open_with(shared, started, Driving::Plain).await
}

/// As [`open`], for a shared connection of the multiplexed mode.
pub(crate) async fn open_shared(shared: &Arc<EngineShared>, started: Instant) -> Result<PgConn> {
    open_with(shared, started, Driving::Batching).await
}

/// As [`open`], for a listener: the connection's task forwards every
/// notification to `notifications` instead of dropping it. The task waits
/// while the channel is full and does not read the socket meanwhile, so a
/// slow consumer holds notifications back in the server's queue (TCP
/// backpressure) rather than in this process's memory.
pub(crate) async fn open_forwarding(
    shared: &Arc<EngineShared>,
    started: Instant,
    notifications: mpsc::Sender<Notification>,
) -> Result<PgConn> {
    open_with(shared, started, Driving::Forwarding(notifications)).await
}

async fn open_with(
    shared: &Arc<EngineShared>,
    started: Instant,
    forward: Driving,
) -> Result<PgConn> {
    let mut plan = shared.core.connect_plan(started);
    let conn = connect(shared, &mut plan, forward).await?;
    // If this future is dropped while preparing (a checkout gave up), the
    // connection closes: the guard records that.
    let mut guard = ClosedUnlessKept {
        shared,
        reason: Some(CloseReason::Broken),
    };
    let result = prepare(shared, conn).await;
    guard.reason = result
        .as_ref()
        .err()
        .map(|error| shared.core.open_failed(error));
    result
}

/// Connects outside the pool (none of the open steps) and runs the
/// kernel's `sql` there, for a pool that can no longer lend a connection:
/// a drain ending what its deadline left open.
pub(crate) async fn run_detached(shared: &Arc<EngineShared>, sql: &str) -> Result<()> {
    let mut plan = shared.core.connect_plan(Instant::now());
    let mut conn = connect(shared, &mut plan, Driving::Plain).await?;
    let result = conn.internal(sql).await;
    // Counted when it opened; it never joins the pool.
    shared.core.record_closed(CloseReason::Disposed);
    result
}

/// Connects as `plan` says: each attempt bounded, retried with backoff.
async fn connect(
    shared: &Arc<EngineShared>,
    plan: &mut ConnectPlan<'_>,
    forward: Driving,
) -> Result<PgConn> {
    loop {
        let attempt = plan.start_attempt();
        let limit = plan.attempt_timeout();
        let outcome =
            match tokio::time::timeout(limit, connect_once(shared, plan, forward.clone())).await {
                Ok(outcome) => outcome,
                Err(_) => Err(plan.attempt_timed_out(limit)),
            };
        match outcome {
            Ok(conn) => {
                plan.succeeded(attempt);
                return Ok(conn);
            }
            Err(error) => match plan.failed(attempt, error) {
                ConnectStep::Retry(delay) => tokio::time::sleep(delay).await,
                ConnectStep::GiveUp(error) => return Err(error),
            },
        }
    }
}

/// One attempt: the provider's password (if the engine has a provider),
/// TCP, TLS, startup and authentication.
async fn connect_once(
    shared: &Arc<EngineShared>,
    plan: &ConnectPlan<'_>,
    forward: Driving,
) -> Result<PgConn> {
    let provided = match (plan.credential_request(), &shared.credentials) {
        (Some(request), Some(provider)) => Some(
            provider
                .password(&request)
                .await
                .map_err(|e| shared.core.provider_failed(e))?,
        ),
        _ => None,
    };
    let driver = plan.driver_config(provided);
    let connecting = match plan.tls() {
        Some(tls) => driver
            .connect(tls)
            .await
            .map(|(client, connection)| (client, spawn_driver(shared, connection, forward))),
        None => driver
            .connect(NoTls)
            .await
            .map(|(client, connection)| (client, spawn_driver(shared, connection, forward))),
    };
    let (client, driver_task) = connecting.map_err(|e| from_connect(e, &plan.target()))?;
    if let Some(check) = plan.role_check() {
        let messages = client
            .simple_query(RoleCheck::QUERY)
            .await
            .map_err(|e| from_connect(e, &plan.target()))?;
        let row = messages.iter().find_map(|message| match message {
            SimpleQueryMessage::Row(row) => Some((0..row.len()).map(|i| row.get(i)).collect()),
            _ => None,
        });
        check.judge(&row.unwrap_or_else(Vec::new))?;
    }
    let clock = shared.watchdog.clock(
        client.cancel_token(),
        shared.core.tls(),
        driver_task.abort_handle(),
        shared
            .core
            .cancel_before_closing()
            .map(|wait| (wait, plan.endpoint().clone())),
        shared.core.housekeeping_timeout(),
    );
    Ok(PgConn::new(
        client,
        plan.new_conn_state(),
        clock,
        Arc::clone(shared),
    ))
}

/// Spawns the task that drives `connection`, as `forward` says. The task
/// ends when the client is dropped or the socket fails; the client then
/// reports `is_closed`, and why is logged. Its failure is told inside the
/// engine's span (entered only then, so that the task's polls cost
/// nothing).
fn spawn_driver<S, T>(
    shared: &EngineShared,
    connection: tokio_postgres::Connection<S, T>,
    forward: Driving,
) -> JoinHandle<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let config = shared.core.config().clone();
    let span = shared.core.telemetry().engine_span().clone();
    match forward {
        Driving::Plain => tokio::spawn(async move {
            if let Err(error) = connection.await {
                span.in_scope(|| EngineEvents::new(&config).connection_task_failed(&error));
            }
        }),
        Driving::Batching => tokio::spawn(async move {
            if let Err(error) = Batching::new(connection).await {
                span.in_scope(|| EngineEvents::new(&config).connection_task_failed(&error));
            }
        }),
        Driving::Forwarding(sender) => tokio::spawn(async move {
            if let Err(error) = forward_notifications(connection, sender).await {
                span.in_scope(|| EngineEvents::new(&config).connection_task_failed(&error));
            }
        }),
    }
}

/// Drives a listener's connection, sending its notifications on: the
/// plain driver task drops them. Ends when the connection does, or when
/// the listener is gone (its receiver dropped).
async fn forward_notifications<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    sender: mpsc::Sender<Notification>,
) -> std::result::Result<(), tokio_postgres::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
        // Notices (warnings) are dropped: a listener runs only `LISTEN`.
        if let AsyncMessage::Notification(notification) = message?
            && sender.send(notification).await.is_err()
        {
            break;
        }
    }
    Ok(())
}

/// Runs the kernel's open steps: search path, callbacks, role.
async fn prepare(shared: &Arc<EngineShared>, mut conn: PgConn) -> Result<PgConn> {
    for step in shared.core.open_steps() {
        match step {
            OpenStep::Run(sql) => conn.internal(sql).await?,
            OpenStep::LearnBackendPid(sql) => {
                let row = conn.internal_row(sql).await?;
                shared.core.backend_identified(&mut conn.state, &row)?;
            }
            OpenStep::Callbacks if shared.callbacks.is_empty() => {}
            OpenStep::Callbacks => {
                let mut setup = AsyncConnection::detached(conn);
                let result = shared.callbacks.run(&mut setup).await;
                conn = setup
                    .into_detached()
                    .ok_or_else(|| Error::new(ErrorKind::Closed))?;
                result?;
                conn.settle_callbacks(&shared.core).await?;
            }
        }
    }
    Ok(conn)
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
            self.shared.core.record_closed(reason);
        }
    }
}
