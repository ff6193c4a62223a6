//! For backend authors: the lifecycle kernel and the kit that the blocking
//! and async backends are built from. Applications never need this module.
//!
//! Every decision about a physical connection is made here, once, so that
//! both backends behave alike and a fix lands in both:
//!
//! - [`EngineCore`]: per engine. Opening ([`EngineCore::open_steps`]: search
//!   path, callbacks, role; a failure discards the connection), connecting
//!   with retry bounded by `pool_timeout` as a whole
//!   ([`EngineCore::connect_plan`]), which connect error a timeout reports
//!   ([`EngineCore::connect_trouble`]), whether an idle connection may be
//!   handed out ([`EngineCore::checkout_verdict`], `pre_ping`), what a
//!   returned one needs ([`EngineCore::return_plan`]: roll back, restore role
//!   and search path, cancel and discard, or close as expired, broken,
//!   disposed or surplus).
//! - [`ConnState`]: per physical connection. Transaction tracking from the
//!   SQL ([`SqlEffects`]), statements cancelled mid-flight, connections lost
//!   to fatal errors, stale cached plans, the session's aborted state and
//!   how `commit` ends, lifetime with jitter, idle time, the statement cache.
//! - [`cancel_request_failed`] / [`cancel_request_timed_out`]: what a
//!   cancel request sent through a connection's cancel handle reports.
//! - [`SharedConnState`]: per shared connection of the multiplexed mode.
//!   Which statements may go there ([`admit_multiplexed`], read once per
//!   statement text with [`AdmittedSql`]), which one the
//!   next statement takes ([`pick_shared`]), what a statement's error,
//!   time-out or dropped caller does to it, and when it is replaced.
//! - [`RowsShape`] ([`AllRows`], [`OneRow`], [`OptionalRow`]): what
//!   `query`, `query_one` and `query_opt` make of the rows as they arrive;
//!   [`exactly_one`] / [`at_most_one`]: the row-count rules of `query_one`
//!   and `query_opt` over a list.
//! - [`ListenerState`]: per listener. Its channels, the quoted
//!   `LISTEN`/`UNLISTEN` statements, whether an error lost the connection,
//!   and the [`Reconnected`](crate::ListenerEvent::Reconnected) event owed
//!   after a reconnect.
//!
//! A backend keeps only the I/O: how to connect, how to send a statement,
//! how its pool waits.
//!
//! The kit around the kernel: [`EngineRegistry`] (one engine per
//! configuration, for factories), [`StatementCache`], [`PoolMetrics`] (the
//! counters, exported to the `metrics` facade with the `metrics` feature),
//! [`events`] (the log events both backends emit), and [`from_driver`] /
//! [`from_connect`] (the driver's errors classified).
//!
//! With the `tls` feature: [`RustlsConnector`], the one TLS connector both
//! backends hand to the driver, built from [`TlsSettings`] (libpq's
//! `sslmode`, `sslrootcert`, `sslcert`, `sslkey`), every file problem
//! reported at once as [`TlsFileProblem`]s.

mod admitted_sql;
mod cancel_request;
mod conn_state;
mod connect_plan;
mod describe_plan;
mod drain;
mod driver_error;
mod engine_core;
mod engine_registry;
pub mod events;
mod listen_state;
mod live_backends;
#[cfg(feature = "metrics")]
mod metrics_export;
mod multiplex;
mod passfile;
mod pool_metrics;
mod pool_ops;
mod rows;
mod run_mark;
mod send_plan;
mod shared_conn;
mod sql_effects;
mod statement_cache;
mod striped;
mod striped_counter;
#[cfg(feature = "tls")]
mod tls;

/// The most connections a pool may ever hold (`pool_size + max_overflow`
/// is validated against it); a backend whose pool cannot be resized builds
/// it with this ceiling and keeps to [`EngineCore::max_connections`].
pub use crate::config::limits::MAX_CONNECTIONS;
/// The most shared connections of the multiplexed mode
/// (`multiplex_connections` is validated against it).
pub use crate::config::limits::MAX_MULTIPLEX_CONNECTIONS;
pub use cancel_request::{cancel_request_failed, cancel_request_timed_out};
pub use conn_state::{ConnState, connection_lost};
pub use connect_plan::{Attempt, ConnectPlan, ConnectStep, RoleCheck};
use describe_plan::parameter_count_mismatch;
pub use describe_plan::{DescribePlan, PINNED_BEGIN, PINNED_END};
pub use drain::{Drain, DrainStep, ForcedClose};
pub use driver_error::{from_connect, from_driver};
pub use engine_core::{
    ALIVE_BYPASS_WINDOW, Checkout, CredentialSource, EngineCore, OpenStep, ROLE_QUERY, ReturnPlan,
};
pub use engine_registry::{EngineRegistry, RegisteredEngine};
pub use listen_state::ListenerState;
pub use live_backends::{BACKEND_PID_QUERY, BackendPid};
pub use pool_metrics::PoolMetrics;
pub use pool_ops::LeakTicket;

/// Whether `Engine::connect`/`session` called through a trait object
/// report their caller's location to leak detection: true unless the
/// `mock` feature is on (mockall cannot mock `#[track_caller]` methods, so
/// the traits declare it only without mocks; then a call through
/// `dyn Engine` names the backend's method instead).
pub const DYN_ENGINE_TRACKS_CALLER: bool = cfg!(not(feature = "mock"));
pub use admitted_sql::AdmittedSql;
pub use multiplex::{SharedPick, admit_multiplexed, multiplexed_sql, pick_shared};
pub use rows::{
    AllRows, FirstRow, OneRow, OptionalRow, PreparedStatement, RowsShape, at_most_one, exactly_one,
    first_simple_row,
};
pub use run_mark::{LookPeriod, RunMark, Sighting, look_period};
pub use send_plan::{SendPlan, typed_params};
pub use shared_conn::{SharedConnState, SharedStatement};
pub use sql_effects::SqlEffects;
pub use statement_cache::StatementCache;
pub use striped::Striped;
#[cfg(feature = "tls")]
pub use tls::{
    RootCerts, RustlsConnect, RustlsConnector, RustlsStream, TlsFileProblem, TlsSettings,
    Verification,
};

/// The TLS connector both backends hand the driver, for connections and
/// cancel requests: rustls ([`RustlsConnector`]) with the `tls` feature.
#[cfg(feature = "tls")]
pub type MakeTls = RustlsConnector;
/// The TLS connector both backends hand the driver: without the `tls`
/// feature, none (the configuration admits no mode that needs one).
#[cfg(not(feature = "tls"))]
pub type MakeTls = tokio_postgres::NoTls;
