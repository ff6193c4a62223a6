//! Server settings sent at connect.

use std::time::Duration;

use uno_db_core::ErrorKind;
use uno_db_core::blocking::Client;
use uno_db_sync::SyncEngine;

use crate::support::{Fixture, LIMIT, within};

#[test]
fn options_and_statement_timeout_reach_the_server() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let config = fx
            .builder()
            .option("work_mem", "7MB")
            .option("search_path", "a, public")
            .option("application_name", "with \\ backslash")
            .statement_timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let engine = SyncEngine::new(&config).unwrap();
        let mut conn = engine.checkout().unwrap();
        let show = |conn: &mut uno_db_sync::SyncConnection, what: &str| -> String {
            conn.query_one(&format!("SHOW {what}"), &[]).unwrap().get(0)
        };
        assert_eq!(show(&mut conn, "work_mem"), "7MB");
        assert_eq!(show(&mut conn, "search_path"), "a, public");
        assert_eq!(show(&mut conn, "application_name"), "with \\ backslash");
        assert_eq!(show(&mut conn, "statement_timeout"), "200ms");

        let error = conn.execute("SELECT pg_sleep(2)", &[]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::QueryTimeout);
        assert!(!error.is_transient());
        // Still usable afterwards.
        assert_eq!(conn.query_one("SELECT 1", &[]).unwrap().get::<_, i32>(0), 1);
    });
}
