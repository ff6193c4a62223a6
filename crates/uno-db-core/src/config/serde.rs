//! `serde::Deserialize` (feature `serde`): configuration files, validated
//! through [`ConnectionConfigBuilder::build`].

use std::fmt;
use std::time::Duration;

use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::config::codec::Codec;
use crate::config::table::{self, Fields};
use crate::config::{ConnectionConfig, ConnectionConfigBuilder, Driver, duration};

/// Reads one field's value with its codec: `None` leaves it unset.
pub(crate) struct Seed<C>(PhantomData<C>);

impl<C> Seed<C> {
    pub(crate) fn new() -> Self {
        Self(PhantomData)
    }
}

impl<'de, C: Codec> DeserializeSeed<'de> for Seed<C> {
    type Value = Option<C::Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        C::deserialize(d)
    }
}

/// The file form: a table of field keys (see the table's `serde` column).
struct FileVisitor;

impl<'de> Visitor<'de> for FileVisitor {
    type Value = Fields;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table of connection settings")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Fields, A::Error> {
        table::deserialize_fields(map)
    }
}

/// Every field is optional and explicit: the builder can still layer the
/// environment under it before `build`. Unknown keys are refused.
impl<'de> Deserialize<'de> for ConnectionConfigBuilder {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields =
            deserializer.deserialize_struct("ConnectionConfig", table::SERDE_KEYS, FileVisitor)?;
        Ok(Self::from_fields(fields))
    }
}

/// Deserializes the file form and validates it; missing fields take their
/// defaults. Durations are strings such as `"30s"` or `"1500ms"` (or whole
/// seconds as integers); optional ones also take `"off"`.
///
/// ```
/// use uno_db_core::ConnectionConfig;
///
/// let config: ConnectionConfig = serde_json::from_str(
///     r#"{"role": "app", "hosts": ["db1", "db2"], "pool_timeout": "5s", "retry": {"max_attempts": 2}}"#,
/// )?;
/// assert_eq!(config.hosts(), ["db1", "db2"]);
/// assert_eq!(config.retry().get_max_attempts(), 2);
/// # Ok::<(), serde_json::Error>(())
/// ```
impl<'de> Deserialize<'de> for ConnectionConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ConnectionConfigBuilder::deserialize(deserializer)?
            .build()
            .map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Driver {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse_scheme(&text).map_err(de::Error::custom)
    }
}

/// A duration: a string (`"30s"`, `"1500ms"`, `"off"` when optional) or
/// a whole number of seconds.
struct DurationVisitor {
    optional: bool,
}

