//! Pool sizing, timeouts and status.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use uno_db_core::blocking::{Client, Engine};
use uno_db_core::{CloseReason, ConnectionConfig, Error, ErrorKind, RetryPolicy};
use uno_db_sync::SyncEngine;

use crate::support::{Fixture, LIMIT, backend_pid, within};

#[test]
fn checkout_times_out_when_the_pool_is_exhausted() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let timeout = Duration::from_millis(400);
        let config = fx
            .builder()
            .pool_size(1)
            .max_overflow(0)
            .pool_timeout(timeout)
            .build()
            .unwrap();
        let engine = SyncEngine::new(&config).unwrap();
        let held = engine.checkout().unwrap();

        let started = Instant::now();
        let error = engine.checkout().unwrap_err();
        let waited = started.elapsed();
        assert_eq!(error.kind(), ErrorKind::PoolTimeout);
        assert!(error.is_transient());
        assert!(
            std::error::Error::source(&error).is_none(),
            "no connect error happened"
        );
        assert!(waited >= timeout, "gave up early: {waited:?}");
        assert!(
            waited < timeout + Duration::from_millis(500),
            "gave up late: {waited:?}"
        );

        let counters = engine.counters();
        assert_eq!(counters.acquire_timeouts, 1);
        assert_eq!(counters.acquired, 1);
        assert!(counters.total_wait >= timeout);
        let status = engine.status();
        assert_eq!(
            (status.max_size, status.size, status.in_use, status.idle),
            (1, 1, 1, 0)
        );

        // Freed, it is handed out again.
        drop(held);
        engine.checkout().unwrap();
    });
}

#[test]
fn a_waiting_checkout_gets_a_returned_connection() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let config = fx.builder().pool_size(1).max_overflow(0).build().unwrap();
        let engine = SyncEngine::new(&config).unwrap();
        let held = engine.checkout().unwrap();
        let waiter = {
            let engine = engine.clone();
            std::thread::spawn(move || {
                let mut conn = engine.checkout().unwrap();
                let served_at = Instant::now();
                conn.execute("SELECT 1", &[]).unwrap();
                served_at
            })
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while engine.status().waiting == 0 {
            assert!(Instant::now() < deadline, "the waiter never waited");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!waiter.is_finished(), "served while the pool was empty");
        let released_at = Instant::now();
        drop(held);
        let served_at = waiter.join().unwrap();
        // Served by the release, not before it, and promptly.
        assert!(served_at >= released_at, "served before the release");
        assert!(
            served_at - released_at < Duration::from_secs(2),
            "{:?} after the release",
            served_at - released_at
        );
        assert_eq!(engine.status().waiting, 0);
        assert_eq!(
            engine.counters().created,
            1,
            "the same connection was reused"
        );
    });
}

fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
    // Dropped here: nothing listens on the port any more.
}

#[test]
fn an_unreachable_server_times_out_with_the_connect_error_as_source() {
    within(LIMIT, || {
        let timeout = Duration::from_millis(800);
        let config = ConnectionConfig::builder()
            .host("127.0.0.1")
            .port(closed_port())
            .role("postgres")
            .database("test")
            .pool_timeout(timeout)
            .retry(
                RetryPolicy::default()
                    .max_attempts(100)
                    .initial_delay(Duration::from_millis(20))
                    .max_delay(Duration::from_millis(50))
                    .deadline(Duration::from_secs(30)),
            )
            .build()
            .unwrap();
        let engine = SyncEngine::new(&config).unwrap();
        let started = Instant::now();
        let error = engine.checkout().unwrap_err();
        let waited = started.elapsed();
        assert_eq!(error.kind(), ErrorKind::PoolTimeout, "{error:?}");
        assert!(waited <= timeout + Duration::from_millis(500), "{waited:?}");
        let cause = std::error::Error::source(&error)
            .and_then(|c| c.downcast_ref::<Error>())
            .expect("the connect error is the source");
        assert_eq!(cause.kind(), ErrorKind::Connect);
        assert!(cause.is_transient());
        assert!(cause.to_string().contains("127.0.0.1"), "{cause}");
        assert_eq!(engine.counters().acquire_timeouts, 1);

        // With explicit attempts, running out of them returns the connect
        // error itself, well before pool_timeout (without them, the
        // checkout retries until pool_timeout, as above).
        let config = config
            .to_builder()
            .retry(RetryPolicy::default().max_attempts(2))
            .pool_timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let engine = SyncEngine::new(&config).unwrap();
        let started = Instant::now();
        let error = engine.checkout().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Connect, "{error:?}");
        assert!(started.elapsed() < Duration::from_secs(3));

        assert_eq!(engine.status().size, 0, "the failed slot was released");
    });
}

