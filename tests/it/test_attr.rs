//! `#[uno_db::test]`: each test gets a fresh database and an engine of its
//! family, and the database is dropped afterwards, also on panic.

use std::sync::Arc;

use postgres::NoTls;
use uno_db::Result;

/// The tables of the test's database (a fresh one has none).
const TABLES: &str = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'";

#[uno_db::test]
fn a_blocking_test_gets_a_fresh_database(engine: Arc<dyn uno_db::blocking::Engine>) -> Result<()> {
    assert!(engine.config().database().starts_with("uno_db_test_"));
    let mut conn = engine.connect()?;
    assert_eq!(conn.query_one(TABLES, &[])?.get::<_, i64>(0), 0);
    conn.batch_execute("CREATE TABLE users (name text)")?;
    assert_eq!(conn.query_one(TABLES, &[])?.get::<_, i64>(0), 1);
    Ok(())
}

#[uno_db::test]
async fn an_async_test_gets_a_fresh_database(
    engine: Arc<dyn uno_db::nonblocking::Engine>,
) -> Result<()> {
    assert!(engine.config().database().starts_with("uno_db_test_"));
    let mut conn = engine.connect().await?;
    assert_eq!(conn.query_one(TABLES, &[]).await?.get::<_, i64>(0), 0);
    conn.batch_execute("CREATE TABLE users (name text)").await?;
    Ok(())
}

#[uno_db::test]
fn a_test_may_take_no_engine() {}

#[uno_db::test]
#[should_panic(expected = "the test's own panic")]
fn other_attributes_apply(_engine: Arc<dyn uno_db::blocking::Engine>) {
    panic!("the test's own panic");
}

/// Whether the database `name` exists on the test kit's server.
fn exists(name: &str) -> bool {
    let db = uno_db_testkit::TestDb::new().unwrap();
    let mut admin = postgres::Client::connect(db.admin_url(), NoTls).unwrap();
    admin
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .unwrap()
        .get::<_, i64>(0)
        == 1
}

#[test]
fn the_database_is_dropped_also_when_the_test_panics() {
    for family in ["blocking", "async"] {
        let mut name = String::new();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            if family == "blocking" {
                uno_db::__test::run_blocking("panics", |engine| {
                    name = engine.config().database().to_owned();
                    assert!(exists(&name));
                    panic!("failing test");
                })
            } else {
                uno_db::__test::run_async("panics", |engine| {
                    name = engine.config().database().to_owned();
                    assert!(exists(&name));
                    async { panic!("failing test") }
                })
            }
        }));
        assert!(outcome.is_err(), "{family}: the test panicked");
        assert!(name.starts_with("uno_db_test_"), "{family}: {name}");
        assert!(!exists(&name), "{family}: {name} was dropped");
    }
}
