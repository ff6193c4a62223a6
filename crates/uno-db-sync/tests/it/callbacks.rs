//! Connection callbacks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use uno_db_core::blocking::EngineFactory;
use uno_db_core::{CloseReason, ErrorKind};
use uno_db_sync::SyncEngineFactory;

use crate::support::{Fixture, LIMIT, within};

#[test]
fn callbacks_run_once_per_physical_connection() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let factory = SyncEngineFactory::new();
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&runs);
        factory.callbacks().register("tz", move |conn| {
            counter.fetch_add(1, Ordering::SeqCst);
            conn.batch_execute("SET TIME ZONE 'Asia/Tokyo'")?;
            Ok(())
        });
        let engine = factory.engine(&fx.config()).unwrap();
        for _ in 0..3 {
            let mut conn = engine.connect().unwrap();
            let tz: String = conn.query_one("SHOW TimeZone", &[]).unwrap().get(0);
            assert_eq!(tz, "Asia/Tokyo");
        }
        assert_eq!(
            runs.load(Ordering::SeqCst),
            1,
            "one physical connection so far"
        );
        let a = engine.connect().unwrap();
        let b = engine.connect().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        drop((a, b));
        assert_eq!(engine.counters().created, 2);
    });
}

#[test]
fn a_failing_callback_discards_the_connection() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let factory = SyncEngineFactory::new();
        factory.callbacks().register("broken_init", |conn| {
            conn.batch_execute("SELECT no_such_function()")?;
            Ok(())
        });
        let engine = factory.engine(&fx.config()).unwrap();
        let Err(error) = engine.connect() else {
            panic!("the callback fails")
        };
        assert_eq!(error.kind(), ErrorKind::Callback);
        assert!(error.to_string().contains("broken_init"), "{error}");
        let cause = std::error::Error::source(&error).unwrap();
        assert!(cause.downcast_ref::<uno_db_core::Error>().is_some());
        let counters = engine.counters();
        assert_eq!(counters.closed(CloseReason::CallbackFailed), 1);
        assert_eq!(counters.acquired, 0);
        assert_eq!(
            engine.status().size,
            0,
            "nothing half-initialised stays in the pool"
        );

        // Fixing the callback fixes new connections.
        factory.callbacks().register("broken_init", |_| Ok(()));
        engine.connect().unwrap().execute("SELECT 1", &[]).unwrap();
    });
}
