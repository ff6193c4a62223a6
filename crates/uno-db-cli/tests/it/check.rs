//! `uno-db check`.

use serde_json::Value;

use crate::{free_port, server_password, server_url, uno_db, url_with_secret};

const SECRET: &str = "Zebra-Quux-9137";

#[test]
fn a_good_configuration_exits_0_with_the_password_masked() {
    let (url, secret) = url_with_secret(SECRET);
    let output = uno_db().args(["check", &url]).output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(!stdout.contains(&secret), "{stdout}");
    assert!(stdout.contains(":***@"), "{stdout}");
    for expected in [
        "violations: none",
        "pool: pool_size 10",
        "answered: yes",
        "authentication: ok as ",
        "server version: ",
        "encrypted: ",
        "role: primary (accepted by target_session_attrs)",
        "latency: ",
        "settings: application_name=",
        "ok: every host is usable",
    ] {
        assert!(stdout.contains(expected), "{expected:?} missing:\n{stdout}");
    }
}

#[test]
fn quiet_tells_by_the_exit_code_alone() {
    let output = uno_db()
        .args(["check", "-q", server_url()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stdout.is_empty() && output.stderr.is_empty());
    let url = format!("postgresql://postgres@127.0.0.1:{}/postgres", free_port());
    let output = uno_db()
        .args(["check", "--quiet", "-t", "2", &url])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty() && output.stderr.is_empty());
    let output = uno_db()
        .args(["check", "-q", "postgresql://h/db?pool_size=0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
}

#[test]
fn json_output_has_every_field() {
    let (url, secret) = url_with_secret(SECRET);
    let separator = if url.contains('?') { '&' } else { '?' };
    let url = format!("{url}{separator}application_name=uno-db-cli-test&statement_timeout=5s");
    let output = uno_db().args(["check", "--json", &url]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(!stdout.contains(&secret), "{stdout}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["valid"], true);
    assert_eq!(report["source"], "argument");
    assert_eq!(report["violations"], Value::Array(Vec::new()));
    assert!(report["configuration"].as_str().unwrap().contains(":***@"));
    assert_eq!(report["settings"]["pool_size"], 10);
    assert_eq!(report["settings"]["statement_timeout"], "5s");
    let host = &report["hosts"][0];
    assert_eq!(host["answered"], true);
    assert_eq!(host["authenticated"], true);
    assert_eq!(host["usable"], true);
    assert_eq!(host["role"], "primary");
    assert!(
        host["server_version"]
            .as_str()
            .unwrap()
            .starts_with(char::is_numeric)
    );
    assert!(host["encrypted"].is_boolean());
    assert!(host["certificate_verified"].is_boolean());
    assert!(host["latency_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(host["settings"]["application_name"], "uno-db-cli-test");
    assert_eq!(host["settings"]["statement_timeout"], "5s");
}

#[test]
fn a_bad_configuration_lists_every_violation_and_exits_2() {
    let url = format!(
        "postgresql://app:{SECRET}@127.0.0.1:99999/db?pool_size=0&sslmode=bogus&connect_timeout=-3"
    );
    let output = uno_db().args(["check", &url]).output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(2), "{stdout}");
    assert!(!stdout.contains(SECRET), "{stdout}");
    assert!(stdout.contains("app:***@127.0.0.1:99999"), "{stdout}");
    assert!(stdout.contains("violations: 4"), "{stdout}");
    for field in ["port", "pool_size", "sslmode", "connect_timeout"] {
        assert!(
            stdout.contains(&format!("  - {field} = ")),
            "{field}:\n{stdout}"
        );
    }
    let json = uno_db().args(["check", "--json", &url]).output().unwrap();
    assert_eq!(json.status.code(), Some(2));
    let report: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["valid"], false);
    assert_eq!(report["violations"].as_array().unwrap().len(), 4);
    assert_eq!(report["hosts"], Value::Array(Vec::new()));
}

#[test]
fn an_unreachable_host_exits_1() {
    let port = free_port();
    let url = format!("postgresql://postgres@127.0.0.1:{port}/postgres");
    let output = uno_db()
        .args(["check", &url, "--timeout", "2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("answered: no"), "{stdout}");
    assert!(stdout.contains("UNUSABLE"), "{stdout}");
    assert!(stdout.contains("FAILED: 1 of 1 hosts unusable"), "{stdout}");
}

#[test]
fn one_unusable_host_of_two_fails_the_check() {
    let port = free_port();
    let good = server_url().parse::<uno_db::ConnectionConfig>().unwrap();
    let endpoint = &good.endpoints()[0];
    let conninfo = format!(
        "host={},127.0.0.1 port={},{port} user={} dbname={}",
        endpoint.host(),
        endpoint.port(),
        good.role(),
        good.database()
    );
    let output = uno_db()
        .args(["check", "--json", "--timeout", "2", &conninfo])
        .env("PGPASSWORD", server_password().unwrap_or_default())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["hosts"][0]["usable"], true);
    assert_eq!(report["hosts"][1]["answered"], false);
    assert_eq!(report["target_met"], true);
    assert_eq!(report["ok"], false);
}

#[test]
fn a_rejected_login_exits_1_and_says_so() {
    let config = server_url().parse::<uno_db::ConnectionConfig>().unwrap();
    let url = config
        .to_builder()
        .role("no_such_role_uno_db_cli")
        .password(SECRET)
        .build()
        .unwrap()
        .to_url_with_password();
    let output = uno_db().args(["check", &url]).output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(!stdout.contains(SECRET), "{stdout}");
    assert!(stdout.contains("answered: yes"), "{stdout}");
    assert!(stdout.contains("authentication: failed"), "{stdout}");
}

#[test]
fn the_environment_configures_it_when_no_url_is_given() {
    let config = server_url().parse::<uno_db::ConnectionConfig>().unwrap();
    let endpoint = &config.endpoints()[0];
    let secret = server_password().unwrap_or_else(|| SECRET.to_owned());
    let output = uno_db()
        .arg("check")
        .env("PGHOST", endpoint.host())
        .env("PGPORT", endpoint.port().to_string())
        .env("PGUSER", config.role())
        .env("PGPASSWORD", &secret)
        .env("UNO_DB_POOL_SIZE", "3")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("configuration (environment): "), "{stdout}");
    assert!(stdout.contains(":***@"), "{stdout}");
    assert!(stdout.contains("pool_size 3"), "{stdout}");
    assert!(!stdout.contains(&secret), "{stdout}");

    // A URL wins over the environment, which fills in what it leaves out.
    let url = format!(
        "postgresql://{}:{}/{}",
        endpoint.host(),
        endpoint.port(),
        config.database()
    );
    let output = uno_db()
        .args(["check", &url])
        .env("PGUSER", config.role())
        .env("PGPASSWORD", &secret)
        .env("UNO_DB_POOL_SIZE", "4")
        .env("PGPORT", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("pool_size 4"), "{stdout}");

    // Malformed variables are violations too, all listed.
    let output = uno_db()
        .arg("check")
        .env("PGPORT", "nope")
        .env("UNO_DB_POOL_SIZE", "0")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("PGPORT"), "{stdout}");
    assert!(stdout.contains("pool_size"), "{stdout}");
}

#[test]
fn a_verified_tls_session_is_reported_so() {
    let cluster = uno_db_testkit::TestCluster::shared_tls().unwrap();
    let ca = cluster.tls().unwrap().ca_cert().display().to_string();
    let conninfo = |sslmode: &str| {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode={sslmode} sslrootcert={ca}",
            cluster.port()
        )
    };
    let output = uno_db()
        .args(["check", "--json", &conninfo("verify-full")])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let host = &report["hosts"][0];
    assert_eq!(host["encrypted"], true, "{host}");
    assert!(
        host["tls_version"].as_str().unwrap().starts_with("TLSv1."),
        "{host}"
    );
    assert_eq!(host["certificate_verified"], true, "{host}");

    let output = uno_db()
        .args(["check", &conninfo("disable")])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("  encrypted: no\n"), "{stdout}");
}

#[test]
fn a_host_of_the_wrong_kind_fails_the_check() {
    let url = format!("{}?target_session_attrs=standby", server_url());
    let output = uno_db().args(["check", &url]).output().unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("role: primary (not what target_session_attrs asks for)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("FAILED: no usable host is what target_session_attrs=standby asks for"),
        "{stdout}"
    );
}

#[test]
fn a_url_naming_a_driver_is_checked_too() {
    let (_, rest) = server_url().split_once("://").unwrap();
    for scheme in ["postgresql+postgres", "postgresql+tokio-postgres"] {
        let url = format!("{scheme}://{rest}");
        let output = uno_db().args(["check", "-q", &url]).output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{scheme}");
    }
}

#[test]
fn a_primary_and_a_standby_are_told_apart() {
    let set = uno_db_testkit::TestReplicaSet::start(1).unwrap();
    let url = set.url("postgres");
    let output = uno_db().args(["check", "--json", &url]).output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["hosts"][0]["role"], "primary");
    assert_eq!(report["hosts"][1]["role"], "standby");
    assert_eq!(
        report["hosts"][1]["settings"]["default_transaction_read_only"],
        "off"
    );

    // Every host must be usable, and one of the kind asked for.
    let standby = format!("{url}&target_session_attrs=standby");
    let standby = if url.contains('?') {
        standby
    } else {
        standby.replacen('&', "?", 1)
    };
    let output = uno_db()
        .args(["check", "--json", &standby])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["hosts"][0]["accepted_by_target"], false);
    assert_eq!(report["hosts"][1]["accepted_by_target"], true);

    set.stop(1).unwrap();
    let output = uno_db()
        .args(["check", "-t", "2", &standby])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAILED: 1 of 2 hosts unusable; no usable host is what target_session_attrs=standby asks for"),
        "{stdout}"
    );
}
