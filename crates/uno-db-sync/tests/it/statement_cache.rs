//! The per-connection statement cache.

use uno_db_core::blocking::Client;
use uno_db_sync::{SyncConnection, SyncEngine};

use crate::support::{Fixture, LIMIT, within};

const SQL: &str = "SELECT $1::int4 + 1 AS next";

/// How many server-side prepared statements of this connection have `sql`.
/// How many statements with the text `sql` the server holds prepared for
/// this connection. (The probe itself goes through the cache too.)
fn prepared(conn: &mut SyncConnection, sql: &str) -> i64 {
    let quoted = sql.replace('\'', "''");
    conn.query_one(
        &format!("SELECT count(*) FROM pg_prepared_statements WHERE statement = '{quoted}'"),
        &[],
    )
    .unwrap()
    .get(0)
}

#[test]
fn repeated_statements_are_prepared_once() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let engine = SyncEngine::new(
            &fx.builder()
                .pool_size(1)
                .statement_cache_size(8)
                .build()
                .unwrap(),
        )
        .unwrap();
        let mut conn = engine.checkout().unwrap();
        for i in 0..5_i32 {
            let row = conn.query_one(SQL, &[&i]).unwrap();
            assert_eq!(row.get::<_, i32>("next"), i + 1);
        }
        assert_eq!(prepared(&mut conn, SQL), 1, "one named statement, reused");
        drop(conn);
        // The cache lives with the physical connection, across checkouts.
        let mut conn = engine.checkout().unwrap();
        conn.query_one(SQL, &[&1_i32]).unwrap();
        assert_eq!(prepared(&mut conn, SQL), 1);
        let described = conn.prepare(SQL).unwrap();
        assert_eq!(described.columns()[0].name(), "next");
        assert_eq!(prepared(&mut conn, SQL), 1, "prepare uses the cache too");
    });
}

#[test]
fn the_cache_is_bounded_and_can_be_switched_off() {
    within(LIMIT, || {
        let fx = Fixture::new();
        let engine = SyncEngine::new(
            &fx.builder()
                .pool_size(1)
                .statement_cache_size(2)
                .build()
                .unwrap(),
        )
        .unwrap();
        let mut conn = engine.checkout().unwrap();
        let sqls = [
            "SELECT $1::int4 AS a",
            "SELECT $1::int4 AS b",
            "SELECT $1::int4 AS c",
        ];
        for sql in sqls {
            conn.query_one(sql, &[&1_i32]).unwrap();
        }
        // The probe is cached as well, evicting the next least recently used.
        let held: Vec<String> = conn
            .query("SELECT statement FROM pg_prepared_statements", &[])
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert_eq!(held.len(), 2, "bounded on the server too: {held:?}");
        assert!(
            !held.iter().any(|s| s == sqls[0] || s == sqls[1]),
            "the least recently used were evicted and closed: {held:?}"
        );

        let off = SyncEngine::new(
            &fx.builder()
                .pool_size(1)
                .statement_cache_size(0)
                .build()
                .unwrap(),
        )
        .unwrap();
        let mut conn = off.checkout().unwrap();
        for i in 0..3_i32 {
            conn.query_one(SQL, &[&i]).unwrap();
        }
        assert_eq!(prepared(&mut conn, SQL), 0);
    });
}

#[test]
fn a_stale_cached_plan_is_prepared_again() {
    within(LIMIT, || {
        let fx = Fixture::new();
        fx.admin()
            .batch_execute("CREATE TABLE s (a int); INSERT INTO s VALUES (1)")
            .unwrap();
        let engine = SyncEngine::new(&fx.builder().pool_size(1).build().unwrap()).unwrap();
        let mut conn = engine.checkout().unwrap();
        let sql = "SELECT * FROM s WHERE a = $1";
        assert_eq!(conn.query(sql, &[&1_i32]).unwrap()[0].len(), 1);
        fx.admin()
            .batch_execute("ALTER TABLE s ADD COLUMN b int")
            .unwrap();
        // The server refuses the old plan once; the cache forgets it.
        let first = conn.query(sql, &[&1_i32]);
        if let Err(error) = &first {
            assert_eq!(
                error.sqlstate(),
                Some(&uno_db_core::SqlState::FEATURE_NOT_SUPPORTED)
            );
        }
        assert_eq!(conn.query(sql, &[&1_i32]).unwrap()[0].len(), 2);
    });
}
