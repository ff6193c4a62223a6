//! Smart defaults from environment variables, read only when asked:
//! `DATABASE_URL` > `UNO_DB_*` > libpq's `PG*`.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use crate::config::parse;
use crate::config::table::{FIELDS, Fields};
use crate::config_violation::ConfigViolation;

/// Where environment variables are read from: the process
/// ([`ProcessEnv`]) or, in tests, a map or a slice of pairs.
///
/// ```
/// use uno_db_core::EnvSource;
///
/// let env = [("PGHOST", "db"), ("PGHOST", "db2")];
/// assert_eq!(env.var("PGHOST").as_deref(), Some("db2"));
/// assert_eq!(env.var("PGPORT"), None);
/// ```
pub trait EnvSource {
    /// The value of variable `name`, if set (and valid UTF-8).
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment (`std::env::var`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl<S: BuildHasher> EnvSource for HashMap<String, String, S> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl EnvSource for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// The last pair named `name` wins, as when a variable is set twice.
impl EnvSource for [(&str, &str)] {
    fn var(&self, name: &str) -> Option<String> {
        self.iter()
            .rev()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| (*value).to_owned())
    }
}

impl<const N: usize> EnvSource for [(&str, &str); N] {
    fn var(&self, name: &str) -> Option<String> {
        self.as_slice().var(name)
    }
}

impl<T: EnvSource + ?Sized> EnvSource for &T {
    fn var(&self, name: &str) -> Option<String> {
        (**self).var(name)
    }
}

/// The environment layer: `DATABASE_URL` over `UNO_DB_*` over `PG*` (each
/// field's variables, in the table's precedence order), and every
/// malformed variable. Empty variables count as unset.
pub(crate) fn layer<E: EnvSource + ?Sized>(env: &E) -> (Fields, Vec<ConfigViolation>) {
    let mut errors = Vec::new();
    let mut fields = match env.var("DATABASE_URL").filter(|v| !v.trim().is_empty()) {
        Some(url) => {
            let (fields, url_errors) = parse::parse(&url);
            errors.extend(url_errors.into_iter().map(|v| {
                ConfigViolation::new(
                    "DATABASE_URL",
                    v.value(),
                    format!("`{}` {}", v.field(), v.rule()),
                )
            }));
            fields
        }
        None => Fields::default(),
    };
    let ranks = FIELDS
        .iter()
        .map(|field| field.env.len())
        .max()
        .unwrap_or(0);
    for rank in 0..ranks {
        fields = fields.or(variables(env, rank, &mut errors));
    }
    (fields, errors)
}

/// The layer of every field's variable number `rank` (0: `UNO_DB_*`,
/// 1: libpq's `PG*`).
fn variables<E: EnvSource + ?Sized>(
    env: &E,
    rank: usize,
    errors: &mut Vec<ConfigViolation>,
) -> Fields {
    let mut fields = Fields::default();
    for field in FIELDS {
        let Some(name) = field.env.get(rank) else {
            continue;
        };
        let Some(value) = env.var(name).filter(|v| !v.is_empty()) else {
            continue;
        };
        if let Err(rule) = (field.apply_env)(&mut fields, &value) {
            let shown = if field.secret {
                "***".to_owned()
            } else {
                value
            };
            errors.push(ConfigViolation::new(*name, shown, rule));
        }
    }
    fields
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use crate::config::violation_tuples::violation_tuples;
    use std::time::Duration;

    use secrecy::ExposeSecret;

    use super::*;
    use crate::config::{ConnectionConfig, Driver, SslMode};

    fn from(env: &[(&str, &str)]) -> ConnectionConfig {
        match ConnectionConfig::from_env_with(env) {
            Ok(c) => c,
            Err(e) => panic!("{env:?}: {e}"),
        }
    }

    fn errors(env: &[(&str, &str)]) -> Vec<(String, String, String)> {
        violation_tuples(&ConnectionConfig::from_env_with(env).unwrap_err())
    }

    #[test]
    fn every_source_type_works() {
        let pairs = [("PGUSER", "a")];
        let hash: HashMap<String, String> = HashMap::from([("PGUSER".into(), "a".into())]);
        let btree: BTreeMap<String, String> = BTreeMap::from([("PGUSER".into(), "a".into())]);
        let vec = vec![("PGUSER", "a")];
        assert_eq!(ConnectionConfig::from_env_with(&pairs).unwrap().role(), "a");
        assert_eq!(
            ConnectionConfig::from_env_with(pairs.as_slice())
                .unwrap()
                .role(),
            "a"
        );
        assert_eq!(
            ConnectionConfig::from_env_with(vec.as_slice())
                .unwrap()
                .role(),
            "a"
        );
        assert_eq!(ConnectionConfig::from_env_with(&hash).unwrap().role(), "a");
        assert_eq!(ConnectionConfig::from_env_with(&btree).unwrap().role(), "a");
        assert_eq!(ConnectionConfig::from_env_with(&&hash).unwrap().role(), "a");
    }

    #[test]
    fn process_env_reads_the_process() {
        // PATH is set in any test environment; nothing is modified.
        assert!(ProcessEnv.var("PATH").is_some());
        assert_eq!(ProcessEnv.var("UNO_DB_SURELY_UNSET_VARIABLE_42"), None);
    }

    #[test]
    fn empty_environment_gives_the_defaults() {
        assert_eq!(from(&[]), ConnectionConfig::default());
    }

    #[test]
    // Its examples use `sslmode=require`, a configuration error without TLS.
    #[cfg(feature = "tls")]
    fn every_libpq_variable() {
        let c = from(&[
            ("PGHOST", "a,b"),
            ("PGPORT", "5433"),
            ("PGUSER", "u"),
            ("PGPASSWORD", "p"),
            ("PGDATABASE", "d"),
            ("PGAPPNAME", "app"),
            ("PGSSLMODE", "require"),
            ("PGCONNECT_TIMEOUT", "7"),
        ]);
        assert_eq!(c.hosts(), ["a", "b"]);
        assert_eq!(c.port(), 5433);
        assert_eq!(c.role(), "u");
        assert_eq!(c.password().unwrap().expose_secret(), "p");
        assert_eq!(c.database(), "d");
        assert_eq!(c.application_name(), Some("app"));
        assert_eq!(c.ssl_mode(), SslMode::Require);
        assert_eq!(c.connect_timeout(), Duration::from_secs(7));
    }

    #[test]
    fn every_uno_db_variable() {
        let c = from(&[
            ("UNO_DB_ROLE", "u"),
            ("UNO_DB_PASSWORD", "p"),
            ("UNO_DB_HOST", "a, b"),
            ("UNO_DB_PORT", "5433"),
            ("UNO_DB_NAME", "d"),
            ("UNO_DB_SCHEMA", "app,public"),
            ("UNO_DB_DRIVER", "postgresql+tokio-postgres"),
            ("UNO_DB_APPLICATION_NAME", "svc"),
            ("UNO_DB_SET_ROLE", "reader"),
            ("UNO_DB_POOL_SIZE", "3"),
            ("UNO_DB_MAX_OVERFLOW", "4"),
            ("UNO_DB_POOL_TIMEOUT", "5s"),
            ("UNO_DB_CONNECT_TIMEOUT", "1500ms"),
            ("UNO_DB_POOL_RECYCLE", "off"),
            ("UNO_DB_IDLE_TIMEOUT", "2min"),
            ("UNO_DB_PRE_PING", "true"),
            ("UNO_DB_STATEMENT_TIMEOUT", "30s"),
            ("UNO_DB_SSL_MODE", "disable"),
            ("UNO_DB_STATEMENT_CACHE_SIZE", "0"),
        ]);
        assert_eq!(c.role(), "u");
        assert_eq!(c.password().unwrap().expose_secret(), "p");
        assert_eq!(c.hosts(), ["a", "b"]);
        assert_eq!(c.port(), 5433);
        assert_eq!(c.database(), "d");
        assert_eq!(c.schema(), Some("app,public"));
        assert_eq!(c.driver(), Driver::TokioPostgres);
        assert_eq!(c.application_name(), Some("svc"));
        assert_eq!(c.set_role(), Some("reader"));
        assert_eq!((c.pool_size(), c.max_overflow()), (3, 4));
        assert_eq!(c.pool_timeout(), Duration::from_secs(5));
        assert_eq!(c.connect_timeout(), Duration::from_millis(1500));
        assert_eq!(c.pool_recycle(), None);
        assert_eq!(c.idle_timeout(), Some(Duration::from_secs(120)));
        assert!(c.pre_ping());
        assert_eq!(c.statement_timeout(), Some(Duration::from_secs(30)));
        assert_eq!(c.ssl_mode(), SslMode::Disable);
        assert_eq!(c.statement_cache_size(), 0);
    }

    #[test]
    // Its examples use `sslmode=require`, a configuration error without TLS.
    #[cfg(feature = "tls")]
    fn database_url_sets_what_it_names() {
        let c = from(&[(
            "DATABASE_URL",
            "postgresql+postgres://u:p@h:6000/d?pool_size=4&sslmode=require",
        )]);
        assert_eq!(c.driver(), Driver::Postgres);
        assert_eq!(
            (c.role(), c.hosts(), c.port(), c.database()),
            ("u", &["h".to_owned()][..], 6000, "d")
        );
        assert_eq!(c.pool_size(), 4);
        assert_eq!(c.ssl_mode(), SslMode::Require);
        let c = from(&[("DATABASE_URL", "host=h dbname=kv")]);
        assert_eq!(c.database(), "kv");
    }

    // Precedence, one step at a time, on the same field (role), then on a
    // field only some layers set.

    #[test]
    fn step_1_defaults_when_nothing_is_set() {
        assert_eq!(from(&[]).role(), "postgres");
    }

    #[test]
    fn step_2_libpq_beats_defaults() {
        assert_eq!(from(&[("PGUSER", "pg")]).role(), "pg");
    }

    #[test]
    fn step_3_uno_db_beats_libpq() {
        assert_eq!(
            from(&[("PGUSER", "pg"), ("UNO_DB_ROLE", "uno")]).role(),
            "uno"
        );
        let c = from(&[
            ("PGHOST", "pg"),
            ("UNO_DB_HOST", "uno"),
            ("PGPORT", "1"),
            ("UNO_DB_PORT", "2"),
        ]);
        assert_eq!((c.hosts(), c.port()), (&["uno".to_owned()][..], 2));
    }

    #[test]
    fn step_4_database_url_beats_uno_db() {
        let env = [
            ("PGUSER", "pg"),
            ("UNO_DB_ROLE", "uno"),
            ("DATABASE_URL", "postgresql://url@h/db"),
        ];
        assert_eq!(from(&env).role(), "url");
    }

    #[test]
    fn step_5_explicit_beats_database_url() {
        let env = [
            ("PGUSER", "pg"),
            ("UNO_DB_ROLE", "uno"),
            ("DATABASE_URL", "postgresql://url@h/db"),
        ];
        let c = ConnectionConfig::builder()
            .role("explicit")
            .defaults_from(&env)
            .build()
            .unwrap();
        assert_eq!(c.role(), "explicit");
    }

    #[test]
    fn layers_fill_field_by_field() {
        let env = [
            ("DATABASE_URL", "postgresql://url@urlhost/urldb"),
            ("UNO_DB_PASSWORD", "uno-pw"),
            ("UNO_DB_POOL_SIZE", "7"),
            ("PGPORT", "6543"),
            ("PGAPPNAME", "pgapp"),
            ("PGDATABASE", "pgdb"),
        ];
        let c = ConnectionConfig::builder()
            .max_overflow(1)
            .defaults_from(&env)
            .build()
            .unwrap();
        assert_eq!(c.role(), "url");
        assert_eq!(c.hosts(), ["urlhost"]);
        assert_eq!(c.database(), "urldb");
        assert_eq!(c.password().unwrap().expose_secret(), "uno-pw");
        assert_eq!(c.pool_size(), 7);
        assert_eq!(c.max_overflow(), 1);
        assert_eq!(c.port(), 6543);
        assert_eq!(c.application_name(), Some("pgapp"));
        assert_eq!(c.pool_timeout(), Duration::from_secs(30));
    }

    #[test]
    fn bare_scheme_leaves_the_driver_to_lower_layers() {
        let env = [
            ("DATABASE_URL", "postgresql://h/db"),
            ("UNO_DB_DRIVER", "postgresql+postgres"),
        ];
        assert_eq!(from(&env).driver(), Driver::Postgres);
        let env = [
            ("DATABASE_URL", "postgresql+tokio-postgres://h/db"),
            ("UNO_DB_DRIVER", "postgresql+postgres"),
        ];
        assert_eq!(from(&env).driver(), Driver::TokioPostgres);
    }

    #[test]
    fn off_in_a_higher_layer_beats_a_value_below() {
        let env = [
            ("DATABASE_URL", "postgresql://h?statement_timeout=off"),
            ("UNO_DB_STATEMENT_TIMEOUT", "5s"),
        ];
        assert_eq!(from(&env).statement_timeout(), None);
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let env = [("UNO_DB_ROLE", ""), ("PGUSER", "pg"), ("DATABASE_URL", " ")];
        assert_eq!(from(&env).role(), "pg");
    }

    #[test]
    fn nothing_is_read_unless_asked() {
        // A builder never asked reads nothing, whatever the process has.
        let c = ConnectionConfig::builder().build().unwrap();
        assert_eq!(c, ConnectionConfig::default());
    }

    #[test]
    fn malformed_variables_are_named() {
        assert_eq!(
            errors(&[("UNO_DB_PORT", "http")]),
            [(
                "UNO_DB_PORT".to_owned(),
                "http".to_owned(),
                "must be a port number between 1 and 65535".to_owned()
            )]
        );
        for (name, value) in [
            ("UNO_DB_POOL_SIZE", "many"),
            ("UNO_DB_MAX_OVERFLOW", "-1"),
            ("UNO_DB_POOL_TIMEOUT", "soon"),
            ("UNO_DB_CONNECT_TIMEOUT", "x"),
            ("UNO_DB_POOL_RECYCLE", "x"),
            ("UNO_DB_IDLE_TIMEOUT", "x"),
            ("UNO_DB_PRE_PING", "maybe"),
            ("UNO_DB_STATEMENT_TIMEOUT", "x"),
            ("UNO_DB_SSL_MODE", "verify-most"),
            ("UNO_DB_STATEMENT_CACHE_SIZE", "x"),
            ("UNO_DB_DRIVER", "postgresql+jdbc"),
            ("UNO_DB_HOST", "a,,b"),
            ("PGPORT", "x"),
            ("PGSSLMODE", "on"),
            ("PGCONNECT_TIMEOUT", "x"),
            ("PGHOST", ","),
        ] {
            let found = errors(&[(name, value)]);
            assert_eq!(found.len(), 1, "{name}: {found:?}");
            assert_eq!(found[0].0, name);
            assert_eq!(found[0].1, value);
        }
    }

    #[test]
    fn zero_waits_from_the_environment_name_the_variable() {
        let found = errors(&[("PGCONNECT_TIMEOUT", "0")]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "PGCONNECT_TIMEOUT");
        assert!(found[0].2.contains("waiting forever"));
        assert_eq!(
            errors(&[("UNO_DB_POOL_TIMEOUT", "0s")])[0].0,
            "UNO_DB_POOL_TIMEOUT"
        );
    }

    #[test]
    fn malformed_database_url_is_named_without_the_password() {
        let found = errors(&[("DATABASE_URL", "postgresql://u:Zebra@h?pool_size=x")]);
        assert_eq!(
            found,
            [(
                "DATABASE_URL".to_owned(),
                "x".to_owned(),
                "`pool_size` must be a non-negative integer".to_owned()
            )]
        );
        let found = errors(&[("DATABASE_URL", "postgresql://u:Zebra%zz@h")]);
        assert_eq!(found[0].0, "DATABASE_URL");
        assert_eq!(found[0].1, "***");
        let found = errors(&[("DATABASE_URL", "mysql://u:Zebra@h")]);
        assert!(found[0].2.contains("unsupported scheme"));
        assert!(!format!("{found:?}").contains("Zebra"));
    }

    #[test]
    fn password_variables_are_never_shown() {
        let error = ConnectionConfig::from_env_with(&[("UNO_DB_PASSWORD", "Zebra\0")]).unwrap_err();
        assert!(!error.to_string().contains("Zebra"));
    }

    #[test]
    fn rule_violations_from_the_environment_are_reported() {
        let found = errors(&[("UNO_DB_POOL_SIZE", "0")]);
        assert_eq!(found[0].0, "pool_size");
    }
}
