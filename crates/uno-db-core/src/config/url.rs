//! URLs: `scheme://role:password@host1,host2:port/database?param=value`,
//! parsed into a layer and generated from a configuration.

use std::collections::HashSet;
use std::net::Ipv6Addr;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::ExposeSecret;

use crate::config::Driver;
use crate::config::params::{self, Form};
use crate::config::table::{FIELDS, Fields, Inner};
use crate::config::table_macro::UrlForm;
use crate::config_violation::ConfigViolation;

/// Everything but RFC 3986's unreserved characters is percent-encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// Strict percent-decoding: `%` must start two hex digits and the result
/// must be UTF-8.
fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte == b'%' {
            let hex = |j: usize| bytes.get(j).and_then(|b| char::from(*b).to_digit(16));
            let (Some(high), Some(low)) = (hex(i + 1), hex(i + 2)) else {
                return Err("has a `%` not followed by two hex digits".to_owned());
            };
            // Two hex digits always fit in a byte.
            out.push(u8::try_from(high * 16 + low).unwrap_or(u8::MAX));
            i += 3;
        } else {
            out.push(byte);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "is not UTF-8 once percent-decoded".to_owned())
}

/// Parses a URL into the fields it sets; unset parts are left unset.
pub(crate) fn parse(s: &str) -> (Fields, Vec<ConfigViolation>) {
    let mut parser = Parser {
        fields: Fields::default(),
        errors: Vec::new(),
    };
    parser.url(s);
    (parser.fields, parser.errors)
}

struct Parser {
    fields: Fields,
    errors: Vec<ConfigViolation>,
}

impl Parser {
    fn error(&mut self, field: &str, value: &str, rule: impl Into<String>) {
        self.errors.push(ConfigViolation::new(field, value, rule));
    }

    fn url(&mut self, s: &str) {
        let Some((scheme, rest)) = s.split_once("://") else {
            self.error("url", "", "must start with postgresql://");
            return;
        };
        match Driver::parse_scheme(scheme) {
            Ok(Driver::Any) => {}
            Ok(driver) => self.fields.driver = Some(driver),
            Err(rule) => self.error("scheme", scheme, rule),
        }
        let (before_query, query) = match rest.split_once('?') {
            Some((before, query)) => (before, Some(query)),
            None => (rest, None),
        };
        let (authority, path) = match before_query.split_once('/') {
            Some((authority, path)) => (authority, Some(path)),
            None => (before_query, None),
        };
        let host_port = match authority.rsplit_once('@') {
            Some((user_info, host_port)) => {
                self.user_info(user_info);
                host_port
            }
            None => authority,
        };
        if !host_port.is_empty() {
            self.hosts(host_port);
        }
        if let Some(path) = path.filter(|p| !p.is_empty()) {
            match decode(path) {
                Ok(database) => self.fields.database = Some(database),
                Err(rule) => self.error("dbname", path, rule),
            }
        }
        if let Some(query) = query {
            self.query(query);
        }
    }

    fn user_info(&mut self, user_info: &str) {
        let (role, password) = match user_info.split_once(':') {
            Some((role, password)) => (role, Some(password)),
            None => (user_info, None),
        };
        match decode(role) {
            Ok(role) if role.is_empty() => {}
            Ok(role) => self.fields.role = Some(role),
            Err(rule) => self.error("user", role, rule),
        }
        if let Some(password) = password {
            match decode(password) {
                Ok(password) => self.fields.password = Some(Some(password.into())),
                Err(rule) => self.error("password", "***", rule),
            }
        }
    }

