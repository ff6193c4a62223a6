//! The multiplexed mode against a real server: no cross-talk between
//! callers, errors that stay with their caller, refused session
//! statements, and faults (terminated backend, server restart, dropped
//! callers, `query_timeout`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use uno_db_async::{AsyncEngine, MultiplexedClient};
use uno_db_core::nonblocking::{Client, Engine};
use uno_db_core::{ErrorKind, RetryPolicy, SqlState};
use uno_db_testkit::{TestCluster, TestDb};

use crate::support::{engine, test_db, within};

/// An engine for `db` with `shared` shared connections.
fn multiplexed_engine(db: &TestDb, shared: usize) -> AsyncEngine {
    engine(db, |b| b.multiplex_connections(shared))
}

/// The server process of the shared connection a statement lands on.
async fn shared_pid(client: &mut MultiplexedClient) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

/// Every one of 64 tasks gets its own answers, through 2 shared
/// connections, with and without parameters, rows of several sizes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multiplex_64_tasks_get_their_own_answers() {
    within(async {
        let db = test_db().await;
        let engine = multiplexed_engine(&db, 2);
        let client = engine.multiplexed().unwrap();
        let tasks: Vec<_> = (0..64_i32)
            .map(|task| {
                let mut client = client.clone();
                tokio::spawn(async move {
                    let mut pids = HashSet::new();
                    for round in 0..25_i32 {
                        let value = task * 1000 + round;
                        let row = client
                            .query_one("SELECT $1::int4, pg_backend_pid()", &[&value])
                            .await
                            .unwrap();
                        assert_eq!(row.get::<_, i32>(0), value, "task {task} got another's row");
                        pids.insert(row.get::<_, i32>(1));
                        let text = format!("{value}");
                        let rows = client
                            .query(
                                "SELECT $1::text || '-' || g FROM generate_series(1, $2::int4) g",
                                &[&text, &(round % 4)],
                            )
                            .await
                            .unwrap();
                        let expected: Vec<String> =
                            (1..=round % 4).map(|g| format!("{value}-{g}")).collect();
                        let got: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
                        assert_eq!(got, expected);
                        let literal = client
                            .query_one(&format!("SELECT {value}::int4"), &[])
                            .await
                            .unwrap();
                        assert_eq!(literal.get::<_, i32>(0), value);
                    }
                    pids
                })
            })
            .collect();
        let mut pids = HashSet::new();
        for task in tasks {
            pids.extend(task.await.unwrap());
        }
        assert!(
            (1..=2).contains(&pids.len()),
            "statements ran on {} server processes, not on the 2 shared connections",
            pids.len()
        );
        assert_eq!(
            engine.status().size,
            0,
            "the shared connections are not pooled ones"
        );
    })
    .await;
}

