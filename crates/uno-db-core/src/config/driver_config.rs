//! Translation of a [`ConnectionConfig`] into the drivers' configuration.
//! Both drivers share it: `postgres::Config` is made from the
//! `tokio_postgres::Config` this returns.

use secrecy::ExposeSecret;

use super::options;
use super::{ConnectionConfig, Driver, Endpoint, LoadBalanceHosts, SslMode, TargetSessionAttrs};
use crate::error::{Error, ErrorKind, Result};

impl ConnectionConfig {
    /// The driver configuration for this configuration: hosts, ports,
    /// `hostaddr`, role, password, database, application name,
    /// `connect_timeout`, TCP keepalives (off when `keepalives_idle` is
    /// unset), `tcp_user_timeout`, and the server options
    /// (`statement_timeout` included, unless the options set it
    /// themselves) as libpq's `-c key=value` string. Host selection is the
    /// kernel's (one [`Endpoint`] per attempt, see
    /// [`driver_config_for`](Self::driver_config_for)); this whole list is
    /// for tools that hand the configuration to the driver directly, which
    /// then tries the hosts in order with `target_session_attrs` `any`,
    /// `read-write` or `read-only` (the driver knows no others).
    ///
    /// ```
    /// # use uno_db_core::ConnectionConfig;
    /// let config: ConnectionConfig = "postgresql://app@db:5433/orders?statement_timeout=2s".parse()?;
    /// let pg = config.driver_config();
    /// assert_eq!(pg.get_ports(), [5433]);
    /// assert_eq!(pg.get_options(), Some("-c statement_timeout=2000ms"));
    /// # Ok::<(), uno_db_core::Error>(())
    /// ```
    #[must_use]
    pub fn driver_config(&self) -> tokio_postgres::Config {
        use tokio_postgres::config::{LoadBalanceHosts as Balance, TargetSessionAttrs as Target};
        let mut pg = self.driver_config_without_hosts();
        for endpoint in self.endpoints() {
            pg.host(endpoint.host()).port(endpoint.port());
            if let Some(address) = endpoint.address() {
                pg.hostaddr(address);
            }
        }
        pg.target_session_attrs(match self.target_session_attrs() {
            TargetSessionAttrs::ReadWrite | TargetSessionAttrs::Primary => Target::ReadWrite,
            TargetSessionAttrs::ReadOnly | TargetSessionAttrs::Standby => Target::ReadOnly,
            TargetSessionAttrs::Any | TargetSessionAttrs::PreferStandby => Target::Any,
        });
        pg.load_balance_hosts(match self.load_balance_hosts() {
            LoadBalanceHosts::Disable => Balance::Disable,
            LoadBalanceHosts::Random => Balance::Random,
        });
        pg
    }

    /// The driver configuration for one server of the host list: as
    /// [`driver_config`](Self::driver_config) with only `endpoint`, and the
    /// role check left to the kernel.
    #[must_use]
    pub fn driver_config_for(&self, endpoint: &Endpoint) -> tokio_postgres::Config {
        let mut pg = self.driver_config_without_hosts();
        pg.host(endpoint.host()).port(endpoint.port());
        if let Some(address) = endpoint.address() {
            pg.hostaddr(address);
        }
        pg
    }

    fn driver_config_without_hosts(&self) -> tokio_postgres::Config {
        let mut pg = tokio_postgres::Config::new();
        pg.user(self.role())
            .dbname(self.database())
            .ssl_mode(self.first_driver_ssl_mode())
            .ssl_negotiation(self.ssl_negotiation().into())
            .channel_binding(self.channel_binding().into())
            .connect_timeout(self.connect_timeout());
        if let Some(password) = self.password() {
            pg.password(password.expose_secret().as_bytes());
        }
        if let Some(name) = self.application_name() {
            pg.application_name(name);
        }
        match self.keepalives_idle() {
            Some(idle) => pg.keepalives(true).keepalives_idle(idle),
            None => pg.keepalives(false),
        };
        if let Some(timeout) = self.tcp_user_timeout() {
            pg.tcp_user_timeout(timeout);
        }
        let options = self.startup_options();
        if !options.is_empty() {
            pg.options(&options);
        }
        pg
    }