    /// `h1:5432,h2:5433`, `[::1]:5432`: hosts, each with an optional port,
    /// as libpq reads them: a host without one gets the default port.
    fn hosts(&mut self, host_port: &str) {
        let mut hosts = Vec::new();
        let mut ports: Vec<Option<&str>> = Vec::new();
        for item in host_port.split(',') {
            let (host, port) = if let Some(bracketed) = item.strip_prefix('[') {
                let Some((host, after)) = bracketed.split_once(']') else {
                    self.error("host", item, "has an unclosed `[`");
                    return;
                };
                match after {
                    "" => (host, None),
                    _ => match after.strip_prefix(':') {
                        Some(port) => (host, Some(port)),
                        None => {
                            self.error("host", item, "must be followed by `:port` after `]`");
                            return;
                        }
                    },
                }
            } else {
                match item.rsplit_once(':') {
                    Some((host, port)) => (host, Some(port)),
                    None => (item, None),
                }
            };
            match decode(host) {
                Ok(host) if host.is_empty() => {
                    self.error("host", host_port, "must not list an empty host");
                    return;
                }
                Ok(host) => hosts.push(host),
                Err(rule) => {
                    self.error("host", host, rule);
                    return;
                }
            }
            ports.push(port.filter(|p| !p.is_empty()));
        }
        self.fields.hosts = Some(hosts);
        if ports.iter().all(Option::is_none) {
            return;
        }
        let text: Vec<&str> = ports.iter().map(|p| p.unwrap_or("")).collect();
        match params::port_list(&text.join(",")) {
            Ok(mut list) => {
                // `h1:5433,h2:5433` is one port for every host.
                if list.iter().all(|port| *port == list[0]) {
                    list.truncate(1);
                }
                self.fields.ports = Some(list);
            }
            Err(rule) => self.error("port", &text.join(","), &rule),
        }
    }

    fn query(&mut self, query: &str) {
        let mut seen = HashSet::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let Some((key, value)) = pair.split_once('=') else {
                self.error(pair, "", "missing `=value`");
                continue;
            };
            let key = match decode(key) {
                Ok(key) => key,
                Err(rule) => {
                    self.error(key, "", rule);
                    continue;
                }
            };
            let value = match decode(value) {
                Ok(value) => value,
                Err(rule) => {
                    self.error(&key, &params::shown(&key, value), rule);
                    continue;
                }
            };
            if !seen.insert(key.clone()) {
                self.error(
                    &key,
                    &params::shown(&key, &value),
                    "is given more than once",
                );
                continue;
            }
            if let Err(rule) = params::apply(&mut self.fields, &key, &value, Form::Url) {
                self.error(&key, &params::shown(&key, &value), rule);
            }
        }
    }
}

/// The URL of `c`: role, hosts, port and database always, query
/// parameters for every other field not at its default.
pub(crate) fn generate(c: &Inner, with_password: bool) -> String {
    let mut url = format!("{}://{}", c.driver.scheme(), encode(&c.role));
    if let Some(password) = &c.password {
        url.push(':');
        if with_password {
            url.push_str(&encode(password.expose_secret()));
        } else {
            url.push_str("***");
        }
    }
    url.push('@');
    // With several hosts every host carries its port: `h1,h2:5433` would
    // give `h1` the default port.
    let per_host = c.hosts.len() > 1;
    for (i, host) in c.hosts.iter().enumerate() {
        if i > 0 {
            url.push(',');
        }
        if host.parse::<Ipv6Addr>().is_ok() {
            url.push('[');
            url.push_str(host);
            url.push(']');
        } else {
            url.push_str(&encode(host));
        }
        if per_host && let Some(port) = c.ports.get(i).or(c.ports.first()) {
            url.push_str(&format!(":{port}"));
        }
    }
    if !per_host && let Some(port) = c.ports.first() {
        url.push_str(&format!(":{port}"));
    }
    url.push_str(&format!("/{}", encode(&c.database)));
    for (i, (key, value)) in query(c, with_password).into_iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.push_str(key);
        url.push('=');
        url.push_str(&encode(&value));
    }
    url
}

