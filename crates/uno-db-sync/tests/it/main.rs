//! Integration tests of the blocking backend against a real server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod basics;
mod callbacks;
mod cancel;
mod conformance;
mod connect_errors;
mod events;
mod faults;
mod measure;
mod pool;
mod resilience;
mod runtime;
mod sessions;
mod settings;
mod statement_cache;
mod support;
