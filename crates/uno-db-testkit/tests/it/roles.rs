//! `TestCluster::create_role`: password authentication.

use postgres::error::SqlState;
use postgres::{Client, NoTls};
use uno_db_testkit::{TestCluster, TestkitError};

use crate::deadline::{CLUSTER_TEST_LIMIT, within};

#[test]
fn the_right_password_connects_and_a_wrong_one_is_rejected() {
    within(CLUSTER_TEST_LIMIT, || {
        let cluster = TestCluster::builder().password_auth(true).start().unwrap();
        let alice = cluster.create_role("alice", "s3cret").unwrap();
        assert_eq!(alice.name(), "alice");

        let mut client = Client::connect(alice.url(), NoTls).unwrap();
        let user: String = client.query_one("SELECT current_user", &[]).unwrap().get(0);
        assert_eq!(user, "alice");

        let error = Client::connect(&alice.url_with_password("postgres", "wrong"), NoTls)
            .err()
            .expect("connecting should fail");
        assert_eq!(error.code(), Some(&SqlState::INVALID_PASSWORD), "{error}");

        // The superuser is still trusted, so the cluster can be administered.
        Client::connect(&cluster.admin_url(), NoTls)
            .unwrap()
            .simple_query("SELECT 1")
            .unwrap();

        // The password is stored as a SCRAM verifier.
        let mut admin = Client::connect(&cluster.admin_url(), NoTls).unwrap();
        let stored: String = admin
            .query_one(
                "SELECT rolpassword FROM pg_authid WHERE rolname = 'alice'",
                &[],
            )
            .unwrap()
            .get(0);
        assert!(stored.starts_with("SCRAM-SHA-256$"), "{stored}");
    });
}

#[test]
fn roles_on_the_shared_cluster_are_dropped_with_their_handle() {
    within(CLUSTER_TEST_LIMIT, || {
        let cluster = TestCluster::shared().unwrap();
        let name = format!("role_{}", std::process::id());
        let role = cluster.create_role(&name, "it's a secret").unwrap();
        let mut client = Client::connect(&role.url_for("postgres"), NoTls).unwrap();
        client.simple_query("SELECT 1").unwrap();
        let error = Client::connect(&role.url_with_password("postgres", "nope"), NoTls)
            .err()
            .expect("connecting should fail");
        assert_eq!(error.code(), Some(&SqlState::INVALID_PASSWORD), "{error}");

        drop(client);
        drop(role);
        let mut admin = Client::connect(&cluster.admin_url(), NoTls).unwrap();
        let count: i64 = admin
            .query_one("SELECT count(*) FROM pg_roles WHERE rolname = $1", &[&name])
            .unwrap()
            .get(0);
        assert_eq!(count, 0);
    });
}

#[test]
fn bad_role_names_are_rejected() {
    within(CLUSTER_TEST_LIMIT, || {
        let cluster = TestCluster::shared().unwrap();
        for name in ["", &"x".repeat(64)] {
            let error = cluster.create_role(name, "pw").unwrap_err();
            assert!(
                matches!(error, TestkitError::InvalidName { .. }),
                "{error:?}"
            );
        }
    });
}
