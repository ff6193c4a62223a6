//! `TestDb`: per-test databases.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use postgres::{Client, NoTls};
use uno_db_testkit::{TEST_URL_ENV, TestCluster, TestDb, TestkitError};

use crate::child_process::{is_child_for, run_child_test};
use crate::deadline::{CLUSTER_TEST_LIMIT, QUICK_TEST_LIMIT, within};

/// Whether a database of that name exists, asked through `admin_url`.
fn database_exists(admin_url: &str, name: &str) -> bool {
    let mut admin = Client::connect(admin_url, NoTls).unwrap();
    let count: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .unwrap()
        .get(0);
    count == 1
}

#[test]
fn databases_are_isolated() {
    within(QUICK_TEST_LIMIT, || {
        let first = TestDb::new().unwrap();
        let second = TestDb::new().unwrap();
        assert_ne!(first.name(), second.name());

        let mut client = Client::connect(first.url(), NoTls).unwrap();
        client
            .batch_execute("CREATE TABLE only_here (x int); INSERT INTO only_here VALUES (1)")
            .unwrap();

        let mut other = Client::connect(second.url(), NoTls).unwrap();
        let visible: bool = other
            .query_one("SELECT to_regclass('only_here') IS NOT NULL", &[])
            .unwrap()
            .get(0);
        assert!(
            !visible,
            "a table of one test database is visible in another"
        );
        let database: String = other
            .query_one("SELECT current_database()", &[])
            .unwrap()
            .get(0);
        assert_eq!(database, second.name());
    });
}

#[test]
fn a_database_is_dropped_on_drop_even_while_in_use() {
    within(QUICK_TEST_LIMIT, || {
        let db = TestDb::new().unwrap();
        let (name, admin_url) = (db.name().to_owned(), db.admin_url().to_owned());
        assert!(database_exists(&admin_url, &name));
        let mut still_connected = Client::connect(db.url(), NoTls).unwrap();

        drop(db);

        assert!(!database_exists(&admin_url, &name));
        assert!(still_connected.simple_query("SELECT 1").is_err());
    });
}

#[test]
fn a_database_is_dropped_when_its_test_panics() {
    within(QUICK_TEST_LIMIT, || {
        let mut created = None;
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let db = TestDb::new().unwrap();
            created = Some((db.name().to_owned(), db.admin_url().to_owned()));
            Client::connect(db.url(), NoTls)
                .unwrap()
                .batch_execute("CREATE TABLE t (x int)")
                .unwrap();
            panic!("the test fails");
        }));
        assert!(outcome.is_err());
        let (name, admin_url) = created.unwrap();
        assert!(
            !database_exists(&admin_url, &name),
            "{name} survived the panic"
        );
    });
}

#[test]
fn accessors_describe_the_database() {
    within(QUICK_TEST_LIMIT, || {
        let db = TestDb::new().unwrap();
        let config: tokio_postgres::Config = db.url().parse().unwrap();
        assert_eq!(config.get_dbname(), Some(db.name()));
        assert_eq!(config.get_user(), Some(db.user()));
        assert_eq!(config.get_ports(), &[db.port()]);
        assert_eq!(
            config.get_password(),
            db.password().map(str::as_bytes),
            "the URL carries the password, if any"
        );
        assert!(matches!(
            &config.get_hosts()[0],
            tokio_postgres::config::Host::Tcp(host) if host == db.host()
        ));
        let admin: tokio_postgres::Config = db.admin_url().parse().unwrap();
        assert_ne!(admin.get_dbname(), Some(db.name()));
        assert_eq!(db.socket_addr().unwrap().port(), db.port());
        assert!(db.name().starts_with("uno_db_test_"));
    });
}

#[test]
fn a_database_on_a_given_cluster_or_server() {
    within(CLUSTER_TEST_LIMIT, || {
        let cluster = TestCluster::new().unwrap();
        let on_cluster = cluster.test_db().unwrap();
        assert_eq!(on_cluster.port(), cluster.port());
        let on_server = TestDb::on_server(&cluster.admin_url()).unwrap();
        assert_eq!(on_server.port(), cluster.port());
        for db in [&on_cluster, &on_server] {
            let mut client = Client::connect(db.url(), NoTls).unwrap();
            let database: String = client
                .query_one("SELECT current_database()", &[])
                .unwrap()
                .get(0);
            assert_eq!(database, db.name());
        }
    });
}

