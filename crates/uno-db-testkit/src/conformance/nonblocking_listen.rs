//! `LISTEN`/`NOTIFY` cases for the async family
//! ([`uno_db_core::nonblocking::Listener`]): the same cases as
//! [`blocking_listen`](super::blocking_listen), awaited. Named `listen_*`
//! (faults `listen_fault_*`), so that a test filter picks them out.
// Cases are tests: a failed expectation panics, and every case returns the
// first error an operation gave.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_errors_doc
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::listen_shared::{
    HOSTILE_CHANNEL, INVALID_CHANNELS, LISTEN_WAIT, NOTIFY, QUIET_WAIT, TABLE_EXISTS,
};
use super::nonblocking::throwaway_database;
use super::shared::{
    BACKENDS_OF_APPLICATION, OUTAGE_POOL_TIMEOUT, STILL_RUNNING, TERMINATE, TIMEOUT_SLACK,
};
use super::unique_name::unique_application_name;
use uno_db_core::nonblocking::{Engine, EngineFactory, Listener, ListenerStream};
use uno_db_core::{ConnectionConfig, ErrorKind, ListenerEvent, Result};

/// The next event, which must come within [`LISTEN_WAIT`].
async fn next_event(listener: &mut dyn Listener) -> Result<ListenerEvent> {
    tokio::time::timeout(LISTEN_WAIT, listener.next())
        .await
        .unwrap_or_else(|_| panic!("no event within {LISTEN_WAIT:?}"))
}

/// `None` when nothing arrives within `wait`: the async form of the
/// blocking `next_timeout`.
async fn next_within(listener: &mut dyn Listener, wait: Duration) -> Result<Option<ListenerEvent>> {
    match tokio::time::timeout(wait, listener.next()).await {
        Ok(event) => event.map(Some),
        Err(_) => Ok(None),
    }
}

/// The next event, which must be a notification; as
/// `(channel, payload, process id)`.
async fn next_notification(listener: &mut dyn Listener) -> Result<(String, String, i32)> {
    match next_event(listener).await? {
        ListenerEvent::Notification(n) => Ok((
            n.channel().to_owned(),
            n.payload().to_owned(),
            n.process_id(),
        )),
        other => panic!("expected a notification, got {other:?}"),
    }
}

/// Sends `payload` on `channel` from a pooled connection; returns the
/// sender's backend pid.
async fn notify(engine: &dyn Engine, channel: &str, payload: &str) -> Result<i32> {
    let mut conn = engine.connect().await?;
    conn.execute(NOTIFY, &[&channel, &payload]).await?;
    Ok(conn.query_one("SELECT pg_backend_pid()", &[]).await?.get(0))
}

/// Pins: notifications on two channels arrive in the order they were
/// sent, with their payloads, channels and the sender's process id; the
/// listener's connection is not part of the pool.
pub async fn listen_notifications_arrive_in_order(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(config)?;
    let mut listener = engine.listener().await?;
    assert_eq!(engine.status().size, 0, "the listener is not pooled");
    listener.listen("jobs").await?;
    listener.listen("Mail").await?;
    listener.listen("jobs").await?;
    assert_eq!(listener.channels(), ["jobs", "Mail"]);
    let sent = [("jobs", "1"), ("Mail", "a"), ("jobs", "2"), ("Mail", "")];
    let mut senders = Vec::new();
    for (channel, payload) in sent {
        senders.push(notify(&*engine, channel, payload).await?);
    }
    for ((channel, payload), sender) in sent.into_iter().zip(senders) {
        assert_eq!(
            next_notification(&mut *listener).await?,
            (channel.to_owned(), payload.to_owned(), sender)
        );
    }
    assert_eq!(next_within(&mut *listener, QUIET_WAIT).await?, None);
    Ok(())
}

/// Pins: the listener as a `Stream` (`ListenerStream`) yields the same
/// notifications, and gives the listener back to listen to more.
pub async fn listen_events_as_a_stream(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(config)?;
    let mut listener = engine.listener().await?;
    listener.listen("jobs").await?;
    let mut events = ListenerStream::new(listener);
    for payload in ["1", "2"] {
        notify(&*engine, "jobs", payload).await?;
    }
    for payload in ["1", "2"] {
        let event = tokio::time::timeout(LISTEN_WAIT, events.try_next())
            .await
            .expect("an event in time")?;
        match event {
            Some(ListenerEvent::Notification(n)) => assert_eq!(n.payload(), payload),
            other => panic!("expected a notification, got {other:?}"),
        }
    }
    let mut listener = events.into_listener().expect("the listener back");
    listener.listen("mail").await?;
    notify(&*engine, "mail", "m").await?;
    assert_eq!(next_notification(&mut *listener).await?.1, "m");
    Ok(())
}

