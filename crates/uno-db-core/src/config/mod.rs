//! [`ConnectionConfig`]: what to connect to and how to pool, validated once
//! at [`ConnectionConfigBuilder::build`], parsed from URLs and libpq
//! `key=value` strings, generated back as URLs, layered over the
//! environment on request, and (feature `serde`) deserialized from files.
//!
//! Every field is declared once, in `table.rs`; see `docs/configuration.md`
//! for every field, its default and its rules.

mod builder;
mod channel_binding;
mod codec;
mod connection_config;
#[cfg(test)]
mod docs;
mod driver;
mod driver_config;
mod duration;
mod endpoint;
mod env;
mod key;
mod libpq;
mod libpq_enum;
pub mod limits;
mod load_balance_hosts;
mod options;
mod params;
mod parse;
mod pgbouncer_mode;
#[cfg(feature = "serde")]
mod serde;
mod ssl_mode;
mod ssl_negotiation;
mod table;
mod table_macro;
mod target_session_attrs;
mod tls_setup;
mod url;
mod validate;
#[cfg(test)]
mod violation_tuples;

#[cfg(test)]
mod proptests;

pub use builder::ConnectionConfigBuilder;
pub use channel_binding::ChannelBinding;
pub use connection_config::ConnectionConfig;
pub use driver::Driver;
pub use endpoint::Endpoint;
pub use env::{EnvSource, ProcessEnv};
pub use key::ConfigKey;
pub use load_balance_hosts::LoadBalanceHosts;
pub use pgbouncer_mode::PgBouncerMode;
pub use ssl_mode::SslMode;
pub use ssl_negotiation::SslNegotiation;
pub use table::defaults;
pub use target_session_attrs::{ServerRole, TargetSessionAttrs};
