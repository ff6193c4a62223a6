//! Starting and stopping a throwaway cluster's server with `pg_ctl`.

use std::path::Path;
use std::time::Duration;

use crate::TestkitError;
use crate::bounded_command::run_bounded;
use crate::log_tail::{LOG_TAIL_LINES, read_from, tail};
use crate::pg_binaries::PgBinaries;
use crate::server_owner::ServerOwner;

/// How long `pg_ctl` waits for the server to start or stop.
const PG_CTL_WAIT_SECS: u64 = 30;

/// How long `pg_ctl` itself may take (its own wait, plus a margin).
const PG_CTL_TIMEOUT: Duration = Duration::from_secs(PG_CTL_WAIT_SECS + 10);

/// How the server is shut down.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Shutdown {
    /// Sessions are terminated, then a checkpoint (`-m fast`).
    Fast,
    /// Every server process quits at once, no checkpoint: a crash (`-m immediate`).
    Immediate,
}

/// `pg_ctl` for the cluster in `cluster_dir` (data in `data/`, log in `server.log`, unix
/// socket in `cluster_dir` itself).
pub(crate) struct PgCtl<'a> {
    pub(crate) bins: &'a PgBinaries,
    pub(crate) owner: ServerOwner,
    pub(crate) cluster_dir: &'a Path,
}

/// A failed start, and whether it failed because another process took the port.
pub(crate) struct StartFailure {
    pub(crate) port_taken: bool,
    pub(crate) error: TestkitError,
}

impl PgCtl<'_> {
    /// `pg_ctl start` on `port`, waiting until the server accepts connections.
    pub(crate) fn start(&self, port: u16) -> Result<(), StartFailure> {
        let log_path = self.cluster_dir.join("server.log");
        let log_offset = std::fs::metadata(&log_path).map_or(0, |m| m.len());
        let mut pg_ctl = self.command("start");
        pg_ctl
            .arg("-l")
            .arg(&log_path)
            .args(["-o", &format!("-p {port}")]);
        run_bounded(pg_ctl, "pg_ctl start", PG_CTL_TIMEOUT)
            .map(drop)
            .map_err(|error| {
                let log = read_from(&log_path, log_offset);
                let port_taken =
                    log.contains("could not bind") || log.contains("Address already in use");
                StartFailure {
                    port_taken,
                    error: TestkitError::ServerStart {
                        port,
                        log_tail: tail(&log, LOG_TAIL_LINES),
                        source: Box::new(error),
                    },
                }
            })
    }

    /// `pg_ctl stop`, waiting until the server is gone.
    pub(crate) fn stop(&self, shutdown: Shutdown) -> Result<(), TestkitError> {
        let mode = match shutdown {
            Shutdown::Fast => "fast",
            Shutdown::Immediate => "immediate",
        };
        let mut pg_ctl = self.command("stop");
        pg_ctl.args(["-m", mode]);
        run_bounded(pg_ctl, "pg_ctl stop", PG_CTL_TIMEOUT).map(drop)
    }

    /// `pg_ctl <action> -D <data> -w -s -t <wait>`.
    fn command(&self, action: &str) -> std::process::Command {
        let mut pg_ctl = self.bins.command("pg_ctl", self.owner, self.cluster_dir);
        pg_ctl
            .arg(action)
            .arg("-D")
            .arg(self.cluster_dir.join("data"))
            .args(["-w", "-s", "-t", &PG_CTL_WAIT_SECS.to_string()]);
        pg_ctl
    }
}
