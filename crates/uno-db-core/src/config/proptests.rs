//! Property tests: URL round trips over arbitrary valid configurations,
//! and no input, however malformed, makes parsing panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use proptest::prelude::*;

use crate::config::params::KEYS;
use crate::config::table::FIELDS;
use crate::config::{ConnectionConfig, Driver, SslMode};
use crate::retry::RetryPolicy;

const NS: u64 = 1_000_000_000;

/// Any text without NUL, at most 63 bytes, not empty.
fn name() -> impl Strategy<Value = String> {
    "[^\\x00]{1,24}".prop_filter("at most 63 bytes", |s| s.len() <= 63)
}

fn identifier() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_$]{0,20}"
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,10}(\\.[a-z]{2,5}){0,2}",
        any::<Ipv4Addr>().prop_map(|a| a.to_string()),
        any::<Ipv6Addr>().prop_map(|a| a.to_string()),
        "fe80::[0-9a-f]{1,4}%[a-z0-9]{1,5}",
        "/[a-z/]{1,12}",
        "[^\\x00]{1,12}",
    ]
}

/// A duration in `[min, max]` seconds: whole seconds, whole milliseconds
/// or arbitrary nanoseconds.
fn duration(min_ns: u64, max_ns: u64) -> impl Strategy<Value = Duration> {
    prop_oneof![
        (min_ns.div_ceil(NS)..=max_ns / NS).prop_map(Duration::from_secs),
        (min_ns.div_ceil(1_000_000)..=max_ns / 1_000_000).prop_map(Duration::from_millis),
        (min_ns..=max_ns).prop_map(Duration::from_nanos),
    ]
}

fn optional_duration(min_ns: u64, max_ns: u64) -> impl Strategy<Value = Option<Duration>> {
    prop_oneof![Just(None), duration(min_ns, max_ns).prop_map(Some)]
}

fn option_value() -> impl Strategy<Value = String> {
    prop_oneof!["[^\\x00]{0,12}", "[ '\"=\\\\a\t\n\\x0B]{0,12}"]
}

fn retry() -> impl Strategy<Value = RetryPolicy> {
    (
        1u32..=100,
        1.0f64..=10.0,
        duration(0, 300 * NS),
        duration(0, 300 * NS),
        duration(1, 3600 * NS),
    )
        .prop_map(|(attempts, multiplier, a, b, deadline)| {
            RetryPolicy::default()
                .max_attempts(attempts)
                .multiplier(multiplier)
                .initial_delay(a.min(b))
                .max_delay(a.max(b))
                .deadline(deadline)
        })
}

fn config() -> impl Strategy<Value = ConnectionConfig> {
    let identity = (
        name(),
        prop::option::of("[^\\x00]{0,24}"),
        name(),
        prop::collection::vec(host(), 1..4),
        1u16..=65535,
        prop_oneof![
            Just(Driver::Any),
            Just(Driver::Postgres),
            Just(Driver::TokioPostgres)
        ],
        prop::option::of(
            (prop::collection::vec(identifier(), 1..4), prop::bool::ANY)
                .prop_map(|(names, spaced)| names.join(if spaced { ", " } else { "," })),
        ),
        prop::option::of("[ -~]{0,63}"),
        prop::option::of(identifier()),
    );
    let pool = (
        1usize..=500,
        0usize..=500,
        duration(1_000_000, 3600 * NS),
        duration(1_000_000, 3600 * NS),
        optional_duration(NS, 7 * 86400 * NS),
        optional_duration(NS, 7 * 86400 * NS),
        prop::bool::ANY,
    );
    let session = (
        optional_duration(1_000_000, 86400 * NS),
        prop_oneof![
            Just(SslMode::Disable),
            Just(SslMode::Prefer),
            // A configuration error without TLS.
            Just(if cfg!(feature = "tls") {
                SslMode::Require
            } else {
                SslMode::Allow
            })
        ],
        optional_duration(NS, 86400 * NS),
        optional_duration(1_000_000, 86400 * NS),
        0usize..=10_000,
        prop::collection::vec(("[A-Za-z_][A-Za-z0-9_.]{0,10}", option_value()), 0..4),
        retry(),
    );
    (identity, pool, session).prop_map(|(identity, pool, session)| {
        let (role, password, database, hosts, port, driver, schema, app, set_role) = identity;
        let (size, overflow, pool_timeout, connect_timeout, recycle, idle, pre_ping) = pool;
        let (statement_timeout, ssl, keepalives, user_timeout, cache, options, retry) = session;
        let mut b = ConnectionConfig::builder()
            .role(role)
            .database(database)
            .hosts(hosts)
            .port(port)
            .driver(driver)
            .pool_size(size)
            .max_overflow(overflow)
            .pool_timeout(pool_timeout)
            .connect_timeout(connect_timeout)
            .pool_recycle(recycle)
            .idle_timeout(idle)
            .pre_ping(pre_ping)
            .statement_timeout(statement_timeout)
            .ssl_mode(ssl)
            .keepalives_idle(keepalives)
            .tcp_user_timeout(user_timeout)
            .statement_cache_size(cache)
            .options(options)
            .retry(retry);
        if let Some(password) = password {
            b = b.password(password);
        }
        if let Some(schema) = schema {
            b = b.schema(schema);
        }
        if let Some(app) = app {
            b = b.application_name(app);
        }
        if let Some(set_role) = set_role {
            b = b.set_role(set_role);
        }
        match b.build() {
            Ok(c) => c,
            Err(e) => panic!("generated an invalid config: {e}"),
        }
    })
}

