//! Network faults through the test kit's proxy: no checkout outlives its
//! timeouts, and the pool recovers when the network does.

use std::time::{Duration, Instant};

use uno_db_core::blocking::{Client, Engine};
use uno_db_core::{CloseReason, ConnectionConfig, ErrorKind};
use uno_db_sync::SyncEngine;
use uno_db_testkit::FaultProxy;

use crate::support::{Fixture, LIMIT, backend_pid, eventually, within};

fn through(fx: &Fixture, proxy: &FaultProxy) -> ConnectionConfig {
    let config: ConnectionConfig = fx.db.url_through(proxy).parse().unwrap();
    config
        .to_builder()
        .pool_size(1)
        .max_overflow(0)
        .connect_timeout(Duration::from_millis(300))
        .pool_timeout(Duration::from_secs(1))
        .pre_ping(true)
        .build()
        .unwrap()
}

#[test]
fn a_black_holed_server_cannot_hang_a_checkout() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let proxy = FaultProxy::start(fx.db.socket_addr().unwrap()).unwrap();
        proxy.black_hole().unwrap();
        let engine = SyncEngine::new(&through(&fx, &proxy)).unwrap();
        let started = Instant::now();
        let error = engine.checkout().unwrap_err();
        let waited = started.elapsed();
        assert!(
            matches!(error.kind(), ErrorKind::PoolTimeout | ErrorKind::Connect),
            "{error:?}"
        );
        assert!(error.is_transient());
        assert!(waited < Duration::from_millis(1800), "{waited:?}");
        assert!(
            uno_db_core::error_chain(&error).contains("timed out"),
            "{error:?}"
        );

        // When the network heals, the same engine connects.
        proxy.restore().unwrap();
        engine.checkout().unwrap().execute("SELECT 1", &[]).unwrap();
    });
}

#[test]
fn a_pooled_connection_gone_silent_is_not_handed_out() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let proxy = FaultProxy::start(fx.db.socket_addr().unwrap()).unwrap();
        let engine = SyncEngine::new(&through(&fx, &proxy)).unwrap();
        engine.checkout().unwrap().execute("SELECT 1", &[]).unwrap();
        proxy.black_hole().unwrap();
        let started = Instant::now();
        let error = engine.checkout().unwrap_err();
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "{:?}",
            started.elapsed()
        );
        assert!(error.is_transient(), "{error:?}");
        assert_eq!(
            engine.counters().closed(CloseReason::Broken),
            1,
            "the silent one was dropped"
        );
        proxy.restore().unwrap();
        engine.checkout().unwrap().execute("SELECT 1", &[]).unwrap();
    });
}

#[test]
fn reset_connections_are_replaced() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let proxy = FaultProxy::start(fx.db.socket_addr().unwrap()).unwrap();
        let engine = SyncEngine::new(&through(&fx, &proxy)).unwrap();
        engine.checkout().unwrap().execute("SELECT 1", &[]).unwrap();
        proxy.reset_all().unwrap();
        // The pre-ping finds it dead and a new connection is opened.
        engine.checkout().unwrap().execute("SELECT 1", &[]).unwrap();
        assert_eq!(engine.counters().created, 2);
        assert_eq!(engine.counters().closed(CloseReason::Broken), 1);
    });
}

/// Connect attempts that time out leave their thread behind (the driver
/// cannot be interrupted), but never more than one per pool slot, however
/// many checkouts retry: once every slot has one, further attempts wait
/// (at most their own timeout) for one to end, then fail saying so, instead
/// of starting another thread. (Observed through
/// the engine's own error rather than by counting threads, which other
/// tests of this binary start too.)
#[test]
fn timed_out_connect_attempts_leave_at_most_one_thread_per_slot() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let proxy = FaultProxy::start(fx.db.socket_addr().unwrap()).unwrap();
        proxy.black_hole().unwrap();
        let config = through(&fx, &proxy)
            .to_builder()
            .pool_size(2)
            .connect_timeout(Duration::from_millis(100))
            .pool_timeout(Duration::from_millis(800))
            .build()
            .unwrap();
        let engine = SyncEngine::new(&config).unwrap();
        // Two attempts time out and their threads stay on the silent proxy.
        for _ in 0..2 {
            assert!(engine.checkout().unwrap_err().is_transient());
        }
        let started = Instant::now();
        let error = engine.checkout().unwrap_err();
        assert!(error.is_transient(), "{error:?}");
        assert!(
            uno_db_core::error_chain(&error).contains("earlier connection attempt"),
            "{error:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        drop(engine);
        proxy.restore().unwrap();
    });
}

