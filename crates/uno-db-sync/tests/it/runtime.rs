//! The blocking backend inside an async runtime.

use std::time::Duration;

use uno_db_core::ErrorKind;
use uno_db_core::blocking::{Connection, Engine};
use uno_db_sync::SyncEngine;

use crate::support::Fixture;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_inside_a_runtime_is_refused_and_spawn_blocking_works() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let fx = tokio::task::spawn_blocking(Fixture::new).await.unwrap();
        let engine = SyncEngine::new(&fx.config()).unwrap();

        let error = engine.checkout().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unsupported);
        assert!(error.to_string().contains("spawn_blocking"), "{error}");
        assert!(error.to_string().contains("uno-db-async"), "{error}");
        assert_eq!(
            engine.connect().err().map(|e| e.kind()),
            Some(ErrorKind::Unsupported)
        );

        let worker = engine.clone();
        let value: i32 = tokio::task::spawn_blocking(move || {
            let mut conn = worker.checkout().unwrap();
            conn.query_one("SELECT 7", &[]).unwrap().get(0)
        })
        .await
        .unwrap();
        assert_eq!(value, 7);

        // Inside a spawned task (which tokio does not let us tell apart from
        // a spawn_blocking thread) the call is not refused, and must not
        // panic.
        let worker = engine.clone();
        let value: i32 = tokio::spawn(async move {
            let mut conn = worker.checkout().unwrap();
            conn.query_one("SELECT 8", &[]).unwrap().get(0)
        })
        .await
        .unwrap();
        assert_eq!(value, 8);

        // A connection brought back into async code refuses to run, and
        // dropping it there (or disposing the engine) does not panic.
        let worker = engine.clone();
        let mut conn = tokio::task::spawn_blocking(move || worker.checkout().unwrap())
            .await
            .unwrap();
        assert_eq!(
            conn.execute("SELECT 1", &[]).unwrap_err().kind(),
            ErrorKind::Unsupported
        );
        drop(conn);
        engine.dispose();
        tokio::task::spawn_blocking(move || drop(fx)).await.unwrap();
    })
    .await
    .expect("the test finished in time");
}
