//! `TestPgBouncer`: a real PgBouncer in front of a test cluster.

use std::time::Instant;

use postgres::{Client, NoTls, SimpleQueryMessage};
use uno_db_testkit::{PoolMode, TestCluster, TestPgBouncer};

use crate::deadline::{CLUSTER_TEST_LIMIT, within};

/// The value of `key` in the admin console's `SHOW CONFIG`.
fn config_value(admin: &mut Client, key: &str) -> String {
    admin
        .simple_query("SHOW CONFIG")
        .unwrap()
        .into_iter()
        .find_map(|message| match message {
            SimpleQueryMessage::Row(row) if row.get(0) == Some(key) => {
                row.get(1).map(str::to_owned)
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("{key} is not in SHOW CONFIG"))
}

fn backend_pid(client: &mut Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0)
}

#[test]
fn transaction_pooling_shares_one_backend() {
    within(CLUSTER_TEST_LIMIT, || {
        let cluster = TestCluster::new().unwrap();
        let started = Instant::now();
        let bouncer = TestPgBouncer::builder(cluster.host(), cluster.port())
            .default_pool_size(1)
            .start()
            .unwrap();
        eprintln!("PgBouncer started in {:?}", started.elapsed());
        assert_eq!(bouncer.socket_addr().port(), bouncer.port());
        assert_eq!(
            bouncer.url("app"),
            format!("postgres://postgres@127.0.0.1:{}/app", bouncer.port())
        );

        let mut admin = Client::connect(&bouncer.url("pgbouncer"), NoTls).unwrap();
        assert_eq!(config_value(&mut admin, "pool_mode"), "transaction");
        assert_eq!(config_value(&mut admin, "default_pool_size"), "1");

        // Two clients of one pool take turns on its single backend.
        let mut first = Client::connect(&bouncer.url("postgres"), NoTls).unwrap();
        first.simple_query("SELECT 1").unwrap();
        let mut second = Client::connect(&bouncer.url("postgres"), NoTls).unwrap();
        let pid = backend_pid(&mut first);
        assert_eq!(backend_pid(&mut second), pid);
        assert_eq!(backend_pid(&mut first), pid);
        let direct_pid = {
            let mut direct = Client::connect(&cluster.admin_url(), NoTls).unwrap();
            backend_pid(&mut direct)
        };
        assert_ne!(direct_pid, pid);
        assert!(bouncer.log_path().is_file());
    });
}

#[test]
fn session_mode_any_database_and_refused_startup_options() {
    within(CLUSTER_TEST_LIMIT, || {
        let cluster = TestCluster::new().unwrap();
        let mut direct = Client::connect(&cluster.admin_url(), NoTls).unwrap();
        direct.batch_execute("CREATE DATABASE app").unwrap();
        let bouncer = TestPgBouncer::builder(cluster.host(), cluster.port())
            .pool_mode(PoolMode::Session)
            .max_client_conn(10)
            .user("nobody_else")
            .start()
            .unwrap();
        let mut admin = Client::connect(&bouncer.url("pgbouncer"), NoTls).unwrap();
        assert_eq!(config_value(&mut admin, "pool_mode"), "session");
        assert_eq!(config_value(&mut admin, "max_client_conn"), "10");

        // The wildcard entry sends any database name to the cluster.
        let mut app = Client::connect(&bouncer.url("app"), NoTls).unwrap();
        let database: String = app
            .query_one("SELECT current_database()", &[])
            .unwrap()
            .get(0);
        assert_eq!(database, "app");

        // Session state survives between transactions in session mode.
        app.batch_execute("PREPARE two AS SELECT 2").unwrap();
        app.batch_execute("EXECUTE two").unwrap();

        // PgBouncer refuses startup parameters it does not know.
        let Err(refused) = Client::connect(
            &format!(
                "{}?options=-c%20statement_timeout%3D1000",
                bouncer.url("app")
            ),
            NoTls,
        ) else {
            panic!("PgBouncer accepted `options`");
        };
        let message = refused.as_db_error().expect("a server error").message();
        assert!(
            message.contains("unsupported startup parameter"),
            "{message}"
        );
    });
}

#[test]
fn default_start_is_transaction_pooling() {
    within(CLUSTER_TEST_LIMIT, || {
        let cluster = TestCluster::new().unwrap();
        let bouncer = TestPgBouncer::start(&cluster).unwrap();
        let mut client = Client::connect(&bouncer.url("postgres"), NoTls).unwrap();
        let rows = client.simple_query("SELECT 1").unwrap();
        assert!(rows.iter().any(|m| matches!(m, SimpleQueryMessage::Row(_))));
        let mut admin = Client::connect(&bouncer.url("pgbouncer"), NoTls).unwrap();
        assert_eq!(config_value(&mut admin, "pool_mode"), "transaction");
        assert_eq!(
            config_value(&mut admin, "ignore_startup_parameters"),
            "extra_float_digits"
        );
    });
}