    /// The driver's TLS mode for a first attempt: `allow` starts in
    /// plaintext; `prefer` asks for TLS only when the build has it (the
    /// driver cannot be told "TLS if you can" with no connector); the
    /// strict modes ask the driver for TLS and leave the certificate checks
    /// to the connector.
    pub(crate) fn first_driver_ssl_mode(&self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as Driver;
        match self.ssl_mode() {
            SslMode::Disable | SslMode::Allow => Driver::Disable,
            SslMode::Prefer if cfg!(feature = "tls") => Driver::Prefer,
            SslMode::Prefer => Driver::Disable,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Driver::Require,
        }
    }

    /// Checks that a backend of `family` can serve this configuration.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when the configuration names the other driver
    /// family.
    pub fn ensure_backend(&self, family: Driver) -> Result<()> {
        let driver = self.driver();
        if driver != Driver::Any && driver != family {
            return Err(Error::with_message(
                ErrorKind::Config,
                format!(
                    "the configuration names the `{driver}` driver, which this backend \
                     (`{family}`) does not serve; use the other engine factory or a \
                     `{family}` or bare `postgresql` scheme"
                ),
            ));
        }
        Ok(())
    }

    /// The `SET search_path` statement for [`schema`](Self::schema), if set.
    /// The names are folded to lower case and quoted: the same meaning as
    /// writing them unquoted, with no way to inject SQL.
    #[must_use]
    pub fn search_path_statement(&self) -> Option<String> {
        self.schema().map(|_| {
            let quoted: Vec<String> = self.schemas().map(quote_folded).collect();
            format!("SET search_path TO {}", quoted.join(", "))
        })
    }

    /// The `SET ROLE` statement for [`set_role`](Self::set_role), if set,
    /// folded and quoted like [`search_path_statement`](Self::search_path_statement).
    #[must_use]
    pub fn set_role_statement(&self) -> Option<String> {
        self.set_role()
            .map(|role| format!("SET ROLE {}", quote_folded(role)))
    }

    fn startup_options(&self) -> String {
        let mut settings = self.options().to_vec();
        if let Some(timeout) = self.statement_timeout()
            && !settings.iter().any(|(key, _)| key == "statement_timeout")
        {
            let value = format!("{}ms", timeout.as_millis());
            settings.insert(0, ("statement_timeout".to_owned(), value));
        }
        options::encode(&settings)
    }
}

