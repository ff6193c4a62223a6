//! Exit codes, and the one error the commands return.

use std::fmt::Display;

/// Success: every host usable (`check`), the run completed (`bench`,
/// `demo`).
pub(crate) const OK: u8 = 0;
/// The command ran, and what it checked or ran failed: a host that the
/// configuration needs is unusable, the server failed a benchmark or the
/// tour.
pub(crate) const FAILED: u8 = 1;
/// Bad input: a malformed flag or URL, a flag out of range, an invalid
/// configuration. Nothing was attempted. (Also clap's own code for usage
/// errors.)
pub(crate) const USAGE: u8 = 2;
/// The command could not run on this machine: no PostgreSQL binaries for
/// `demo`'s throwaway server, no async runtime.
pub(crate) const CANNOT_RUN: u8 = 3;
/// Interrupted by Ctrl-C (128 + SIGINT, as shells report it), after
/// cleaning up.
pub(crate) const INTERRUPTED: u8 = 130;

/// Why a command stopped: the exit code and a one-line message (the cause
/// chain included) for `error: ...` on stderr.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The process exit code.
    pub(crate) code: u8,
    /// What went wrong, on one line.
    pub(crate) message: String,
}

impl Failure {
    /// A failure of what the command ran (exit code 1).
    pub(crate) fn failed(message: impl Display) -> Self {
        Self::new(FAILED, message)
    }

    /// Bad input (exit code 2).
    pub(crate) fn usage(message: impl Display) -> Self {
        Self::new(USAGE, message)
    }

    /// The command could not run here (exit code 3).
    pub(crate) fn cannot_run(message: impl Display) -> Self {
        Self::new(CANNOT_RUN, message)
    }

    /// A failure with `code`; the message is kept on one line.
    pub(crate) fn new(code: u8, message: impl Display) -> Self {
        let message = message.to_string().replace(['\n', '\r'], " ");
        Self { code, message }
    }

    /// A failure from a uno-db error: its whole cause chain, exit code 2 for
    /// a configuration error, else 1.
    pub(crate) fn from_error(context: &str, error: &uno_db::Error) -> Self {
        let code = if error.kind() == uno_db::ErrorKind::Config {
            USAGE
        } else {
            FAILED
        };
        Self::new(code, format!("{context}: {}", uno_db::error_chain(error)))
    }
}
