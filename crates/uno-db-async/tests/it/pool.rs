//! Checkout timeouts, overflow, broken and cancelled connections, reaping.

use std::error::Error as _;
use std::time::{Duration, Instant};

use uno_db_core::nonblocking::Engine;
use uno_db_core::{CloseReason, Error, ErrorKind, RetryPolicy};

use crate::support::{backend_pid, engine, eventually, test_db, within};

#[tokio::test]
async fn checkout_times_out_when_the_pool_is_exhausted() {
    within(async {
        let db = test_db().await;
        let timeout = Duration::from_millis(300);
        let engine = engine(&db, |b| {
            b.pool_size(1).max_overflow(0).pool_timeout(timeout)
        });
        let _held = engine.checkout().await.unwrap();
        let started = Instant::now();
        let error = engine.checkout().await.unwrap_err();
        let waited = started.elapsed();
        assert_eq!(error.kind(), ErrorKind::PoolTimeout);
        assert!(
            error.source().is_none(),
            "connecting works: no cause to report"
        );
        assert!(
            waited >= timeout && waited < timeout + Duration::from_millis(500),
            "{waited:?}"
        );
        let counters = engine.counters();
        assert_eq!((counters.acquired, counters.acquire_timeouts), (1, 1));
    })
    .await;
}

/// A port nothing listens on: connection refused, every time.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn checkout_timeout_while_the_server_is_down_carries_the_connect_error() {
    within(async {
        let db = test_db().await;
        let timeout = Duration::from_millis(500);
        let retry = RetryPolicy::default()
            .max_attempts(100)
            .initial_delay(Duration::from_millis(10))
            .max_delay(Duration::from_millis(50))
            .deadline(Duration::from_secs(60));
        let engine = engine(&db, |b| {
            b.host("127.0.0.1")
                .port(closed_port())
                .pool_timeout(timeout)
                .retry(retry)
        });
        let started = Instant::now();
        let error = engine.checkout().await.unwrap_err();
        let waited = started.elapsed();
        assert_eq!(error.kind(), ErrorKind::PoolTimeout, "{error:?}");
        assert!(waited < timeout + Duration::from_millis(500), "{waited:?}");
        let cause = error
            .source()
            .and_then(|c| c.downcast_ref::<Error>())
            .expect("the connect error as source");
        assert_eq!(cause.kind(), ErrorKind::Connect);
        assert!(cause.is_transient());
        assert_eq!(engine.status().size, 0);
    })
    .await;
}

#[tokio::test]
async fn connecting_gives_up_when_the_retry_policy_is_exhausted() {
    within(async {
        let db = test_db().await;
        let retry = RetryPolicy::default()
            .max_attempts(3)
            .initial_delay(Duration::from_millis(10));
        let engine = engine(&db, |b| {
            b.host("127.0.0.1").port(closed_port()).retry(retry)
        });
        let started = Instant::now();
        let error = engine.checkout().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Connect, "{error:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
    })
    .await;
}

#[tokio::test]
async fn overflow_connections_close_after_a_burst() {
    within(async {
        let db = test_db().await;
        let engine = engine(&db, |b| b.pool_size(2).max_overflow(3));
        let mut burst = Vec::new();
        for _ in 0..5 {
            burst.push(engine.checkout().await.unwrap());
        }
        let status = engine.status();
        assert_eq!(
            (status.max_size, status.size, status.in_use, status.idle),
            (5, 5, 5, 0)
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(50), engine.checkout())
                .await
                .is_err(),
            "the pool is exhausted"
        );
        drop(burst);
        let status = engine.status();
        assert_eq!(
            (status.size, status.in_use, status.idle),
            (2, 0, 2),
            "{status:?}"
        );
        assert_eq!(engine.counters().closed(CloseReason::Overflow), 3);
    })
    .await;
}

