//! The builder: explicit values, optional environment layer, validation.

use crate::config::env::{self, EnvSource, ProcessEnv};
use crate::config::table::Fields;
use crate::config::{ConnectionConfig, SslMode, SslNegotiation, tls_setup, validate};
use crate::config_violation::ConfigViolation;
use crate::error::Error;

/// Builds a [`ConnectionConfig`]. Every setter records an explicit value;
/// [`build`](Self::build) fills the rest from the environment (only if
/// [`defaults_from_env`](Self::defaults_from_env) or
/// [`defaults_from`](Self::defaults_from) was called) and then from the
/// [defaults](crate::defaults), and validates the result.
///
/// ```
/// use std::time::Duration;
/// use uno_db_core::{ConnectionConfig, SslMode};
///
/// let config = ConnectionConfig::builder()
///     .role("app")
///     .password("s3cret")
///     .hosts(["db1.example", "db2.example"])
///     .database("orders")
///     .ssl_mode(SslMode::Require)
///     .pool_size(20)
///     .statement_timeout(Duration::from_secs(5))
///     .pool_recycle(None)
///     .option("lock_timeout", "2s")
///     .build()?;
/// assert_eq!(config.max_connections(), 30);
/// assert_eq!(config.pool_recycle(), None);
///
/// let error = ConnectionConfig::builder().role("").pool_size(0).build().unwrap_err();
/// assert_eq!(error.config_violations().len(), 2);
/// # Ok::<(), uno_db_core::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ConnectionConfigBuilder {
    /// The values set on the builder (setters generated from the table).
    pub(crate) explicit: Fields,
    parse_errors: Vec<ConfigViolation>,
    environment: Option<Fields>,
    environment_errors: Vec<ConfigViolation>,
}

