//! Waiting checkouts: a returned connection goes to the first waiter, and
//! whatever frees room without bringing a connection back (a discard, a
//! failed open, a larger pool) wakes one; a waiter that leaves passes on
//! what it was handed; a checkout loop yields its worker.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use uno_db_async::AsyncEngine;
use uno_db_core::nonblocking::Engine;
use uno_db_core::{AsyncCallbacks, BoxError, CloseReason, ErrorKind};
use uno_db_testkit::TestDb;

use crate::support::{backend_pid, builder, engine, eventually, failure, test_db, within};

/// Long enough that a waiter nobody wakes fails the test by its error,
/// short enough to keep the suite quick.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);

/// How soon a woken waiter must be served: far below `POOL_TIMEOUT`.
const PROMPT: Duration = Duration::from_secs(2);

/// An engine of one connection, with nothing run on open.
fn one_connection(db: &TestDb) -> Arc<AsyncEngine> {
    one_connection_with(db, AsyncCallbacks::new())
}

/// An engine of one connection that runs `callbacks` on every open.
fn one_connection_with(db: &TestDb, callbacks: AsyncCallbacks) -> Arc<AsyncEngine> {
    let config = builder(db)
        .pool_size(1)
        .max_overflow(0)
        .pool_timeout(POOL_TIMEOUT)
        .build()
        .unwrap();
    Arc::new(AsyncEngine::with_callbacks(&config, callbacks).unwrap())
}

/// Spawns a checkout of `engine` and waits until it is queued.
async fn waiter(
    engine: &Arc<AsyncEngine>,
    queued: usize,
) -> tokio::task::JoinHandle<(uno_db_core::Result<()>, Duration)> {
    let task = {
        let engine = Arc::clone(engine);
        tokio::spawn(async move {
            let started = Instant::now();
            let got = engine.checkout().await.map(drop);
            (got, started.elapsed())
        })
    };
    eventually(|| engine.status().waiting == queued).await;
    task
}

#[tokio::test]
async fn waiting_checkouts_are_served_in_arrival_order() {
    within(async {
        let db = test_db().await;
        let engine = one_connection(&db);
        let held = engine.checkout().await.unwrap();
        let served = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for index in 0..3 {
            let (engine_for_task, served) = (Arc::clone(&engine), Arc::clone(&served));
            tasks.push(tokio::spawn(async move {
                let conn = engine_for_task.checkout().await.unwrap();
                served.lock().unwrap().push(index);
                tokio::time::sleep(Duration::from_millis(20)).await;
                drop(conn);
            }));
            eventually(|| engine.status().waiting == index + 1).await;
        }
        drop(held);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*served.lock().unwrap(), [0, 1, 2]);
        assert_eq!(engine.status().size, 1);
        assert_eq!(engine.counters().acquire_timeouts, 0);
    })
    .await;
}

#[tokio::test]
async fn a_discarded_connection_makes_room_for_a_waiter() {
    within(async {
        let db = test_db().await;
        let engine = one_connection(&db);
        let mut held = engine.checkout().await.unwrap();
        let old = backend_pid(&mut held).await;
        let waiting = waiter(&engine, 1).await;
        // Dropped mid-statement: discarded, not handed over.
        let slow = held.batch_execute("SELECT pg_sleep(30)");
        assert!(
            tokio::time::timeout(Duration::from_millis(100), slow)
                .await
                .is_err()
        );
        drop(held);
        let (got, waited) = waiting.await.unwrap();
        got.unwrap();
        assert!(waited < PROMPT, "{waited:?}");
        assert_eq!(engine.counters().closed(CloseReason::Dirty), 1);
        let mut conn = engine.checkout().await.unwrap();
        assert_ne!(backend_pid(&mut conn).await, old);
    })
    .await;
}

#[tokio::test]
async fn a_failed_open_makes_room_for_a_waiter() {
    within(async {
        let db = test_db().await;
        let failed_once = Arc::new(AtomicBool::new(false));
        let callbacks = AsyncCallbacks::new();
        let failing = Arc::clone(&failed_once);
        callbacks.register("fails once", move |_conn| {
            let failing = Arc::clone(&failing);
            Box::pin(async move {
                if failing.swap(true, Ordering::SeqCst) {
                    return Ok(());
                }
                // Slow enough for the second checkout to queue behind it.
                tokio::time::sleep(Duration::from_millis(300)).await;
                Err::<(), BoxError>("the first open fails".into())
            })
        });
        let engine = one_connection_with(&db, callbacks);
        let opening = {
            let engine = Arc::clone(&engine);
            tokio::spawn(async move { engine.checkout().await.map(drop) })
        };
        // The first checkout holds the pool's only room while it opens.
        eventually(|| engine.status().size == 0 && engine.counters().acquired == 0).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let waiting = waiter(&engine, 1).await;
        let error = opening.await.unwrap().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Callback, "{error:?}");
        let (got, waited) = waiting.await.unwrap();
        got.unwrap();
        assert!(waited < PROMPT, "{waited:?}");
        assert!(failed_once.load(Ordering::SeqCst));
    })
    .await;
}

