//! libpq `key=value` connection strings:
//! `host=localhost port=5432 user=app password='a b' dbname=orders`.

use std::collections::HashSet;

use crate::config::params::{self, Form};
use crate::config::table::Fields;
use crate::config_violation::ConfigViolation;

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0B' | '\x0C')
}

/// Parses whitespace-separated `key=value` pairs. A value is either
/// single-quoted (`'a b'`, with `\'` and `\\`) or runs to the next
/// whitespace (with `\` escaping the next character). Keys are the URL
/// query parameter names, plus `driver`.
pub(crate) fn parse(s: &str) -> (Fields, Vec<ConfigViolation>) {
    let mut fields = Fields::default();
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|&c| is_space(c)).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|&c| c != '=' && !is_space(c)) {
            key.push(c);
        }
        while chars.next_if(|&c| is_space(c)).is_some() {}
        if chars.next_if_eq(&'=').is_none() {
            errors.push(ConfigViolation::new(
                key,
                "",
                "missing `=` after the parameter name",
            ));
            break;
        }
        if key.is_empty() {
            errors.push(ConfigViolation::new(
                "",
                "",
                "missing parameter name before `=`",
            ));
            break;
        }
        while chars.next_if(|&c| is_space(c)).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '\'' => {
                        closed = true;
                        break;
                    }
                    _ => value.push(c),
                }
            }
            if !closed {
                let shown = params::shown(&key, &value);
                errors.push(ConfigViolation::new(
                    key,
                    shown,
                    "unterminated quoted value",
                ));
                break;
            }
        } else {
            while let Some(c) = chars.next_if(|&c| !is_space(c)) {
                match c {
                    '\\' => value.extend(chars.next()),
                    _ => value.push(c),
                }
            }
        }
        if !seen.insert(key.clone()) {
            let shown = params::shown(&key, &value);
            errors.push(ConfigViolation::new(key, shown, "is given more than once"));
            continue;
        }
        if let Err(rule) = params::apply(&mut fields, &key, &value, Form::KeyValue) {
            let shown = params::shown(&key, &value);
            errors.push(ConfigViolation::new(key, shown, rule));
        }
    }
    (fields, errors)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use crate::config::violation_tuples::violation_tuples;
    use std::time::Duration;

    use secrecy::ExposeSecret;

    use crate::config::{ConnectionConfig, Driver, SslMode};

    fn parse(s: &str) -> ConnectionConfig {
        s.parse().unwrap()
    }

    fn errors(s: &str) -> Vec<(String, String, String)> {
        violation_tuples(&s.parse::<ConnectionConfig>().unwrap_err())
    }

    #[test]
    fn parses_the_libpq_form() {
        let c = parse(
            "host=db.example port=5433 user=app password='a b' dbname=orders sslmode=disable",
        );
        assert_eq!(c.hosts(), ["db.example"]);
        assert_eq!(c.port(), 5433);
        assert_eq!(c.role(), "app");
        assert_eq!(c.password().unwrap().expose_secret(), "a b");
        assert_eq!(c.database(), "orders");
        assert_eq!(c.ssl_mode(), SslMode::Disable);
    }

    #[test]
    fn quoting_and_escapes() {
        let c = parse(r"password='it\'s \\ ok' application_name=a\ b dbname = 'x'");
        assert_eq!(c.password().unwrap().expose_secret(), r"it's \ ok");
        assert_eq!(c.application_name(), Some("a b"));
        assert_eq!(c.database(), "x");
        let c = parse("password='' user=u");
        assert_eq!(c.password().unwrap().expose_secret(), "");
        // As libpq: a trailing backslash escapes nothing and is dropped.
        let c = parse(r"password=tail\");
        assert_eq!(c.password().unwrap().expose_secret(), "tail");
    }

    #[test]
    fn accepts_every_url_parameter_and_driver() {
        let c = parse(
            "driver=postgresql+tokio-postgres host=a,b schema=app set_role=reader \
             pool_size=3 max_overflow=4 pool_timeout=5s connect_timeout=6 pool_recycle=off \
             idle_timeout=1min pre_ping=true statement_timeout=1500ms keepalives_idle=none \
             tcp_user_timeout=9s statement_cache_size=0 options='-c work_mem=64MB' \
             retry_max_attempts=2 retry_initial_delay=10ms retry_multiplier=1.5 \
             retry_max_delay=1s retry_deadline=3s",
        );
        assert_eq!(c.driver(), Driver::TokioPostgres);
        assert_eq!(c.hosts(), ["a", "b"]);
        assert_eq!(c.schema(), Some("app"));
        assert_eq!(c.set_role(), Some("reader"));
        assert_eq!(c.pool_size(), 3);
        assert_eq!(c.max_overflow(), 4);
        assert_eq!(c.pool_timeout(), Duration::from_secs(5));
        assert_eq!(c.connect_timeout(), Duration::from_secs(6));
        assert_eq!(c.pool_recycle(), None);
        assert_eq!(c.idle_timeout(), Some(Duration::from_secs(60)));
        assert!(c.pre_ping());
        assert_eq!(c.statement_timeout(), Some(Duration::from_millis(1500)));
        assert_eq!(c.keepalives_idle(), None);
        assert_eq!(c.tcp_user_timeout(), Some(Duration::from_secs(9)));
        assert_eq!(c.statement_cache_size(), 0);
        assert_eq!(c.options(), [("work_mem".to_owned(), "64MB".to_owned())]);
        assert_eq!(c.retry().get_max_attempts(), 2);
        assert_eq!(c.retry().get_initial_delay(), Duration::from_millis(10));
        assert!((c.retry().get_multiplier() - 1.5).abs() < f64::EPSILON);
        assert_eq!(c.retry().get_max_delay(), Duration::from_secs(1));
        assert_eq!(c.retry().get_deadline(), Duration::from_secs(3));
    }

    #[test]
    fn empty_string_is_all_defaults() {
        assert_eq!(parse(""), ConnectionConfig::default());
        assert_eq!(parse("   "), ConnectionConfig::default());
    }

    #[test]
    fn parse_errors_name_the_parameter() {
        assert_eq!(
            errors("host=h bogus=1"),
            [(
                "bogus".to_owned(),
                "***".to_owned(),
                "unknown parameter".to_owned()
            )]
        );
        assert_eq!(errors("port=x")[0].0, "port");
        assert_eq!(errors("host")[0].2, "missing `=` after the parameter name");
        assert_eq!(errors("=x")[0].2, "missing parameter name before `=`");
        assert_eq!(errors("user=a user=b")[0].2, "is given more than once");
    }

    #[test]
    fn password_errors_hide_the_value() {
        let found = errors("password='Zebra");
        assert_eq!(
            found[0],
            (
                "password".to_owned(),
                "***".to_owned(),
                "unterminated quoted value".to_owned()
            )
        );
        let found = errors("password=Zebra password=Quux");
        assert_eq!(found[0].1, "***");
        let message = "password=Zebra password=Quux"
            .parse::<ConnectionConfig>()
            .unwrap_err()
            .to_string();
        assert!(!message.contains("Zebra") && !message.contains("Quux"));
    }

    #[test]
    fn every_error_is_reported_with_validation_errors() {
        let found = errors("pool_size=x port=0 user=''");
        let fields: Vec<_> = found.iter().map(|v| v.0.as_str()).collect();
        assert_eq!(fields, ["pool_size", "port", "role"]);
    }
}