/// One caller's errors (server, encode, row count) reach only that caller;
/// the others, in flight on the same connection meanwhile, succeed, and
/// the shared connection is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multiplex_an_error_stays_with_its_caller() {
    within(async {
        let db = test_db().await;
        let engine = multiplexed_engine(&db, 1);
        let mut client = engine.multiplexed().unwrap();
        let before = shared_pid(&mut client).await;
        let tasks: Vec<_> = (0..48_i32)
            .map(|task| {
                let mut client = client.clone();
                tokio::spawn(async move {
                    for round in 0..10_i32 {
                        match task % 4 {
                            0 => {
                                let error = client
                                    .query_one("SELECT 1 / $1::int4", &[&0_i32])
                                    .await
                                    .unwrap_err();
                                assert_eq!(error.sqlstate(), Some(&SqlState::DIVISION_BY_ZERO));
                            }
                            1 => {
                                let error = client.query("SELEC 1", &[]).await.unwrap_err();
                                assert_eq!(error.sqlstate(), Some(&SqlState::SYNTAX_ERROR));
                                let error = client
                                    .execute("SELECT $1::int4", &[&"not an int"])
                                    .await
                                    .unwrap_err();
                                assert_eq!(error.kind(), ErrorKind::Encode);
                            }
                            2 => {
                                let error = client
                                    .query_one("SELECT 1 WHERE false", &[])
                                    .await
                                    .unwrap_err();
                                assert_eq!(error.kind(), ErrorKind::RowNotFound);
                            }
                            _ => {
                                let value = task * 100 + round;
                                let row = client
                                    .query_one("SELECT $1::int4 + 1", &[&value])
                                    .await
                                    .unwrap();
                                assert_eq!(row.get::<_, i32>(0), value + 1);
                            }
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(
            shared_pid(&mut client).await,
            before,
            "errors of statements do not replace the shared connection"
        );
    })
    .await;
}

/// Statements that change or rely on session state are refused before
/// anything is sent; the mode is off unless configured; a disposed engine
/// refuses the client and its statements.
#[tokio::test]
async fn multiplex_refuses_session_statements() {
    within(async {
        let db = test_db().await;
        let engine = multiplexed_engine(&db, 1);
        let mut client = engine.multiplexed().unwrap();
        for sql in [
            "SET work_mem = '64MB'",
            "BEGIN",
            "LISTEN ch",
            "CREATE TEMP TABLE t (a int)",
            "SELECT pg_advisory_lock(1)",
            "SET ROLE postgres",
            "PREPARE p AS SELECT 1",
        ] {
            let error = client.execute(sql, &[]).await.unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Unsupported, "{sql}");
            assert!(error.to_string().contains("connect()"), "{sql}: {error}");
        }
        let error = client
            .batch_execute("SELECT 1; BEGIN; SELECT 2")
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unsupported);
        assert_eq!(client.open_connections(), 0, "nothing was sent");
        client
            .batch_execute("CREATE TABLE items (id int); INSERT INTO items VALUES (1)")
            .await
            .unwrap();
        let statement = client.prepare("SELECT $1::int8 AS id").await.unwrap();
        assert_eq!(statement.params(), &[uno_db_core::Type::INT8]);
        let row = client.query_one(&statement, &[&7_i64]).await.unwrap();
        assert_eq!(row.get::<_, i64>("id"), 7);
        // Through the trait object, as services hold engines.
        let dyn_engine: &dyn Engine = &engine;
        let mut boxed = dyn_engine.multiplexed().unwrap();
        assert_eq!(boxed.execute("SELECT 1", &[]).await.unwrap(), 1);

        let off = engine_without_multiplexing(&db);
        let error = off.multiplexed().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unsupported);
        assert!(
            error.to_string().contains("multiplex_connections"),
            "{error}"
        );

        Engine::dispose(&engine);
        assert_eq!(
            client.query("SELECT 1", &[]).await.unwrap_err().kind(),
            ErrorKind::PoolClosed
        );
        assert_eq!(
            engine.multiplexed().unwrap_err().kind(),
            ErrorKind::PoolClosed
        );
    })
    .await;
}

fn engine_without_multiplexing(db: &TestDb) -> AsyncEngine {
    engine(db, |b| b)
}

/// The server process of a shared connection is terminated while
/// statements are in flight on it: they fail with a transient error (not
/// retried), and the next statements run on a replacement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multiplex_terminated_backend_is_replaced() {
    within(async {
        let db = test_db().await;
        let engine = multiplexed_engine(&db, 1);
        let mut client = engine.multiplexed().unwrap();
        let pid = shared_pid(&mut client).await;
        let in_flight: Vec<_> = (0..8_i32)
            .map(|i| {
                let mut client = client.clone();
                tokio::spawn(async move {
                    client
                        .query_one("SELECT pg_sleep(2), $1::int4", &[&i])
                        .await
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut admin = engine.checkout().await.unwrap();
        let terminated: bool = admin
            .query_one("SELECT pg_terminate_backend($1)", &[&pid])
            .await
            .unwrap()
            .get(0);
        assert!(terminated);
        for task in in_flight {
            let error = task.await.unwrap().unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Closed, "{error:?}");
            assert!(error.is_transient(), "{error:?}");
        }
        let started = Instant::now();
        let replacement = shared_pid(&mut client).await;
        assert_ne!(replacement, pid, "a new shared connection took over");
        assert!(started.elapsed() < Duration::from_secs(5));
        let row = client
            .query_one("SELECT $1::int4", &[&5_i32])
            .await
            .unwrap();
        assert_eq!(row.get::<_, i32>(0), 5);
        assert_eq!(client.open_connections(), 1);
    })
    .await;
}

/// Callers that stop waiting (their futures dropped mid-flight) leave the
/// others undisturbed: their answers stay their own and the shared
/// connection is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multiplex_dropped_callers_disturb_no_one() {
    within(async {
        let db = test_db().await;
        let engine = multiplexed_engine(&db, 2);
        let client = engine.multiplexed().unwrap();
        let tasks: Vec<_> = (0..64_i32)
            .map(|task| {
                let mut client = client.clone();
                tokio::spawn(async move {
                    for round in 0..20_i32 {
                        let value = task * 1000 + round;
                        if task % 2 == 0 {
                            // Dropped after a varying part of its round trip.
                            let wait = Duration::from_micros(u64::from(round.unsigned_abs()) * 50);
                            let _ = tokio::time::timeout(
                                wait,
                                client.query_one("SELECT $1::int4, pg_sleep(0.001)", &[&value]),
                            )
                            .await;
                        } else {
                            let row = client
                                .query_one("SELECT $1::int4", &[&value])
                                .await
                                .unwrap();
                            assert_eq!(row.get::<_, i32>(0), value);
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let mut client = client;
        for value in 0..50_i32 {
            let row = client
                .query_one("SELECT $1::int4", &[&value])
                .await
                .unwrap();
            assert_eq!(row.get::<_, i32>(0), value);
        }
        // A caller dropped while it was opening a shared connection leaves
        // that one to open in the background, which may still be under way
        // on a loaded machine: wait for it, bounded.
        let deadline = Instant::now() + Duration::from_secs(10);
        while client.open_connections() < 2 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(client.open_connections(), 2);
        // And none was lost or retired on the way.
        assert_eq!(
            engine.counters().closed_total(),
            0,
            "{:?}",
            engine.counters()
        );
    })
    .await;
}

/// A statement past `query_timeout` fails with `QueryTimeout` at once,
/// alone: a quick statement sent before it on the same connection
/// succeeds, the next statements run on a replacement, and the late
/// statement is cancelled on the server once no one else waits there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multiplex_late_statement_fails_alone_and_is_cancelled() {
    within(async {
        let db = test_db().await;
        let engine = engine(&db, |b| {
            b.multiplex_connections(1)
                .query_timeout(Duration::from_millis(500))
        });
        let mut client = engine.multiplexed().unwrap();
        let pid = shared_pid(&mut client).await;
        let quick = {
            let mut client = client.clone();
            tokio::spawn(
                async move { client.query_one("SELECT pg_sleep(0.2), 1::int4", &[]).await },
            )
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let started = Instant::now();
        let error = client.query("SELECT pg_sleep(30)", &[]).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::QueryTimeout, "{error:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "took {:?}",
            started.elapsed()
        );
        quick.await.unwrap().unwrap();
        let replacement = shared_pid(&mut client).await;
        assert_ne!(
            replacement, pid,
            "the late statement's connection was retired"
        );
        // The old server process stops running the late statement.
        let mut admin = engine.checkout().await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let running: i64 = admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND state = 'active'",
                    &[&pid],
                )
                .await
                .unwrap()
                .get(0);
            if running == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "the late statement still runs");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

/// The server restarts: statements in flight fail transient, and once it
/// is back the next statements succeed on new shared connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multiplex_server_restart_is_survived() {
    within(async {
        let cluster =
            tokio::task::spawn_blocking(|| TestCluster::new().expect("a throwaway cluster"))
                .await
                .map(Arc::new)
                .unwrap();
        let db = {
            let cluster = Arc::clone(&cluster);
            tokio::task::spawn_blocking(move || cluster.test_db().expect("a database"))
                .await
                .unwrap()
        };
        let engine = engine(&db, |b| {
            b.multiplex_connections(2)
                .pool_timeout(Duration::from_secs(10))
                .retry(RetryPolicy::default().max_attempts(100))
        });
        let client = engine.multiplexed().unwrap();
        let mut first = client.clone();
        assert_eq!(first.execute("SELECT 1", &[]).await.unwrap(), 1);
        let in_flight: Vec<_> = (0..4_i32)
            .map(|i| {
                let mut client = client.clone();
                tokio::spawn(async move {
                    client
                        .query_one("SELECT pg_sleep(5), $1::int4", &[&i])
                        .await
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        {
            let cluster = Arc::clone(&cluster);
            tokio::task::spawn_blocking(move || cluster.restart().expect("restarting the server"))
                .await
                .unwrap();
        }
        for task in in_flight {
            let error = task.await.unwrap().unwrap_err();
            assert!(error.is_transient(), "{error:?}");
        }
        let tasks: Vec<_> = (0..16_i32)
            .map(|i| {
                let mut client = client.clone();
                tokio::spawn(async move {
                    let row = client.query_one("SELECT $1::int4", &[&i]).await.unwrap();
                    assert_eq!(row.get::<_, i32>(0), i);
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        Engine::dispose(&engine);
        drop((client, first));
        drop(db);
    })
    .await;
}

/// A server that never answers: each of many callers waiting for a shared
/// connection to open gives up within `pool_timeout` of its own start
/// (waits behind another caller's failed attempt do not add up), with a
/// transient error carrying why; once the server answers, the next
/// statement opens a connection and succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multiplex_unreachable_server_fails_each_caller_within_pool_timeout() {
    within(async {
        let db = test_db().await;
        let proxy = uno_db_testkit::FaultProxy::start(db.socket_addr().unwrap()).unwrap();
        proxy.black_hole().unwrap();
        let config: uno_db_core::ConnectionConfig = db.url_through(&proxy).parse().unwrap();
        let config = config
            .to_builder()
            .multiplex_connections(1)
            .connect_timeout(Duration::from_millis(400))
            .pool_timeout(Duration::from_secs(1))
            .retry(RetryPolicy::default().max_attempts(100))
            .build()
            .unwrap();
        let engine = AsyncEngine::new(&config).unwrap();
        let client = engine.multiplexed().unwrap();
        let callers: Vec<_> = (0..6_i32)
            .map(|i| {
                let mut client = client.clone();
                tokio::spawn(async move {
                    let started = Instant::now();
                    let outcome = client.query_one("SELECT $1::int4", &[&i]).await;
                    (outcome.map(|_| ()), started.elapsed())
                })
            })
            .collect();
        for caller in callers {
            let (outcome, waited) = caller.await.unwrap();
            let error = outcome.unwrap_err();
            assert!(error.is_transient(), "{error:?}");
            assert!(
                waited < Duration::from_millis(2500),
                "a caller waited {waited:?} with pool_timeout 1s"
            );
        }
        proxy.restore().unwrap();
        let mut client = client;
        let row = client
            .query_one("SELECT $1::int4", &[&3_i32])
            .await
            .unwrap();
        assert_eq!(row.get::<_, i32>(0), 3);
    })
    .await;
}
