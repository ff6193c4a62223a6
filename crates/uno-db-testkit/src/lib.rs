//! Real Postgres for tests.
//!
//! - [`TestDb`]: a fresh database per test on whatever server is at hand (the one
//!   `UNO_DB_TEST_URL` names, the local one on port 5432, or a throwaway cluster), dropped
//!   when the test ends, also when it panics.
//! - [`TestCluster`]: a private, throwaway server a test owns and can stop, restart and crash;
//!   [`TestCluster::create_role`] makes password-protected users for authentication tests;
//!   [`TestClusterBuilder::tls`] gives it TLS, with certificates made at start
//!   ([`TestCluster::shared_tls`] is a shared one).
//! - [`FaultProxy`]: a TCP proxy between client and server that adds latency, black-holes,
//!   refuses or resets connections on command.
//! - [`TestReplicaSet`]: a throwaway primary plus streaming standbys that a test can crash,
//!   promote, re-point ([`TestReplicaSet::follow`]) and rewind ([`TestReplicaSet::demote`]),
//!   with a multi-host URL ([`TestReplicaSet::url`]) listing every member.
//! - [`TestPgBouncer`]: a real PgBouncer in front of a cluster, in the [`PoolMode`] a test
//!   chooses, for testing behind a pooler (needs `apt-get install pgbouncer`).
//!
//! - [`conformance`]: one set of behaviour tests, written against the core traits and run
//!   against both backends.
//!
//! All of it works from plain `#[test]`s and from `#[tokio::test]`s (either flavour), with
//! any test framework, and every network operation it performs has a deadline.
//!
//! ```no_run
//! use uno_db_testkit::{FaultProxy, TestDb};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let db = TestDb::new()?;
//! let proxy = FaultProxy::start(db.socket_addr()?)?;
//! let mut client = postgres::Client::connect(&db.url_through(&proxy), postgres::NoTls)?;
//! proxy.reset_all()?;
//! assert!(client.simple_query("SELECT 1").is_err());
//! # Ok(()) }
//! ```

mod admin;
mod bounded_command;
mod cluster;
mod cluster_builder;
pub mod conformance;
mod default_server;
mod error;
mod fault_mode;
mod free_port;
mod janitor;
mod log_tail;
mod pg_binaries;
mod pg_ctl;
mod pgbouncer;
mod pgbouncer_binary;
mod pgbouncer_builder;
mod pgbouncer_config;
mod pool_mode;
mod postgres_url;
mod pristine_data_dir;
mod proxy;
mod proxy_connection;
mod replica_set;
mod role;
mod scratch_dir;
mod server;
mod server_config;
mod server_owner;
mod sql_quote;
mod stale_db;
mod standby;
mod template_db;
mod test_db;
mod tls;

pub use bounded_command::run_bounded;
pub use cluster::TestCluster;
pub use cluster_builder::TestClusterBuilder;
pub use default_server::TEST_URL_ENV;
pub use error::TestkitError;
pub use fault_mode::FaultMode;
pub use pg_binaries::PG_BIN_ENV;
pub use pgbouncer::TestPgBouncer;
pub use pgbouncer_builder::TestPgBouncerBuilder;
pub use pool_mode::PoolMode;
pub use proxy::FaultProxy;
pub use replica_set::TestReplicaSet;
pub use role::TestRole;
pub use scratch_dir::SCRATCH_DIR_ENV;
pub use test_db::TestDb;
pub use tls::{TlsFiles, TlsOptions};

// The crate's README example is compiled as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
