//! `uno-db demo` with no server configured: a throwaway PostgreSQL on a
//! free port, removed afterwards (also on Ctrl-C).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{answers, free_port, uno_db, uno_db_std};

/// The directory and port `started PostgreSQL ... at URL (directory DIR)`
/// names.
fn started(line: &str) -> (PathBuf, u16) {
    let dir = line
        .split("(directory ")
        .nth(1)
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no directory in {line:?}"));
    let port = line
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    (PathBuf::from(dir), port)
}

#[test]
fn with_no_server_it_tours_a_throwaway_postgresql_and_removes_it() {
    let nothing = free_port();
    let output = uno_db()
        .arg("demo")
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", nothing.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "no server answers at postgresql://postgres@127.0.0.1:{nothing}/postgres"
        )),
        "{stdout}"
    );
    for step in [
        "== engine",
        "hello from postgres",
        "two checked out: size 2, in use 2",
        "inserted 3 rows into a temporary table, counted 3",
        "the transaction committed on attempt 2 and returned 42",
        "== status",
        "the blocking backend says 42",
        "removing the throwaway PostgreSQL",
    ] {
        assert!(stdout.contains(step), "{step:?} missing:\n{stdout}");
    }
    let line = stdout
        .lines()
        .find(|l| l.starts_with("started PostgreSQL"))
        .unwrap();
    let (dir, port) = started(line);
    assert!(
        stdout.contains(&format!("removed {}", dir.display())),
        "{stdout}"
    );
    assert!(!dir.exists(), "{} is left behind", dir.display());
    assert!(!answers(port), "the throwaway server still runs on {port}");
}

#[test]
fn ctrl_c_stops_and_removes_the_throwaway_postgresql() {
    held_then_stopped_by("-INT", "Ctrl-C: stopping");
}

#[test]
fn sigterm_stops_and_removes_the_throwaway_postgresql() {
    held_then_stopped_by("-TERM", "SIGTERM: stopping");
}

/// Runs `demo --throwaway --hold`, sends `signal` once it holds, and checks
/// that it says `farewell`, exits 0 and leaves nothing behind.
fn held_then_stopped_by(signal: &str, farewell: &str) {
    let mut child = uno_db_std()
        .args(["demo", "--throwaway", "--hold"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !seen.iter().any(|l: &String| l.starts_with("holding:")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("the demo never held; it printed:\n{}", seen.join("\n"));
            }
        }
    }
    let line = seen
        .iter()
        .find(|l| l.starts_with("started PostgreSQL"))
        .unwrap();
    let (dir, port) = started(line);
    assert!(dir.exists());
    assert!(answers(port));

    let sent = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the demo did not exit within 20 s of {signal}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    seen.extend(received.iter());
    assert_eq!(status.code(), Some(0), "{}", seen.join("\n"));
    assert!(seen.iter().any(|l| l == farewell), "{}", seen.join("\n"));
    assert!(!dir.exists(), "{} is left behind", dir.display());
    assert!(!answers(port), "the throwaway server still runs on {port}");
}

#[test]
fn without_a_way_to_start_postgresql_it_exits_3() {
    let output = uno_db()
        .args(["demo", "--throwaway"])
        .env(
            uno_db_testkit::SCRATCH_DIR_ENV,
            "/nonexistent/uno-db-cli-test",
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    crate::assert_one_clear_error(&stderr);
    assert!(
        stderr.contains("could not start a throwaway PostgreSQL"),
        "{stderr}"
    );
}

#[test]
fn ctrl_c_during_the_tour_exits_130() {
    // A "server" that accepts connections and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let url = format!("postgresql://postgres@127.0.0.1:{port}/postgres?connect_timeout=50s");
    let mut child = uno_db_std()
        .args(["demo", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let line = lines.next().unwrap().unwrap();
        if line.starts_with("== connect") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the tour never got to connecting"
        );
    }
    // The connect now waits on the silent server.
    silent.set_nonblocking(true).unwrap();
    let _held = loop {
        match silent.accept() {
            Ok((stream, _)) => break stream,
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("the demo never connected");
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(error) => panic!("{error}"),
        }
    };
    let sent = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no exit after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert_eq!(status.code(), Some(130), "{rest:?}");
    assert!(
        rest.iter().any(|l| l == "interrupted by Ctrl-C"),
        "{rest:?}"
    );
}
