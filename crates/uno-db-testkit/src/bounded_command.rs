//! Running a program with a deadline and capturing what it prints.

use std::io::{Read, Seek};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::TestkitError;

/// How often a running program is checked on.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// Runs `command` to completion, killing it if it takes longer than `timeout`.
///
/// `program` names it in errors (e.g. `pg_ctl start`). Returns what it printed on stdout and
/// stderr; a non-zero exit is an error carrying that output. Output goes to an anonymous
/// temporary file rather than a pipe, so a daemon the program leaves behind cannot hold the
/// caller up. Its stdin is empty (`/dev/null`).
///
/// The test kit runs `initdb` and `pg_ctl` with it; tests can run client programs such as
/// `psql` the same way, so none of them can hang a test.
///
/// ```no_run
/// use std::process::Command;
/// use std::time::Duration;
///
/// # fn main() -> Result<(), uno_db_testkit::TestkitError> {
/// let mut psql = Command::new("psql");
/// psql.args(["-X", "-Atc", "SELECT 1", "host=127.0.0.1 user=postgres"]);
/// let output = uno_db_testkit::run_bounded(psql, "psql", Duration::from_secs(20))?;
/// assert_eq!(output.trim(), "1");
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// [`TestkitError::Command`] (with the output) if the program exits unsuccessfully,
/// [`TestkitError::Timeout`] if it is still running after `timeout` (it is killed), and
/// [`TestkitError::Io`] if it cannot be started.
pub fn run_bounded(
    mut command: Command,
    program: &str,
    timeout: Duration,
) -> Result<String, TestkitError> {
    let io_error = |what: &str, source| TestkitError::io(format!("{what} `{program}`"), source);
    let mut output_file =
        tempfile::tempfile().map_err(|e| io_error("capturing the output of", e))?;
    let stdout = output_file
        .try_clone()
        .map_err(|e| io_error("capturing the output of", e))?;
    let stderr = output_file
        .try_clone()
        .map_err(|e| io_error("capturing the output of", e))?;
    command.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
    let mut child = command.spawn().map_err(|e| io_error("starting", e))?;
    // The command holds copies of the file handles; ours must not keep the child's stdio open.
    drop(command);

    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| io_error("waiting for", e))? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(TestkitError::Timeout {
                action: format!("`{program}`"),
                after: timeout,
            });
        }
        std::thread::sleep(POLL_INTERVAL);
    };

    let mut bytes = Vec::new();
    output_file
        .rewind()
        .and_then(|()| output_file.read_to_end(&mut bytes))
        .map_err(|e| io_error("reading the output of", e))?;
    let output = String::from_utf8_lossy(&bytes).into_owned();
    if status.success() {
        Ok(output)
    } else {
        Err(TestkitError::Command {
            program: program.to_owned(),
            status: status.to_string(),
            output,
        })
    }
}
