//! Network faults through the test kit's proxy: no checkout outlives its
//! timeouts, and the pool recovers when the network does.

use std::time::{Duration, Instant};

use uno_db_core::blocking::{Connection, Engine};
use uno_db_core::{CloseReason, ConnectionConfig, ErrorKind};
use uno_db_sync::SyncEngine;
use uno_db_testkit::FaultProxy;

use crate::support::{Fixture, LIMIT, within};

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
