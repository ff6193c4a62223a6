//! Integration tests of uno-db-core: the intended use of the mocks and
//! of the fake database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod blocking_repository;
mod client_mock;
mod fake_blocking;
mod fake_nonblocking;
mod listener_mock;
mod nonblocking_repository;
mod send_sync;
