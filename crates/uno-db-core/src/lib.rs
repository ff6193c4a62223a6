//! Core of uno-db: the traits both backends implement, the validated
//! [`ConnectionConfig`], the one [`Error`] type, [`RetryPolicy`], connection
//! callbacks and pool status types.
//!
//! The traits come in two families with the same names and methods:
//! [`blocking`] and [`nonblocking`] (async). With the `mock` feature each
//! trait has a mockall mock (`blocking::MockEngine`, ...), and `fake`
//! has a scripted fake database for both families (`fake::FakeDatabase`).
//!
//! Most applications depend on the `uno-db` facade crate instead, which
//! re-exports this crate and the backends.

pub mod backend;
pub mod blocking;
mod callbacks;
mod config;
mod config_violation;
mod copy;
mod credentials;
mod error;
#[cfg(feature = "mock")]
pub mod fake;
#[cfg(test)]
mod fake_server;
mod from_row;
mod identifier;
mod listener_event;
mod listener_stream;
pub mod nonblocking;
mod notification;
mod retry;
mod row;
mod row_stream;
mod sqlstate;
mod statement;
mod status;
mod transaction_options;

pub use callbacks::{
    AsyncCallback, AsyncCallbacks, BlockingCallback, BlockingCallbacks, BoxFuture, CallbackRegistry,
};
pub use config::*;
pub use config_violation::ConfigViolation;
pub use credentials::CredentialRequest;
pub use error::{BoxError, Error, ErrorKind, Result, TlsError, error_chain, is_transient_sqlstate};
pub use from_row::FromRow;
pub use identifier::quote_identifier;
pub use listener_event::ListenerEvent;
pub use notification::Notification;
pub use retry::{Backoff, RetryPolicy};
pub use row::{Column, ColumnIndex, Row, RowBuilder};
pub use sqlstate::sqlstate_name;
pub use statement::Statement;
pub use status::{CloseReason, CloseReport, PoolCounters, PoolStatus};
pub use transaction_options::{IsolationLevel, TransactionOptions};

/// Parameter and column value conversions, shared by both drivers.
pub use postgres_types::{FromSql, ToSql, Type};
/// Secrets (passwords, tokens) as the configuration and credential
/// providers hold them: never shown by `Debug`.
pub use secrecy::{ExposeSecret, SecretString};
/// The driver's SQLSTATE codes, for matching [`Error::sqlstate`].
pub use tokio_postgres::error::SqlState;

// The configuration guide's examples are compiled and run as doc tests.
#[cfg(all(doctest, feature = "serde"))]
#[doc = include_str!("../../../docs/configuration.md")]
struct ConfigurationGuide;
