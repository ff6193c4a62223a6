//! Connection callbacks: once per physical connection; failures discard.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use uno_db_async::AsyncEngineFactory;
use uno_db_core::nonblocking::EngineFactory;
use uno_db_core::{CloseReason, ErrorKind};

use crate::support::{builder, failure, test_db, within};

#[tokio::test]
async fn callbacks_run_once_per_physical_connection() {
    within(async {
        let db = test_db().await;
        let factory = AsyncEngineFactory::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&runs);
        factory.callbacks().register("setup", move |conn| {
            let counter = Arc::clone(&counter);
            Box::pin(async move {
                counter.fetch_add(1, Ordering::SeqCst);
                conn.batch_execute("SET statement_timeout = '1234ms'")
                    .await?;
                Ok(())
            })
        });
        let engine = factory
            .engine(&builder(&db).pool_size(2).build().unwrap())
            .unwrap();
        for _ in 0..5 {
            let mut conn = engine.connect().await.unwrap();
            let row = conn.query_one("SHOW statement_timeout", &[]).await.unwrap();
            assert_eq!(row.get::<_, String>(0), "1234ms");
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let both = (
            engine.connect().await.unwrap(),
            engine.connect().await.unwrap(),
        );
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        drop(both);
        assert_eq!(engine.counters().created, 2);
    })
    .await;
}

#[tokio::test]
async fn a_failing_callback_yields_no_connection() {
    within(async {
        let db = test_db().await;
        let factory = AsyncEngineFactory::new();
        factory.callbacks().register("broken", |conn| {
            Box::pin(async move {
                conn.batch_execute("SET no_such_setting = 1").await?;
                Ok(())
            })
        });
        let engine = factory.engine(&builder(&db).build().unwrap()).unwrap();
        let error = failure(engine.connect().await);
        assert_eq!(error.kind(), ErrorKind::Callback, "{error:?}");
        assert!(error.to_string().contains("`broken`"));
        assert_eq!(engine.status().size, 0);
        let counters = engine.counters();
        assert_eq!(
            (
                counters.created,
                counters.closed(CloseReason::CallbackFailed)
            ),
            (1, 1)
        );

        // Fixed, the next checkout connects.
        factory.callbacks().unregister("broken");
        let mut conn = engine.connect().await.unwrap();
        conn.batch_execute("SELECT 1").await.unwrap();
    })
    .await;
}
