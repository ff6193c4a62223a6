//! Permanent connect failures fail fast with their real cause.

use std::time::{Duration, Instant};

use uno_db_core::nonblocking::Engine;
use uno_db_core::{ErrorKind, RetryPolicy, SqlState};
use uno_db_testkit::TestCluster;

use crate::support::{engine, test_db, within};

#[tokio::test]
async fn a_missing_database_fails_fast() {
    within(async {
        let db = test_db().await;
        let engine = engine(&db, |b| {
            b.database("uno_db_no_such_database")
                .retry(RetryPolicy::default().max_attempts(5))
        });
        let started = Instant::now();
        let error = engine.checkout().await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(error.kind(), ErrorKind::Connect, "{error:?}");
        assert_eq!(error.sqlstate(), Some(&SqlState::INVALID_CATALOG_NAME));
        assert!(!error.is_transient());
    })
    .await;
}

#[tokio::test]
async fn a_wrong_password_fails_fast() {
    within(async {
        let (url, role) = tokio::task::spawn_blocking(|| {
            let cluster =
                TestCluster::shared().expect("a private cluster with password authentication");
            let name = format!("uno_async_auth_{:04x}", fastrand_u16());
            let role = cluster.create_role(&name, "right-password").unwrap();
            (cluster.url("postgres"), role)
        })
        .await
        .unwrap();
        let config: uno_db_core::ConnectionConfig = url.parse().unwrap();
        let config = config
            .to_builder()
            .role(role.name())
            .password("wrong-password")
            .retry(RetryPolicy::default().max_attempts(5))
            .build()
            .unwrap();
        let engine = uno_db_async::AsyncEngine::new(&config).unwrap();
        let started = Instant::now();
        let error = engine.checkout().await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(error.kind(), ErrorKind::Auth, "{error:?}");
        assert_eq!(error.sqlstate(), Some(&SqlState::INVALID_PASSWORD));
        assert!(!error.to_string().contains("wrong-password"));

        let right = config
            .to_builder()
            .password("right-password")
            .build()
            .unwrap();
        let engine = uno_db_async::AsyncEngine::new(&right).unwrap();
        drop(engine.checkout().await.unwrap());
        engine.dispose();
        drop(engine);
        tokio::task::spawn_blocking(move || drop(role))
            .await
            .unwrap();
    })
    .await;
}

fn fastrand_u16() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    (nanos ^ std::process::id()) as u16
}
