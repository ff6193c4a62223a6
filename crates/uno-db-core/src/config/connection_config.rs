//! The validated, immutable connection configuration.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::config::builder::ConnectionConfigBuilder;
use crate::config::env::EnvSource;
use crate::config::fields::Fields;
use crate::config::{Driver, SslMode, parse, url};
use crate::error::Error;
use crate::retry::RetryPolicy;

/// What to connect to and how to pool: validated at
/// [`build`](ConnectionConfigBuilder::build), immutable afterwards, cheap to
/// clone (the fields sit behind an `Arc`).
///
/// Build one with [`builder`](Self::builder), parse a URL or libpq string
/// with [`str::parse`], or layer the environment with
/// [`from_env`](Self::from_env). Change one by deriving a new one with
/// [`to_builder`](Self::to_builder). `Debug` and `Display` never show the
/// password.
///
/// ```
/// use std::time::Duration;
/// use uno_db_core::{ConnectionConfig, Driver};
///
/// let config: ConnectionConfig =
///     "postgresql+tokio-postgres://app:s3cret@db.example:5433/orders?pool_size=20".parse()?;
/// assert_eq!(config.role(), "app");
/// assert_eq!(config.hosts(), ["db.example"]);
/// assert_eq!(config.driver(), Driver::TokioPostgres);
/// assert_eq!(config.pool_timeout(), Duration::from_secs(30));
/// assert_eq!(
///     config.to_string(),
///     "postgresql+tokio-postgres://app:***@db.example:5433/orders?pool_size=20"
/// );
///
/// let bigger = config.to_builder().pool_size(40).build()?;
/// assert_eq!(bigger.pool_size(), 40);
/// assert_eq!(config.pool_size(), 20);
/// # Ok::<(), uno_db_core::Error>(())
/// ```
#[derive(Clone)]
pub struct ConnectionConfig(Arc<Inner>);

/// The resolved fields of a configuration (validated once wrapped in
/// [`ConnectionConfig`]).
#[derive(Clone)]
pub(crate) struct Inner {
    pub(crate) role: String,
    pub(crate) password: Option<SecretString>,
    pub(crate) database: String,
    pub(crate) hosts: Vec<String>,
    pub(crate) port: u16,
    pub(crate) driver: Driver,
    pub(crate) schema: Option<String>,
    pub(crate) application_name: Option<String>,
    pub(crate) set_role: Option<String>,
    pub(crate) pool_size: usize,
    pub(crate) max_overflow: usize,
    pub(crate) pool_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) pool_recycle: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) pre_ping: bool,
    pub(crate) statement_timeout: Option<Duration>,
    pub(crate) ssl_mode: SslMode,
    pub(crate) keepalives_idle: Option<Duration>,
    pub(crate) tcp_user_timeout: Option<Duration>,
    pub(crate) statement_cache_size: usize,
    pub(crate) options: Vec<(String, String)>,
    pub(crate) retry: RetryPolicy,
}

impl ConnectionConfig {
    /// A builder with nothing set: every field falls back to its default
    /// (or, with [`defaults_from_env`](ConnectionConfigBuilder::defaults_from_env),
    /// to the environment).
    pub fn builder() -> ConnectionConfigBuilder {
        ConnectionConfigBuilder::new()
    }

    /// A builder with every field of this configuration set explicitly, to
    /// derive a changed configuration.
    pub fn to_builder(&self) -> ConnectionConfigBuilder {
        ConnectionConfigBuilder::from_fields(Fields::from_inner(&self.0))
    }

    /// The configuration the process environment describes: `DATABASE_URL`,
    /// then `UNO_DB_*`, then libpq's `PG*` variables, then the defaults.
    ///
    /// # Errors
    ///
    /// A [`Config`](crate::ErrorKind::Config) error naming every malformed
    /// variable and every broken rule.
    pub fn from_env() -> Result<Self, Error> {
        Self::builder().defaults_from_env().build()
    }

    /// As [`from_env`](Self::from_env), reading the variables from `env`.
    ///
    /// ```
    /// use uno_db_core::ConnectionConfig;
    ///
    /// let env = [("DATABASE_URL", "postgresql://app@db/orders"), ("UNO_DB_POOL_SIZE", "5")];
    /// let config = ConnectionConfig::from_env_with(&env)?;
    /// assert_eq!(config.hosts(), ["db"]);
    /// assert_eq!(config.pool_size(), 5);
    /// # Ok::<(), uno_db_core::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A [`Config`](crate::ErrorKind::Config) error naming every malformed
    /// variable and every broken rule.
    pub fn from_env_with<E: EnvSource + ?Sized>(env: &E) -> Result<Self, Error> {
        Self::builder().defaults_from(env).build()
    }

