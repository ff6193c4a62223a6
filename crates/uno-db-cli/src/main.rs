//! `uno-db`: check a connection configuration, benchmark a server, tour the
//! API on a throwaway PostgreSQL. See `docs/cli.md` for every command, flag,
//! output and exit code.
//!
//! A command-line program talks to its user through stdout and stderr; it
//! does so through `outln!`, `out!` and `errln!` below rather than
//! `println!` and friends (which the workspace's lints warn about), because
//! those panic when the output is a closed pipe.

/// `println!` that never panics: what cannot be written (stdout closed, as
/// in `uno-db check | head -1`) is dropped and the command carries on (so
/// `demo` still removes its server).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `print!` that never panics (see `outln!`).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// `eprintln!` that never panics (see `outln!`).
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod bench;
mod check;
mod cli;
mod demo;
mod failure;
mod histogram;
mod mask;
mod prepared_manager;
mod source;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command};
use crate::failure::Failure;

fn main() -> ExitCode {
    // Should a bug panic anyway: one line, no backtrace, exit code 101.
    std::panic::set_hook(Box::new(|info| {
        let info = info.to_string().replace('\n', " ");
        errln!("error: internal error (a bug in uno-db, please report it): {info}");
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // `--help` and `--version` are "errors" that print to stdout and
            // exit 0; usage errors print one message and exit 2.
            let code = if error.use_stderr() {
                failure::USAGE
            } else {
                failure::OK
            };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            errln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// Runs one command; `Ok` carries the exit code of a command that ran to
/// its end (`check` exits 1 when a host is unusable without failing).
fn run(cli: Cli) -> Result<u8, Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| Failure::cannot_run(format!("starting the async runtime: {error}")))?;
    match cli.command {
        Command::Check(args) => runtime.block_on(check::run(&args)),
        Command::Bench(args) => bench::run(&runtime, &args),
        Command::Demo(args) => demo::run(&runtime, &args),
    }
}