#[test]
fn a_checkout_waiting_on_a_full_pool_reports_the_last_connect_error() {
    within(LIMIT, || {
        let timeout = Duration::from_millis(700);
        let config = ConnectionConfig::builder()
            .host("127.0.0.1")
            .port(closed_port())
            .pool_size(1)
            .max_overflow(0)
            .pool_timeout(timeout)
            .retry(
                RetryPolicy::default()
                    .max_attempts(100)
                    .initial_delay(Duration::from_millis(10))
                    .max_delay(Duration::from_millis(30))
                    .deadline(Duration::from_secs(30)),
            )
            .build()
            .unwrap();
        let engine = SyncEngine::new(&config).unwrap();
        // This one holds the only slot while it keeps failing to connect.
        let connecting = {
            let engine = engine.clone();
            std::thread::spawn(move || engine.checkout().unwrap_err())
        };
        // Wait until it holds the slot (and is connecting), not a fixed time.
        let deadline = Instant::now() + Duration::from_secs(5);
        while engine.status().in_use == 0 {
            assert!(
                Instant::now() < deadline,
                "the first checkout never took the slot"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let error = engine.checkout().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::PoolTimeout);
        let cause = std::error::Error::source(&error)
            .and_then(|c| c.downcast_ref::<Error>())
            .expect("the other caller's connect error is the source");
        assert_eq!(cause.kind(), ErrorKind::Connect);
        assert!(cause.is_transient());
        assert_eq!(connecting.join().unwrap().kind(), ErrorKind::PoolTimeout);
    });
}

#[test]
fn dispose_wakes_waiting_checkouts() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let config = fx
            .builder()
            .pool_size(1)
            .pool_timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let engine = SyncEngine::new(&config).unwrap();
        let held = engine.checkout().unwrap();
        let waiter = {
            let engine = engine.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                (engine.checkout().unwrap_err().kind(), started.elapsed())
            })
        };
        while engine.status().waiting == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        engine.dispose();
        let (kind, waited) = waiter.join().unwrap();
        assert_eq!(kind, ErrorKind::PoolClosed);
        assert!(waited < Duration::from_secs(2), "{waited:?}");
        drop(held);
        assert_eq!(engine.counters().closed(CloseReason::Disposed), 1);
    });
}

#[test]
fn overflow_connections_close_when_returned() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let config = fx.builder().pool_size(1).max_overflow(2).build().unwrap();
        let engine = SyncEngine::new(&config).unwrap();
        let a = engine.checkout().unwrap();
        let b = engine.checkout().unwrap();
        let c = engine.checkout().unwrap();
        assert_eq!(engine.status().in_use, 3);
        assert_eq!(engine.status().max_size, 3);
        drop(a);
        drop(b);
        drop(c);
        let status = engine.status();
        assert_eq!((status.size, status.idle), (1, 1), "{status:?}");
        assert_eq!(engine.counters().closed(CloseReason::Overflow), 2);
        assert_eq!(engine.counters().created, 3);
    });
}

#[test]
fn idle_connections_past_idle_timeout_are_replaced_on_checkout() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let config = fx
            .builder()
            .pool_size(1)
            .idle_timeout(Duration::from_secs(1))
            .build()
            .unwrap();
        let engine = SyncEngine::new(&config).unwrap();
        let pid = |engine: &SyncEngine| backend_pid(&mut engine.checkout().unwrap());
        let first = pid(&engine);
        assert_eq!(pid(&engine), first, "reused while fresh");
        std::thread::sleep(Duration::from_millis(1100));
        assert_ne!(pid(&engine), first, "replaced after idling too long");
        assert_eq!(engine.counters().closed(CloseReason::Idle), 1);
    });
}

#[test]
fn connections_past_pool_recycle_are_replaced() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let config = fx
            .builder()
            .pool_size(1)
            .pool_recycle(Duration::from_secs(1))
            .build()
            .unwrap();
        let engine = SyncEngine::new(&config).unwrap();
        let mut conn = engine.checkout().unwrap();
        let first = backend_pid(&mut conn);
        std::thread::sleep(Duration::from_millis(1100));
        // Expired while checked out: closed on return, not kept.
        drop(conn);
        assert_eq!(engine.counters().closed(CloseReason::Expired), 1);
        let second = backend_pid(&mut engine.checkout().unwrap());
        assert_ne!(first, second);
    });
}

#[test]
fn concurrent_checkouts_stay_within_bounds() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let config = fx
            .builder()
            .pool_size(2)
            .max_overflow(2)
            .pool_timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let engine = SyncEngine::new(&config).unwrap();
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let engine = engine.clone();
                std::thread::spawn(move || {
                    for i in 0..50_i32 {
                        let mut conn = engine.checkout().unwrap();
                        let row = conn
                            .query_one("SELECT $1::int4 * $2::int4", &[&t, &i])
                            .unwrap();
                        assert_eq!(row.get::<_, i32>(0), t * i);
                        assert!(engine.status().in_use <= 4);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let status = engine.status();
        let counters = engine.counters();
        assert_eq!(status.in_use, 0, "{status:?}");
        assert_eq!(status.waiting, 0);
        assert!(status.size <= 4, "{status:?}");
        assert_eq!(counters.acquired, 400);
        assert_eq!(counters.acquire_timeouts, 0);
        assert_eq!(
            counters.created - counters.closed_total(),
            status.size as u64,
            "{counters:?}"
        );
        assert!(counters.created <= 4 + counters.closed(CloseReason::Overflow));
    });
}
