//! Building `postgres://` URLs from their parts.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but unreserved characters (RFC 3986) is percent-encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A `postgres://user:password@host:port/database` URL.
///
/// A host starting with `/` is a unix socket directory and is percent-encoded whole;
/// an IPv6 literal is bracketed.
pub(crate) fn postgres_url(
    host: &str,
    port: u16,
    user: &str,
    password: Option<&str>,
    database: &str,
) -> String {
    let user = utf8_percent_encode(user, COMPONENT);
    let credentials = match password {
        Some(password) => format!("{user}:{}", utf8_percent_encode(password, COMPONENT)),
        None => user.to_string(),
    };
    let host = if host.starts_with('/') {
        utf8_percent_encode(host, COMPONENT).to_string()
    } else if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let database = utf8_percent_encode(database, COMPONENT);
    format!("postgres://{credentials}@{host}:{port}/{database}")
}

/// A multi-host `postgresql://user@host1:port1,host2:port2/database` URL (libpq's form;
/// hosts are IP addresses or names, not unix socket directories).
pub(crate) fn multi_host_url(hosts: &[(&str, u16)], user: &str, database: &str) -> String {
    let hosts = hosts
        .iter()
        .map(|(host, port)| {
            if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    let user = utf8_percent_encode(user, COMPONENT);
    let database = utf8_percent_encode(database, COMPONENT);
    format!("postgresql://{user}@{hosts}/{database}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn round_trips_through_the_driver_parser() {
        let url = postgres_url("/tmp/some dir", 5433, "us:er", Some("p@ss/w rd"), "d b");
        let config: tokio_postgres::Config = url.parse().unwrap();
        assert_eq!(config.get_user(), Some("us:er"));
        assert_eq!(config.get_password(), Some(&b"p@ss/w rd"[..]));
        assert_eq!(config.get_dbname(), Some("d b"));
        assert_eq!(config.get_ports(), &[5433]);
        assert!(matches!(
            &config.get_hosts()[0],
            tokio_postgres::config::Host::Unix(path) if path.to_str() == Some("/tmp/some dir")
        ));
    }

    #[test]
    fn lists_every_host() {
        let url = multi_host_url(&[("127.0.0.1", 5433), ("::1", 5434)], "postgres", "d b");
        assert_eq!(url, "postgresql://postgres@127.0.0.1:5433,[::1]:5434/d%20b");
    }

    #[test]
    fn brackets_ipv6() {
        let url = postgres_url("::1", 5432, "postgres", None, "postgres");
        assert_eq!(url, "postgres://postgres@[::1]:5432/postgres");
    }
}
