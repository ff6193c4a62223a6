//! Running one test of this binary in a child process (as another user, with other
//! environment variables, or to watch what happens when it dies).

use std::io::{Read, Seek};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Names the child entry point a child process is meant to run; entry points do nothing
/// without it.
pub(crate) const CHILD_ENV: &str = "UNO_DB_TESTKIT_CHILD";

/// What a child test process did.
pub(crate) struct ChildOutcome {
    pub(crate) status: ExitStatus,
    pub(crate) output: String,
}

/// Runs the ignored test `test_name` of this binary in a child process, optionally as
/// `user` (uid, gid), with `env` added, and kills it after `limit`.
pub(crate) fn run_child_test(
    test_name: &str,
    user: Option<(u32, u32)>,
    env: &[(&str, &str)],
    limit: Duration,
) -> ChildOutcome {
    let exe = std::env::current_exe().unwrap();
    // Another user may not be able to reach this binary (a checkout under
    // a private directory): it runs a copy from a directory it can read.
    let reachable = user.map(|_| reachable_copy(&exe));
    let mut output_file = tempfile::tempfile().unwrap();
    let mut command = Command::new(reachable.as_ref().map_or(exe.as_path(), |(_, copy)| copy));
    command
        .args([
            test_name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, test_name)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(output_file.try_clone().unwrap())
        .stderr(output_file.try_clone().unwrap());
    for (name, value) in env {
        command.env(name, value);
    }
    if let Some((uid, gid)) = user {
        command.uid(uid).gid(gid);
    }
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child test {test_name} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut bytes = Vec::new();
    output_file.rewind().unwrap();
    output_file.read_to_end(&mut bytes).unwrap();
    ChildOutcome {
        status,
        output: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// A copy of `exe` that any user can run, in a directory removed when the
/// returned guard drops.
fn reachable_copy(exe: &std::path::Path) -> (tempfile::TempDir, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = dir.path().join(exe.file_name().unwrap());
    std::fs::copy(exe, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    (dir, copy)
}

/// Whether this process is the child meant to run `test_name`.
pub(crate) fn is_child_for(test_name: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|name| name == test_name)
}