/// Pins: after `unlisten` a channel's notifications no longer arrive,
/// the other channel's still do.
pub async fn listen_unlisten_stops_notifications(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(config)?;
    let mut listener = engine.listener().await?;
    listener.listen("a").await?;
    listener.listen("b").await?;
    listener.unlisten("a").await?;
    listener.unlisten("never_listened").await?;
    assert_eq!(listener.channels(), ["b"]);
    notify(&*engine, "a", "dropped").await?;
    notify(&*engine, "b", "kept").await?;
    let (channel, payload, _) = next_notification(&mut *listener).await?;
    assert_eq!((channel.as_str(), payload.as_str()), ("b", "kept"));
    assert_eq!(next_within(&mut *listener, QUIET_WAIT).await?, None);
    Ok(())
}

/// Pins: a channel name that is SQL (`a"; DROP TABLE x; --`) is only a
/// name: it round-trips and nothing runs; invalid names are `Config`
/// errors, sent nowhere, and the listener stays usable.
pub async fn listen_hostile_channel_names_are_only_names(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(config)?;
    engine
        .connect()
        .await?
        .batch_execute("CREATE TABLE x (id int)")
        .await?;
    let mut listener = engine.listener().await?;
    listener.listen(HOSTILE_CHANNEL).await?;
    for bad in INVALID_CHANNELS {
        let bad = bad();
        assert_eq!(
            listener.listen(&bad).await.unwrap_err().kind(),
            ErrorKind::Config
        );
        assert_eq!(
            listener.unlisten(&bad).await.unwrap_err().kind(),
            ErrorKind::Config
        );
    }
    notify(&*engine, HOSTILE_CHANNEL, "payload; DROP TABLE x").await?;
    let (channel, payload, _) = next_notification(&mut *listener).await?;
    assert_eq!(channel, HOSTILE_CHANNEL);
    assert_eq!(payload, "payload; DROP TABLE x");
    let exists: bool = engine
        .connect()
        .await?
        .query_one(TABLE_EXISTS, &[])
        .await?
        .get(0);
    assert!(exists);
    listener.unlisten(HOSTILE_CHANNEL).await?;
    assert!(listener.channels().is_empty());
    Ok(())
}

/// Pins: a wait with nothing to receive returns `None` within its timeout
/// (plus slack), not before; the interrupted `next` loses nothing.
pub async fn listen_quiet_wait_ends_in_time(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(config)?;
    let mut listener = engine.listener().await?;
    listener.listen("quiet").await?;
    let started = Instant::now();
    assert_eq!(next_within(&mut *listener, QUIET_WAIT).await?, None);
    let took = started.elapsed();
    assert!(took >= QUIET_WAIT, "returned early: {took:?}");
    assert!(took < QUIET_WAIT + TIMEOUT_SLACK, "returned late: {took:?}");
    notify(&*engine, "quiet", "late").await?;
    let (_, payload, _) = next_notification(&mut *listener).await?;
    assert_eq!(payload, "late");
    Ok(())
}

/// Pins: a disposed engine opens no listener.
pub async fn listen_refused_after_dispose(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(config)?;
    engine.dispose();
    assert_eq!(
        engine.listener().await.unwrap_err().kind(),
        ErrorKind::PoolClosed
    );
    Ok(())
}

