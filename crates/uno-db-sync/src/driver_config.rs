//! Translating a [`ConnectionConfig`] into the `postgres` crate's config.

use postgres::config::SslMode as DriverSslMode;
use secrecy::ExposeSecret;
use uno_db_core::{ConnectionConfig, Driver, Error, ErrorKind, Result, SqlState, SslMode};

/// Builds the driver configuration for `config`.
///
/// # Errors
///
/// The configuration asks for the async driver, or requires TLS, which this
/// build does not include.
pub(crate) fn driver_config(config: &ConnectionConfig) -> Result<postgres::Config> {
    if config.driver() == Driver::TokioPostgres {
        return Err(Error::with_message(
            ErrorKind::Config,
            "the configuration names the tokio-postgres driver; use uno-db-async for it",
        ));
    }
    let ssl_mode = match config.ssl_mode() {
        SslMode::Disable => DriverSslMode::Disable,
        SslMode::Prefer => DriverSslMode::Prefer,
        SslMode::Require => {
            return Err(Error::with_message(
                ErrorKind::Tls,
                "ssl_mode=require needs TLS, which is not compiled into uno-db-sync; \
                 use ssl_mode=prefer or disable",
            ));
        }
    };
    let mut pg = postgres::Config::new();
    pg.user(config.role())
        .dbname(config.database())
        .port(config.port())
        .connect_timeout(config.connect_timeout())
        .ssl_mode(ssl_mode)
        .keepalives(true);
    if let Some(password) = config.password() {
        pg.password(password.expose_secret());
    }
    for host in config.hosts() {
        pg.host(host);
    }
    if let Some(name) = config.application_name() {
        pg.application_name(name);
    }
    if let Some(idle) = config.keepalives_idle() {
        pg.keepalives_idle(idle);
    }
    if let Some(timeout) = config.tcp_user_timeout() {
        pg.tcp_user_timeout(timeout);
    }
    let options = startup_options(config);
    if !options.is_empty() {
        pg.options(&options);
    }
    // ROLLBACK on return may warn "no transaction in progress" when a
    // connection only looked like it might hold one; that warning is noise.
    // Every other notice keeps the driver's default handling.
    pg.notice_callback(|notice| {
        if notice.code() != &SqlState::NO_ACTIVE_SQL_TRANSACTION {
            log::info!("{}: {}", notice.severity(), notice.message());
        }
    });
    Ok(pg)
}

/// The server settings sent at connect, as libpq's `options`:
/// `-c key=value` per setting, `statement_timeout` included unless the
/// options set it explicitly.
fn startup_options(config: &ConnectionConfig) -> String {
    let mut settings: Vec<(String, String)> = config.options().to_vec();
    if let Some(timeout) = config.statement_timeout()
        && !settings.iter().any(|(key, _)| key == "statement_timeout")
    {
        settings.push((
            "statement_timeout".to_owned(),
            format!("{}ms", timeout.as_millis()),
        ));
    }
    settings
        .iter()
        .map(|(key, value)| format!("-c {}", escape_option(&format!("{key}={value}"))))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Escapes one word of the `options` string: the server splits it on
/// whitespace and takes a backslash as "the next character is literal".
fn escape_option(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for c in word.chars() {
        if c == '\\' || c.is_ascii_whitespace() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn escapes_spaces_and_backslashes() {
        assert_eq!(escape_option("a=b"), "a=b");
        assert_eq!(
            escape_option("search_path=my schema"),
            "search_path=my\\ schema"
        );
        assert_eq!(escape_option("x=a\\b"), "x=a\\\\b");
        assert_eq!(escape_option("x=a\tb"), "x=a\\\tb");
    }

    #[test]
    fn options_include_statement_timeout() {
        let config = ConnectionConfig::builder()
            .option("work_mem", "64MB")
            .option("x.y", "a b")
            .statement_timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        assert_eq!(
            startup_options(&config),
            "-c work_mem=64MB -c x.y=a\\ b -c statement_timeout=2000ms"
        );
    }

    #[test]
    fn maps_the_fields() {
        let config = ConnectionConfig::builder()
            .role("app")
            .password("pw")
            .database("orders")
            .host("db1")
            .port(5433)
            .application_name("svc")
            .ssl_mode(SslMode::Disable)
            .build()
            .unwrap();
        let pg = driver_config(&config).unwrap();
        assert_eq!(pg.get_user(), Some("app"));
        assert_eq!(pg.get_password(), Some(&b"pw"[..]));
        assert_eq!(pg.get_dbname(), Some("orders"));
        assert_eq!(pg.get_ports(), [5433]);
        assert_eq!(pg.get_application_name(), Some("svc"));
        assert_eq!(pg.get_ssl_mode(), DriverSslMode::Disable);
    }

    #[test]
    fn require_tls_is_refused() {
        let config = ConnectionConfig::builder()
            .ssl_mode(SslMode::Require)
            .build()
            .unwrap();
        assert_eq!(driver_config(&config).unwrap_err().kind(), ErrorKind::Tls);
    }

    #[test]
    fn async_driver_is_refused() {
        let config = ConnectionConfig::builder()
            .driver(Driver::TokioPostgres)
            .build()
            .unwrap();
        assert_eq!(
            driver_config(&config).unwrap_err().kind(),
            ErrorKind::Config
        );
    }
}