/// Cleaning a returned connection (here the rollback of a transaction left
/// open) waits at most `connect_timeout`; a connection that cannot be
/// cleaned in time is closed, never handed out again.
#[test]
fn cleaning_a_returned_connection_is_bounded() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let proxy = FaultProxy::start(fx.db.socket_addr().unwrap()).unwrap();
        let config = through(&fx, &proxy)
            .to_builder()
            .pre_ping(false)
            .connect_timeout(Duration::from_millis(300))
            .pool_timeout(Duration::from_secs(3))
            .build()
            .unwrap();
        let engine = SyncEngine::new(&config).unwrap();
        let mut conn = engine.checkout().unwrap();
        let pid = backend_pid(&mut conn);
        conn.batch_execute("BEGIN").unwrap();
        proxy.black_hole().unwrap();
        let started = Instant::now();
        drop(conn);
        let waited = started.elapsed();
        assert!(
            waited < Duration::from_millis(800),
            "the return took {waited:?}"
        );
        proxy.restore().unwrap();
        let mut conn = engine.checkout().unwrap();
        let fresh = backend_pid(&mut conn);
        assert_ne!(
            fresh, pid,
            "the connection that could not be cleaned came back"
        );
    });
}

/// A connection dropped mid-statement while every helper place is taken
/// (here by connects stuck on a silent network) still gets its cancel
/// request, once a place frees within `connect_timeout`: without one the
/// statement would run on at the server, which does not notice the closed
/// socket while it sleeps.
#[test]
fn a_statement_dropped_while_every_helper_is_busy_is_still_cancelled() {
    // Row 1 and 2 are large enough to be sent at once (the server sends
    // what fills its buffer); computing row 3 sleeps 30 s.
    const SLEEPS_AT_ROW_3: &str = "SELECT g, repeat('x', 100000) AS pad, \
         CASE WHEN g = 3 THEN pg_sleep(30) END AS slept FROM generate_series(1, 3) AS g";
    within(LIMIT, || {
        let fx = Fixture::new();
        let proxy = std::sync::Arc::new(FaultProxy::start(fx.db.socket_addr().unwrap()).unwrap());
        let config = through(&fx, &proxy)
            .to_builder()
            .pool_size(2)
            .pre_ping(false)
            .connect_timeout(Duration::from_secs(1))
            .pool_timeout(Duration::from_millis(1500))
            .build()
            .unwrap();
        let engine = SyncEngine::new(&config).unwrap();
        let mut conn = engine.checkout().unwrap();
        let pid = backend_pid(&mut conn);
        let mut rows = conn.query_stream(SLEEPS_AT_ROW_3, &[]).unwrap();
        assert!(rows.next().transpose().unwrap().is_some(), "row 1");
        proxy.black_hole().unwrap();
        // Two connects time out; their threads stay on the silent proxy,
        // holding both helper places (one per pool slot).
        for _ in 0..2 {
            assert!(engine.checkout().unwrap_err().is_transient());
        }
        // The network heals while the return waits for a place.
        let healer = std::thread::spawn({
            let proxy = std::sync::Arc::clone(&proxy);
            move || {
                std::thread::sleep(Duration::from_millis(200));
                proxy.restore()
            }
        });
        drop(rows);
        drop(conn);
        healer.join().unwrap().unwrap();
        let mut admin = fx.admin();
        eventually(
            "the dropped statement still runs at the server",
            Duration::from_secs(10),
            || {
                let running: bool = admin
                    .query_one(
                        "SELECT count(*) > 0 FROM pg_stat_activity \
                         WHERE pid = $1 AND state = 'active'",
                        &[&pid],
                    )
                    .unwrap()
                    .get(0);
                !running
            },
        );
    });
}
