//! The conformance suite: one set of behaviour tests, written once against
//! the core traits and run against both backends, so they cannot drift.
//!
//! Each case is a function taking an engine factory and a configuration of
//! a fresh database. The [`blocking_conformance!`](crate::blocking_conformance)
//! and [`nonblocking_conformance!`](crate::nonblocking_conformance) macros
//! turn every case into a `#[test]` with its own database and an outer
//! timeout:
//!
//! ```no_run
//! // In tests/it/main.rs of a crate that depends on uno-db-sync:
//! # mod hidden {
//! uno_db_testkit::blocking_conformance!(uno_db_sync::SyncEngineFactory::new());
//! # }
//! ```
//!
//! Besides the basic cases, two groups are named so that a test filter
//! picks them out: `clean_return_*` (a returned connection comes back
//! clean to the next user) and `fault_*` (behaviour on a real server under
//! faults: outages, black holes, terminated backends, fairness, session
//! state). `LISTEN`/`NOTIFY` has its own macros,
//! [`blocking_listen_conformance!`](crate::blocking_listen_conformance) and
//! [`nonblocking_listen_conformance!`](crate::nonblocking_listen_conformance),
//! with cases named `listen_*`; so do streamed rows and `COPY`
//! ([`blocking_streaming_conformance!`](crate::blocking_streaming_conformance),
//! [`nonblocking_streaming_conformance!`](crate::nonblocking_streaming_conformance),
//! cases named `stream_*` and `copy_*`), per-transaction server limits
//! ([`blocking_tx_conformance!`](crate::blocking_tx_conformance),
//! [`nonblocking_tx_conformance!`](crate::nonblocking_tx_conformance), cases
//! named `tx_*`), the pool operations
//! ([`blocking_ops_conformance!`](crate::blocking_ops_conformance),
//! [`nonblocking_ops_conformance!`](crate::nonblocking_ops_conformance),
//! cases named `ops_*`), and spans, metrics and log levels
//! ([`blocking_observability_conformance!`](crate::blocking_observability_conformance),
//! [`nonblocking_observability_conformance!`](crate::nonblocking_observability_conformance),
//! cases named `observability_*`); the async family's multiplexed mode has
//! [`nonblocking_multiplex_conformance!`](crate::nonblocking_multiplex_conformance),
//! cases named `multiplex_*`. Each `clean_return_*`/`fault_*` case says in its doc what it
//! pins; some fail on backends that do not do it yet, on purpose.

pub mod blocking;
pub mod blocking_ha;
pub mod blocking_listen;
pub mod blocking_observability;
pub mod blocking_ops;
pub mod blocking_pgbouncer;
pub mod blocking_security;
pub mod blocking_streaming;
pub mod blocking_tx;
mod case_config;
mod chain;
mod free_port;
mod ha_shared;
mod listen_shared;
pub mod nonblocking;
pub mod nonblocking_ha;
pub mod nonblocking_listen;
pub mod nonblocking_multiplex;
pub mod nonblocking_observability;
pub mod nonblocking_ops;
pub mod nonblocking_pgbouncer;
pub mod nonblocking_security;
pub mod nonblocking_streaming;
pub mod nonblocking_tx;
pub mod observability_shared;
mod ops_shared;
mod outer_timeout;
mod pgbouncer_setup;
mod security_setup;
mod shared;
mod streaming_shared;
mod temp_roles;
mod tx_shared;
mod unique_name;

pub use case_config::case_config;
pub use chain::io_error_in_chain;
pub use ha_shared::{FailoverFigures, HA_CASE_TIMEOUT};
pub use outer_timeout::{CASE_TIMEOUT, case_timeout, run_with_timeout};
pub use pgbouncer_setup::behind_pgbouncer;

// The macros expand in the user's crate; they reach these through `$crate`.
#[doc(hidden)]
pub use {tokio, uno_db_core};
