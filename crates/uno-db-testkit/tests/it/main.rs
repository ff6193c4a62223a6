//! Integration tests of the test kit against real Postgres servers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod child_process;
mod cluster;
mod deadline;
mod pgbouncer;
mod proxy;
mod replica_set;
mod roles;
mod send_sync;
mod test_db;
mod tls;
