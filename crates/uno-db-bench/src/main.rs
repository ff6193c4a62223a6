//! Throughput of uno-db against the pools it wraps, on one server, in
//! interleaved rounds of one run (so machine noise hits every contender
//! alike).
//!
//! ```text
//! cargo run --release -p uno-db-bench -- async [--url URL] [--rounds N] [--seconds S]
//! cargo run --release -p uno-db-bench -- sync  [--url URL] [--rounds N] [--seconds S]
//! cargo run --release -p uno-db-bench -- tls   [--url URL] [--rounds N] [--seconds S]
//! cargo run --release -p uno-db-bench -- stream [--url URL] [--rounds N] [--rows N]
//! cargo run --release -p uno-db-bench --features observability -- observability [--url URL] [--rounds N] [--seconds S]
//! cargo run --release -p uno-db-bench -- workloads [--url URL] [--rounds N] [--seconds S]
//! cargo run --release -p uno-db-bench -- multiplex [--url URL] [--rounds N] [--seconds S]
//! ```
//!
//! Every pool uno-db is compared with runs twice, on its own defaults
//! (`(defaults)` in the output) and on settings matching uno-db's
//! (`(matching)`); `peers` says what each sets.
//! `async` runs `SELECT 1` (prepared) through uno-db-async, raw
//! deadpool-postgres and sqlx at 64 tasks on a pool of 16 and 16 on 4, and
//! ends with one `ratio uno-db-async/PEER = X` line per peer and shape,
//! then each pair's worst shape. `sync` runs uno-db-sync (through the
//! traits and through its concrete types) and raw `r2d2_postgres` on OS
//! threads and pgbench (on its defaults, matching
//! ours, and prepared on two threads), at 16 threads on 16 and 4 on 4, with
//! two drivers alone beside them (a `postgres::Client` per thread, and a
//! `tokio_postgres` client per thread polled without a runtime), and ends
//! with one `ratio A/B = X` line per pair and shape.
//! `tls` runs uno-db-async and deadpool-postgres over TLS with the same
//! rustls connector (`ratio uno-db-async+tls/deadpool+tls (defaults) = X`,
//! and `(matching)`), then the cold start of a 16-connection pool over TLS
//! and in plaintext.
//! `stream` reads `--rows` rows (default 10 million) one at a time through
//! uno-db-async's and uno-db-sync's `query_stream` and the drivers' own
//! `query_raw`, with the resident memory each run adds
//! (`ratio uno-db-async query_stream/tokio-postgres query_raw = X`, and the
//! blocking pair), then loads 1 million rows with `COPY` through each
//! backend's `copy_in` and through `psql -c "\copy ..."`
//! (`ratio uno-db-async copy_in/psql \copy = X`, and uno-db-sync's).
//! `observability` runs uno-db-async at 64 tasks on 16 with a `tracing`
//! subscriber at INFO and a `metrics` recorder installed against neither
//! (`ratio instrumented/plain = X (select1, 64/16)`).
//! `workloads` runs checkout-only, `SELECT 1`, `SELECT $1::int4 + 1`, 100
//! decoded rows and `BEGIN; UPDATE; COMMIT` at 64/16, 16/4 and 4/4 through
//! uno-db-async and deadpool-postgres twice, on its defaults (no wait
//! timeout) and on settings matching uno-db's (a 30 s wait timeout), and
//! ends with one `ratio uno-db-async/deadpool (defaults) = X (workload,
//! shape)` line per pair.
//! `multiplex` runs uno-db-async's multiplexed client, its pooled
//! checkouts and deadpool-postgres (both settings) on `SELECT 1` and
//! `SELECT $1::int4 + 1`, at 64 tasks on a pool of 16 (2 shared
//! connections) and 4 on 4 (1 shared connection), and ends with lines
//! `ratio A/B = X (workload, shape)`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod args;
mod async_contenders;
mod multiplex_contenders;
mod observability;
mod peers;
mod pgbench;
mod report;
mod runtime_free;
mod stream_contenders;
mod sync_contenders;
mod tls_contenders;
mod wakeups;
mod workloads;

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
        args::Mode::Stream => stream_contenders::run(&args),
        args::Mode::Observability => observability::run(&args),
        args::Mode::Workloads => workloads::run(&args),
        args::Mode::Multiplex => multiplex_contenders::run(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("benchmark failed: {}", uno_db::error_chain(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}