#[tokio::test]
async fn a_cancelled_open_makes_room_for_a_waiter() {
    within(async {
        let db = test_db().await;
        let slow_once = Arc::new(AtomicBool::new(false));
        let callbacks = AsyncCallbacks::new();
        let slow = Arc::clone(&slow_once);
        callbacks.register("slow once", move |_conn| {
            let slow = Arc::clone(&slow);
            Box::pin(async move {
                if !slow.swap(true, Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
                Ok::<(), BoxError>(())
            })
        });
        let engine = one_connection_with(&db, callbacks);
        let (cancel, cancelled) = tokio::sync::oneshot::channel::<()>();
        let opening = {
            let engine = Arc::clone(&engine);
            tokio::spawn(async move {
                tokio::select! {
                    got = engine.checkout() => Some(got.map(drop)),
                    _ = cancelled => None,
                }
            })
        };
        eventually(|| slow_once.load(Ordering::SeqCst)).await;
        let waiting = waiter(&engine, 1).await;
        // The caller gives up while its connection opens: the room the
        // open held is back, and the waiter opens its own.
        cancel.send(()).unwrap();
        assert!(opening.await.unwrap().is_none());
        let (got, waited) = waiting.await.unwrap();
        got.unwrap();
        assert!(waited < PROMPT, "{waited:?}");
    })
    .await;
}

#[tokio::test]
async fn a_larger_pool_serves_a_waiter_at_once() {
    within(async {
        let db = test_db().await;
        let engine = one_connection(&db);
        let _held = engine.checkout().await.unwrap();
        let waiting = waiter(&engine, 1).await;
        engine.set_pool_size(2).unwrap();
        let (got, waited) = waiting.await.unwrap();
        got.unwrap();
        assert!(waited < PROMPT, "{waited:?}");
        assert_eq!(engine.status().size, 2);
    })
    .await;
}

#[tokio::test]
async fn a_waiter_that_leaves_passes_on_the_connection_handed_to_it() {
    within(async {
        let db = test_db().await;
        let engine = one_connection(&db);
        let mut held = engine.checkout().await.unwrap();
        let pid = backend_pid(&mut held).await;
        // The first waiter is polled once (it joins the queue), then never
        // again: the connection is handed to it, and it leaves.
        let mut first: Pin<Box<dyn Future<Output = _> + Send + '_>> = Box::pin(engine.checkout());
        let polled = std::future::poll_fn(|cx| Poll::Ready(first.as_mut().poll(cx).is_pending()));
        assert!(polled.await);
        assert_eq!(engine.status().waiting, 1);
        let second = waiter(&engine, 2).await;
        drop(held);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!second.is_finished(), "the first waiter is served first");
        drop(first);
        let (got, waited) = second.await.unwrap();
        got.unwrap();
        assert!(waited < POOL_TIMEOUT - Duration::from_secs(1), "{waited:?}");
        let mut conn = engine.checkout().await.unwrap();
        assert_eq!(backend_pid(&mut conn).await, pid, "the same connection");
        assert_eq!(engine.status().waiting, 0);
    })
    .await;
}

#[tokio::test]
async fn disposing_fails_the_waiting_checkouts_at_once() {
    within(async {
        let db = test_db().await;
        let engine = one_connection(&db);
        let _held = engine.checkout().await.unwrap();
        let first = waiter(&engine, 1).await;
        let second = waiter(&engine, 2).await;
        Engine::dispose(&*engine);
        for waiting in [first, second] {
            let (got, waited) = waiting.await.unwrap();
            assert_eq!(failure(got).kind(), ErrorKind::PoolClosed);
            assert!(waited < PROMPT, "{waited:?}");
        }
    })
    .await;
}

/// A task that checks out and returns an idle connection in a loop never
/// waits on the pool, yet must let its worker run other tasks and timers:
/// a checkout spends the task's cooperative budget.
#[test]
fn a_checkout_loop_yields_its_worker() {
    let (done, finished) = std::sync::mpsc::channel();
    // Its own thread: a loop that never yields would hang the runtime it
    // runs on, outer timeouts included.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let outcome = runtime.block_on(async {
            let db = test_db().await;
            let engine = Arc::new(engine(&db, |b| b.pool_size(1).max_overflow(0)));
            drop(engine.checkout().await.unwrap());
            let stop = Arc::new(AtomicBool::new(false));
            let looping = {
                let (engine, stop) = (Arc::clone(&engine), Arc::clone(&stop));
                tokio::spawn(async move {
                    let mut checkouts = 0_u64;
                    while !stop.load(Ordering::Relaxed) {
                        drop(engine.checkout().await.unwrap());
                        checkouts += 1;
                    }
                    checkouts
                })
            };
            tokio::time::sleep(Duration::from_millis(100)).await;
            stop.store(true, Ordering::Relaxed);
            looping.await.unwrap()
        });
        let _ = done.send(outcome);
    });
    let checkouts = finished
        .recv_timeout(Duration::from_secs(30))
        .expect("the checkout loop never let the timer run");
    assert!(checkouts > 0);
}
