//! The rules a configuration must satisfy, all checked at once. Each field
//! row of the table names one [`Rule`]; [`violations`] runs them in table
//! order.

use std::net::IpAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::config::limits::{MAX_CONNECTIONS, MAX_MULTIPLEX_CONNECTIONS, MAX_NAME_BYTES};
use crate::config::table::{FIELDS, Inner};
use crate::config::{
    ChannelBinding, Driver, PgBouncerMode, SslMode, SslNegotiation, duration, tls_setup,
};
use crate::config_violation::ConfigViolation;
use crate::retry::RetryPolicy;

/// Every rule `c` breaks, in field order; empty when valid.
pub(crate) fn violations(c: &Inner) -> Vec<ConfigViolation> {
    let mut out = Violations::default();
    for field in FIELDS {
        (field.check)(c, &mut out);
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

/// The violations found so far.
#[derive(Default)]
pub(crate) struct Violations(Vec<ConfigViolation>);

/// The field a rule checks.
pub(crate) struct Context {
    pub(crate) field: &'static str,
    /// A secret's value is reported as `***`.
    pub(crate) secret: bool,
}

impl Violations {
    pub(crate) fn push(&mut self, at: &Context, value: impl Into<String>, rule: &str) {
        let value = if at.secret {
            "***".to_owned()
        } else {
            value.into()
        };
        self.0.push(ConfigViolation::new(at.field, value, rule));
    }

    /// Reports a NUL byte; true when there is none.
    fn no_nul(&mut self, at: &Context, value: &str) -> bool {
        if value.contains('\0') {
            self.push(at, value, "must not contain NUL bytes");
            false
        } else {
            true
        }
    }
}

/// A rule for values of type `T`, named by a field row.
pub(crate) trait Rule<T> {
    /// Reports every way `value`, the field `at` of `config`, breaks the
    /// rule.
    fn check(&self, at: &Context, value: &T, config: &Inner, out: &mut Violations);

    /// The rule, for `docs/configuration.md`; `None` when there is none.
    #[cfg(test)]
    fn describe(&self) -> Option<String>;
}

/// No rule: every value of the type is valid.
pub(crate) struct NoRule;

impl<T> Rule<T> for NoRule {
    fn check(&self, _: &Context, _: &T, _: &Inner, _: &mut Violations) {}

    #[cfg(test)]
    fn describe(&self) -> Option<String> {
        None
    }
}

/// Behind PgBouncer in transaction mode, nothing may be session state:
/// a setting made on one server connection would leak to other clients
/// and be missing from this one's next transaction.
pub(crate) struct PgBouncerRule;

impl Rule<PgBouncerMode> for PgBouncerRule {
    fn check(&self, at: &Context, mode: &PgBouncerMode, c: &Inner, out: &mut Violations) {
        if !mode.shares_server_connections() {
            return;
        }
        let session_state = [
            (c.schema.is_some(), "schema", "SET search_path"),
            (c.set_role.is_some(), "set_role", "SET ROLE"),
            (
                c.statement_timeout.is_some(),
                "statement_timeout",
                "a startup option PgBouncer refuses",
            ),
            (
                !c.options.is_empty(),
                "options",
                "startup options PgBouncer refuses",
            ),
        ];
        for (_, field, how) in session_state.iter().filter(|(set, _, _)| *set) {
            out.push(
                at,
                mode.as_str(),
                &format!(
                    "cannot be combined with `{field}` ({how}): PgBouncer in transaction \
                     mode shares server connections between clients, so session settings \
                     would leak; set it on the role (ALTER ROLE ... SET) or use \
                     pgbouncer_mode=session"
                ),
            );
        }
    }

    #[cfg(test)]
    fn describe(&self) -> Option<String> {
        Some(
            "`transaction` excludes `schema`, `set_role`, `statement_timeout` and `options`"
                .to_owned(),
        )
    }
}

/// `multiplex_connections`: at most 64, for the async backend, and not
/// behind PgBouncer in transaction mode (a shared connection caches
/// prepared statements, which that mode cannot keep).
pub(crate) struct Multiplex;

impl Rule<usize> for Multiplex {
    fn check(&self, at: &Context, value: &usize, c: &Inner, out: &mut Violations) {
        if *value == 0 {
            return;
        }
        if *value > MAX_MULTIPLEX_CONNECTIONS {
            out.push(
                at,
                value.to_string(),
                &format!("must be at most {MAX_MULTIPLEX_CONNECTIONS}"),
            );
        }
        if c.driver == Driver::Postgres {
            out.push(
                at,
                value.to_string(),
                "is for the async backend (tokio-postgres); the blocking driver has no \
                 multiplexed mode",
            );
        }
        if c.pgbouncer_mode.shares_server_connections() {
            out.push(
                at,
                value.to_string(),
                "cannot be combined with pgbouncer_mode=transaction: statements pipelined \
                 on a shared connection use prepared statements, which PgBouncer in \
                 transaction mode cannot keep",
            );
        }
    }

    #[cfg(test)]
    fn describe(&self) -> Option<String> {
        Some(format!(
            "at most {MAX_MULTIPLEX_CONNECTIONS}; not with the blocking driver nor \
             `pgbouncer_mode=transaction`"
        ))
    }
}

/// Role and database: non-empty, at most 63 bytes, no NUL.
pub(crate) struct Name;

impl Rule<String> for Name {
    fn check(&self, at: &Context, value: &String, _: &Inner, out: &mut Violations) {
        if value.is_empty() {
            out.push(at, value, "must not be empty");
        } else if value.len() > MAX_NAME_BYTES {
            out.push(at, value, "must be at most 63 bytes");
        }
        out.no_nul(at, value);
    }

    #[cfg(test)]
    fn describe(&self) -> Option<String> {
        Some("not empty; at most 63 bytes (`NAMEDATALEN - 1`); no NUL".to_owned())
    }
}

/// A secret without NUL bytes.
pub(crate) struct NoNul;

impl Rule<Option<SecretString>> for NoNul {
    fn check(&self, at: &Context, value: &Option<SecretString>, _: &Inner, out: &mut Violations) {
        if let Some(value) = value {
            out.no_nul(at, value.expose_secret());
        }
    }

    #[cfg(test)]
    fn describe(&self) -> Option<String> {
        Some("no NUL".to_owned())
    }
}

/// A file path, when set: not empty, no NUL. Whether the file can be read
/// is [`TlsSetup`]'s or the password file's business.
pub(crate) struct FilePath;

impl Rule<Option<String>> for FilePath {
    fn check(&self, at: &Context, value: &Option<String>, _: &Inner, out: &mut Violations) {
        let Some(path) = value else { return };
        if out.no_nul(at, path) && path.is_empty() {
            out.push(at, path, "must not be empty");
        }
    }

    #[cfg(test)]
    fn describe(&self) -> Option<String> {
        Some("not empty, no NUL".to_owned())
    }
}

/// The TLS settings together: modes the build can serve, combinations
/// libpq refuses, and (feature `tls`) every certificate and key file read
/// and checked now, so that a bad file is a configuration error naming
/// it, not a failure at the first connect.
pub(crate) struct TlsSetup;

impl Rule<SslMode> for TlsSetup {
    fn check(&self, at: &Context, mode: &SslMode, c: &Inner, out: &mut Violations) {
        let mode = *mode;
        if c.ssl_negotiation == SslNegotiation::Direct && !mode.requires_tls() {
            let at = Context {
                field: "ssl_negotiation",
                secret: false,
            };
            out.push(
                &at,
                "direct",
                &format!(
                    "needs sslmode=require, verify-ca or verify-full (sslmode is {mode}): a server \
                     that does not expect TLS would read the handshake as garbage"
                ),
            );
        }
        if c.channel_binding == ChannelBinding::Require && mode == SslMode::Disable {
            let at = Context {
                field: "channel_binding",
                secret: false,
            };
            out.push(&at, "require", "needs TLS, but sslmode is disable");
        }
        if c.ssl_root_cert.as_deref() == Some(tls_setup::SYSTEM_ROOTS)
            && mode != SslMode::VerifyFull
        {
            out.push(
                at,
                mode.as_str(),
                "must be verify-full with sslrootcert=system: the platform's roots trust \
                 every public certificate authority, so only the host-name check makes \
                 them safe (libpq's rule)",
            );
        }
        tls_setup::check_build(at, mode, c, out);
    }

    #[cfg(test)]
    fn describe(&self) -> Option<String> {
        Some("TLS files readable and matching; see [TLS](#tls)".to_owned())
    }
}

/// At least one host, none empty, no NUL.
pub(crate) struct HostList;

impl Rule<Vec<String>> for HostList {
    fn check(&self, at: &Context, hosts: &Vec<String>, _: &Inner, out: &mut Violations) {
        if hosts.is_empty() {
            out.push(at, "", "must list at least one host");
        }
        for host in hosts {
            if host.is_empty() {
                out.push(at, "", "a host must not be empty");
            }
            out.no_nul(at, host);
        }
    }

    #[cfg(test)]
    fn describe(&self) -> Option<String> {
        Some("at least one; none empty; no NUL".to_owned())
    }
}

/// Port numbers 1 to 65535: one for every host, or one per host.
pub(crate) struct PortList;

impl Rule<Vec<u16>> for PortList {
    fn check(&self, at: &Context, ports: &Vec<u16>, fields: &Inner, out: &mut Violations) {
        if ports.contains(&0) {
            out.push(at, "0", "must be between 1 and 65535");
        }
        let hosts = fields.hosts.len();
        if ports.len() != 1 && ports.len() != hosts {
            let shown: Vec<String> = ports.iter().map(u16::to_string).collect();
            out.push(
                at,
                shown.join(","),
                &format!(
                    "gives {} ports for {hosts} hosts; give one port for all hosts or one per host",
                    ports.len()
                ),
            );
        }
    }

    #[cfg(test)]
    fn describe(&self) -> Option<String> {
        Some("1 to 65535; one, or one per host".to_owned())
    }
}

/// `hostaddr`: none, or one address per host.
pub(crate) struct AddressList;

impl Rule<Vec<IpAddr>> for AddressList {
    fn check(&self, at: &Context, addresses: &Vec<IpAddr>, fields: &Inner, out: &mut Violations) {
        let hosts = fields.hosts.len();
        if !addresses.is_empty() && addresses.len() != hosts {
            let shown: Vec<String> = addresses.iter().map(IpAddr::to_string).collect();
            out.push(
                at,
                shown.join(","),
                &format!(
                    "gives {} addresses for {hosts} hosts; give one per host",
                    addresses.len()
                ),
            );
        }
    }

    #[cfg(test)]
    fn describe(&self) -> Option<String> {
        Some("one per host".to_owned())
    }
}

const IDENTIFIER: &str =
    "must be an unquoted identifier ([A-Za-z_][A-Za-z0-9_$]*, at most 63 bytes)";

/// When set: unquoted identifiers separated by commas.
pub(crate) struct SchemaList;

impl Rule<Option<String>> for SchemaList {
    fn check(&self, at: &Context, value: &Option<String>, _: &Inner, out: &mut Violations) {
        if let Some(schema) = value
            && out.no_nul(at, schema)
            && !schema.split(',').map(str::trim).all(is_identifier)
        {
            out.push(
                at,
                schema,
                &format!("{IDENTIFIER} or a comma-separated list of them"),
            );
        }
    }

    #[cfg(test)]
    fn describe(&self) -> Option<String> {
        Some(
            "an unquoted identifier `[A-Za-z_][A-Za-z0-9_$]*` of at most 63 bytes, or a \
             comma-separated list of them (spaces around commas allowed); no NUL"
                .to_owned(),
        )
    }
}

/// When set: one unquoted identifier.
pub(crate) struct Identifier;

impl Rule<Option<String>> for Identifier {
    fn check(&self, at: &Context, value: &Option<String>, _: &Inner, out: &mut Violations) {
        if let Some(name) = value
            && out.no_nul(at, name)
            && !is_identifier(name)
        {
            out.push(at, name, IDENTIFIER);
        }
    }

    #[cfg(test)]
    fn describe(&self) -> Option<String> {
        Some(
            "an unquoted identifier `[A-Za-z_][A-Za-z0-9_$]*` of at most 63 bytes; no NUL"
                .to_owned(),
        )
    }
}

/// When set: at most 63 bytes of printable ASCII.
pub(crate) struct AppName;

impl Rule<Option<String>> for AppName {
    fn check(&self, at: &Context, value: &Option<String>, _: &Inner, out: &mut Violations) {
        let Some(name) = value else { return };
        if out.no_nul(at, name) {
            if name.len() > MAX_NAME_BYTES {
                out.push(at, name, "must be at most 63 bytes");
            }
            if !name.chars().all(|c| matches!(c, ' '..='~')) {
                out.push(at, name, "must contain only printable ASCII characters");
            }
        }
    }

    #[cfg(test)]
    fn describe(&self) -> Option<String> {
        Some("at most 63 bytes; printable ASCII only (space to `~`)".to_owned())
    }
}

/// A count between the two bounds, inclusive.
pub(crate) struct Between(pub(crate) usize, pub(crate) usize);

impl Rule<usize> for Between {
    fn check(&self, at: &Context, value: &usize, _: &Inner, out: &mut Violations) {
        let Self(min, max) = *self;
        if *value < min || *value > max {
            out.push(
                at,
                value.to_string(),
                &format!("must be between {min} and {max}"),
            );
        }
    }

    #[cfg(test)]
    fn describe(&self) -> Option<String> {
        Some(format!("{} to {}", self.0, self.1))
    }
}

/// A count of at most the bound.
pub(crate) struct AtMost(pub(crate) usize);

impl Rule<usize> for AtMost {
    fn check(&self, at: &Context, value: &usize, _: &Inner, out: &mut Violations) {
        if *value > self.0 {
            out.push(
                at,
                value.to_string(),
                &format!("must be at most {}", self.0),
            );
        }
    }

    #[cfg(test)]
    fn describe(&self) -> Option<String> {
        Some(format!("at most {}", self.0))
    }
}

/// `max_overflow`: at most 1000, and with `pool_size` at most 1000.
pub(crate) struct Overflow;

impl Rule<usize> for Overflow {
    fn check(&self, at: &Context, overflow: &usize, config: &Inner, out: &mut Violations) {
        let (pool_size, overflow) = (config.pool_size, *overflow);
        if overflow > MAX_CONNECTIONS {
            out.push(at, overflow.to_string(), "must be at most 1000");
        }
        // An out-of-range `pool_size` is reported on its own.
        if pool_size <= MAX_CONNECTIONS
            && overflow <= MAX_CONNECTIONS
            && pool_size + overflow > MAX_CONNECTIONS
        {
            out.push(
                at,
                overflow.to_string(),
                "pool_size + max_overflow must be at most 1000",
            );
        }
    }

    #[cfg(test)]
    fn describe(&self) -> Option<String> {
        Some("at most 1000, and `pool_size + max_overflow` at most 1000".to_owned())
    }
}

/// `min_idle`: at most `pool_size` (the pool keeps no more idle
/// connections than it keeps at all).
pub(crate) struct MinIdle;

impl Rule<usize> for MinIdle {
    fn check(&self, at: &Context, min_idle: &usize, config: &Inner, out: &mut Violations) {
        if *min_idle > config.pool_size {
            out.push(
                at,
                min_idle.to_string(),
                "must be at most pool_size (the pool keeps no more idle connections than pool_size)",
            );
        }
    }

    #[cfg(test)]
    fn describe(&self) -> Option<String> {
        Some("at most `pool_size`".to_owned())
    }
}

/// A duration between the two bounds, inclusive; the text names them
/// (`1ms and 1 hour`). Optional durations are checked when set.
pub(crate) struct Range(
    pub(crate) Duration,
    pub(crate) Duration,
    pub(crate) &'static str,
);

impl Rule<Duration> for Range {
    fn check(&self, at: &Context, value: &Duration, _: &Inner, out: &mut Violations) {
        let Self(min, max, between) = *self;
        if *value < min || *value > max {
            out.push(
                at,
                duration::format(*value),
                &format!("must be between {between}"),
            );
        }
    }

    #[cfg(test)]
    fn describe(&self) -> Option<String> {
        Some(format!("between {}", self.2))
    }
}

impl Rule<Option<Duration>> for Range {
    fn check(&self, at: &Context, value: &Option<Duration>, _: &Inner, out: &mut Violations) {
        let Self(min, max, between) = *self;
        if let Some(value) = *value
            && (value < min || value > max)
        {
            out.push(
                at,
                duration::format(value),
                &format!("must be between {between} (or off)"),
            );
        }
    }

    #[cfg(test)]
    fn describe(&self) -> Option<String> {
        Some(format!("when set: between {}", self.2))
    }
}

/// Server settings: names shaped like settings, values without NUL.
pub(crate) struct SettingList;

impl Rule<Vec<(String, String)>> for SettingList {
    fn check(
        &self,
        at: &Context,
        options: &Vec<(String, String)>,
        _: &Inner,
        out: &mut Violations,
    ) {
        for (key, value) in options {
            if !is_guc_name(key) {
                out.push(
                    at,
                    key,
                    "a setting name must look like [A-Za-z_][A-Za-z0-9_.]*",
                );
            }
            if value.contains('\0') {
                out.push(at, value, "a setting value must not contain NUL bytes");
            }
        }
    }

    #[cfg(test)]
    fn describe(&self) -> Option<String> {
        Some("names shaped like settings, `[A-Za-z_][A-Za-z0-9_.]*`; values without NUL".to_owned())
    }
}

/// The retry policy's own rules, reported under `retry.<field>`.
pub(crate) struct RetryRule;

impl Rule<RetryPolicy> for RetryRule {
    fn check(&self, at: &Context, retry: &RetryPolicy, _: &Inner, out: &mut Violations) {
        for (field, value, rule) in retry.violations() {
            let at = Context {
                field,
                secret: at.secret,
            };
            out.push(&at, value, rule);
        }
    }

    #[cfg(test)]
    fn describe(&self) -> Option<String> {
        Some(
            "`RetryPolicy::violations()`: attempts 1 to 100, multiplier 1 to 10, `max_delay` \
             ≥ `initial_delay` and at most 5 min, deadline up to 1 hour"
                .to_owned(),
        )
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
    fn pgbouncer_transaction_mode_refuses_session_settings_together() {
        use crate::config::PgBouncerMode;
        let bouncer = || base().pgbouncer_mode(PgBouncerMode::Transaction);
        assert!(bouncer().build().is_ok());
        let found = broken(
            &bouncer()
                .schema("app")
                .set_role("owner")
                .statement_timeout(Duration::from_secs(1))
                .option("work_mem", "64MB"),
        );
        let named: Vec<&str> = found
            .iter()
            .map(|(field, value, rule)| {
                assert_eq!(
                    (field.as_str(), value.as_str()),
                    ("pgbouncer_mode", "transaction")
                );
                assert!(rule.contains("session settings would leak"), "{rule}");
                ["schema", "set_role", "statement_timeout", "options"]
                    .into_iter()
                    .find(|name| rule.contains(&format!("`{name}`")))
                    .unwrap()
            })
            .collect();
        assert_eq!(
            named,
            ["schema", "set_role", "statement_timeout", "options"]
        );
        // Session mode is a direct connection as far as the pool can tell.
        let session = base()
            .pgbouncer_mode(PgBouncerMode::Session)
            .schema("app")
            .statement_timeout(Duration::from_secs(1));
        assert!(session.build().is_ok());
        let error = "host=b pgbouncer_mode=sometimes"
            .parse::<ConnectionConfig>()
            .unwrap_err();
        assert_eq!(error.config_violations()[0].field(), "pgbouncer_mode");
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
    fn port_rules() {
        assert_one(&base().port(0), "ports", "between 1 and 65535");
        assert!(base().port(65535).build().is_ok());
        let three = base().hosts(["a", "b", "c"]);
        assert!(three.clone().ports([1, 2, 3]).build().is_ok());
        assert!(three.clone().port(1).build().is_ok());
        assert_one(&three.clone().ports([1, 2]), "ports", "2 ports for 3 hosts");
        let address = "10.0.0.1".parse().unwrap();
        assert!(three.clone().hostaddrs([address; 3]).build().is_ok());
        assert_one(
            &three.hostaddrs([address]),
            "hostaddrs",
            "1 addresses for 3 hosts",
        );
    }

    /// Bad multi-host input is reported together, from text too.
    #[test]
    fn multi_host_violations_are_reported_together() {
        let error = "host=a,b port=1,2,3 hostaddr=db.internal target_session_attrs=sometimes \
                     load_balance_hosts=sometimes"
            .parse::<ConnectionConfig>()
            .unwrap_err();
        let found = violation_tuples(&error);
        let fields: Vec<_> = found.iter().map(|v| v.0.as_str()).collect();
        assert_eq!(
            fields,
            [
                "hostaddr",
                "target_session_attrs",
                "load_balance_hosts",
                "ports"
            ],
            "{found:?}"
        );
        assert!(found[0].2.contains("not an IP address"), "{found:?}");
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
                "ports",
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
