//! Named parameters, shared by URL query strings, libpq `key=value`
//! strings and environment variables; the field table says which field
//! each one sets.

use crate::config::table::Fields;
#[cfg(test)]
pub(crate) use crate::config::table::KEYS;
use crate::config::table_macro::{FieldInfo, UrlForm};

/// Where a parameter comes from; only `key=value` strings and the
/// environment may name the driver (a URL names it with its scheme).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    Url,
    KeyValue,
}

/// The value to show for `key` in an error: never a secret, nor the value
/// of an unknown parameter (it may be a misspelt password).
pub(crate) fn shown(key: &str, value: &str) -> String {
    match FieldInfo::by_param(key) {
        Some((field, _)) if !field.secret => value.to_owned(),
        _ => "***".to_owned(),
    }
}

/// Sets the field `key` names from `value`, or returns the rule broken.
pub(crate) fn apply(fields: &mut Fields, key: &str, value: &str, form: Form) -> Result<(), String> {
    let Some((field, index)) = FieldInfo::by_param(key) else {
        return Err("unknown parameter".to_owned());
    };
    if form == Form::Url && field.url == UrlForm::Scheme {
        return Err("set the driver with the URL scheme, \
                    for example postgresql+tokio-postgres://"
            .to_owned());
    }
    (field.apply)(fields, index, value)
}

/// `a,b,[::1]`: hosts separated by commas, IPv6 optionally in brackets.
pub(crate) fn host_list(value: &str) -> Result<Vec<String>, String> {
    value
        .split(',')
        .map(|host| {
            let host = host.trim();
            let host = host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host);
            if host.is_empty() {
                Err("must be a comma-separated list of non-empty hosts".to_owned())
            } else {
                Ok(host.to_owned())
            }
        })
        .collect()
}

/// `5432` or `5432,5433,5434`: one port for every host, or one per host
/// (an empty item is the default port, as in libpq).
pub(crate) fn port_list(value: &str) -> Result<Vec<u16>, String> {
    value
        .split(',')
        .map(|port| match port.trim() {
            "" => Ok(crate::config::defaults::PORT),
            port => port
                .parse::<u16>()
                .ok()
                .filter(|port| *port != 0)
                .ok_or_else(|| "must be a port number between 1 and 65535".to_owned()),
        })
        .collect()
}

/// `10.0.0.1,10.0.0.2`: numeric IP addresses (`hostaddr`), one per host.
pub(crate) fn address_list(value: &str) -> Result<Vec<std::net::IpAddr>, String> {
    value
        .split(',')
        .map(|address| {
            let address = address.trim();
            let address = address
                .strip_prefix('[')
                .and_then(|a| a.strip_suffix(']'))
                .unwrap_or(address);
            address.parse().map_err(|_| {
                format!("`{address}` is not an IP address (hostaddr takes numeric addresses; put names in host)")
            })
        })
        .collect()
}

pub(crate) fn integer<T: std::str::FromStr>(value: &str) -> Result<T, String> {
    value
        .trim()
        .parse()
        .map_err(|_| "must be a non-negative integer".to_owned())
}

pub(crate) fn multiplier(value: &str) -> Result<f64, String> {
    value
        .trim()
        .parse()
        .map_err(|_| "must be a number such as 2 or 1.5".to_owned())
}

