//! The blocking backend inside an async runtime.

use std::time::Duration;

use uno_db_core::ErrorKind;
use uno_db_core::blocking::{Client, Engine};
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

        // Inside a spawned task it would stall a runtime worker: refused,
        // without a panic; through block_in_place it works.
        let worker = engine.clone();
        let kind = tokio::spawn(async move { worker.checkout().err().map(|e| e.kind()) })
            .await
            .unwrap();
        assert_eq!(kind, Some(ErrorKind::Unsupported));
        let worker = engine.clone();
        let value: i32 = tokio::spawn(async move {
            tokio::task::block_in_place(|| {
                let mut conn = worker.checkout().unwrap();
                conn.query_one("SELECT 8", &[]).unwrap().get(0)
            })
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

/// Records the thread that serializes it: the one that talks to the server.
#[derive(Debug)]
struct ThreadProbe(std::sync::Mutex<Option<std::thread::ThreadId>>);

impl uno_db_core::ToSql for ThreadProbe {
    fn to_sql(
        &self,
        ty: &uno_db_core::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        *self.0.lock().unwrap() = Some(std::thread::current().id());
        7_i32.to_sql(ty, out)
    }

    fn accepts(ty: &uno_db_core::Type) -> bool {
        <i32 as uno_db_core::ToSql>::accepts(ty)
    }

    postgres::types::to_sql_checked!();
}

/// From `spawn_blocking`, statements run on the calling thread itself: no
/// helper thread per statement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_blocking_runs_statements_on_its_own_thread() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let fx = tokio::task::spawn_blocking(Fixture::new).await.unwrap();
        let engine = SyncEngine::new(&fx.config()).unwrap();
        let (caller, driver) = tokio::task::spawn_blocking(move || {
            let probe = ThreadProbe(std::sync::Mutex::new(None));
            let mut conn = engine.checkout().unwrap();
            conn.query_one("SELECT $1::int4", &[&probe]).unwrap();
            drop(conn);
            engine.dispose();
            drop(fx);
            (std::thread::current().id(), probe.0.lock().unwrap().take())
        })
        .await
        .unwrap();
        assert_eq!(driver, Some(caller));
    })
    .await
    .expect("the test finished in time");
}
