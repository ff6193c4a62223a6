//! Cross-backend integration tests: the conformance suite against both
//! backends, and the facade.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod async_conformance;
mod database_factory;
mod logging;
mod repository;
mod sync_conformance;