impl<'de> Visitor<'de> for DurationVisitor {
    type Value = Option<Duration>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as \"30s\" or \"1500ms\", or whole seconds")?;
        if self.optional {
            f.write_str(", or \"off\"")?;
        }
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if self.optional {
            duration::parse_optional(v).map_err(E::custom)
        } else {
            duration::parse(v).map(Some).map_err(E::custom)
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(Duration::from_secs(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        u64::try_from(v)
            .map(|v| Some(Duration::from_secs(v)))
            .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        if self.optional {
            Ok(None)
        } else {
            Err(E::invalid_type(de::Unexpected::Unit, &self))
        }
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

pub(crate) fn required_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    d.deserialize_any(DurationVisitor { optional: false })
}

pub(crate) fn optional_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<Duration>>, D::Error> {
    d.deserialize_any(DurationVisitor { optional: true })
        .map(Some)
}

/// A password: a string. Errors never repeat the value.
struct PasswordVisitor;

impl Visitor<'_> for PasswordVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<String, E> {
        Err(E::custom("password must be a string"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<String, E> {
        Err(E::custom("password must be a string"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<String, E> {
        Err(E::custom("password must be a string"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<String, E> {
        Err(E::custom("password must be a string"))
    }
}

pub(crate) fn password<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(PasswordVisitor).map(Some)
}

/// An option value: a string, or a number or boolean written as text.
struct OptionValue(String);

impl<'de> Deserialize<'de> for OptionValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = OptionValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OptionValue, E> {
                Ok(OptionValue(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<OptionValue, E> {
                Ok(OptionValue(if v { "on" } else { "off" }.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<OptionValue, E> {
                Ok(OptionValue(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<OptionValue, E> {
                Ok(OptionValue(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<OptionValue, E> {
                Ok(OptionValue(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Options as a table (in document order) or a list of `[name, value]`.
struct OptionsVisitor;

impl<'de> Visitor<'de> for OptionsVisitor {
    type Value = Vec<(String, String)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table of settings or a list of [name, value] pairs")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some((key, OptionValue(value))) = map.next_entry::<String, OptionValue>()? {
            out.push((key, value));
        }
        Ok(out)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some((key, OptionValue(value))) = seq.next_element::<(String, OptionValue)>()? {
            out.push((key, value));
        }
        Ok(out)
    }
}

pub(crate) fn ordered_options<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<(String, String)>>, D::Error> {
    d.deserialize_any(OptionsVisitor).map(Some)
}

/// Hosts: one string (`host = "db"`) or a list of strings.
struct HostsVisitor;

impl<'de> Visitor<'de> for HostsVisitor {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a host or a list of hosts")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(vec![v.to_owned()])
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(host) = seq.next_element::<String>()? {
            out.push(host);
        }
        Ok(out)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Err(E::invalid_type(de::Unexpected::Unit, &self))
    }
}

/// Hosts from a file; `null` leaves them unset.
pub(crate) fn hosts<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    struct Optional;
    impl<'de> Visitor<'de> for Optional {
        type Value = Option<Vec<String>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a host or a list of hosts")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(HostsVisitor).map(Some)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            HostsVisitor.visit_str(v).map(Some)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            HostsVisitor.visit_seq(seq).map(Some)
        }
    }
    d.deserialize_any(Optional)
}

/// Ports from a file: a number, a list of numbers, or libpq's text
/// (`"5432,5433"`); `null` leaves them unset.
pub(crate) fn ports<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u16>>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Ports {
        One(u16),
        List(Vec<u16>),
        Text(String),
    }
    Ok(match Option::<Ports>::deserialize(d)? {
        None => None,
        Some(Ports::One(port)) => Some(vec![port]),
        Some(Ports::List(ports)) => Some(ports),
        Some(Ports::Text(text)) => {
            Some(crate::config::params::port_list(&text).map_err(de::Error::custom)?)
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;
    use crate::config::SslMode;
    use crate::retry::RetryPolicy;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn toml_file() {
        let c: ConnectionConfig = toml::from_str(
            r#"
            role = "app"
            password = "s3cret"
            hosts = ["db1", "db2"]
            port = 5433
            database = "orders"
            driver = "postgresql+tokio-postgres"
            schema = "app,public"
            application_name = "svc"
            set_role = "writer"
            pool_size = 20
            max_overflow = 5
            pool_timeout = "5s"
            connect_timeout = 3
            pool_recycle = "off"
            idle_timeout = "1min"
            pre_ping = true
            statement_timeout = "1500ms"
            ssl_mode = "require"
            keepalives_idle = "none"
            tcp_user_timeout = "10s"
            statement_cache_size = 0

            [options]
            work_mem = "64MB"
            jit = false
            lock_timeout = 2000

            [retry]
            max_attempts = 3
            initial_delay = "100ms"
            "#,
        )
        .unwrap();
        assert_eq!(c.role(), "app");
        assert_eq!(c.password().unwrap().expose_secret(), "s3cret");
        assert_eq!(c.hosts(), ["db1", "db2"]);
        assert_eq!(c.port(), 5433);
        assert_eq!(c.database(), "orders");
        assert_eq!(c.driver(), Driver::TokioPostgres);
        assert_eq!(c.schema(), Some("app,public"));
        assert_eq!(c.application_name(), Some("svc"));
        assert_eq!(c.set_role(), Some("writer"));
        assert_eq!((c.pool_size(), c.max_overflow()), (20, 5));
        assert_eq!(c.pool_timeout(), Duration::from_secs(5));
        assert_eq!(c.connect_timeout(), Duration::from_secs(3));
        assert_eq!(c.pool_recycle(), None);
        assert_eq!(c.idle_timeout(), Some(Duration::from_secs(60)));
        assert!(c.pre_ping());
        assert_eq!(c.statement_timeout(), Some(Duration::from_millis(1500)));
        assert_eq!(c.ssl_mode(), SslMode::Require);
        assert_eq!(c.keepalives_idle(), None);
        assert_eq!(c.tcp_user_timeout(), Some(Duration::from_secs(10)));
        assert_eq!(c.statement_cache_size(), 0);
        assert_eq!(
            c.options(),
            pairs(&[
                ("work_mem", "64MB"),
                ("jit", "off"),
                ("lock_timeout", "2000")
            ])
        );
        assert_eq!(c.retry().get_max_attempts(), 3);
        assert_eq!(c.retry().get_initial_delay(), Duration::from_millis(100));
        assert_eq!(
            c.retry().get_deadline(),
            RetryPolicy::default().get_deadline()
        );
    }

    #[test]
    fn empty_file_is_all_defaults() {
        let c: ConnectionConfig = toml::from_str("").unwrap();
        assert_eq!(c, ConnectionConfig::default());
        let c: ConnectionConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, ConnectionConfig::default());
    }

    #[test]
    fn json_file_with_aliases_nulls_and_option_pairs() {
        let c: ConnectionConfig = serde_json::from_str(
            r#"{"user": "app", "dbname": "orders", "host": "db", "sslmode": "disable",
                "pool_recycle": null, "options": [["b", "1"], ["a", "2"]]}"#,
        )
        .unwrap();
        assert_eq!(c.role(), "app");
        assert_eq!(c.database(), "orders");
        assert_eq!(c.hosts(), ["db"]);
        assert_eq!(c.ssl_mode(), SslMode::Disable);
        assert_eq!(c.pool_recycle(), None);
        assert_eq!(c.options(), pairs(&[("b", "1"), ("a", "2")]));
    }

    #[test]
    fn json_options_keep_document_order() {
        let c: ConnectionConfig =
            serde_json::from_str(r#"{"options": {"z": "1", "a": "2", "m": "3"}}"#).unwrap();
        assert_eq!(c.options(), pairs(&[("z", "1"), ("a", "2"), ("m", "3")]));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let error = toml::from_str::<ConnectionConfig>("colour = \"blue\"").unwrap_err();
        assert!(
            error.to_string().contains("unknown field `colour`"),
            "{error}"
        );
        let error = toml::from_str::<ConnectionConfig>("[retry]\ncolour = 1").unwrap_err();
        assert!(
            error.to_string().contains("unknown field `colour`"),
            "{error}"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in [
            r#"pool_timeout = "soon""#,
            r#"pool_timeout = "off""#,
            r#"idle_timeout = "later""#,
            r#"driver = "postgresql+jdbc""#,
            r#"ssl_mode = "verify-everything""#,
            r#"port = 70000"#,
            r#"pool_size = -1"#,
            r#"options = 3"#,
            "host = \"a\"\nhosts = [\"b\"]",
        ] {
            assert!(toml::from_str::<ConnectionConfig>(bad).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<ConnectionConfig>(r#"{"pool_timeout": null}"#).is_err());
        assert!(serde_json::from_str::<ConnectionConfig>(r#"{"pool_timeout": -1}"#).is_err());
    }

    #[test]
    fn validation_runs_and_reports_every_violation() {
        let error = toml::from_str::<ConnectionConfig>(
            "role = \"\"\npool_size = 0\npassword = \"Zebra\\u0000\"",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("role"), "{error}");
        assert!(error.contains("pool_size"), "{error}");
        assert!(error.contains("password = \"***\""), "{error}");
        assert!(!error.contains("Zebra"), "{error}");
    }

    #[test]
    fn password_type_errors_do_not_repeat_it() {
        // (toml's own errors quote the offending document line; serde_json's
        // do not, so this checks what this module adds.)
        let error = toml::from_str::<ConnectionConfig>("password = 918273").unwrap_err();
        assert!(
            error.to_string().contains("password must be a string"),
            "{error}"
        );
        let error =
            serde_json::from_str::<ConnectionConfig>(r#"{"password": 918273}"#).unwrap_err();
        assert!(!error.to_string().contains("918273"), "{error}");
    }

    #[test]
    fn builder_form_layers_the_environment_under_the_file() {
        let builder: ConnectionConfigBuilder = toml::from_str("pool_size = 3").unwrap();
        let c = builder
            .defaults_from(&[("UNO_DB_POOL_SIZE", "9"), ("PGUSER", "env")])
            .build()
            .unwrap();
        assert_eq!(c.pool_size(), 3);
        assert_eq!(c.role(), "env");
    }
}