#[tokio::test]
async fn terminated_backends_are_replaced() {
    within(Box::pin(async {
        let db = test_db().await;
        for pre_ping in [false, true] {
            let engine = engine(&db, |b| b.pool_size(2).max_overflow(0).pre_ping(pre_ping));
            let admin = crate::support::engine(&db, |b| b.pool_size(1));
            let mut a = engine.checkout().await.unwrap();
            let mut b = engine.checkout().await.unwrap();
            let old = [backend_pid(&mut a).await, backend_pid(&mut b).await];
            drop((a, b));
            let mut admin_conn = admin.checkout().await.unwrap();
            for pid in old {
                let row = admin_conn
                    .query_one("SELECT pg_terminate_backend($1)", &[&pid])
                    .await
                    .unwrap();
                assert!(row.get::<_, bool>(0));
            }
            if !pre_ping {
                // Without a ping, the pool relies on the driver noticing:
                // wait until the backends are gone. A backend sends its
                // FATAL message to the client before it leaves
                // pg_stat_activity, so the driver has it by then.
                let old_pids = old.to_vec();
                let deadline = Instant::now() + Duration::from_secs(5);
                loop {
                    let left: i64 = admin_conn
                        .query_one(
                            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)",
                            &[&old_pids],
                        )
                        .await
                        .unwrap()
                        .get(0);
                    if left == 0 {
                        break;
                    }
                    assert!(Instant::now() < deadline, "the backends never exited");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            let mut a = engine.checkout().await.unwrap();
            let mut b = engine.checkout().await.unwrap();
            let new = [backend_pid(&mut a).await, backend_pid(&mut b).await];
            assert!(
                new.iter().all(|pid| !old.contains(pid)),
                "pre_ping={pre_ping}: {old:?} {new:?}"
            );
            assert_eq!(
                engine.counters().closed(CloseReason::Broken),
                2,
                "pre_ping={pre_ping}"
            );
        }
    }))
    .await;
}

#[tokio::test]
async fn a_cancelled_checkout_does_not_leak_its_slot() {
    within(async {
        let db = test_db().await;
        let engine = engine(&db, |b| {
            b.pool_size(1)
                .max_overflow(0)
                .pool_timeout(Duration::from_secs(10))
        });
        let held = engine.checkout().await.unwrap();
        for _ in 0..3 {
            assert!(
                tokio::time::timeout(Duration::from_millis(50), engine.checkout())
                    .await
                    .is_err()
            );
        }
        assert_eq!(engine.status().waiting, 0);
        drop(held);
        let started = Instant::now();
        let mut conn = engine.checkout().await.unwrap();
        assert!(started.elapsed() < Duration::from_millis(500));
        conn.batch_execute("SELECT 1").await.unwrap();
        assert_eq!(engine.status().size, 1);
    })
    .await;
}

/// A connection dropped in the middle of a statement is discarded (and its
/// statement cancelled), never handed out again.
#[tokio::test]
async fn a_connection_dropped_mid_statement_is_discarded() {
    within(async {
        let db = test_db().await;
        let engine = engine(&db, |b| b.pool_size(1).max_overflow(0));
        let mut conn = engine.checkout().await.unwrap();
        let old = backend_pid(&mut conn).await;
        let slow = conn.batch_execute("SELECT pg_sleep(30)");
        assert!(
            tokio::time::timeout(Duration::from_millis(100), slow)
                .await
                .is_err()
        );
        drop(conn);
        let started = Instant::now();
        let mut conn = engine.checkout().await.unwrap();
        assert_ne!(backend_pid(&mut conn).await, old);
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(engine.counters().closed(CloseReason::Dirty), 1);
    })
    .await;
}

#[tokio::test]
async fn idle_and_expired_connections_are_reaped() {
    within(async {
        let db = test_db().await;
        let idle = engine(&db, |b| {
            b.idle_timeout(Duration::from_secs(1)).pool_recycle(None)
        });
        drop((
            idle.checkout().await.unwrap(),
            idle.checkout().await.unwrap(),
        ));
        assert_eq!(idle.status().size, 2);
        eventually(|| idle.status().size == 0).await;
        assert_eq!(idle.counters().closed(CloseReason::Idle), 2);

        let recycled = engine(&db, |b| {
            b.idle_timeout(None).pool_recycle(Duration::from_secs(1))
        });
        let mut conn = recycled.checkout().await.unwrap();
        let old = backend_pid(&mut conn).await;
        drop(conn);
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let mut conn = recycled.checkout().await.unwrap();
        assert_ne!(
            backend_pid(&mut conn).await,
            old,
            "past pool_recycle: a new connection"
        );
        assert_eq!(recycled.counters().closed(CloseReason::Expired), 1);
    })
    .await;
}

/// The reaper holds the engine weakly: dropping the engine ends it, and
/// every connection task with it.
#[test]
fn dropping_the_engine_stops_its_background_tasks() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(within(async {
        let db = test_db().await;
        let metrics = tokio::runtime::Handle::current().metrics();
        let baseline = metrics.num_alive_tasks();
        let engine = engine(&db, |b| b.idle_timeout(Duration::from_secs(1)));
        drop((
            engine.checkout().await.unwrap(),
            engine.checkout().await.unwrap(),
        ));
        assert!(
            metrics.num_alive_tasks() >= baseline + 3,
            "a reaper and two connection tasks"
        );
        drop(engine);
        eventually(|| metrics.num_alive_tasks() == baseline).await;
    }));
}
