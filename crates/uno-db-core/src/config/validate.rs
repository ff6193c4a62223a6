//! The rules a configuration must satisfy, all checked at once.

use std::time::Duration;

use secrecy::ExposeSecret;

use crate::config::connection_config::Inner;
use crate::config::duration;
use crate::config::limits::{
    MAX_CONNECTIONS, MAX_LIFETIME, MAX_NAME_BYTES, MAX_SERVER_TIMEOUT, MAX_STATEMENT_CACHE_SIZE,
    MAX_WAIT, MIN_KEEPALIVES_IDLE, MIN_LIFETIME, MIN_TIMEOUT,
};
use crate::config_violation::ConfigViolation;

/// Every rule `c` breaks, in field order; empty when valid.
pub(crate) fn violations(c: &Inner) -> Vec<ConfigViolation> {
    let mut out = Violations(Vec::new());
    out.name("role", &c.role);
    if let Some(password) = &c.password
        && password.expose_secret().contains('\0')
    {
        out.push("password", "***", "must not contain NUL bytes");
    }
    out.name("database", &c.database);
    out.hosts(&c.hosts);
    if c.port == 0 {
        out.push("port", "0", "must be between 1 and 65535");
    }
    if let Some(schema) = &c.schema {
        out.schema(schema);
    }
    if let Some(name) = &c.application_name {
        out.application_name(name);
    }
    if let Some(role) = &c.set_role {
        out.identifier("set_role", role);
    }
    out.pool(c.pool_size, c.max_overflow);
    out.range(
        "pool_timeout",
        c.pool_timeout,
        MIN_TIMEOUT,
        MAX_WAIT,
        "1ms and 1 hour",
    );
    let (name, value) = ("connect_timeout", c.connect_timeout);
    out.range(name, value, MIN_TIMEOUT, MAX_WAIT, "1ms and 1 hour");
    let lifetime = "1s and 1 week (or off)";
    if let Some(value) = c.pool_recycle {
        out.range("pool_recycle", value, MIN_LIFETIME, MAX_LIFETIME, lifetime);
    }
    if let Some(value) = c.idle_timeout {
        out.range("idle_timeout", value, MIN_LIFETIME, MAX_LIFETIME, lifetime);
    }
    let server = "1ms and 1 day (or off)";
    if let Some(value) = c.statement_timeout {
        out.range(
            "statement_timeout",
            value,
            MIN_TIMEOUT,
            MAX_SERVER_TIMEOUT,
            server,
        );
    }
    if let Some(value) = c.keepalives_idle {
        let rule = "1s and 1 day (or off)";
        out.range(
            "keepalives_idle",
            value,
            MIN_KEEPALIVES_IDLE,
            MAX_SERVER_TIMEOUT,
            rule,
        );
    }
    if let Some(value) = c.tcp_user_timeout {
        out.range(
            "tcp_user_timeout",
            value,
            MIN_TIMEOUT,
            MAX_SERVER_TIMEOUT,
            server,
        );
    }
    if c.statement_cache_size > MAX_STATEMENT_CACHE_SIZE {
        out.push(
            "statement_cache_size",
            c.statement_cache_size.to_string(),
            "must be at most 10000",
        );
    }
    for (key, value) in &c.options {
        out.option(key, value);
    }
    for (field, value, rule) in c.retry.violations() {
        out.push(field, value, rule);
    }
    out.0
}

/// Whether `s` is an unquoted SQL identifier: `[A-Za-z_][A-Za-z0-9_$]*`,
/// at most 63 bytes.
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    s.len() <= MAX_NAME_BYTES
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// Whether `s` is shaped like a server setting name:
/// `[A-Za-z_][A-Za-z0-9_.]*`.
pub(crate) fn is_guc_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

struct Violations(Vec<ConfigViolation>);

impl Violations {
    fn push(&mut self, field: &str, value: impl Into<String>, rule: &str) {
        self.0.push(ConfigViolation::new(field, value, rule));
    }

    fn no_nul(&mut self, field: &str, value: &str) -> bool {
        if value.contains('\0') {
            self.push(field, value, "must not contain NUL bytes");
            false
        } else {
            true
        }
    }

    /// Role and database: non-empty, at most 63 bytes, no NUL.
    fn name(&mut self, field: &str, value: &str) {
        if value.is_empty() {
            self.push(field, value, "must not be empty");
        } else if value.len() > MAX_NAME_BYTES {
            self.push(field, value, "must be at most 63 bytes");
        }
        self.no_nul(field, value);
    }