/// A `key=value` pair with a known key and an arbitrary value.
fn known_param() -> impl Strategy<Value = (String, String)> {
    (prop::sample::select(KEYS), ".{0,12}").prop_map(|(k, v)| (k.to_owned(), v))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn url_with_password_round_trips(c in config()) {
        let url = c.to_url_with_password();
        match url.parse::<ConnectionConfig>() {
            Ok(parsed) => prop_assert_eq!(parsed, c, "{}", url),
            Err(e) => prop_assert!(false, "{}: {}", url, e),
        }
    }

    #[test]
    fn to_builder_round_trips(c in config()) {
        prop_assert_eq!(c.to_builder().build().unwrap(), c);
    }

    #[test]
    fn masked_url_and_debug_never_contain_the_password(c in config(), secret in "[A-Z]{6}[0-9]{6}") {
        let c = c.to_builder().password(secret.clone()).build().unwrap();
        let texts = [c.to_string(), c.to_url(), format!("{c:?}"), format!("{c:#?}"), c.target()];
        for text in texts {
            prop_assert!(!text.contains(&secret));
        }
    }

    #[test]
    fn parsing_any_string_never_panics(s in ".*") {
        let _ = s.parse::<ConnectionConfig>();
    }

    #[test]
    fn parsing_url_shaped_strings_never_panics(
        scheme in "postgres(ql)?(\\+[a-z-]{0,15})?",
        rest in "[a-z0-9:@/?&=%,\\[\\].+ -]{0,40}|.{0,40}",
    ) {
        let _ = format!("{scheme}://{rest}").parse::<ConnectionConfig>();
    }

    #[test]
    fn parsing_urls_with_known_parameters_never_panics(
        params in prop::collection::vec(known_param(), 0..6),
        authority in "[a-z0-9:@,\\[\\]%]{0,20}",
    ) {
        let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let url = format!("postgresql://{authority}/db?{}", query.join("&"));
        let _ = url.parse::<ConnectionConfig>();
    }

    #[test]
    fn parsing_key_value_strings_never_panics(
        params in prop::collection::vec((known_param(), prop::bool::ANY), 0..6),
    ) {
        let text: Vec<String> = params
            .iter()
            .map(|((k, v), quoted)| if *quoted { format!("{k}='{v}'") } else { format!("{k}={v}") })
            .collect();
        let _ = text.join(" ").parse::<ConnectionConfig>();
    }

    #[test]
    fn any_environment_never_panics(
        values in prop::collection::vec((prop::sample::select(env_names()), ".{0,16}"), 0..8),
    ) {
        let env: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let _ = ConnectionConfig::from_env_with(env.as_slice());
    }
}

/// `DATABASE_URL` and every field's variables, from the table.
fn env_names() -> Vec<&'static str> {
    let mut names = vec!["DATABASE_URL"];
    names.extend(FIELDS.iter().flat_map(|field| field.env.iter().copied()));
    names
}