/// Validation admits only unquoted identifiers here; the server folds those
/// to lower case.
fn quote_folded(name: &str) -> String {
    format!("\"{}\"", name.to_ascii_lowercase().replace('"', "\"\""))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn maps_every_field() {
        let config = ConnectionConfig::builder()
            .role("app")
            .password("pw")
            .database("orders")
            .hosts(["db1", "db2"])
            .port(5433)
            .application_name("svc")
            .ssl_mode(SslMode::Disable)
            .connect_timeout(Duration::from_secs(3))
            .keepalives_idle(Duration::from_secs(20))
            .tcp_user_timeout(Duration::from_secs(7))
            .build()
            .unwrap();
        let pg = config.driver_config();
        assert_eq!(pg.get_user(), Some("app"));
        assert_eq!(pg.get_password(), Some(&b"pw"[..]));
        assert_eq!(pg.get_dbname(), Some("orders"));
        assert_eq!(pg.get_hosts().len(), 2);
        assert_eq!(pg.get_ports(), [5433, 5433]);
        assert_eq!(pg.get_application_name(), Some("svc"));
        assert_eq!(pg.get_ssl_mode(), tokio_postgres::config::SslMode::Disable);
        assert_eq!(pg.get_connect_timeout(), Some(&Duration::from_secs(3)));
        assert!(pg.get_keepalives());
        assert_eq!(pg.get_keepalives_idle(), Duration::from_secs(20));
        assert_eq!(pg.get_tcp_user_timeout(), Some(&Duration::from_secs(7)));
        assert_eq!(pg.get_options(), None);
    }

    #[test]
    fn session_statements_fold_and_quote() {
        let config = ConnectionConfig::builder()
            .schema("App, public")
            .set_role("Reader")
            .build()
            .unwrap();
        assert_eq!(
            config.search_path_statement().as_deref(),
            Some(r#"SET search_path TO "app", "public""#)
        );
        assert_eq!(
            config.set_role_statement().as_deref(),
            Some(r#"SET ROLE "reader""#)
        );
        let plain = ConnectionConfig::builder().build().unwrap();
        assert_eq!(plain.search_path_statement(), None);
        assert_eq!(plain.set_role_statement(), None);
    }

    /// `SET search_path TO App` and libpq's `options=-c search_path=App`
    /// both name `app` (checked on `PostgreSQL` 15); `schema=App` means the
    /// same in every form, and so does `set_role`.
    #[test]
    fn schema_and_set_role_fold_as_postgresql_does_in_every_form() {
        let url: ConnectionConfig = "postgresql://h/db?schema=App,Public&set_role=Reader"
            .parse()
            .unwrap();
        let key_value: ConnectionConfig = "schema='App, Public' set_role=Reader".parse().unwrap();
        let env = [
            ("UNO_DB_SCHEMA", "App,Public"),
            ("UNO_DB_SET_ROLE", "Reader"),
        ];
        let env = ConnectionConfig::from_env_with(&env).unwrap();
        for config in [url, key_value, env] {
            assert_eq!(config.schemas().collect::<Vec<_>>(), ["App", "Public"]);
            assert_eq!(
                config.search_path_statement().as_deref(),
                Some(r#"SET search_path TO "app", "public""#)
            );
            assert_eq!(
                config.set_role_statement().as_deref(),
                Some(r#"SET ROLE "reader""#)
            );
        }
    }

    #[test]
    fn keepalives_are_off_without_an_idle_time() {
        let config = ConnectionConfig::builder()
            .keepalives_idle(None)
            .build()
            .unwrap();
        assert!(!config.driver_config().get_keepalives());
    }

    #[test]
    fn options_are_escaped_and_statement_timeout_comes_first() {
        let config = ConnectionConfig::builder()
            .option("work_mem", "64MB")
            .option("x.y", r"a b\c")
            .statement_timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        assert_eq!(
            config.driver_config().get_options(),
            Some(r"-c statement_timeout=2000ms -c work_mem=64MB -c x.y=a\ b\\c")
        );
        let explicit = config
            .to_builder()
            .option("statement_timeout", "5s")
            .build()
            .unwrap();
        assert_eq!(
            explicit.driver_config().get_options(),
            Some(r"-c work_mem=64MB -c x.y=a\ b\\c -c statement_timeout=5s"),
            "an explicit option wins"
        );
    }

    #[test]
    fn backends_refuse_the_other_family() {
        let any = ConnectionConfig::builder().build().unwrap();
        assert!(any.ensure_backend(Driver::Postgres).is_ok());
        assert!(any.ensure_backend(Driver::TokioPostgres).is_ok());
        let blocking = any.to_builder().driver(Driver::Postgres).build().unwrap();
        assert!(blocking.ensure_backend(Driver::Postgres).is_ok());
        let error = blocking.ensure_backend(Driver::TokioPostgres).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config);
        assert!(error.to_string().contains("postgresql+postgres"), "{error}");
    }

    #[test]
    fn each_mode_starts_the_driver_as_libpq_would() {
        use tokio_postgres::config::SslMode as D;
        let first = |mode: SslMode| {
            let config = ConnectionConfig::builder()
                .ssl_mode(mode)
                .ssl_root_cert(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/root.crt"))
                .build();
            config.map(|c| c.driver_config().get_ssl_mode())
        };
        assert!(matches!(first(SslMode::Disable), Ok(D::Disable)));
        assert!(matches!(first(SslMode::Allow), Ok(D::Disable)));
        if cfg!(feature = "tls") {
            assert!(matches!(first(SslMode::Prefer), Ok(D::Prefer)));
            for strict in [SslMode::Require, SslMode::VerifyCa, SslMode::VerifyFull] {
                assert!(matches!(first(strict), Ok(D::Require)), "{strict}");
            }
        } else {
            assert!(matches!(first(SslMode::Prefer), Ok(D::Disable)));
            for strict in [SslMode::Require, SslMode::VerifyCa, SslMode::VerifyFull] {
                let error = first(strict).unwrap_err();
                assert!(error.to_string().contains("`tls` feature"), "{error}");
            }
        }
    }
}
