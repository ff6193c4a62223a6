//! Integration tests of the facade: `DatabaseFactory`, logging, a
//! repository written against the traits, over both backends, and a sweep
//! for secrets in everything uno-db shows.
//!
//! The conformance suite is not run here: each backend runs it from its own
//! test binary (`crates/uno-db-sync/tests/it/conformance.rs`,
//! `crates/uno-db-async/tests/it/conformance.rs`), so that
//! `cargo test -p uno-db-sync` / `-p uno-db-async` covers it, and the
//! facade only re-exports those same factory types.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod database_factory;
mod from_row;
mod logging;
mod repository;
mod security;
mod test_attr;
mod types;
