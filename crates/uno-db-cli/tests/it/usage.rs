//! `--help`, `--version`, and bad input: one clear message, exit 2.

use crate::{assert_one_clear_error, uno_db};

#[test]
fn help_documents_every_command_and_the_exit_codes() {
    let output = uno_db().arg("--help").output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8(output.stdout).unwrap();
    for word in [
        "check",
        "bench",
        "demo",
        "Exit codes",
        "130",
        "DATABASE_URL",
    ] {
        assert!(help.contains(word), "{word} missing from:\n{help}");
    }
    for command in ["check", "bench", "demo"] {
        let output = uno_db().args([command, "--help"]).output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{command}");
        let help = String::from_utf8(output.stdout).unwrap();
        assert!(help.contains("Exit codes"), "{help}");
    }
    let bench = uno_db().args(["bench", "--help"]).output().unwrap();
    let help = String::from_utf8(bench.stdout).unwrap();
    for flag in [
        "--tasks",
        "--pool",
        "--seconds",
        "--workload",
        "--compare",
        "--allow-writes",
        "select1",
        "checkout",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    uno_db()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicates::str::starts_with("uno-db 0."));
}

#[test]
fn bad_input_gives_one_message_and_exit_code_2() {
    // No command: the help, on stderr, and exit code 2.
    let output = uno_db().output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("Usage: uno-db <COMMAND>"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let cases: &[&[&str]] = &[
        &["frobnicate"],
        &["bench", "--tasks", "0"],
        &["bench", "--tasks", "5000"],
        &["bench", "--pool", "1001"],
        &["bench", "--seconds", "0"],
        &["bench", "--seconds", "many"],
        &["bench", "--workload", "delete-everything"],
        &["check", "--timeout", "0"],
        &["check", "postgres://a:b@h/db", "extra"],
        &["demo", "postgres://h/db", "--throwaway"],
        // Malformed URLs: nothing is attempted.
        &["bench", "postgres://postgres:s3cret@127.0.0.1:notaport/db"],
        &[
            "demo",
            "postgres://postgres:s3cret@127.0.0.1/db?pool_size=-1",
        ],
        &["bench", "postgresql://[::1/db"],
    ];
    for args in cases {
        let output = uno_db().args(*args).output().unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_one_clear_error(&stderr);
        assert!(!stderr.contains("s3cret"), "{stderr}");
    }
}

#[test]
fn a_closed_stdout_is_no_panic() {
    let mut child = crate::uno_db_std()
        .args(["check", crate::server_url()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
