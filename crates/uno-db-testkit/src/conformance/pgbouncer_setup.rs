//! The PgBouncer (transaction mode) a conformance case runs behind: a
//! database of its own on the test kit's shared cluster, and a PgBouncer of
//! its own in front of that cluster.

use uno_db_core::ConnectionConfig;

use super::case_config::case_config;
use crate::postgres_url::postgres_url;
use crate::{TestCluster, TestDb, TestPgBouncer};

/// A case's database, its PgBouncer, and the conformance configuration
/// through that PgBouncer with `pgbouncer_mode=transaction`. PgBouncer
/// keeps at most `server_connections` server connections for the database,
/// so that the pool's connections share them.
#[allow(clippy::expect_used)] // Test support: no PgBouncer means no test.
#[must_use]
pub fn behind_pgbouncer(server_connections: u32) -> (TestDb, TestPgBouncer, ConnectionConfig) {
    let cluster = TestCluster::shared().expect("the test kit's shared cluster");
    let db = TestDb::on_cluster(cluster).expect("a test database");
    let bouncer = TestPgBouncer::builder(cluster.host(), cluster.port())
        .default_pool_size(server_connections)
        .user(db.user())
        .start()
        .expect("a PgBouncer in transaction mode (apt-get install pgbouncer)");
    let url = postgres_url(
        bouncer.host(),
        bouncer.port(),
        db.user(),
        db.password(),
        db.name(),
    );
    let config = case_config(&format!("{url}?pgbouncer_mode=transaction&sslmode=disable"))
        .expect("a valid configuration");
    (db, bouncer, config)
}
