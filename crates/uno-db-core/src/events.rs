//! The log events both backends emit, so that their messages and fields are
//! identical. Target `uno_db`; fields `role`, `host`, `database`,
//! `attempt`, `delay_ms`, `error`. The password is never logged: it is not
//! a field, and configurations are rendered with [`ConnectionConfig::to_url`],
//! which masks it.

use std::time::Duration;

use crate::config::ConnectionConfig;
use crate::error::Error;
use crate::status::CloseReason;

/// The `tracing` target of every uno-db event.
pub const TARGET: &str = "uno_db";

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Renders an error with its whole cause chain, for the `error` field.
#[must_use]
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

/// Emits the events of one engine, tagged with its configuration.
#[derive(Debug, Clone, Copy)]
pub struct EngineEvents<'a> {
    config: &'a ConnectionConfig,
}

impl<'a> EngineEvents<'a> {
    /// Events about the engine built from `config`.
    #[must_use]
    pub fn new(config: &'a ConnectionConfig) -> Self {
        Self { config }
    }

    fn host(&self) -> String {
        self.config.hosts().join(",")
    }

    /// An engine was created.
    pub fn engine_created(&self, backend: &str) {
        tracing::info!(
            target: TARGET,
            role = self.config.role(),
            host = %self.host(),
            database = self.config.database(),
            backend,
            pool_size = self.config.pool_size(),
            max_overflow = self.config.max_overflow(),
            "engine created"
        );
    }

    /// An engine was disposed.
    pub fn engine_disposed(&self) {
        tracing::info!(
            target: TARGET,
            role = self.config.role(),
            host = %self.host(),
            database = self.config.database(),
            "engine disposed"
        );
    }

    /// A connection attempt starts.
    pub fn connect_attempt(&self, attempt: u32) {
        tracing::debug!(
            target: TARGET,
            role = self.config.role(),
            host = %self.host(),
            database = self.config.database(),
            attempt,
            "connecting"
        );
    }

    /// A connection attempt succeeded.
    pub fn connected(&self, attempt: u32, elapsed: Duration) {
        tracing::debug!(
            target: TARGET,
            role = self.config.role(),
            host = %self.host(),
            database = self.config.database(),
            attempt,
            elapsed_ms = millis(elapsed),
            "connected"
        );
    }

    /// A connection attempt failed and will be retried after `delay`.
    pub fn connect_retry(&self, attempt: u32, delay: Duration, error: &Error) {
        tracing::warn!(
            target: TARGET,
            role = self.config.role(),
            host = %self.host(),
            database = self.config.database(),
            attempt,
            delay_ms = millis(delay),
            error = %error_chain(error),
            "connection attempt failed; retrying"
        );
    }

    /// Connecting failed for good.
    pub fn connect_failed(&self, attempt: u32, error: &Error) {
        tracing::error!(
            target: TARGET,
            role = self.config.role(),
            host = %self.host(),
            database = self.config.database(),
            attempt,
            error = %error_chain(error),
            transient = error.is_transient(),
            "connection failed"
        );
    }

    /// A physical connection was closed.
    pub fn connection_closed(&self, reason: CloseReason) {
        tracing::debug!(
            target: TARGET,
            role = self.config.role(),
            host = %self.host(),
            database = self.config.database(),
            reason = reason.as_str(),
            "connection closed"
        );
    }

    /// A checkout gave up after `waited`.
    pub fn acquire_timeout(&self, waited: Duration, error: &Error) {
        tracing::warn!(
            target: TARGET,
            role = self.config.role(),
            host = %self.host(),
            database = self.config.database(),
            waited_ms = millis(waited),
            error = %error_chain(error),
            "timed out waiting for a pooled connection"
        );
    }

    /// A returned connection was discarded instead of reused.
    pub fn connection_discarded(&self, reason: CloseReason, error: Option<&Error>) {
        let error = error.map(|e| error_chain(e));
        tracing::warn!(
            target: TARGET,
            role = self.config.role(),
            host = %self.host(),
            database = self.config.database(),
            reason = reason.as_str(),
            error = error.as_deref(),
            "connection discarded"
        );
    }
}

/// A whole transaction failed to serialize (or deadlocked) and is about to
/// run again after `delay` (attempt `attempt` failed).
pub fn transaction_retry(attempt: u32, delay: Duration, error: &Error) {
    tracing::debug!(
        target: TARGET,
        attempt,
        delay_ms = millis(delay),
        sqlstate = error.sqlstate().map(|c| c.code()),
        "transaction failed to serialize; retrying"
    );
}
