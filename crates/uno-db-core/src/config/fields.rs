//! A partial configuration: each field set or not, so that layers
//! (explicit, `DATABASE_URL`, `UNO_DB_*`, `PG*`, defaults) can be merged.

use std::time::Duration;

use secrecy::SecretString;

use crate::config::connection_config::Inner;
use crate::config::{Driver, SslMode, defaults};
use crate::retry::RetryPolicy;

/// One layer of settings. `None` = not set in this layer; for optional
/// fields `Some(None)` = explicitly unset (for example `pool_recycle=off`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Fields {
    pub(crate) role: Option<String>,
    pub(crate) password: Option<Option<SecretString>>,
    pub(crate) database: Option<String>,
    pub(crate) hosts: Option<Vec<String>>,
    pub(crate) port: Option<u16>,
    pub(crate) driver: Option<Driver>,
    pub(crate) schema: Option<Option<String>>,
    pub(crate) application_name: Option<Option<String>>,
    pub(crate) set_role: Option<Option<String>>,
    pub(crate) pool_size: Option<usize>,
    pub(crate) max_overflow: Option<usize>,
    pub(crate) pool_timeout: Option<Duration>,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) pool_recycle: Option<Option<Duration>>,
    pub(crate) idle_timeout: Option<Option<Duration>>,
    pub(crate) pre_ping: Option<bool>,
    pub(crate) statement_timeout: Option<Option<Duration>>,
    pub(crate) ssl_mode: Option<SslMode>,
    pub(crate) keepalives_idle: Option<Option<Duration>>,
    pub(crate) tcp_user_timeout: Option<Option<Duration>>,
    pub(crate) statement_cache_size: Option<usize>,
    pub(crate) options: Option<Vec<(String, String)>>,
    pub(crate) retry_max_attempts: Option<u32>,
    pub(crate) retry_initial_delay: Option<Duration>,
    pub(crate) retry_multiplier: Option<f64>,
    pub(crate) retry_max_delay: Option<Duration>,
    pub(crate) retry_deadline: Option<Duration>,
}

impl Fields {
    /// Every field of `inner`, set.
    pub(crate) fn from_inner(inner: &Inner) -> Self {
        let mut fields = Self {
            role: Some(inner.role.clone()),
            password: Some(inner.password.clone()),
            database: Some(inner.database.clone()),
            hosts: Some(inner.hosts.clone()),
            port: Some(inner.port),
            driver: Some(inner.driver),
            schema: Some(inner.schema.clone()),
            application_name: Some(inner.application_name.clone()),
            set_role: Some(inner.set_role.clone()),
            pool_size: Some(inner.pool_size),
            max_overflow: Some(inner.max_overflow),
            pool_timeout: Some(inner.pool_timeout),
            connect_timeout: Some(inner.connect_timeout),
            pool_recycle: Some(inner.pool_recycle),
            idle_timeout: Some(inner.idle_timeout),
            pre_ping: Some(inner.pre_ping),
            statement_timeout: Some(inner.statement_timeout),
            ssl_mode: Some(inner.ssl_mode),
            keepalives_idle: Some(inner.keepalives_idle),
            tcp_user_timeout: Some(inner.tcp_user_timeout),
            statement_cache_size: Some(inner.statement_cache_size),
            options: Some(inner.options.clone()),
            ..Self::default()
        };
        fields.set_retry(inner.retry);
        fields
    }

    /// Sets every retry field from `policy`.
    pub(crate) fn set_retry(&mut self, policy: RetryPolicy) {
        self.retry_max_attempts = Some(policy.get_max_attempts());
        self.retry_initial_delay = Some(policy.get_initial_delay());
        self.retry_multiplier = Some(policy.get_multiplier());
        self.retry_max_delay = Some(policy.get_max_delay());
        self.retry_deadline = Some(policy.get_deadline());
    }