#[test]
fn errors_name_their_layer_and_keep_their_cause() {
    within(QUICK_TEST_LIMIT, || {
        // Nothing listens on port 1.
        let error = TestDb::on_server("postgres://postgres@127.0.0.1:1/postgres").unwrap_err();
        assert!(matches!(error, TestkitError::Connect { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            "could not connect to PostgreSQL at 127.0.0.1:1 as user postgres"
        );
        let cause = std::error::Error::source(&error).unwrap();
        assert!(cause.to_string().contains("error connecting"), "{cause}");

        let error = TestkitError::NoServer {
            source: Box::new(TestkitError::BinariesNotFound),
        };
        let message = error.to_string();
        assert!(message.contains("apt-get install postgresql"), "{message}");
        assert!(message.contains(TEST_URL_ENV), "{message}");
    });
}

async fn query_in_tokio() {
    let limit = Duration::from_secs(20);
    tokio::time::timeout(limit, async {
        let db = TestDb::new().unwrap();
        let (client, connection) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
            .batch_execute("CREATE TABLE t (x int)")
            .await
            .unwrap();
        let rows = client.query("SELECT * FROM t", &[]).await.unwrap();
        assert!(rows.is_empty());
        drop(client);
        drop(db); // dropping inside the runtime works too
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn works_inside_a_current_thread_tokio_runtime() {
    query_in_tokio().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn works_inside_a_multi_thread_tokio_runtime() {
    query_in_tokio().await;
}

#[test]
fn the_test_url_variable_chooses_the_server_and_parallel_processes_share_it() {
    within(CLUSTER_TEST_LIMIT, || {
        // A fresh cluster has no template database yet: three test processes starting at
        // once race to create it, and all must get their database.
        let cluster = TestCluster::new().unwrap();
        let url = cluster.admin_url();
        let port = cluster.port().to_string();
        let children: Vec<_> = (0..3)
            .map(|_| {
                let (url, port) = (url.clone(), port.clone());
                std::thread::spawn(move || {
                    run_child_test(
                        "test_db::child_uses_the_test_url",
                        None,
                        &[(TEST_URL_ENV, &url), ("EXPECTED_PORT", &port)],
                        QUICK_TEST_LIMIT,
                    )
                })
            })
            .collect();
        for child in children {
            let outcome = child.join().unwrap();
            assert!(
                outcome.status.success() && outcome.output.contains("1 passed"),
                "{}",
                outcome.output
            );
        }
        let mut admin = Client::connect(&url, NoTls).unwrap();
        let left: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_database WHERE datname LIKE 'uno_db_test%'",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(left, 1, "only the template is left");

        let outcome = run_child_test(
            "test_db::child_reports_a_bad_test_url",
            None,
            &[(
                TEST_URL_ENV,
                "postgres://postgres@127.0.0.1:notaport/postgres",
            )],
            QUICK_TEST_LIMIT,
        );
        assert!(
            outcome.status.success() && outcome.output.contains("1 passed"),
            "{}",
            outcome.output
        );
    });
}

/// A database left by a process killed before it could drop it is
/// dropped by the next process that prepares the same server; databases
/// of live processes are not.
#[test]
fn databases_left_by_killed_processes_are_swept() {
    within(CLUSTER_TEST_LIMIT, || {
        // This process prepares (and sweeps) the server first.
        let alive = TestDb::new().unwrap();
        let died = run_child_test(
            "test_db::child_dies_holding_a_database",
            None,
            &[],
            QUICK_TEST_LIMIT,
        );
        let left = died
            .output
            .lines()
            .find_map(|line| Some(line.split_once("DATABASE ")?.1))
            .unwrap_or_else(|| panic!("no database reported: {}", died.output))
            .to_owned();
        assert!(!died.status.success(), "the child aborted");
        assert!(database_exists(alive.admin_url(), &left), "left behind");
        let next = run_child_test(
            "test_db::child_makes_a_database",
            None,
            &[],
            QUICK_TEST_LIMIT,
        );
        assert!(
            next.status.success() && next.output.contains("1 passed"),
            "{}",
            next.output
        );
        assert!(!database_exists(alive.admin_url(), &left), "swept");
        assert!(
            database_exists(alive.admin_url(), alive.name()),
            "a live process's database stays"
        );
    });
}

#[test]
#[ignore = "run in a child process by test_db::databases_left_by_killed_processes_are_swept"]
fn child_dies_holding_a_database() {
    if !is_child_for("test_db::child_dies_holding_a_database") {
        return;
    }
    let db = TestDb::new().unwrap();
    println!("DATABASE {}", db.name());
    // No unwinding, no `Drop`: as a killed process.
    std::process::abort();
}

#[test]
#[ignore = "run in a child process by test_db::databases_left_by_killed_processes_are_swept"]
fn child_makes_a_database() {
    if !is_child_for("test_db::child_makes_a_database") {
        return;
    }
    TestDb::new().unwrap();
}

#[test]
#[ignore = "run in a child process by test_db::the_test_url_variable_chooses_the_server_and_parallel_processes_share_it"]
fn child_uses_the_test_url() {
    if !is_child_for("test_db::child_uses_the_test_url") {
        return;
    }
    let expected: u16 = std::env::var("EXPECTED_PORT").unwrap().parse().unwrap();
    let db = TestDb::new().unwrap();
    assert_eq!(db.port(), expected);
}

#[test]
#[ignore = "run in a child process by test_db::the_test_url_variable_chooses_the_server_and_parallel_processes_share_it"]
fn child_reports_a_bad_test_url() {
    if !is_child_for("test_db::child_reports_a_bad_test_url") {
        return;
    }
    let error = TestDb::new().unwrap_err();
    assert!(matches!(error, TestkitError::EnvServer { .. }), "{error:?}");
    let cause = std::error::Error::source(&error).unwrap();
    assert!(
        cause
            .to_string()
            .contains("not a valid PostgreSQL connection URL"),
        "{cause}"
    );
}
