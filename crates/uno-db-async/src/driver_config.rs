//! Translation of a [`ConnectionConfig`] into the driver's configuration.

use std::time::Duration;

use secrecy::ExposeSecret;
use uno_db_core::{ConnectionConfig, Driver, Error, ErrorKind, Result, SslMode};

/// The `tokio_postgres::Config` for `config`, checked for what this backend
/// can do: it serves the async driver family and has no TLS compiled in.
pub(crate) fn driver_config(config: &ConnectionConfig) -> Result<tokio_postgres::Config> {
    if config.driver() == Driver::Postgres {
        return Err(Error::with_message(
            ErrorKind::Config,
            "the configuration names the blocking `postgres` driver; \
             use the blocking engine factory or the postgresql+tokio-postgres scheme",
        ));
    }
    if config.ssl_mode() == SslMode::Require {
        return Err(Error::with_message(
            ErrorKind::Tls,
            "sslmode=require, but the async backend is built without TLS support; \
             use sslmode=disable or prefer",
        ));
    }
    let mut pg = tokio_postgres::Config::new();
    for host in config.hosts() {
        pg.host(host);
    }
    pg.port(config.port())
        .user(config.role())
        .dbname(config.database())
        .ssl_mode(config.ssl_mode().into())
        .connect_timeout(config.connect_timeout());
    if let Some(password) = config.password() {
        pg.password(password.expose_secret().as_bytes());
    }
    if let Some(name) = config.application_name() {
        pg.application_name(name);
    }
    match config.keepalives_idle() {
        Some(idle) => {
            pg.keepalives(true).keepalives_idle(idle);
        }
        None => {
            pg.keepalives(false);
        }
    }
    if let Some(timeout) = config.tcp_user_timeout() {
        pg.tcp_user_timeout(timeout);
    }
    let options = startup_options(config.options(), config.statement_timeout());
    if !options.is_empty() {
        pg.options(options);
    }
    Ok(pg)
}

/// The startup `options` string: one `-c key=value` per setting, the
/// statement timeout (in milliseconds) first so an explicit option wins.
pub(crate) fn startup_options(
    options: &[(String, String)],
    statement_timeout: Option<Duration>,
) -> String {
    let mut settings: Vec<String> = Vec::with_capacity(options.len() + 1);
    if let Some(timeout) = statement_timeout {
        settings.push(format!("-c statement_timeout={}", timeout.as_millis()));
    }
    for (key, value) in options {
        settings.push(format!(
            "-c {}={}",
            escape_option(key),
            escape_option(value)
        ));
    }
    settings.join(" ")
}

/// Escapes a word of the startup `options` string the way the server splits
/// it: whitespace separates words unless preceded by a backslash, and a
/// backslash escapes itself.
fn escape_option(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for ch in word.chars() {
        if ch == '\\' || ch.is_whitespace() {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn options_are_escaped_and_statement_timeout_comes_first() {
        let options = vec![
            ("search_path".to_owned(), "a, b".to_owned()),
            ("application_name".to_owned(), r"x\y".to_owned()),
        ];
        assert_eq!(
            startup_options(&options, Some(Duration::from_secs(5))),
            r"-c statement_timeout=5000 -c search_path=a,\ b -c application_name=x\\y"
        );
        assert_eq!(startup_options(&[], None), "");
    }

    #[test]
    fn tls_required_is_refused() {
        let config = ConnectionConfig::builder()
            .ssl_mode(SslMode::Require)
            .build()
            .unwrap();
        assert_eq!(driver_config(&config).unwrap_err().kind(), ErrorKind::Tls);
    }

    #[test]
    fn blocking_driver_is_refused() {
        let config = ConnectionConfig::builder()
            .driver(Driver::Postgres)
            .build()
            .unwrap();
        assert_eq!(
            driver_config(&config).unwrap_err().kind(),
            ErrorKind::Config
        );
    }

    #[test]
    fn fields_reach_the_driver_config() {
        let config = ConnectionConfig::builder()
            .hosts(["a", "b"])
            .port(5433)
            .role("app")
            .database("orders")
            .application_name("svc")
            .keepalives_idle(None)
            .build()
            .unwrap();
        let pg = driver_config(&config).unwrap();
        assert_eq!(pg.get_hosts().len(), 2);
        assert_eq!(pg.get_ports(), [5433]);
        assert_eq!(pg.get_user(), Some("app"));
        assert_eq!(pg.get_dbname(), Some("orders"));
        assert_eq!(pg.get_application_name(), Some("svc"));
        assert!(!pg.get_keepalives());
    }
}