    /// This layer over `lower`: each field set here wins, the rest come
    /// from `lower`.
    pub(crate) fn or(self, lower: Self) -> Self {
        Self {
            role: self.role.or(lower.role),
            password: self.password.or(lower.password),
            database: self.database.or(lower.database),
            hosts: self.hosts.or(lower.hosts),
            port: self.port.or(lower.port),
            driver: self.driver.or(lower.driver),
            schema: self.schema.or(lower.schema),
            application_name: self.application_name.or(lower.application_name),
            set_role: self.set_role.or(lower.set_role),
            pool_size: self.pool_size.or(lower.pool_size),
            max_overflow: self.max_overflow.or(lower.max_overflow),
            pool_timeout: self.pool_timeout.or(lower.pool_timeout),
            connect_timeout: self.connect_timeout.or(lower.connect_timeout),
            pool_recycle: self.pool_recycle.or(lower.pool_recycle),
            idle_timeout: self.idle_timeout.or(lower.idle_timeout),
            pre_ping: self.pre_ping.or(lower.pre_ping),
            statement_timeout: self.statement_timeout.or(lower.statement_timeout),
            ssl_mode: self.ssl_mode.or(lower.ssl_mode),
            keepalives_idle: self.keepalives_idle.or(lower.keepalives_idle),
            tcp_user_timeout: self.tcp_user_timeout.or(lower.tcp_user_timeout),
            statement_cache_size: self.statement_cache_size.or(lower.statement_cache_size),
            options: self.options.or(lower.options),
            retry_max_attempts: self.retry_max_attempts.or(lower.retry_max_attempts),
            retry_initial_delay: self.retry_initial_delay.or(lower.retry_initial_delay),
            retry_multiplier: self.retry_multiplier.or(lower.retry_multiplier),
            retry_max_delay: self.retry_max_delay.or(lower.retry_max_delay),
            retry_deadline: self.retry_deadline.or(lower.retry_deadline),
        }
    }

    /// Every field, unset ones at their [default](defaults). Not validated.
    pub(crate) fn resolve(self) -> Inner {
        let default_retry = RetryPolicy::default();
        let retry = default_retry
            .max_attempts(
                self.retry_max_attempts
                    .unwrap_or(default_retry.get_max_attempts()),
            )
            .initial_delay(
                self.retry_initial_delay
                    .unwrap_or(default_retry.get_initial_delay()),
            )
            .multiplier(
                self.retry_multiplier
                    .unwrap_or(default_retry.get_multiplier()),
            )
            .max_delay(
                self.retry_max_delay
                    .unwrap_or(default_retry.get_max_delay()),
            )
            .deadline(self.retry_deadline.unwrap_or(default_retry.get_deadline()));
        Inner {
            role: self.role.unwrap_or_else(|| defaults::ROLE.to_owned()),
            password: self.password.unwrap_or(None),
            database: self
                .database
                .unwrap_or_else(|| defaults::DATABASE.to_owned()),
            hosts: self
                .hosts
                .unwrap_or_else(|| vec![defaults::HOST.to_owned()]),
            port: self.port.unwrap_or(defaults::PORT),
            driver: self.driver.unwrap_or(defaults::DRIVER),
            schema: self.schema.unwrap_or(None),
            application_name: self.application_name.unwrap_or(None),
            set_role: self.set_role.unwrap_or(None),
            pool_size: self.pool_size.unwrap_or(defaults::POOL_SIZE),
            max_overflow: self.max_overflow.unwrap_or(defaults::MAX_OVERFLOW),
            pool_timeout: self.pool_timeout.unwrap_or(defaults::POOL_TIMEOUT),
            connect_timeout: self.connect_timeout.unwrap_or(defaults::CONNECT_TIMEOUT),
            pool_recycle: self.pool_recycle.unwrap_or(defaults::POOL_RECYCLE),
            idle_timeout: self.idle_timeout.unwrap_or(defaults::IDLE_TIMEOUT),
            pre_ping: self.pre_ping.unwrap_or(defaults::PRE_PING),
            statement_timeout: self
                .statement_timeout
                .unwrap_or(defaults::STATEMENT_TIMEOUT),
            ssl_mode: self.ssl_mode.unwrap_or(defaults::SSL_MODE),
            keepalives_idle: self.keepalives_idle.unwrap_or(defaults::KEEPALIVES_IDLE),
            tcp_user_timeout: self.tcp_user_timeout.unwrap_or(defaults::TCP_USER_TIMEOUT),
            statement_cache_size: self
                .statement_cache_size
                .unwrap_or(defaults::STATEMENT_CACHE_SIZE),
            options: self.options.unwrap_or_default(),
            retry,
        }
    }
}