    fn hosts(&mut self, hosts: &[String]) {
        if hosts.is_empty() {
            self.push("hosts", "", "must list at least one host");
        }
        for host in hosts {
            if host.is_empty() {
                self.push("hosts", "", "a host must not be empty");
            }
            self.no_nul("hosts", host);
        }
    }

    fn schema(&mut self, schema: &str) {
        if self.no_nul("schema", schema) && !schema.split(',').map(str::trim).all(is_identifier) {
            self.push(
                "schema",
                schema,
                "must be an unquoted identifier ([A-Za-z_][A-Za-z0-9_$]*, at most 63 bytes) \
                 or a comma-separated list of them",
            );
        }
    }

    fn identifier(&mut self, field: &str, value: &str) {
        if self.no_nul(field, value) && !is_identifier(value) {
            self.push(
                field,
                value,
                "must be an unquoted identifier ([A-Za-z_][A-Za-z0-9_$]*, at most 63 bytes)",
            );
        }
    }

    fn application_name(&mut self, name: &str) {
        if self.no_nul("application_name", name) {
            if name.len() > MAX_NAME_BYTES {
                self.push("application_name", name, "must be at most 63 bytes");
            }
            if !name.chars().all(|c| matches!(c, ' '..='~')) {
                self.push(
                    "application_name",
                    name,
                    "must contain only printable ASCII characters",
                );
            }
        }
    }

    fn pool(&mut self, pool_size: usize, max_overflow: usize) {
        if pool_size == 0 || pool_size > MAX_CONNECTIONS {
            self.push(
                "pool_size",
                pool_size.to_string(),
                "must be between 1 and 1000",
            );
        }
        if max_overflow > MAX_CONNECTIONS {
            self.push(
                "max_overflow",
                max_overflow.to_string(),
                "must be at most 1000",
            );
        }
        if pool_size <= MAX_CONNECTIONS
            && max_overflow <= MAX_CONNECTIONS
            && pool_size + max_overflow > MAX_CONNECTIONS
        {
            self.push(
                "max_overflow",
                max_overflow.to_string(),
                "pool_size + max_overflow must be at most 1000",
            );
        }
    }

    fn range(&mut self, field: &str, value: Duration, min: Duration, max: Duration, between: &str) {
        if value < min || value > max {
            self.push(
                field,
                duration::format(value),
                &format!("must be between {between}"),
            );
        }
    }

