//! `LISTEN`/`NOTIFY` cases for the blocking family
//! ([`uno_db_core::blocking::Listener`]): the same cases as
//! [`nonblocking_listen`](super::nonblocking_listen). Named `listen_*`
//! (faults `listen_fault_*`), so that a test filter picks them out.
// Cases are tests: a failed expectation panics, and every case returns the
// first error an operation gave.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::missing_errors_doc
)]

use std::time::{Duration, Instant};

use super::listen_shared::{
    HOSTILE_CHANNEL, INVALID_CHANNELS, LISTEN_WAIT, NOTIFY, QUIET_WAIT, TABLE_EXISTS,
};
use super::shared::{
    BACKENDS_OF_APPLICATION, OUTAGE_POOL_TIMEOUT, STILL_RUNNING, TERMINATE, TIMEOUT_SLACK,
};
use super::unique_name::unique_application_name;
use crate::TestCluster;
use uno_db_core::blocking::{Engine, EngineFactory, Listener, ListenerIter};
use uno_db_core::{ConnectionConfig, ErrorKind, ListenerEvent, Result};

/// The next event, which must come within [`LISTEN_WAIT`].
fn next_event(listener: &mut dyn Listener) -> Result<ListenerEvent> {
    Ok(listener
        .next_timeout(LISTEN_WAIT)?
        .unwrap_or_else(|| panic!("no event within {LISTEN_WAIT:?}")))
}