/// The query parameters of every field the URL query carries and whose
/// value is not its default, in table order; secrets masked unless asked.
fn query(c: &Inner, with_password: bool) -> Vec<(&'static str, String)> {
    let mut q = Vec::new();
    for field in FIELDS.iter().filter(|f| f.url == UrlForm::Query) {
        let start = q.len();
        (field.emit)(c, &mut q);
        if field.secret && !with_password {
            for (_, value) in q.iter_mut().skip(start) {
                "***".clone_into(value);
            }
        }
    }
    q
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use crate::config::violation_tuples::violation_tuples;
    use std::time::Duration;

    use secrecy::ExposeSecret;

    use super::*;
    use crate::config::{ConnectionConfig, SslMode};

    fn parse(s: &str) -> ConnectionConfig {
        match s.parse() {
            Ok(c) => c,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    fn errors(s: &str) -> Vec<(String, String, String)> {
        violation_tuples(&s.parse::<ConnectionConfig>().unwrap_err())
    }

    fn one_error(s: &str) -> (String, String, String) {
        let found = errors(s);
        assert_eq!(found.len(), 1, "{s}: {found:?}");
        found.into_iter().next().unwrap()
    }

    #[test]
    // Its examples use `sslmode=require`, a configuration error without TLS.
    #[cfg(feature = "tls")]
    fn parses_a_full_url() {
        let c = parse(
            "postgresql://app:s%3Acret@db.example:5433/orders?application_name=my%20app\
             &sslmode=require&pool_size=20",
        );
        assert_eq!(c.role(), "app");
        assert_eq!(c.password().unwrap().expose_secret(), "s:cret");
        assert_eq!(c.hosts(), ["db.example"]);
        assert_eq!(c.port(), 5433);
        assert_eq!(c.database(), "orders");
        assert_eq!(c.application_name(), Some("my app"));
        assert_eq!(c.ssl_mode(), SslMode::Require);
        assert_eq!(c.pool_size(), 20);
        assert_eq!(c.driver(), Driver::Any);
    }

    #[test]
    fn every_scheme() {
        assert_eq!(parse("postgresql://h").driver(), Driver::Any);
        assert_eq!(parse("postgres://h").driver(), Driver::Any);
        assert_eq!(parse("postgresql+postgres://h").driver(), Driver::Postgres);
        assert_eq!(
            parse("postgresql+tokio-postgres://h").driver(),
            Driver::TokioPostgres
        );
        let (field, value, rule) = one_error("postgresql+diesel://h");
        assert_eq!(
            (field.as_str(), value.as_str()),
            ("scheme", "postgresql+diesel")
        );
        assert!(rule.contains("unknown driver `diesel`"));
        assert!(one_error("mysql://h").2.contains("unsupported scheme"));
    }

    #[test]
    fn missing_parts_fall_back_to_defaults() {
        assert_eq!(parse("postgresql://"), ConnectionConfig::default());
        assert_eq!(parse("postgresql:///"), ConnectionConfig::default());
        assert_eq!(parse("postgresql://?"), ConnectionConfig::default());
        let c = parse("postgresql:///orders");
        assert_eq!(c.hosts(), ["localhost"]);
        assert_eq!(c.database(), "orders");
        let c = parse("postgresql://h");
        assert_eq!(
            (c.role(), c.port(), c.database()),
            ("postgres", 5432, "postgres")
        );
        let c = parse("postgresql://:pw@h");
        assert_eq!(c.role(), "postgres");
        assert_eq!(c.password().unwrap().expose_secret(), "pw");
        assert!(parse("postgresql://u@h").password().is_none());
        assert_eq!(
            parse("postgresql://u:@h")
                .password()
                .unwrap()
                .expose_secret(),
            ""
        );
        assert_eq!(parse("postgresql://h:/db").port(), 5432);
    }

    #[test]
    fn percent_decoding_of_every_part() {
        let c = parse(
            "postgresql://r%C3%B4le:p%40ss%2Fw%3Fd@h/d%C3%A9b%2Fx?application_name=a%26b%3Dc",
        );
        assert_eq!(c.role(), "rôle");
        assert_eq!(c.password().unwrap().expose_secret(), "p@ss/w?d");
        assert_eq!(c.database(), "déb/x");
        assert_eq!(c.application_name(), Some("a&b=c"));
        assert_eq!(
            parse("postgresql://u:a+b@h")
                .password()
                .unwrap()
                .expose_secret(),
            "a+b"
        );
        // A raw `@` in the password: the last `@` ends the user info.
        assert_eq!(
            parse("postgresql://u:a@b@h")
                .password()
                .unwrap()
                .expose_secret(),
            "a@b"
        );
    }

    #[test]
    fn bad_percent_encoding_is_an_error_naming_the_part() {
        assert_eq!(one_error("postgresql://u%zz@h").0, "user");
        let (field, value, _) = one_error("postgresql://u:Zebra%zz@h");
        assert_eq!((field.as_str(), value.as_str()), ("password", "***"));
        assert_eq!(one_error("postgresql://h/db%").0, "dbname");
        assert_eq!(
            one_error("postgresql://h/db%ff").2,
            "is not UTF-8 once percent-decoded"
        );
        assert_eq!(one_error("postgresql://h%g1/db").0, "host");
        assert_eq!(one_error("postgresql://h?pool_size=%").0, "pool_size");
        assert_eq!(one_error("postgresql://h?password=%41%").1, "***");
    }

    #[test]
    fn multiple_hosts_with_their_ports() {
        // As libpq: a host without a port gets the default one.
        let c = parse("postgresql://u@h1,h2:5433/db");
        assert_eq!(c.hosts(), ["h1", "h2"]);
        assert_eq!(c.ports(), [5432, 5433]);
        let c = parse("postgresql://u@h1:5433,h2:5433/db");
        assert_eq!(c.ports(), [5433]);
        assert_eq!(c.to_url(), "postgresql://u@h1:5433,h2:5433/db");
        let c = parse("postgresql://u@h1:5432,h2:5433,h3:5434/db");
        assert_eq!(c.ports(), [5432, 5433, 5434]);
        assert_eq!(c.to_url(), "postgresql://u@h1:5432,h2:5433,h3:5434/db");
        assert_eq!(parse(&c.to_url()), c);
        let (field, value, rule) = one_error("postgresql://u@h1,h2/db?port=5432,5433,5434");
        assert_eq!(
            (field.as_str(), value.as_str()),
            ("ports", "5432,5433,5434")
        );
        assert!(rule.contains("3 ports for 2 hosts"), "{rule}");
        assert!(one_error("postgresql://h1,,h2").2.contains("empty host"));
        assert_eq!(one_error("postgresql://h:http").0, "port");
        assert_eq!(one_error("postgresql://h:70000").0, "port");
        assert_eq!(one_error("postgresql://h:0").0, "port");
    }

    #[test]
    fn ipv6_hosts_in_brackets() {
        let c = parse("postgresql://u@[::1],[fe80::1%25eth0]:5433/db");
        assert_eq!(c.hosts(), ["::1", "fe80::1%eth0"]);
        assert_eq!(c.ports(), [5432, 5433]);
        assert_eq!(parse("postgresql://[2001:db8::1]").hosts(), ["2001:db8::1"]);
        assert!(one_error("postgresql://[::1").2.contains("unclosed"));
        assert!(one_error("postgresql://[::1]x").2.contains("`:port`"));
        assert_eq!(
            c.to_url(),
            "postgresql://u@[::1]:5432,fe80%3A%3A1%25eth0:5433/db"
        );
    }

    #[test]
    fn unix_socket_hosts_are_percent_encoded() {
        let c = parse("postgresql://u@%2Fvar%2Frun%2Fpostgresql/db");
        assert_eq!(c.hosts(), ["/var/run/postgresql"]);
        assert_eq!(
            c.to_url(),
            "postgresql://u@%2Fvar%2Frun%2Fpostgresql:5432/db"
        );
        let c = parse("postgresql:///db?host=/tmp");
        assert_eq!(c.hosts(), ["/tmp"]);
    }

    #[test]
    fn query_parameters_for_every_field() {
        let c = parse(
            "postgresql://h/db?user=u&password=p&dbname=d2&host=a,b&port=6000&schema=app\
             &set_role=reader&pool_size=3&max_overflow=4&pool_timeout=5s&connect_timeout=1500ms\
             &pool_recycle=none&idle_timeout=90&pre_ping=on&statement_timeout=2s\
             &keepalives_idle=off&tcp_user_timeout=100ms&statement_cache_size=0\
             &options=-c%20work_mem%3D64MB%20-c%20search_path%3Da%5C%20b&sslmode=disable\
             &application_name=x&retry_max_attempts=5&retry_initial_delay=1ms\
             &retry_multiplier=3&retry_max_delay=4s&retry_deadline=30s",
        );
        assert_eq!(c.role(), "u");
        assert_eq!(c.password().unwrap().expose_secret(), "p");
        assert_eq!(c.database(), "d2");
        assert_eq!(c.hosts(), ["a", "b"]);
        assert_eq!(c.port(), 6000);
        assert_eq!(c.schema(), Some("app"));
        assert_eq!(c.set_role(), Some("reader"));
        assert_eq!((c.pool_size(), c.max_overflow()), (3, 4));
        assert_eq!(c.pool_timeout(), Duration::from_secs(5));
        assert_eq!(c.connect_timeout(), Duration::from_millis(1500));
        assert_eq!(c.pool_recycle(), None);
        assert_eq!(c.idle_timeout(), Some(Duration::from_secs(90)));
        assert!(c.pre_ping());
        assert_eq!(c.statement_timeout(), Some(Duration::from_secs(2)));
        assert_eq!(c.keepalives_idle(), None);
        assert_eq!(c.tcp_user_timeout(), Some(Duration::from_millis(100)));
        assert_eq!(c.statement_cache_size(), 0);
        assert_eq!(
            c.options(),
            [
                ("work_mem".to_owned(), "64MB".to_owned()),
                ("search_path".to_owned(), "a b".to_owned())
            ]
        );
        assert_eq!(c.ssl_mode(), SslMode::Disable);
        assert_eq!(c.application_name(), Some("x"));
        let retry = c.retry();
        assert_eq!(retry.get_max_attempts(), 5);
        assert_eq!(retry.get_initial_delay(), Duration::from_millis(1));
        assert!((retry.get_multiplier() - 3.0).abs() < f64::EPSILON);
        assert_eq!(retry.get_max_delay(), Duration::from_secs(4));
        assert_eq!(retry.get_deadline(), Duration::from_secs(30));
    }

    #[test]
    fn connect_timeout_takes_libpq_seconds_or_humantime() {
        assert_eq!(
            parse("postgresql://h?connect_timeout=5").connect_timeout(),
            Duration::from_secs(5)
        );
        assert_eq!(
            parse("postgresql://h?connect_timeout=1500ms").connect_timeout(),
            Duration::from_millis(1500)
        );
    }

    #[test]
    fn query_overrides_the_authority() {
        let c = parse("postgresql://u@h:5432/db?host=other&port=6543&user=v&dbname=e");
        assert_eq!(
            (c.hosts(), c.port(), c.role(), c.database()),
            (&["other".to_owned()][..], 6543, "v", "e")
        );
    }

    #[test]
    fn query_errors_name_the_parameter() {
        assert_eq!(
            one_error("postgresql://h?colour=blue"),
            (
                "colour".to_owned(),
                "***".to_owned(),
                "unknown parameter".to_owned()
            )
        );
        assert_eq!(one_error("postgresql://h?pool_size").2, "missing `=value`");
        assert_eq!(
            one_error("postgresql://h?pool_size=1&pool_size=2").2,
            "is given more than once"
        );
        assert!(
            one_error("postgresql://h?driver=postgresql")
                .2
                .contains("URL scheme")
        );
        assert_eq!(one_error("postgresql://h?pool_size=ten").0, "pool_size");
        assert_eq!(one_error("postgresql://h?sslmode=sometimes").0, "sslmode");
        assert_eq!(one_error("postgresql://h?options=-x").0, "options");
        assert_eq!(one_error("postgresql://h?pre_ping=maybe").0, "pre_ping");
        assert_eq!(
            one_error("postgresql://h?pool_recycle=soon").0,
            "pool_recycle"
        );
        assert_eq!(
            one_error("postgresql://h?retry_multiplier=x").0,
            "retry_multiplier"
        );
        assert_eq!(
            one_error("postgresql://h?%zz=1").2,
            "has a `%` not followed by two hex digits"
        );
        assert!(errors("postgresql://h?a=1&b=2").len() == 2);
        // Empty segments are ignored.
        assert_eq!(parse("postgresql://h?&pool_size=3&").pool_size(), 3);
    }

    #[test]
    fn validation_runs_on_the_parsed_result() {
        let found = errors("postgresql://h?pool_size=0&statement_timeout=0&bogus=1");
        let fields: Vec<_> = found.iter().map(|v| v.0.as_str()).collect();
        assert_eq!(fields, ["bogus", "pool_size", "statement_timeout"]);
        assert_eq!(one_error("postgresql://h?schema=a-b").0, "schema");
    }

    #[test]
    fn generates_only_non_default_parameters() {
        assert_eq!(
            ConnectionConfig::default().to_url(),
            "postgresql://postgres@localhost:5432/postgres"
        );
        let c = ConnectionConfig::builder()
            .role("a b")
            .password("p@ss word")
            .hosts(["h1", "h2"])
            .database("db/1")
            .driver(Driver::TokioPostgres)
            .pool_recycle(None)
            .statement_timeout(Duration::from_millis(1500))
            .connect_timeout(Duration::from_secs(3))
            .option("search_path", "a b")
            .build()
            .unwrap();
        assert_eq!(
            c.to_url(),
            "postgresql+tokio-postgres://a%20b:***@h1:5432,h2:5432/db%2F1?connect_timeout=3\
             &options=-c%20search_path%3Da%5C%20b&pool_recycle=off&statement_timeout=1500ms"
        );
        assert_eq!(
            c.to_url_with_password(),
            "postgresql+tokio-postgres://a%20b:p%40ss%20word@h1:5432,h2:5432/db%2F1?connect_timeout=3\
             &options=-c%20search_path%3Da%5C%20b&pool_recycle=off&statement_timeout=1500ms"
        );
        assert_eq!(
            c.to_url_with_password()
                .parse::<ConnectionConfig>()
                .unwrap(),
            c
        );
        assert_eq!(c.to_string(), c.to_url());
    }

    #[test]
    fn masked_url_parses_with_the_mask_as_password() {
        let c = parse("postgresql://u:real@h/db");
        let masked = parse(&c.to_url());
        assert_eq!(masked.password().unwrap().expose_secret(), "***");
    }

    #[test]
    // Its examples use `sslmode=require`, a configuration error without TLS.
    #[cfg(feature = "tls")]
    fn documented_examples_parse() {
        for example in [
            "postgresql://app:s3cret@db.internal:5432/orders?application_name=billing&sslmode=require&pool_size=20",
            "postgresql+tokio-postgres://app@db1,db2,db3:6432/orders?statement_cache_size=0&statement_timeout=30s",
            "postgres://app@[2001:db8::10]/orders?pool_recycle=off&keepalives_idle=30s",
            "postgresql:///orders?host=/var/run/postgresql&options=-c%20work_mem%3D64MB%20-c%20lock_timeout%3D2s",
            "postgresql://app@%2Fvar%2Frun%2Fpostgresql/orders",
            "host=localhost port=5432 user=app password='a b\\'c' dbname=orders sslmode=disable",
            "host=db1,db2 dbname=orders pool_size=20 statement_timeout=30s options='-c work_mem=64MB'",
        ] {
            parse(example);
        }
        let c = parse(
            "postgresql:///orders?host=/var/run/postgresql&options=-c%20work_mem%3D64MB%20-c%20lock_timeout%3D2s",
        );
        assert_eq!(c.hosts(), ["/var/run/postgresql"]);
        assert_eq!(c.options().len(), 2);
        assert_eq!(c.target(), "postgres@/var/run/postgresql:5432/orders");
    }

    #[test]
    fn decode_helper() {
        assert_eq!(decode("a%20b%2fc").unwrap(), "a b/c");
        assert!(decode("%+1").is_err());
        assert!(decode("%1").is_err());
        assert_eq!(encode("a-b.c_d~e f"), "a-b.c_d~e%20f");
    }
}