    fn option(&mut self, key: &str, value: &str) {
        if !is_guc_name(key) {
            self.push(
                "options",
                key,
                "a setting name must look like [A-Za-z_][A-Za-z0-9_.]*",
            );
        }
        if value.contains('\0') {
            self.push(
                "options",
                value,
                "a setting value must not contain NUL bytes",
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::config::violation_tuples::violation_tuples;
    use crate::config::{ConnectionConfig, ConnectionConfigBuilder};
    use crate::error::ErrorKind;
    use crate::retry::RetryPolicy;

    fn base() -> ConnectionConfigBuilder {
        ConnectionConfig::builder()
    }

    /// The `(field, value, rule)` of every violation `builder` produces.
    fn broken(builder: &ConnectionConfigBuilder) -> Vec<(String, String, String)> {
        let error = builder.build().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config);
        violation_tuples(&error)
    }

    /// Asserts `builder` breaks exactly one rule, of `field`, whose text
    /// contains `rule`.
    fn assert_one(builder: &ConnectionConfigBuilder, field: &str, rule: &str) {
        let found = broken(builder);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, field, "{found:?}");
        assert!(found[0].2.contains(rule), "{found:?}");
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn defaults_are_valid() {
        assert!(base().build().is_ok());
    }

    #[test]
    fn role_rules() {
        assert_one(&base().role(""), "role", "must not be empty");
        assert_one(&base().role("r".repeat(64)), "role", "at most 63 bytes");
        assert!(base().role("r".repeat(63)).build().is_ok());
        assert_one(&base().role("é".repeat(32)), "role", "at most 63 bytes");
        assert_one(&base().role("a\0b"), "role", "NUL");
    }

    #[test]
    fn database_rules() {
        assert_one(&base().database(""), "database", "must not be empty");
        assert_one(
            &base().database("d".repeat(64)),
            "database",
            "at most 63 bytes",
        );
        assert_one(&base().database("a\0"), "database", "NUL");
    }

    #[test]
    fn password_nul_is_reported_without_the_value() {
        let found = broken(&base().password("Zebra\0Quux"));
        assert_eq!(
            found,
            [(
                "password".to_owned(),
                "***".to_owned(),
                "must not contain NUL bytes".to_owned()
            )]
        );
        let error = base().password("Zebra\0Quux").build().unwrap_err();
        assert!(!error.to_string().contains("Zebra"));
        assert!(!format!("{error:?}").contains("Zebra"));
    }

    #[test]
    fn host_rules() {
        assert_one(
            &base().hosts(Vec::<String>::new()),
            "hosts",
            "at least one host",
        );
        assert_one(&base().host(""), "hosts", "must not be empty");
        assert_one(&base().hosts(["a", ""]), "hosts", "must not be empty");
        assert_one(&base().host("a\0b"), "hosts", "NUL");
        assert!(
            base()
                .hosts(["a", "::1", "/var/run/postgresql"])
                .build()
                .is_ok()
        );
    }

    #[test]
    fn port_zero_is_rejected() {
        assert_one(&base().port(0), "port", "between 1 and 65535");
        assert!(base().port(65535).build().is_ok());
    }

    #[test]
    fn schema_rules() {
        for good in ["app", "_x", "a$1", "app,public", "app, public", "A_b"] {
            assert!(base().schema(good).build().is_ok(), "{good}");
        }
        for bad in [
            "", "1app", "app-x", "app,", "a b", "\"app\"", "$user", "app;drop",
        ] {
            assert_one(&base().schema(bad), "schema", "identifier");
        }
        assert_one(&base().schema("s".repeat(64)), "schema", "identifier");
        assert_one(&base().schema("a\0"), "schema", "NUL");
    }

    #[test]
    fn set_role_rules() {
        assert!(base().set_role("reader").build().is_ok());
        for bad in ["", "9x", "a,b", "a-b", "x y"] {
            assert_one(&base().set_role(bad), "set_role", "identifier");
        }
        assert_one(&base().set_role("r".repeat(64)), "set_role", "identifier");
        assert_one(&base().set_role("a\0"), "set_role", "NUL");
    }

    #[test]
    fn application_name_rules() {
        assert!(base().application_name("my app (v2)").build().is_ok());
        assert!(base().application_name("").build().is_ok());
        assert_one(
            &base().application_name("a".repeat(64)),
            "application_name",
            "at most 63 bytes",
        );
        assert_one(
            &base().application_name("tab\there"),
            "application_name",
            "printable",
        );
        assert_one(
            &base().application_name("café"),
            "application_name",
            "printable",
        );
        assert_one(&base().application_name("a\0"), "application_name", "NUL");
    }

    #[test]
    fn pool_size_rules() {
        assert_one(&base().pool_size(0), "pool_size", "between 1 and 1000");
        assert_one(
            &base().pool_size(1001).max_overflow(0),
            "pool_size",
            "between 1 and 1000",
        );
        assert!(base().pool_size(1000).max_overflow(0).build().is_ok());
        assert_one(
            &base().pool_size(usize::MAX),
            "pool_size",
            "between 1 and 1000",
        );
    }

    #[test]
    fn max_overflow_rules() {
        assert_one(
            &base().pool_size(1).max_overflow(1001),
            "max_overflow",
            "at most 1000",
        );
        assert_one(
            &base().pool_size(500).max_overflow(501),
            "max_overflow",
            "pool_size + max_overflow",
        );
        assert!(base().pool_size(500).max_overflow(500).build().is_ok());
        let found = broken(&base().pool_size(usize::MAX).max_overflow(usize::MAX));
        assert_eq!(found.len(), 2, "{found:?}");
    }

    #[test]
    fn wait_rules() {
        for field in ["pool_timeout", "connect_timeout"] {
            let set = |d: Duration| match field {
                "pool_timeout" => base().pool_timeout(d),
                _ => base().connect_timeout(d),
            };
            assert_one(&set(Duration::ZERO), field, "between 1ms and 1 hour");
            assert_one(
                &set(Duration::from_micros(999)),
                field,
                "between 1ms and 1 hour",
            );
            assert_one(&set(secs(3601)), field, "between 1ms and 1 hour");
            assert!(set(secs(3600)).build().is_ok());
            assert!(set(Duration::from_millis(1)).build().is_ok());
        }
    }

    #[test]
    fn lifetime_rules() {
        for field in ["pool_recycle", "idle_timeout"] {
            let set = |d: Option<Duration>| match field {
                "pool_recycle" => base().pool_recycle(d),
                _ => base().idle_timeout(d),
            };
            assert_one(
                &set(Some(Duration::from_millis(999))),
                field,
                "between 1s and 1 week",
            );
            assert_one(
                &set(Some(secs(7 * 86400 + 1))),
                field,
                "between 1s and 1 week",
            );
            assert!(set(Some(secs(1))).build().is_ok());
            assert!(set(Some(secs(7 * 86400))).build().is_ok());
            assert!(set(None).build().is_ok());
        }
    }

    #[test]
    fn statement_timeout_rules() {
        let set = |d: Duration| base().statement_timeout(d);
        assert_one(
            &set(Duration::ZERO),
            "statement_timeout",
            "between 1ms and 1 day",
        );
        assert_one(
            &set(secs(86401)),
            "statement_timeout",
            "between 1ms and 1 day",
        );
        assert!(set(secs(86400)).build().is_ok());
        assert!(base().statement_timeout(None).build().is_ok());
    }

    #[test]
    fn keepalive_and_user_timeout_rules() {
        let k = |d: Duration| base().keepalives_idle(d);
        assert_one(
            &k(Duration::ZERO),
            "keepalives_idle",
            "between 1s and 1 day",
        );
        assert_one(
            &k(Duration::from_millis(500)),
            "keepalives_idle",
            "between 1s and 1 day",
        );
        assert_one(&k(secs(86401)), "keepalives_idle", "between 1s and 1 day");
        assert!(k(secs(86400)).build().is_ok());
        let t = |d: Duration| base().tcp_user_timeout(d);
        assert_one(
            &t(Duration::ZERO),
            "tcp_user_timeout",
            "between 1ms and 1 day",
        );
        assert_one(&t(secs(86401)), "tcp_user_timeout", "between 1ms and 1 day");
        assert!(t(Duration::from_millis(1)).build().is_ok());
    }

    #[test]
    fn statement_cache_size_rules() {
        assert_one(
            &base().statement_cache_size(10_001),
            "statement_cache_size",
            "at most 10000",
        );
        assert!(base().statement_cache_size(10_000).build().is_ok());
        assert!(base().statement_cache_size(0).build().is_ok());
    }

    #[test]
    fn option_rules() {
        assert!(
            base()
                .option("search_path", "a b")
                .option("my.opt_1", "")
                .build()
                .is_ok()
        );
        for bad in ["", "1x", "a-b", "a b", "a=b", "é"] {
            assert_one(&base().option(bad, "v"), "options", "setting name");
        }
        assert_one(&base().option("a\0", "v"), "options", "setting name");
        assert_one(&base().option("work_mem", "1\0"), "options", "NUL");
    }

    #[test]
    fn retry_violations_are_included() {
        let retry = RetryPolicy::default().max_attempts(0).multiplier(f64::NAN);
        let found = broken(&base().retry(retry));
        let fields: Vec<_> = found.iter().map(|v| v.0.as_str()).collect();
        assert_eq!(fields, ["retry.max_attempts", "retry.multiplier"]);
    }

    #[test]
    fn every_violation_is_reported_at_once() {
        let builder = base()
            .role("")
            .database("")
            .host("")
            .port(0)
            .pool_size(0)
            .pool_timeout(Duration::ZERO)
            .statement_cache_size(99_999)
            .set_role("-");
        let found = broken(&builder);
        let fields: Vec<_> = found.iter().map(|v| v.0.as_str()).collect();
        assert_eq!(
            fields,
            [
                "role",
                "database",
                "hosts",
                "port",
                "set_role",
                "pool_size",
                "pool_timeout",
                "statement_cache_size"
            ]
        );
        let message = builder.build().unwrap_err().to_string();
        assert!(
            message.starts_with("invalid connection configuration: role"),
            "{message}"
        );
    }

    #[test]
    fn identifier_helpers() {
        assert!(is_identifier("a"));
        assert!(is_identifier(&"a".repeat(63)));
        assert!(!is_identifier(&"a".repeat(64)));
        assert!(!is_identifier(""));
        assert!(is_guc_name("a.b_c"));
        assert!(!is_guc_name(".a"));
    }
}
