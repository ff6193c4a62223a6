//! The command line: commands, flags, their ranges and `--help` text.

// The doc comments below are the `--help` text, written for a terminal:
// names such as r2d2_postgres stay without Markdown backticks.
#![allow(clippy::doc_markdown)]

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The exit codes, shown at the end of every `--help`.
const EXIT_CODES: &str = "\
Exit codes:
  0    success (check: every host the configuration needs is usable)
  1    a check or run failed (a host unusable, the server failed a query)
  2    bad input: malformed flag, URL or configuration (nothing attempted)
  3    could not run here (demo: no PostgreSQL binaries)
  130  interrupted by Ctrl-C (after cleaning up)

Without a URL, the configuration comes from the environment like the
library's: DATABASE_URL, then UNO_DB_*, then libpq's PG* variables. With a
URL, the URL wins and the same variables fill in what it leaves unset (as
psql does). See docs/cli.md.";

/// The `uno-db` command: check a PostgreSQL connection configuration,
/// benchmark a server through uno-db's engine, or tour the API on a
/// throwaway PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "uno-db", version, about, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Validate the configuration and probe every host: answer, version,
    /// TLS, authentication, primary or standby, latency, session settings.
    #[command(after_help = EXIT_CODES)]
    Check(CheckArgs),
    /// Measure throughput and latency of a workload through uno-db's engine
    /// (and the raw pools with --compare), for a bounded time.
    #[command(after_help = EXIT_CODES)]
    Bench(BenchArgs),
    /// A short tour of the API (engine, checkout, session, retry, status)
    /// on the configured server, or on a throwaway PostgreSQL started from
    /// the local binaries when none answers (removed on exit and on Ctrl-C).
    #[command(after_help = EXIT_CODES)]
    Demo(DemoArgs),
}

/// `uno-db check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Connection URL (`postgresql://role:password@host:port/db?param=value`)
    /// or libpq `key=value` string; default: the environment.
    #[arg(value_name = "URL")]
    pub(crate) url: Option<String>,
    /// Print the report as one JSON object on stdout (same exit codes).
    #[arg(long, conflicts_with = "quiet")]
    pub(crate) json: bool,
    /// Print nothing; only the exit code tells (as `pg_isready -q`).
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// Seconds each host has to answer, authenticate and reply.
    #[arg(short = 't', long, value_name = "SECONDS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub(crate) timeout: u64,
}

/// `uno-db bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Connection URL or libpq `key=value` string; default: the environment.
    #[arg(value_name = "URL")]
    pub(crate) url: Option<String>,
    /// Concurrent tasks (threads for the blocking contenders).
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub(crate) tasks: u64,
    /// Pool size of every contender (max_overflow 0; all opened before
    /// measuring).
    #[arg(long, value_name = "N", default_value_t = 8,
          value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub(crate) pool: u64,
    /// Seconds each contender runs (the run takes this times the number of
    /// contenders, plus connecting).
    #[arg(long, value_name = "S", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub(crate) seconds: u64,
    /// What each operation does.
    #[arg(long, value_enum, default_value_t = Workload::Select1)]
    pub(crate) workload: Workload,
    /// Also run raw deadpool-postgres, uno-db's blocking engine and raw
    /// r2d2_postgres on the same settings, and print the ratios. Without
    /// TLS: needs an sslmode below `require` (every contender then runs in
    /// plaintext).
    #[arg(long)]
    pub(crate) compare: bool,
    /// Let the `tx` workload write (one row to a temporary table per
    /// transaction). Without it every bench connection has
    /// `default_transaction_read_only=on`, so nothing can write.
    #[arg(long)]
    pub(crate) allow_writes: bool,
    /// Print the results as one JSON object on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

/// What one benchmark operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Workload {
    /// Check out a connection, `SELECT 1`, return it.
    Select1,
    /// Check out, `SELECT $1::int8 + 1` with a parameter, return.
    Param,
    /// Check out, read 100 rows (`generate_series`), return.
    Rows,
    /// A transaction: BEGIN, `SELECT $1::int8`, COMMIT (read-only; with
    /// --allow-writes also an INSERT into a temporary table).
    Tx,
    /// Check out a connection and return it, no statement: the pool's own
    /// cost.
    Checkout,
}

impl Workload {
    /// The name on the command line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Select1 => "select1",
            Self::Param => "param",
            Self::Rows => "rows",
            Self::Tx => "tx",
            Self::Checkout => "checkout",
        }
    }
}

/// `uno-db demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Run the tour on this server instead (URL or libpq string). Default:
    /// DATABASE_URL; else the server the environment names if it answers;
    /// else a throwaway PostgreSQL.
    #[arg(value_name = "URL")]
    pub(crate) url: Option<String>,
    /// Always start a throwaway PostgreSQL, even when a server is
    /// configured.
    #[arg(long, conflicts_with = "url")]
    pub(crate) throwaway: bool,
    /// After the tour, keep the throwaway PostgreSQL running (its URL is
    /// printed) until Ctrl-C or SIGTERM, then remove it.
    #[arg(long)]
    pub(crate) hold: bool,
}
