//! Network faults between the pool and the server, through the test kit's
//! fault proxy.

use std::error::Error as _;
use std::time::{Duration, Instant};

use uno_db_core::{Error, ErrorKind, RetryPolicy};
use uno_db_testkit::FaultProxy;
use uno_db_testkit::conformance::io_error_in_chain;

use crate::support::{test_db, within};

fn through(
    db: &uno_db_testkit::TestDb,
    proxy: &FaultProxy,
) -> uno_db_core::ConnectionConfigBuilder {
    let config: uno_db_core::ConnectionConfig = db.url_through(proxy).parse().unwrap();
    config.to_builder()
}

/// A server that accepts connections but never answers: each attempt ends
/// at `connect_timeout`, and the checkout at `pool_timeout`, carrying why.
#[tokio::test]
async fn a_black_holed_server_times_out_with_the_cause() {
    within(async {
        let db = test_db().await;
        let proxy = FaultProxy::start(db.socket_addr().unwrap()).unwrap();
        proxy.black_hole().unwrap();
        let config = through(&db, &proxy)
            .connect_timeout(Duration::from_secs(1))
            .pool_timeout(Duration::from_millis(1500))
            .retry(
                RetryPolicy::default()
                    .max_attempts(10)
                    .deadline(Duration::from_secs(30)),
            )
            .build()
            .unwrap();
        let engine = uno_db_async::AsyncEngine::new(&config).unwrap();
        let started = Instant::now();
        let error = engine.checkout().await.unwrap_err();
        let waited = started.elapsed();
        assert_eq!(error.kind(), ErrorKind::PoolTimeout, "{error:?}");
        assert!(
            waited >= Duration::from_millis(1500) && waited < Duration::from_millis(2500),
            "{waited:?}"
        );
        let cause = error
            .source()
            .and_then(|c| c.downcast_ref::<Error>())
            .expect("the connect error");
        assert_eq!(cause.kind(), ErrorKind::Connect);
        assert!(
            io_error_in_chain(cause, std::io::ErrorKind::TimedOut),
            "{cause:?}"
        );
    })
    .await;
}

/// The engine outlives an outage: refused while the server is away, live
/// connections once it is back, and broken pooled connections replaced.
#[tokio::test]
async fn the_engine_recovers_after_an_outage() {
    within(async {
        let db = test_db().await;
        let proxy = FaultProxy::start(db.socket_addr().unwrap()).unwrap();
        let config = through(&db, &proxy)
            .pool_timeout(Duration::from_secs(2))
            .retry(RetryPolicy::never())
            .build()
            .unwrap();
        let engine = uno_db_async::AsyncEngine::new(&config).unwrap();
        drop(engine.checkout().await.unwrap());
        proxy.refuse().unwrap();
        proxy.reset_all().unwrap();
        // The one wait with no event to await: the driver's connection task
        // noticing the reset (nothing public tells when it has).
        tokio::time::sleep(Duration::from_millis(100)).await;
        let error = engine.checkout().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Connect, "{error:?}");
        assert!(error.is_transient());
        proxy.restore().unwrap();
        let mut conn = engine.checkout().await.unwrap();
        conn.batch_execute("SELECT 1").await.unwrap();
    })
    .await;
}

/// Even before any attempt has failed, a checkout that gives up while the
/// server does not answer says so.
#[tokio::test]
async fn a_timeout_during_a_pending_connect_is_not_bare() {
    within(async {
        let db = test_db().await;
        let proxy = FaultProxy::start(db.socket_addr().unwrap()).unwrap();
        proxy.black_hole().unwrap();
        let config = through(&db, &proxy)
            .connect_timeout(Duration::from_secs(10))
            .pool_timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        let engine = uno_db_async::AsyncEngine::new(&config).unwrap();
        let error = engine.checkout().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::PoolTimeout, "{error:?}");
        let cause = error
            .source()
            .and_then(|c| c.downcast_ref::<Error>())
            .expect("a cause");
        // The attempt is bounded by what is left of pool_timeout, so it
        // ends with the checkout and says why.
        assert_eq!(cause.kind(), ErrorKind::Connect);
        assert!(
            io_error_in_chain(cause, std::io::ErrorKind::TimedOut),
            "{cause:?}"
        );
    })
    .await;
}
