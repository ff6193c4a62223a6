//! Integration tests of `uno-db-async` against a real `PostgreSQL`, through
//! the test kit (a fresh database per test).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod basics;
mod callbacks;
mod cancel;
mod conformance;
mod connect_errors;
mod faults;
mod handover;
mod multiplex;
mod pool;
mod roles;
mod sessions;
mod support;
