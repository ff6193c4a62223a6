//! `schema` and `set_role`.

use crate::support::{engine, test_db, within};

#[tokio::test]
async fn schema_sets_the_search_path() {
    within(async {
        let db = test_db().await;
        let setup = engine(&db, |b| b);
        setup
            .checkout()
            .await
            .unwrap()
            .batch_execute("CREATE SCHEMA app_data; CREATE SCHEMA extra")
            .await
            .unwrap();
        // Unquoted identifiers, folded to lower case as the server does.
        let engine = engine(&db, |b| b.schema("App_Data, extra"));
        let mut conn = engine.checkout().await.unwrap();
        let row = conn
            .query_one("SELECT current_schema()", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "app_data");
        let row = conn
            .query_one("SELECT current_schemas(false)::text", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "{app_data,extra}");
        conn.batch_execute("CREATE TABLE t (n int)").await.unwrap();
        let row = conn
            .query_one(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'app_data' AND tablename = 't'",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, i64>(0), 1);
    })
    .await;
}

#[tokio::test]
async fn set_role_applies_on_checkout_and_does_not_stick() {
    within(async {
        let db = test_db().await;
        let role = format!(
            "uno_async_role_{}",
            db.name().rsplit('_').next().unwrap_or("x")
        );
        let admin = engine(&db, |b| b);
        let mut admin_conn = admin.checkout().await.unwrap();
        admin_conn
            .batch_execute(&format!("CREATE ROLE \"{role}\" NOLOGIN"))
            .await
            .unwrap();

        let engine = engine(&db, |b| {
            b.pool_size(1).max_overflow(0).set_role(role.clone())
        });
        let mut conn = engine.checkout().await.unwrap();
        let row = conn
            .query_one("SELECT current_user::text, session_user::text", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), role);
        assert_eq!(row.get::<_, String>(1), db.user());
        // The caller switches roles; the next checkout gets the configured one back.
        conn.batch_execute("RESET ROLE").await.unwrap();
        drop(conn);
        let mut conn = engine.checkout().await.unwrap();
        let row = conn
            .query_one("SELECT current_user::text", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), role);
        assert_eq!(
            engine_counters_created(&engine),
            1,
            "the same physical connection"
        );
        drop(conn);
        uno_db_core::nonblocking::Engine::dispose(&engine);

        admin_conn
            .batch_execute(&format!("DROP ROLE \"{role}\""))
            .await
            .unwrap();
    })
    .await;
}

fn engine_counters_created(engine: &uno_db_async::AsyncEngine) -> u64 {
    uno_db_core::nonblocking::Engine::counters(engine).created
}
