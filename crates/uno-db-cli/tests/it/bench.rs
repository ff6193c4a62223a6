//! `uno-db bench`, a second per contender.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{assert_one_clear_error, free_port, server_url, uno_db};

const SHORT: [&str; 6] = ["--seconds", "1", "--tasks", "2", "--pool", "2"];

#[test]
fn without_a_tty_it_prints_a_plain_table_and_the_ratios() {
    let output = uno_db()
        .args(["bench", server_url(), "--compare"])
        .args(SHORT)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    // No progress bar, no terminal control sequences anywhere.
    assert!(stderr.is_empty(), "{stderr}");
    assert!(
        !stdout.contains('\x1b') && !stdout.contains('\r'),
        "{stdout:?}"
    );
    assert!(
        stdout.contains("workload select1, 2 tasks, pool 2, 1 s per contender, read-only"),
        "{stdout}"
    );
    let header = stdout.lines().find(|l| l.starts_with("contender")).unwrap();
    for column in ["operations", "ops/s", "p50", "p99"] {
        assert!(header.contains(column), "{header}");
    }
    for contender in [
        "uno-db ",
        "deadpool-postgres (matching) ",
        "uno-db (blocking) ",
        "r2d2_postgres (matching) ",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(contender))
            .unwrap_or_else(|| panic!("{contender} missing:\n{stdout}"));
        assert!(line.ends_with(" ms"), "{line}");
    }
    assert!(
        stdout.contains("ratio uno-db/deadpool-postgres (matching) = "),
        "{stdout}"
    );
    assert!(
        stdout.contains("ratio uno-db (blocking)/r2d2_postgres (matching) = "),
        "{stdout}"
    );
}

#[test]
fn on_a_tty_it_draws_progress() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no `script` to give the binary a terminal");
        return;
    }
    let binary = assert_cmd::cargo::cargo_bin("uno-db");
    let command = format!(
        "{} bench '{}' --seconds 1 --tasks 2 --pool 2",
        binary.display(),
        server_url()
    );
    let mut script = std::process::Command::new("script");
    script.args(["-qec", &command, "/dev/null"]);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name == "DATABASE_URL" || name.starts_with("PG") {
            script.env_remove(name);
        }
    }
    let output = assert_cmd::Command::from_std(script)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    if !text.contains("bench ") && !text.contains("error") {
        // `script` could not run the binary (no pseudo-terminals here).
        eprintln!(
            "skipped: `script` gave no terminal: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return;
    }
    assert_eq!(output.status.code(), Some(0), "{text}");
    // indicatif redraws its line: carriage returns and erase-line codes.
    assert!(text.contains("\x1b[2K"), "{text:?}");
    assert!(text.contains("ops/s"), "{text}");
    assert!(text.contains("[=="), "{text}");
    assert!(text.contains("contender"), "{text}");
}

#[test]
fn json_results_and_every_workload() {
    for workload in ["select1", "param", "rows", "tx", "checkout"] {
        let output = uno_db()
            .args(["bench", server_url(), "--json", "--workload", workload])
            .args(SHORT)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0), "{workload}");
        let results: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(results["workload"], workload);
        assert_eq!(results["read_only"], true);
        let uno = &results["results"][0];
        assert_eq!(uno["contender"], "uno-db");
        assert!(uno["operations"].as_u64().unwrap() > 0, "{workload}: {uno}");
        assert!(uno["p50_ms"].as_f64().unwrap() <= uno["p99_ms"].as_f64().unwrap());
    }
}

#[test]
fn it_is_read_only_unless_writes_are_allowed() {
    let output = uno_db()
        .args([
            "bench",
            server_url(),
            "--workload",
            "tx",
            "--allow-writes",
            "--compare",
        ])
        .args(SHORT)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("writes allowed"), "{stdout}");
    assert!(
        !stdout.contains("default_transaction_read_only"),
        "{stdout}"
    );

    let output = uno_db()
        .args(["bench", server_url()])
        .args(SHORT)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains("default_transaction_read_only%3Don"),
        "{stdout}"
    );

    // A configuration that switches read-only off needs --allow-writes.
    let url = format!(
        "{}?options=-c%20default_transaction_read_only%3Doff",
        server_url()
    );
    let output = uno_db().args(["bench", &url]).args(SHORT).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_one_clear_error(&stderr);
    assert!(stderr.contains("--allow-writes"), "{stderr}");
}

#[test]
fn an_unreachable_server_fails_at_once_with_exit_code_1() {
    let url = format!(
        "postgresql://postgres:s3cret@127.0.0.1:{}/postgres",
        free_port()
    );
    let started = Instant::now();
    let output = uno_db().args(["bench", &url]).args(SHORT).output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_one_clear_error(&stderr);
    assert!(stderr.contains("cannot reach the server"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[test]
fn compare_refuses_a_configuration_that_requires_tls() {
    let url = format!("{}?sslmode=require", server_url());
    let output = uno_db()
        .args(["bench", &url, "--compare"])
        .args(SHORT)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_one_clear_error(&String::from_utf8(output.stderr).unwrap());
}

#[test]
fn a_url_naming_the_blocking_driver_runs_the_blocking_engine() {
    let (_, rest) = server_url().split_once("://").unwrap();
    let url = format!("postgresql+postgres://{rest}");
    let output = uno_db()
        .args(["bench", &url, "--json"])
        .args(SHORT)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let results: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(results["results"][0]["contender"], "uno-db (blocking)");

    let output = uno_db()
        .args(["bench", &url, "--compare"])
        .args(SHORT)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_one_clear_error(&String::from_utf8(output.stderr).unwrap());
}
