//! `cargo run -p uno-db --example quickstart` with nothing configured and
//! no server where the environment points: it starts a throwaway cluster
//! on a free port, runs the tour on it, and removes it on exit.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The whole run: a cluster start (a few seconds) and the tour.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// The example binary, which `cargo test` builds next to this test's.
fn quickstart() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().and_then(std::path::Path::parent).unwrap();
    let example = profile.join("examples").join("quickstart");
    assert!(
        example.exists(),
        "{} is missing: run `cargo test -p uno-db`, which builds the examples",
        example.display()
    );
    example
}

/// A TCP port nothing listens on (just released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_readme_example_runs_without_a_server() {
    let nowhere = free_port();
    let mut command = Command::new(quickstart());
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if name == "DATABASE_URL" || name.starts_with("PG") || name.starts_with("UNO_DB_") {
            command.env_remove(&name);
        }
    }
    let mut child = command
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", nowhere.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the example did not finish within {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut output = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut output)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut output)
        .unwrap();
    assert!(status.success(), "{status}: {output}");
    assert!(
        output.contains("starting a throwaway PostgreSQL"),
        "{output}"
    );
    assert!(output.contains("the blocking backend says 42"), "{output}");
    // The throwaway server is gone once the example exits.
    let port: u16 = output
        .split("connecting to postgresql://postgres@127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no throwaway address in: {output}"));
    assert_ne!(port, nowhere);
    let gone = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            Instant::now() < gone,
            "the throwaway server still runs on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
