//! The facade: one `DatabaseFactory` handing out both engine factories and
//! the async session factory.

use std::sync::Arc;

use uno_db::{DatabaseFactory, ErrorKind};
use uno_db_testkit::TestDb;
use uno_db_testkit::conformance::{CASE_TIMEOUT, case_config, run_with_timeout};

#[test]
fn hands_out_shared_engines_and_sessions() {
    run_with_timeout(CASE_TIMEOUT, || {
        let db = TestDb::new().unwrap();
        let factory = DatabaseFactory::new(case_config(db.url()).unwrap());

        let sync_engine = factory.sync_engine().unwrap();
        assert!(Arc::ptr_eq(
            &sync_engine,
            &factory.clone().sync_engine().unwrap()
        ));
        sync_engine
            .connect()
            .unwrap()
            .batch_execute("CREATE TABLE log (msg text)")
            .unwrap();

        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let sessions = factory.get_async_session_factory().unwrap();
            let mut session = sessions.session().await.unwrap();
            session
                .execute("INSERT INTO log VALUES ($1)", &[&"hi"])
                .await
                .unwrap();
            session.commit().await.unwrap();
            let engine = factory.async_engine().unwrap();
            let mut conn = engine.connect().await.unwrap();
            let n: i64 = conn
                .query_one("SELECT count(*) FROM log", &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(n, 1);
        });

        factory.dispose();
        assert_eq!(
            sync_engine.connect().unwrap_err().kind(),
            ErrorKind::PoolClosed
        );
        // A disposed factory makes no new engines either.
        assert_eq!(
            factory.sync_engine().unwrap_err().kind(),
            ErrorKind::PoolClosed
        );
        assert_eq!(
            factory.async_engine().unwrap_err().kind(),
            ErrorKind::PoolClosed
        );
    });
}