    pub(crate) fn from_inner(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }

    /// The login role (user name).
    #[must_use]
    pub fn role(&self) -> &str {
        &self.0.role
    }

    /// The password, if any. Expose it only to hand it to the driver.
    #[must_use]
    pub fn password(&self) -> Option<&SecretString> {
        self.0.password.as_ref()
    }

    /// The database name.
    #[must_use]
    pub fn database(&self) -> &str {
        &self.0.database
    }

    /// The hosts (names, IP addresses or Unix socket directories), tried in
    /// order; never empty.
    #[must_use]
    pub fn hosts(&self) -> &[String] {
        &self.0.hosts
    }

    /// The port, shared by every host.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.0.port
    }

    /// The driver the configuration asks for.
    #[must_use]
    pub fn driver(&self) -> Driver {
        self.0.driver
    }

    /// The schema (or comma-separated schemas) to set as `search_path`.
    #[must_use]
    pub fn schema(&self) -> Option<&str> {
        self.0.schema.as_deref()
    }

    /// The schema names of [`schema`](Self::schema), split on commas and
    /// trimmed, in `search_path` order; empty when no schema is set. Quote
    /// each one separately when building `SET search_path`.
    ///
    /// ```
    /// use uno_db_core::ConnectionConfig;
    ///
    /// let config = ConnectionConfig::builder().schema("app, public").build()?;
    /// assert_eq!(config.schemas().collect::<Vec<_>>(), ["app", "public"]);
    /// # Ok::<(), uno_db_core::Error>(())
    /// ```
    pub fn schemas(&self) -> impl Iterator<Item = &str> + '_ {
        self.0
            .schema
            .as_deref()
            .into_iter()
            .flat_map(|schema| schema.split(','))
            .map(str::trim)
    }

    /// The `application_name` reported to the server.
    #[must_use]
    pub fn application_name(&self) -> Option<&str> {
        self.0.application_name.as_deref()
    }

    /// The role to `SET ROLE` to on checkout.
    #[must_use]
    pub fn set_role(&self) -> Option<&str> {
        self.0.set_role.as_deref()
    }

    /// How many connections the pool keeps.
    #[must_use]
    pub fn pool_size(&self) -> usize {
        self.0.pool_size
    }

    /// How many extra connections may be opened under a burst.
    #[must_use]
    pub fn max_overflow(&self) -> usize {
        self.0.max_overflow
    }

    /// The most connections open at once: `pool_size + max_overflow`.
    #[must_use]
    pub fn max_connections(&self) -> usize {
        self.0.pool_size.saturating_add(self.0.max_overflow)
    }

    /// The longest wait for a pooled connection.
    #[must_use]
    pub fn pool_timeout(&self) -> Duration {
        self.0.pool_timeout
    }

    /// The longest wait to establish one connection.
    #[must_use]
    pub fn connect_timeout(&self) -> Duration {
        self.0.connect_timeout
    }

    /// The maximum lifetime of a connection; `None` keeps connections
    /// forever.
    #[must_use]
    pub fn pool_recycle(&self) -> Option<Duration> {
        self.0.pool_recycle
    }

    /// How long an idle connection is kept; `None` keeps it.
    #[must_use]
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.0.idle_timeout
    }

    /// Whether a connection is pinged before being handed out.
    #[must_use]
    pub fn pre_ping(&self) -> bool {
        self.0.pre_ping
    }

    /// The server-side `statement_timeout`; `None` leaves the server's.
    #[must_use]
    pub fn statement_timeout(&self) -> Option<Duration> {
        self.0.statement_timeout
    }

    /// Whether to use TLS.
    #[must_use]
    pub fn ssl_mode(&self) -> SslMode {
        self.0.ssl_mode
    }

    /// The TCP keepalive idle time; `None` turns keepalives off.
    #[must_use]
    pub fn keepalives_idle(&self) -> Option<Duration> {
        self.0.keepalives_idle
    }

    /// The TCP user timeout (Linux); `None` leaves the system's.
    #[must_use]
    pub fn tcp_user_timeout(&self) -> Option<Duration> {
        self.0.tcp_user_timeout
    }

    /// The per-connection prepared statement cache capacity; 0 disables
    /// it (for `PgBouncer` in transaction mode).
    #[must_use]
    pub fn statement_cache_size(&self) -> usize {
        self.0.statement_cache_size
    }

    /// Server settings (GUCs) sent at connect time, in order.
    #[must_use]
    pub fn options(&self) -> &[(String, String)] {
        &self.0.options
    }

    /// How connecting retries transient failures.
    #[must_use]
    pub fn retry(&self) -> RetryPolicy {
        self.0.retry
    }

    /// `role@hosts:port/database`, for messages (never the password).
    #[must_use]
    pub fn target(&self) -> String {
        format!(
            "{}@{}:{}/{}",
            self.0.role,
            self.0.hosts.join(","),
            self.0.port,
            self.0.database
        )
    }

    /// The configuration as a URL with the password shown as `***`; the
    /// same as `Display`. Fields at their default are left out.
    #[must_use]
    pub fn to_url(&self) -> String {
        url::generate(&self.0, false)
    }

    /// The configuration as a URL including the password. Parsing it gives
    /// back an equal configuration. Keep it out of logs.
    #[must_use]
    pub fn to_url_with_password(&self) -> String {
        url::generate(&self.0, true)
    }
}