/// `true`/`false`, `on`/`off`, `yes`/`no`, `1`/`0` (any case).
pub(crate) fn boolean(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "1" => Ok(true),
        "false" | "off" | "no" | "0" => Ok(false),
        _ => Err("must be true or false".to_owned()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::time::Duration;

    use secrecy::ExposeSecret;

    use super::*;
    use crate::config::Driver;

    fn set(key: &str, value: &str) -> Result<Fields, String> {
        let mut fields = Fields::default();
        apply(&mut fields, key, value, Form::KeyValue).map(|()| fields)
    }

    #[test]
    fn every_key_is_known() {
        // Each field's example from the table; the retry policy's row has
        // one example for its first parameter, so its others are spelt out.
        let valid = |key: &str| match key {
            "retry_multiplier" => "1.5",
            "retry_initial_delay" | "retry_max_delay" | "retry_deadline" => "5s",
            _ => crate::config::table::FIELDS
                .iter()
                .find(|field| field.params.contains(&key))
                .map_or("7", |field| field.example),
        };
        for key in KEYS {
            assert!(set(key, valid(key)).is_ok(), "{key}");
        }
        assert_eq!(set("nope", "1").unwrap_err(), "unknown parameter");
        assert_eq!(shown("passwd", "Zebra"), "***");
    }

    #[test]
    fn sets_the_named_field() {
        assert_eq!(set("user", "u").unwrap().role.unwrap(), "u");
        let password = set("password", "p").unwrap().password.unwrap().unwrap();
        assert_eq!(password.expose_secret(), "p");
        assert_eq!(set("dbname", "d").unwrap().database.unwrap(), "d");
        assert_eq!(set("pool_recycle", "off").unwrap().pool_recycle, Some(None));
        assert_eq!(
            set("statement_timeout", "1500ms")
                .unwrap()
                .statement_timeout,
            Some(Some(Duration::from_millis(1500)))
        );
        let retry = set("retry_multiplier", "1.5").unwrap().retry.unwrap();
        assert!((retry.get_multiplier() - 1.5).abs() < f64::EPSILON);
        assert_eq!(
            set("driver", "postgresql+postgres").unwrap().driver,
            Some(Driver::Postgres)
        );
    }

    #[test]
    fn driver_is_refused_in_urls() {
        let mut fields = Fields::default();
        let rule = apply(&mut fields, "driver", "postgresql", Form::Url).unwrap_err();
        assert!(rule.contains("URL scheme"));
    }

    #[test]
    fn malformed_values_name_the_rule() {
        assert!(
            set("pool_size", "-1")
                .unwrap_err()
                .contains("non-negative integer")
        );
        assert!(
            set("pool_size", "ten")
                .unwrap_err()
                .contains("non-negative integer")
        );
        assert!(
            set("pre_ping", "maybe")
                .unwrap_err()
                .contains("true or false")
        );
        assert!(set("retry_multiplier", "x").unwrap_err().contains("number"));
        assert!(
            set("sslmode", "x")
                .unwrap_err()
                .contains("disable, allow, prefer, require, verify-ca or verify-full")
        );
        assert!(
            set("connect_timeout", "x")
                .unwrap_err()
                .contains("duration")
        );
        assert!(set("idle_timeout", "x").unwrap_err().contains("or `off`"));
        assert!(
            set("options", "-x")
                .unwrap_err()
                .contains("unsupported switch")
        );
        assert!(
            set("driver", "postgresql+x")
                .unwrap_err()
                .contains("unknown driver")
        );
    }

    #[test]
    fn host_and_port_lists() {
        assert_eq!(host_list("a, b,[::1]").unwrap(), ["a", "b", "::1"]);
        assert!(host_list("a,,b").is_err());
        assert!(host_list("").is_err());
        assert_eq!(set("port", "5433").unwrap().ports, Some(vec![5433]));
        assert_eq!(
            set("port", "5432, 5433,").unwrap().ports,
            Some(vec![5432, 5433, 5432]),
            "an empty item is the default port, as in libpq"
        );
        assert!(set("port", "65536").unwrap_err().contains("port number"));
        assert!(set("port", "0").unwrap_err().contains("port number"));
        assert!(set("port", "http").unwrap_err().contains("port number"));
        assert_eq!(
            address_list("10.0.0.1, [::1]").unwrap(),
            [
                "10.0.0.1".parse::<std::net::IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert!(
            address_list("db.internal")
                .unwrap_err()
                .contains("not an IP address")
        );
    }

    #[test]
    fn booleans() {
        for t in ["true", "ON", "yes", "1"] {
            assert!(boolean(t).unwrap());
        }
        for f in ["false", "Off", "no", "0"] {
            assert!(!boolean(f).unwrap());
        }
    }

    #[test]
    fn passwords_are_never_shown() {
        assert_eq!(shown("password", "secret"), "***");
        assert_eq!(shown("user", "app"), "app");
    }
}
