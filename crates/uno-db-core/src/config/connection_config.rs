//! The validated, immutable connection configuration.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::config::builder::ConnectionConfigBuilder;
use crate::config::env::EnvSource;
use crate::config::key::ConfigKey;
use crate::config::table::{Fields, Inner};
use crate::config::{Endpoint, defaults, parse, url};
use crate::error::Error;

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
pub struct ConnectionConfig {
    pub(crate) inner: Arc<Inner>,
    key: ConfigKey,
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
        ConnectionConfigBuilder::from_fields(Fields::from_inner(&self.inner))
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

    /// Wraps validated fields, computing the key once.
    pub(crate) fn from_inner(inner: Inner) -> Self {
        let key = ConfigKey::of(&inner);
        Self {
            inner: Arc::new(inner),
            key,
        }
    }

    /// The identity of this configuration: equal configurations have equal
    /// keys, different ones (in any field, the password included) different
    /// keys. Computed when the configuration was built; free to call.
    #[must_use]
    pub fn key(&self) -> ConfigKey {
        self.key
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
        self.inner
            .schema
            .as_deref()
            .into_iter()
            .flat_map(|schema| schema.split(','))
            .map(str::trim)
    }

    /// The most connections open at once: `pool_size + max_overflow`.
    #[must_use]
    pub fn max_connections(&self) -> usize {
        self.inner.pool_size.saturating_add(self.inner.max_overflow)
    }

    /// The port of the first host (the only one, unless the
    /// configuration gives one port per host: see [`ports`](Self::ports)
    /// and [`endpoints`](Self::endpoints)).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.inner.ports.first().copied().unwrap_or(defaults::PORT)
    }

    /// Every server of the host list, in the order given: each host with
    /// its port and `hostaddr`.
    ///
    /// ```
    /// # use uno_db_core::ConnectionConfig;
    /// let config: ConnectionConfig = "host=db1,db2 port=5432,5433".parse()?;
    /// let endpoints: Vec<String> = config.endpoints().iter().map(ToString::to_string).collect();
    /// assert_eq!(endpoints, ["db1:5432", "db2:5433"]);
    /// # Ok::<(), uno_db_core::Error>(())
    /// ```
    #[must_use]
    pub fn endpoints(&self) -> Vec<Endpoint> {
        let inner = &self.inner;
        inner
            .hosts
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let port = inner.ports.get(i).or(inner.ports.first());
                Endpoint::new(
                    host.clone(),
                    port.copied().unwrap_or(defaults::PORT),
                    inner.hostaddrs.get(i).copied(),
                )
            })
            .collect()
    }

    /// `role@host:port,host:port/database`, for messages (never the
    /// password).
    #[must_use]
    pub fn target(&self) -> String {
        let endpoints: Vec<String> = self.endpoints().iter().map(ToString::to_string).collect();
        format!(
            "{}@{}/{}",
            self.inner.role,
            endpoints.join(","),
            self.inner.database
        )
    }

    /// The configuration of the engines for read-only work: this one with
    /// `target_session_attrs` set to `read_target_session_attrs`
    /// (`prefer-standby` unless configured: a standby when one answers,
    /// else the primary; `standby` never reads from the primary). The
    /// factories' `reader` gives its engine, a pool of its own.
    ///
    /// ```
    /// use uno_db_core::{ConnectionConfig, TargetSessionAttrs};
    ///
    /// let config: ConnectionConfig =
    ///     "postgresql://app@db1,db2,db3/orders?target_session_attrs=primary".parse()?;
    /// let reads = config.for_reads();
    /// assert_eq!(reads.target_session_attrs(), TargetSessionAttrs::PreferStandby);
    /// assert_eq!(reads.endpoints(), config.endpoints());
    /// # Ok::<(), uno_db_core::Error>(())
    /// ```
    #[must_use]
    pub fn for_reads(&self) -> Self {
        let mut inner = Inner::clone(&self.inner);
        inner.target_session_attrs = inner.read_target_session_attrs;
        Self::from_inner(inner)
    }

    /// The configuration as a URL with the password shown as `***`; the
    /// same as `Display`. Fields at their default are left out.
    #[must_use]
    pub fn to_url(&self) -> String {
        url::generate(&self.inner, false)
    }

    /// The configuration as a URL including the password. Parsing it gives
    /// back an equal configuration. Keep it out of logs.
    #[must_use]
    pub fn to_url_with_password(&self) -> String {
        url::generate(&self.inner, true)
    }
}

impl Default for ConnectionConfig {
    /// Every field at its [default](crate::defaults).
    fn default() -> Self {
        Self::from_inner(Fields::default().resolve())
    }
}

impl PartialEq for ConnectionConfig {
    /// Every field compared, the password by value. Different keys settle
    /// it at once.
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.inner.same(&other.inner)
    }
}

impl fmt::Debug for ConnectionConfig {
    /// Every field, the password as `Some(***)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.debug("ConnectionConfig", f)
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
    use crate::retry::RetryPolicy;

    const SECRET: &str = "Zebra-Quux-9137!";

    #[test]
    fn reads_get_their_own_target_and_engine_key() {
        use crate::config::TargetSessionAttrs;
        let config: ConnectionConfig =
            "postgresql://app@a:1,b:2/x?target_session_attrs=primary&pool_size=7"
                .parse()
                .unwrap();
        let reads = config.for_reads();
        assert_eq!(
            reads.target_session_attrs(),
            TargetSessionAttrs::PreferStandby
        );
        assert_eq!(reads.pool_size(), 7);
        assert_eq!(reads.endpoints(), config.endpoints());
        assert_ne!(reads, config, "the reader is a pool of its own");
        assert!(
            reads
                .to_url()
                .contains("target_session_attrs=prefer-standby")
        );

        let strict = "postgresql://app@a,b/x?read_target_session_attrs=standby"
            .parse::<ConnectionConfig>()
            .unwrap();
        assert_eq!(
            strict.for_reads().target_session_attrs(),
            TargetSessionAttrs::Standby
        );
        assert!(
            strict
                .to_url()
                .contains("read_target_session_attrs=standby")
        );
        let from_env = ConnectionConfig::from_env_with(&[
            ("PGHOST", "a,b"),
            ("UNO_DB_READ_TARGET_SESSION_ATTRS", "read-only"),
        ])
        .unwrap();
        assert_eq!(
            from_env.read_target_session_attrs(),
            TargetSessionAttrs::ReadOnly
        );
        let error = "host=a read_target_session_attrs=nearest"
            .parse::<ConnectionConfig>()
            .unwrap_err();
        assert_eq!(
            error.config_violations()[0].field(),
            "read_target_session_attrs"
        );
    }

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
        assert!(Arc::ptr_eq(&a.inner, &b.inner));
        assert_eq!(a.key(), b.key());
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
        assert_eq!(c.target(), "app@a:5433,b:5433/orders");
    }
}