impl Default for ConnectionConfig {
    /// Every field at its [default](crate::defaults).
    fn default() -> Self {
        Self::from_inner(Fields::default().resolve())
    }
}

impl PartialEq for ConnectionConfig {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&*self.0, &*other.0);
        let same_password = match (&a.password, &b.password) {
            (Some(x), Some(y)) => x.expose_secret() == y.expose_secret(),
            (None, None) => true,
            _ => false,
        };
        same_password
            && a.role == b.role
            && a.database == b.database
            && a.hosts == b.hosts
            && a.port == b.port
            && a.driver == b.driver
            && a.schema == b.schema
            && a.application_name == b.application_name
            && a.set_role == b.set_role
            && a.pool_size == b.pool_size
            && a.max_overflow == b.max_overflow
            && a.pool_timeout == b.pool_timeout
            && a.connect_timeout == b.connect_timeout
            && a.pool_recycle == b.pool_recycle
            && a.idle_timeout == b.idle_timeout
            && a.pre_ping == b.pre_ping
            && a.statement_timeout == b.statement_timeout
            && a.ssl_mode == b.ssl_mode
            && a.keepalives_idle == b.keepalives_idle
            && a.tcp_user_timeout == b.tcp_user_timeout
            && a.statement_cache_size == b.statement_cache_size
            && a.options == b.options
            && a.retry == b.retry
    }
}

/// Stands in for the password in `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Debug for ConnectionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &*self.0;
        f.debug_struct("ConnectionConfig")
            .field("role", &c.role)
            .field("password", &c.password.as_ref().map(|_| Redacted))
            .field("database", &c.database)
            .field("hosts", &c.hosts)
            .field("port", &c.port)
            .field("driver", &c.driver)
            .field("schema", &c.schema)
            .field("application_name", &c.application_name)
            .field("set_role", &c.set_role)
            .field("pool_size", &c.pool_size)
            .field("max_overflow", &c.max_overflow)
            .field("pool_timeout", &c.pool_timeout)
            .field("connect_timeout", &c.connect_timeout)
            .field("pool_recycle", &c.pool_recycle)
            .field("idle_timeout", &c.idle_timeout)
            .field("pre_ping", &c.pre_ping)
            .field("statement_timeout", &c.statement_timeout)
            .field("ssl_mode", &c.ssl_mode)
            .field("keepalives_idle", &c.keepalives_idle)
            .field("tcp_user_timeout", &c.tcp_user_timeout)
            .field("statement_cache_size", &c.statement_cache_size)
            .field("options", &c.options)
            .field("retry", &c.retry)
            .finish()
    }
}

impl fmt::Display for ConnectionConfig {
    /// The URL with the password masked, as [`to_url`](Self::to_url).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_url())
    }
}

impl FromStr for ConnectionConfig {
    type Err = Error;

    /// Parses a URL (`postgresql://role:password@host:port/db?param=value`)
    /// or a libpq `key=value` string, then validates it. Unset fields take
    /// their defaults; the environment is not read.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (fields, violations) = parse::parse(s);
        ConnectionConfigBuilder::from_parts(fields, violations).build()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::config::defaults;