/// Pins: when the listener's backend is terminated, the next wait yields
/// `Reconnected` (never silence), the subscriptions are restored on the
/// new connection and notifications sent afterwards arrive.
pub async fn listen_fault_terminated_listener_reconnects(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let name = unique_application_name("listener");
    let listening = factory.engine(
        &config
            .to_builder()
            .application_name(name.as_str())
            .build()?,
    )?;
    let admin = factory.engine(config)?;
    let mut listener = listening.listener().await?;
    listener.listen("one").await?;
    listener.listen("two").await?;
    let mut conn = admin.connect().await?;
    let pids: Vec<i32> = conn
        .query_one(BACKENDS_OF_APPLICATION, &[&name])
        .await?
        .get(0);
    assert_eq!(pids.len(), 1, "one listener backend: {pids:?}");
    let terminated: i64 = conn.query_one(TERMINATE, &[&pids]).await?.get(0);
    assert_eq!(terminated, 1);
    let deadline = Instant::now() + LISTEN_WAIT;
    while conn
        .query_one(STILL_RUNNING, &[&pids])
        .await?
        .get::<_, i64>(0)
        > 0
    {
        assert!(Instant::now() < deadline, "the listener's backend lives on");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(conn);
    assert_eq!(
        next_event(&mut *listener).await?,
        ListenerEvent::Reconnected
    );
    assert_eq!(listener.channels(), ["one", "two"]);
    notify(&*admin, "two", "after").await?;
    notify(&*admin, "one", "again").await?;
    let (channel, payload, _) = next_notification(&mut *listener).await?;
    assert_eq!((channel.as_str(), payload.as_str()), ("two", "after"));
    let (channel, payload, _) = next_notification(&mut *listener).await?;
    assert_eq!((channel.as_str(), payload.as_str()), ("one", "again"));
    let pids: Vec<i32> = admin
        .connect()
        .await?
        .query_one(BACKENDS_OF_APPLICATION, &[&name])
        .await?
        .get(0);
    assert_eq!(pids.len(), 1, "one new listener backend: {pids:?}");
    Ok(())
}

/// Pins: while the server is down, a wait fails with a transient error
/// within `pool_timeout` (plus slack) instead of hanging or going silent;
/// once the server is back, the next wait yields `Reconnected` and the
/// subscription works again.
pub async fn listen_fault_outage_fails_then_recovers(
    factory: &dyn EngineFactory,
    _config: &ConnectionConfig,
) -> Result<()> {
    let (cluster, db) = throwaway_database().await;
    let config = super::case_config(db.url())?
        .to_builder()
        .pool_timeout(OUTAGE_POOL_TIMEOUT)
        .build()?;
    let engine = factory.engine(&config)?;
    let mut listener = engine.listener().await?;
    listener.listen("jobs").await?;
    {
        let cluster = Arc::clone(&cluster);
        tokio::task::spawn_blocking(move || cluster.stop().expect("stopping the cluster"))
            .await
            .expect("stopping the cluster");
    }
    let started = Instant::now();
    let error = next_event(&mut *listener).await.unwrap_err();
    let took = started.elapsed();
    assert!(error.is_transient(), "{error:?}");
    assert!(took < OUTAGE_POOL_TIMEOUT + TIMEOUT_SLACK, "{took:?}");
    {
        let cluster = Arc::clone(&cluster);
        tokio::task::spawn_blocking(move || cluster.start().expect("starting the cluster again"))
            .await
            .expect("starting the cluster again");
    }
    assert_eq!(
        next_event(&mut *listener).await?,
        ListenerEvent::Reconnected
    );
    notify(&*engine, "jobs", "back").await?;
    let (_, payload, _) = next_notification(&mut *listener).await?;
    assert_eq!(payload, "back");
    drop(listener);
    engine.dispose();
    tokio::task::spawn_blocking(move || drop((db, cluster)))
        .await
        .expect("dropping the cluster");
    Ok(())
}

/// Defines one `#[test]` per async `LISTEN`/`NOTIFY` case, each with a
/// fresh database, its own tokio runtime and an outer timeout, as
/// [`nonblocking_conformance!`](crate::nonblocking_conformance).
#[macro_export]
macro_rules! nonblocking_listen_conformance {
    ($factory:expr) => {
        $crate::nonblocking_listen_conformance!(@cases $factory;
            listen_notifications_arrive_in_order,
            listen_events_as_a_stream,
            listen_unlisten_stops_notifications,
            listen_hostile_channel_names_are_only_names,
            listen_quiet_wait_ends_in_time,
            listen_refused_after_dispose,
            listen_fault_terminated_listener_reconnects,
            listen_fault_outage_fails_then_recovers,
        );
    };
    (@cases $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::run_with_timeout($crate::conformance::case_timeout(&[30]), || {
                    let db = $crate::TestDb::new().expect("a test database");
                    let config = $crate::conformance::case_config(db.url()).expect("a valid config");
                    let runtime = $crate::conformance::tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .enable_all()
                        .build()
                        .expect("a tokio runtime");
                    runtime.block_on(async {
                        let factory = $factory;
                        $crate::conformance::nonblocking_listen::$case(&factory, &config)
                            .await
                            .expect(stringify!($case));
                        $crate::conformance::uno_db_core::nonblocking::EngineFactory::dispose_all(&factory);
                    });
                    // Let the connection tasks close before the database is dropped.
                    runtime.shutdown_timeout(::std::time::Duration::from_secs(5));
                });
            }
        )*
    };
}