/// The next event, which must be a notification; as `(channel, payload)`.
fn next_notification(listener: &mut dyn Listener) -> Result<(String, String, i32)> {
    match next_event(listener)? {
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
fn notify(engine: &dyn Engine, channel: &str, payload: &str) -> Result<i32> {
    let mut conn = engine.connect()?;
    conn.execute(NOTIFY, &[&channel, &payload])?;
    Ok(conn.query_one("SELECT pg_backend_pid()", &[])?.get(0))
}

/// Pins: notifications on two channels arrive in the order they were
/// sent, with their payloads, channels and the sender's process id; the
/// listener's connection is not part of the pool.
pub fn listen_notifications_arrive_in_order(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(config)?;
    let mut listener = engine.listener()?;
    assert_eq!(engine.status().size, 0, "the listener is not pooled");
    listener.listen("jobs")?;
    listener.listen("Mail")?;
    listener.listen("jobs")?;
    assert_eq!(listener.channels(), ["jobs", "Mail"]);
    let sent = [("jobs", "1"), ("Mail", "a"), ("jobs", "2"), ("Mail", "")];
    let mut senders = Vec::new();
    for (channel, payload) in sent {
        senders.push(notify(&*engine, channel, payload)?);
    }
    for ((channel, payload), sender) in sent.into_iter().zip(senders) {
        assert_eq!(
            next_notification(&mut *listener)?,
            (channel.to_owned(), payload.to_owned(), sender)
        );
    }
    assert_eq!(listener.next_timeout(QUIET_WAIT)?, None);
    Ok(())
}

/// Pins: the listener as an iterator (`ListenerIter`) yields the
/// notifications sent, then ends at a quiet wait.
pub fn listen_events_as_an_iterator(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(config)?;
    let mut listener = engine.listener()?;
    listener.listen("jobs")?;
    for payload in ["1", "2"] {
        notify(&*engine, "jobs", payload)?;
    }
    let payloads: Vec<String> = ListenerIter::new(&mut *listener, QUIET_WAIT)
        .map(|event| match event? {
            ListenerEvent::Notification(n) => Ok(n.payload().to_owned()),
            other => panic!("expected a notification, got {other:?}"),
        })
        .collect::<Result<_>>()?;
    assert_eq!(payloads, ["1", "2"]);
    Ok(())
}

/// Pins: after `unlisten` a channel's notifications no longer arrive,
/// the other channel's still do.
pub fn listen_unlisten_stops_notifications(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(config)?;
    let mut listener = engine.listener()?;
    listener.listen("a")?;
    listener.listen("b")?;
    listener.unlisten("a")?;
    listener.unlisten("never_listened")?;
    assert_eq!(listener.channels(), ["b"]);
    notify(&*engine, "a", "dropped")?;
    notify(&*engine, "b", "kept")?;
    let (channel, payload, _) = next_notification(&mut *listener)?;
    assert_eq!((channel.as_str(), payload.as_str()), ("b", "kept"));
    assert_eq!(listener.next_timeout(QUIET_WAIT)?, None);
    Ok(())
}

/// Pins: a channel name that is SQL (`a"; DROP TABLE x; --`) is only a
/// name: it round-trips and nothing runs; invalid names are `Config`
/// errors, sent nowhere, and the listener stays usable.
pub fn listen_hostile_channel_names_are_only_names(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(config)?;
    engine.connect()?.batch_execute("CREATE TABLE x (id int)")?;
    let mut listener = engine.listener()?;
    listener.listen(HOSTILE_CHANNEL)?;
    for bad in INVALID_CHANNELS {
        let bad = bad();
        assert_eq!(listener.listen(&bad).unwrap_err().kind(), ErrorKind::Config);
        assert_eq!(
            listener.unlisten(&bad).unwrap_err().kind(),
            ErrorKind::Config
        );
    }
    notify(&*engine, HOSTILE_CHANNEL, "payload; DROP TABLE x")?;
    let (channel, payload, _) = next_notification(&mut *listener)?;
    assert_eq!(channel, HOSTILE_CHANNEL);
    assert_eq!(payload, "payload; DROP TABLE x");
    assert!(
        engine
            .connect()?
            .query_one(TABLE_EXISTS, &[])?
            .get::<_, bool>(0)
    );
    listener.unlisten(HOSTILE_CHANNEL)?;
    assert!(listener.channels().is_empty());
    Ok(())
}

/// Pins: a wait with nothing to receive returns `None` within its timeout
/// (plus slack), not before.
pub fn listen_quiet_wait_ends_in_time(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(config)?;
    let mut listener = engine.listener()?;
    listener.listen("quiet")?;
    let started = Instant::now();
    assert_eq!(listener.next_timeout(QUIET_WAIT)?, None);
    let took = started.elapsed();
    assert!(took >= QUIET_WAIT, "returned early: {took:?}");
    assert!(took < QUIET_WAIT + TIMEOUT_SLACK, "returned late: {took:?}");
    Ok(())
}

/// Pins: a disposed engine opens no listener.
pub fn listen_refused_after_dispose(
    factory: &dyn EngineFactory,
    config: &ConnectionConfig,
) -> Result<()> {
    let engine = factory.engine(config)?;
    engine.dispose();
    assert_eq!(engine.listener().unwrap_err().kind(), ErrorKind::PoolClosed);
    Ok(())
}

/// Pins: when the listener's backend is terminated, the next wait yields
/// `Reconnected` (never silence), the subscriptions are restored on the
/// new connection and notifications sent afterwards arrive.
pub fn listen_fault_terminated_listener_reconnects(
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
    let mut listener = listening.listener()?;
    listener.listen("one")?;
    listener.listen("two")?;
    let mut conn = admin.connect()?;
    let pids: Vec<i32> = conn.query_one(BACKENDS_OF_APPLICATION, &[&name])?.get(0);
    assert_eq!(pids.len(), 1, "one listener backend: {pids:?}");
    let terminated: i64 = conn.query_one(TERMINATE, &[&pids])?.get(0);
    assert_eq!(terminated, 1);
    let deadline = Instant::now() + LISTEN_WAIT;
    while conn.query_one(STILL_RUNNING, &[&pids])?.get::<_, i64>(0) > 0 {
        assert!(Instant::now() < deadline, "the listener's backend lives on");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(conn);
    assert_eq!(next_event(&mut *listener)?, ListenerEvent::Reconnected);
    assert_eq!(listener.channels(), ["one", "two"]);
    notify(&*admin, "two", "after")?;
    notify(&*admin, "one", "again")?;
    let (channel, payload, _) = next_notification(&mut *listener)?;
    assert_eq!((channel.as_str(), payload.as_str()), ("two", "after"));
    let (channel, payload, _) = next_notification(&mut *listener)?;
    assert_eq!((channel.as_str(), payload.as_str()), ("one", "again"));
    let pids: Vec<i32> = admin
        .connect()?
        .query_one(BACKENDS_OF_APPLICATION, &[&name])?
        .get(0);
    assert_eq!(pids.len(), 1, "one new listener backend: {pids:?}");
    Ok(())
}

/// Pins: while the server is down, a wait fails with a transient error
/// within `pool_timeout` (plus slack) instead of hanging or going silent;
/// once the server is back, the next wait yields `Reconnected` and the
/// subscription works again.
pub fn listen_fault_outage_fails_then_recovers(
    factory: &dyn EngineFactory,
    _config: &ConnectionConfig,
) -> Result<()> {
    let cluster = TestCluster::new().expect("a throwaway cluster");
    let db = cluster.test_db().expect("a database on the cluster");
    let config = super::case_config(db.url())?
        .to_builder()
        .pool_timeout(OUTAGE_POOL_TIMEOUT)
        .build()?;
    let engine = factory.engine(&config)?;
    let mut listener = engine.listener()?;
    listener.listen("jobs")?;
    cluster.stop().expect("stopping the cluster");
    let started = Instant::now();
    let error = listener.next_timeout(LISTEN_WAIT).unwrap_err();
    let took = started.elapsed();
    assert!(error.is_transient(), "{error:?}");
    assert!(took < OUTAGE_POOL_TIMEOUT + TIMEOUT_SLACK, "{took:?}");
    cluster.start().expect("starting the cluster again");
    assert_eq!(next_event(&mut *listener)?, ListenerEvent::Reconnected);
    notify(&*engine, "jobs", "back")?;
    let (_, payload, _) = next_notification(&mut *listener)?;
    assert_eq!(payload, "back");
    drop(listener);
    engine.dispose();
    Ok(())
}

/// Defines one `#[test]` per blocking `LISTEN`/`NOTIFY` case, each with a
/// fresh database and an outer timeout, as
/// [`blocking_conformance!`](crate::blocking_conformance).
#[macro_export]
macro_rules! blocking_listen_conformance {
    ($factory:expr) => {
        $crate::blocking_listen_conformance!(@cases $factory;
            listen_notifications_arrive_in_order,
            listen_events_as_an_iterator,
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
                    let factory = $factory;
                    $crate::conformance::blocking_listen::$case(&factory, &config)
                        .expect(stringify!($case));
                    $crate::conformance::uno_db_core::blocking::EngineFactory::dispose_all(&factory);
                });
            }
        )*
    };
}