    const SECRET: &str = "Zebra-Quux-9137!";

    fn with_secret() -> ConnectionConfig {
        ConnectionConfig::builder()
            .role("app")
            .password(SECRET)
            .build()
            .unwrap()
    }

    #[test]
    fn is_send_sync_and_cheap_to_clone() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ConnectionConfig>();
        let a = with_secret();
        let b = a.clone();
        assert!(Arc::ptr_eq(&a.0, &b.0));
    }

    #[test]
    fn default_has_every_default() {
        let c = ConnectionConfig::default();
        assert_eq!(c.role(), defaults::ROLE);
        assert!(c.password().is_none());
        assert_eq!(c.database(), defaults::DATABASE);
        assert_eq!(c.hosts(), [defaults::HOST]);
        assert_eq!(c.port(), defaults::PORT);
        assert_eq!(c.driver(), defaults::DRIVER);
        assert_eq!(c.schema(), None);
        assert_eq!(c.schemas().count(), 0);
        assert_eq!(c.application_name(), None);
        assert_eq!(c.set_role(), None);
        assert_eq!(c.pool_size(), defaults::POOL_SIZE);
        assert_eq!(c.max_overflow(), defaults::MAX_OVERFLOW);
        assert_eq!(c.max_connections(), 20);
        assert_eq!(c.pool_timeout(), defaults::POOL_TIMEOUT);
        assert_eq!(c.connect_timeout(), defaults::CONNECT_TIMEOUT);
        assert_eq!(c.pool_recycle(), defaults::POOL_RECYCLE);
        assert_eq!(c.idle_timeout(), defaults::IDLE_TIMEOUT);
        assert_eq!(c.pre_ping(), defaults::PRE_PING);
        assert_eq!(c.statement_timeout(), defaults::STATEMENT_TIMEOUT);
        assert_eq!(c.ssl_mode(), defaults::SSL_MODE);
        assert_eq!(c.keepalives_idle(), defaults::KEEPALIVES_IDLE);
        assert_eq!(c.tcp_user_timeout(), defaults::TCP_USER_TIMEOUT);
        assert_eq!(c.statement_cache_size(), defaults::STATEMENT_CACHE_SIZE);
        assert!(c.options().is_empty());
        assert_eq!(c.retry(), RetryPolicy::default());
        assert_eq!(ConnectionConfig::builder().build().unwrap(), c);
    }

    #[test]
    fn debug_and_display_never_show_the_password() {
        let c = with_secret();
        let debug = format!("{c:?}");
        let pretty = format!("{c:#?}");
        let display = c.to_string();
        for text in [&debug, &pretty, &display, &c.to_url(), &c.target()] {
            assert!(!text.contains(SECRET), "{text}");
            assert!(!text.contains("Zebra"), "{text}");
        }
        assert!(debug.contains("password: Some(***)"), "{debug}");
        assert_eq!(display, "postgresql://app:***@localhost:5432/postgres");
        assert!(c.to_url_with_password().contains("Zebra-Quux-9137%21"));
    }

    #[test]
    fn password_is_compared_by_value() {
        assert_eq!(with_secret(), with_secret());
        let other = with_secret()
            .to_builder()
            .password("other")
            .build()
            .unwrap();
        assert_ne!(with_secret(), other);
        let none = with_secret().to_builder().clear_password().build().unwrap();
        assert_ne!(with_secret(), none);
    }

    #[test]
    fn to_builder_derives_without_changing_the_original() {
        let a = with_secret();
        let b = a.to_builder().pool_size(20).build().unwrap();
        assert_eq!(a.pool_size(), 10);
        assert_eq!(b.pool_size(), 20);
        assert_eq!(b.to_builder().pool_size(10).build().unwrap(), a);
    }

    #[test]
    fn to_builder_ignores_the_environment() {
        let a = with_secret();
        let env = [("UNO_DB_POOL_SIZE", "3"), ("PGUSER", "other")];
        let b = a.to_builder().defaults_from(&env).build().unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn target_names_role_hosts_port_and_database() {
        let c = ConnectionConfig::builder()
            .role("app")
            .hosts(["a", "b"])
            .port(5433)
            .database("orders")
            .build()
            .unwrap();
        assert_eq!(c.target(), "app@a,b:5433/orders");
    }
}
