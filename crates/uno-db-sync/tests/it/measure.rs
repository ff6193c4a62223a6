//! Rough figures, printed; run with
//! `cargo test -p uno-db-sync --test it measure -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use uno_db_core::blocking::Client;
use uno_db_sync::SyncEngine;

use crate::support::{Fixture, within};

fn per_op(n: u32, mut op: impl FnMut()) -> Duration {
    for _ in 0..n / 10 {
        op();
    }
    let started = Instant::now();
    for _ in 0..n {
        op();
    }
    started.elapsed() / n
}

#[test]
#[ignore = "prints timings; run by hand"]
#[allow(clippy::print_stderr)]
fn measure() {
    within(Duration::from_secs(300), || {
        let fx = Fixture::new();
        let n = 2000;
        let plain = SyncEngine::new(&fx.builder().pool_size(1).build().unwrap()).unwrap();
        let started = Instant::now();
        drop(plain.checkout().unwrap());
        eprintln!("first checkout (connect): {:?}", started.elapsed());
        eprintln!(
            "checkout + return: {:?}",
            per_op(n, || drop(plain.checkout().unwrap()))
        );
        let ping =
            SyncEngine::new(&fx.builder().pool_size(1).pre_ping(true).build().unwrap()).unwrap();
        eprintln!(
            "checkout + return, pre_ping: {:?}",
            per_op(n, || drop(ping.checkout().unwrap()))
        );

        let sql = "SELECT $1::int4 + 1";
        let mut conn = plain.checkout().unwrap();
        eprintln!(
            "query with a parameter, cache on: {:?}",
            per_op(n, || {
                conn.query_one(sql, &[&1_i32]).unwrap();
            })
        );
        drop(conn);
        let off = SyncEngine::new(
            &fx.builder()
                .pool_size(1)
                .statement_cache_size(0)
                .build()
                .unwrap(),
        )
        .unwrap();
        let mut conn = off.checkout().unwrap();
        eprintln!(
            "query with a parameter, cache off: {:?}",
            per_op(n, || {
                conn.query_one(sql, &[&1_i32]).unwrap();
            })
        );
        drop(conn);

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let engine = plain;
        let in_blocking = runtime.block_on(async move {
            tokio::task::spawn_blocking(move || {
                let mut conn = engine.checkout().unwrap();
                per_op(n / 4, || {
                    conn.query_one(sql, &[&1_i32]).unwrap();
                })
            })
            .await
            .unwrap()
        });
        eprintln!("query with a parameter inside spawn_blocking (helper thread): {in_blocking:?}");
    });
}
