//! Throughput of uno-db against the pools it wraps, on one server, in
//! interleaved rounds of one run (so machine noise hits every contender
//! alike).
//!
//! ```text
//! cargo run --release -p uno-db-bench -- async [--url URL] [--rounds N] [--seconds S]
//! cargo run --release -p uno-db-bench -- sync  [--url URL] [--rounds N] [--seconds S]
//! cargo run --release -p uno-db-bench -- tls   [--url URL] [--rounds N] [--seconds S]
//! cargo run --release -p uno-db-bench -- observability [--url URL] [--rounds N] [--seconds S]
//! ```
//!
//! `async` runs `SELECT 1` (prepared) through uno-db-async, raw
//! deadpool-postgres and sqlx at 64 tasks on a pool of 16 and 16 on 4, and
//! ends with `ratio uno-db-async/deadpool-postgres = X` (the smaller of the
//! two shapes). `sync` runs uno-db-sync and raw `r2d2_postgres` on OS threads
//! and pgbench, at 16 threads on 16 and 4 on 4, and ends with
//! `ratio uno-db-sync/r2d2_postgres = X` and `ratio uno-db-sync/pgbench = Y`.
//! `tls` runs uno-db-async and deadpool-postgres over TLS with the same
//! rustls connector (`ratio uno-db-async+tls/deadpool-postgres+tls = X`),
//! then the cold start of a 16-connection pool over TLS and in plaintext.
//! `observability` runs uno-db-async at 64 tasks on 16 with a `tracing`
//! subscriber at INFO and a `metrics` recorder installed against neither
//! (`ratio instrumented/plain = X (select1, 64/16)`).
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod args;
mod async_contenders;
mod observability;
mod pgbench;
mod report;
mod sync_contenders;
mod tls_contenders;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = match args::Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    let outcome = match args.mode {
        args::Mode::Async => async_contenders::run(&args),
        args::Mode::Sync => sync_contenders::run(&args),
        args::Mode::Tls => tls_contenders::run(&args),
        args::Mode::Observability => observability::run(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("benchmark failed: {}", uno_db::error_chain(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}
