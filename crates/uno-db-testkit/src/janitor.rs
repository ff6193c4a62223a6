//! A watchdog process that cleans up after a test process that dies without cleaning up.

use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::TestkitError;

/// The watchdog: waits for its stdin to close, then stops the process whose pid file is `$2`
/// (by default `$1/data/postmaster.pid`, a cluster's server), if one runs, and removes `$1`. It ignores the signals a terminal or a test
/// harness sends to the whole process group, so it outlives a test process killed by Ctrl-C
/// or by a timeout.
const SCRIPT: &str = r#"trap '' INT TERM HUP
while read -r _line; do :; done
pidfile="${2:-$1/data/postmaster.pid}"
if [ -f "$pidfile" ]; then
  pid=$(head -n 1 "$pidfile")
  case "$pid" in
    ''|*[!0-9]*) ;;
    *)
      kill -QUIT "$pid" 2>/dev/null
      n=0
      while kill -0 "$pid" 2>/dev/null && [ "$n" -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
      kill -KILL "$pid" 2>/dev/null
      ;;
  esac
fi
rm -rf "$1"
"#;

/// How long dropping a [`Janitor`] waits for it to finish.
const EXIT_WAIT: Duration = Duration::from_secs(5);

/// A watchdog for a directory (and the server in it, if any).
///
/// While the `Janitor` lives, the watchdog does nothing. When it is dropped, or when the test
/// process dies in any way (panic, `abort`, `SIGKILL`, Ctrl-C), the watchdog's stdin closes and
/// it stops the server with an immediate shutdown and deletes the directory. This is what
/// cleans up the process-wide shared cluster, which lives in a `static` and is never dropped.
#[derive(Debug)]
pub(crate) struct Janitor {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Janitor {
    /// Starts a watchdog for `dir`.
    pub(crate) fn watch(dir: &Path) -> Result<Self, TestkitError> {
        Self::spawn(&[dir])
    }

    /// Starts a watchdog for `dir` that stops the process whose pid is in `pid_file` (a
    /// daemon other than a Postgres server, such as PgBouncer).
    pub(crate) fn watch_with_pid_file(dir: &Path, pid_file: &Path) -> Result<Self, TestkitError> {
        Self::spawn(&[dir, pid_file])
    }

    /// Starts `sh` running the watchdog script with `args` as `$1`, `$2`, ...
    fn spawn(args: &[&Path]) -> Result<Self, TestkitError> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("uno-db-testkit-janitor")
            .args(args)
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| TestkitError::io("starting the clean-up watchdog (sh)", source))?;
        let stdin = child.stdin.take();
        Ok(Self { child, stdin })
    }
}

impl Drop for Janitor {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + EXIT_WAIT;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
        tracing::warn!("the clean-up watchdog did not finish in time; leaving it running");
    }
}