impl ConnectionConfigBuilder {
    /// A builder with nothing set.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn from_fields(explicit: Fields) -> Self {
        Self {
            explicit,
            ..Self::default()
        }
    }

    /// A builder whose explicit values came from parsing, carrying the
    /// parse errors to report at `build`.
    pub(crate) fn from_parts(explicit: Fields, parse_errors: Vec<ConfigViolation>) -> Self {
        Self {
            explicit,
            parse_errors,
            ..Self::default()
        }
    }

    /// Fills unset fields from the process environment at
    /// [`build`](Self::build): `DATABASE_URL`, then `UNO_DB_*`, then libpq's
    /// `PG*` variables. The variables are read now, once.
    pub fn defaults_from_env(self) -> Self {
        self.defaults_from(&ProcessEnv)
    }

    /// As [`defaults_from_env`](Self::defaults_from_env), reading the
    /// variables from `env` (a map or a slice of pairs in tests). Calling
    /// it again replaces the earlier environment layer.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use uno_db_core::ConnectionConfig;
    ///
    /// let env = HashMap::from([("PGUSER".to_owned(), "app".to_owned())]);
    /// let config = ConnectionConfig::builder()
    ///     .database("orders")
    ///     .defaults_from(&env)
    ///     .build()?;
    /// assert_eq!(config.role(), "app");
    /// # Ok::<(), uno_db_core::Error>(())
    /// ```
    pub fn defaults_from<E: EnvSource + ?Sized>(mut self, env: &E) -> Self {
        let (layer, errors) = env::layer(env);
        self.environment = Some(layer);
        self.environment_errors = errors;
        self
    }

    /// Sets a single host (name, IP address or Unix socket directory).
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.explicit.hosts = Some(vec![host.into()]);
        self
    }

    /// Sets the hosts, tried in order.
    pub fn hosts<I>(mut self, hosts: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.explicit.hosts = Some(hosts.into_iter().map(Into::into).collect());
        self
    }

    /// Sets one port for every host.
    pub fn port(mut self, port: u16) -> Self {
        self.explicit.ports = Some(vec![port]);
        self
    }

    /// Sets the ports: one for every host, or one per host, in the order
    /// of the hosts.
    pub fn ports(mut self, ports: impl IntoIterator<Item = u16>) -> Self {
        self.explicit.ports = Some(ports.into_iter().collect());
        self
    }

    /// Sets the numeric addresses to connect to (`hostaddr`), one per
    /// host; an empty list clears them.
    pub fn hostaddrs(mut self, addresses: impl IntoIterator<Item = std::net::IpAddr>) -> Self {
        self.explicit.hostaddrs = Some(addresses.into_iter().collect());
        self
    }

    /// Appends one server setting (GUC) sent at connect time. Explicit
    /// options replace, as a whole, any the environment gives.
    pub fn option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.explicit
            .options
            .get_or_insert_with(Vec::new)
            .push((key.into(), value.into()));
        self
    }

    /// Sets the server settings (GUCs) sent at connect time, in order.
    pub fn options<I, K, V>(mut self, options: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.explicit.options = Some(
            options
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        self
    }

    /// Layers explicit values over the environment (if requested) over the
    /// defaults, and validates the result.
    ///
    /// # Errors
    ///
    /// A [`Config`](crate::ErrorKind::Config) error listing every malformed
    /// input (URL parameter, environment variable) and every broken rule,
    /// all at once. Nothing is connected.
    pub fn build(&self) -> Result<ConnectionConfig, Error> {
        let fields = match &self.environment {
            Some(environment) => self.explicit.clone().or(environment.clone()),
            None => self.explicit.clone(),
        };
        let mut fields = fields;
        // libpq: sslrootcert=system makes verify-full the default mode.
        // Direct negotiation cannot work with the default prefer (libpq
        // refuses it); it makes require the default instead.
        if fields.ssl_mode.is_none() {
            if matches!(&fields.ssl_root_cert, Some(Some(roots)) if roots == tls_setup::SYSTEM_ROOTS)
            {
                fields.ssl_mode = Some(SslMode::VerifyFull);
            } else if fields.ssl_negotiation == Some(SslNegotiation::Direct) {
                fields.ssl_mode = Some(SslMode::Require);
            }
        }
        let inner = fields.resolve();
        let mut violations = self.parse_errors.clone();
        violations.extend(self.environment_errors.iter().cloned());
        violations.extend(validate::violations(&inner));
        if violations.is_empty() {
            Ok(ConnectionConfig::from_inner(inner))
        } else {
            Err(Error::config(violations))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::time::Duration;

    use secrecy::ExposeSecret;

    use super::*;
    use crate::config::{Driver, SslMode};
    use crate::retry::RetryPolicy;

    #[test]
    fn every_setter_is_applied() {
        let retry = RetryPolicy::default().max_attempts(7);
        let c = ConnectionConfigBuilder::new()
            .role("r")
            .password("p")
            .database("d")
            .host("h")
            .port(1)
            .driver(Driver::Postgres)
            .schema("s")
            .application_name("a")
            .set_role("sr")
            .pool_size(2)
            .max_overflow(3)
            .pool_timeout(Duration::from_secs(4))
            .connect_timeout(Duration::from_secs(5))
            .pool_recycle(Duration::from_secs(6))
            .idle_timeout(Duration::from_secs(7))
            .pre_ping(true)
            .statement_timeout(Duration::from_secs(8))
            .ssl_mode(SslMode::Disable)
            .keepalives_idle(Duration::from_secs(9))
            .tcp_user_timeout(Duration::from_secs(10))
            .statement_cache_size(0)
            .option("k", "v")
            .option("k2", "v2")
            .retry(retry)
            .build()
            .unwrap();
        assert_eq!(c.role(), "r");
        assert_eq!(c.password().unwrap().expose_secret(), "p");
        assert_eq!(c.database(), "d");
        assert_eq!(c.hosts(), ["h"]);
        assert_eq!(c.port(), 1);
        assert_eq!(c.driver(), Driver::Postgres);
        assert_eq!(c.schema(), Some("s"));
        assert_eq!(c.application_name(), Some("a"));
        assert_eq!(c.set_role(), Some("sr"));
        assert_eq!(c.pool_size(), 2);
        assert_eq!(c.max_overflow(), 3);
        assert_eq!(c.pool_timeout(), Duration::from_secs(4));
        assert_eq!(c.connect_timeout(), Duration::from_secs(5));
        assert_eq!(c.pool_recycle(), Some(Duration::from_secs(6)));
        assert_eq!(c.idle_timeout(), Some(Duration::from_secs(7)));
        assert!(c.pre_ping());
        assert_eq!(c.statement_timeout(), Some(Duration::from_secs(8)));
        assert_eq!(c.ssl_mode(), SslMode::Disable);
        assert_eq!(c.keepalives_idle(), Some(Duration::from_secs(9)));
        assert_eq!(c.tcp_user_timeout(), Some(Duration::from_secs(10)));
        assert_eq!(c.statement_cache_size(), 0);
        assert_eq!(
            c.options(),
            [
                ("k".to_owned(), "v".to_owned()),
                ("k2".to_owned(), "v2".to_owned())
            ]
        );
        assert_eq!(c.retry(), retry);
    }

    #[test]
    fn host_replaces_hosts_and_options_replaces_option() {
        let c = ConnectionConfigBuilder::new()
            .hosts(["a", "b"])
            .host("c")
            .option("x", "1")
            .options([("y", "2")])
            .build()
            .unwrap();
        assert_eq!(c.hosts(), ["c"]);
        assert_eq!(c.options(), [("y".to_owned(), "2".to_owned())]);
    }

    #[test]
    fn clearing_setters_override_defaults() {
        let c = ConnectionConfig::default()
            .to_builder()
            .schema("s")
            .application_name("a")
            .set_role("r")
            .password("p")
            .build()
            .unwrap()
            .to_builder()
            .clear_schema()
            .clear_application_name()
            .clear_set_role()
            .clear_password()
            .pool_recycle(None)
            .idle_timeout(None)
            .keepalives_idle(None)
            .tcp_user_timeout(None)
            .build()
            .unwrap();
        assert_eq!(c.schema(), None);
        assert_eq!(c.application_name(), None);
        assert_eq!(c.set_role(), None);
        assert!(c.password().is_none());
        assert_eq!(c.pool_recycle(), None);
        assert_eq!(c.idle_timeout(), None);
        assert_eq!(c.keepalives_idle(), None);
        assert_eq!(c.tcp_user_timeout(), None);
    }

    #[test]
    fn clear_password_beats_the_environment() {
        let env = [("PGPASSWORD", "from-env")];
        let c = ConnectionConfigBuilder::new()
            .clear_password()
            .defaults_from(&env)
            .build()
            .unwrap();
        assert!(c.password().is_none());
    }

    #[test]
    fn build_can_be_called_twice() {
        let builder = ConnectionConfigBuilder::new().pool_size(3);
        assert_eq!(builder.build().unwrap(), builder.build().unwrap());
    }

    #[test]
    fn builder_debug_redacts_the_password() {
        let builder = ConnectionConfigBuilder::new().password("Zebra-Quux-9137!");
        assert!(!format!("{builder:?}").contains("Zebra"));
    }

    #[test]
    fn env_errors_and_rule_violations_are_reported_together() {
        let env = [("UNO_DB_PORT", "http")];
        let error = ConnectionConfigBuilder::new()
            .pool_size(0)
            .defaults_from(&env)
            .build()
            .unwrap_err();
        let fields: Vec<_> = error
            .config_violations()
            .iter()
            .map(|v| v.field().to_owned())
            .collect();
        assert_eq!(fields, ["UNO_DB_PORT", "pool_size"]);
    }

    #[test]
    fn a_second_defaults_from_replaces_the_first() {
        let first = [("UNO_DB_PORT", "http")];
        let second = [("UNO_DB_PORT", "6000")];
        let c = ConnectionConfigBuilder::new()
            .defaults_from(&first)
            .defaults_from(&second)
            .build()
            .unwrap();
        assert_eq!(c.port(), 6000);
    }
}
