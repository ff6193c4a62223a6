//! Command-line arguments.

use std::time::Duration;

pub(crate) const USAGE: &str = "usage: uno-db-bench (async|sync|tls|stream|observability|workloads|multiplex) [--url URL] [--rounds N] [--seconds S] [--rows N]
  --url      server to use (default: $DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres)
  --rounds   interleaved rounds per contender and shape (default 7; 3 for stream, 40 for workloads)
  --seconds  length of one round (default 2; 0.25 for workloads; stream runs to the last row instead)
  --rows     stream: rows streamed per round (default 10000000)
  --rss-of   stream, internal: stream once through this contender in this fresh process and
             print its resident memory (the memory pass runs one such child per contender)
  --workload workloads: run just this workload (checkout, select1, param, rows100, tx)
  --shape    workloads: run just this shape, e.g. 64x16
  --shared   multiplex: shared connections of the multiplexed client (default 2 at both shapes)
  --only     run just this contender (for profiling), e.g. --only uno-db-async
             (stream: --only 'uno-db-async query_stream', 'psql \\copy', ...)";

/// Which family to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Async,
    Sync,
    /// `SELECT 1` over TLS, and cold starts over TLS and in plaintext.
    Tls,
    /// Streaming a large result (`query_stream` against the drivers'
    /// `query_raw`) and loading with `COPY` (`copy_in` against psql's
    /// `\copy`).
    Stream,
    /// `SELECT 1` at 64/16 with a subscriber at INFO and a metrics
    /// recorder, against neither.
    Observability,
    /// Every pool workload (checkout, `SELECT 1`, a parameter, 100 rows,
    /// a transaction) at three shapes, against deadpool-postgres on its
    /// defaults and on settings matching ours.
    Workloads,
    /// The multiplexed client against deadpool-postgres and pooled
    /// checkouts, on `SELECT 1` and a query with a parameter.
    Multiplex,
}

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct Args {
    pub(crate) mode: Mode,
    pub(crate) url: String,
    pub(crate) rounds: usize,
    pub(crate) round: Duration,
    pub(crate) only: Option<String>,
    /// `workloads`: just this workload.
    pub(crate) workload: Option<String>,
    /// `workloads`: just this shape (`64x16`).
    pub(crate) shape: Option<String>,
    /// `stream`: the rows of one streamed query.
    pub(crate) rows: u64,
    /// `stream`, internal: this process only streams once through this
    /// contender and prints its resident memory.
    pub(crate) rss_of: Option<String>,
    /// `multiplex`: the shared connections at every shape, instead of the
    /// defaults.
    pub(crate) shared: Option<usize>,
}

impl Args {
    /// Whether `contender` runs (all do unless `--only` names one).
    pub(crate) fn runs(&self, contender: &str) -> bool {
        self.only.as_deref().is_none_or(|only| only == contender)
    }

    pub(crate) fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mode = match args.next().as_deref() {
            Some("async") => Mode::Async,
            Some("sync") => Mode::Sync,
            Some("tls") => Mode::Tls,
            Some("stream") => Mode::Stream,
            Some("observability") => Mode::Observability,
            Some("workloads") => Mode::Workloads,
            Some("multiplex") => Mode::Multiplex,
            Some(other) => return Err(format!("unknown mode {other:?}")),
            None => return Err("missing mode".to_owned()),
        };
        let mut parsed = Self {
            mode,
            url: std::env::var("DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned()),
            // `workloads`: many short rounds. Its cheapest cells (the
            // checkout alone at 4/4) run at one of two speeds, 2 to 3
            // times apart, for every contender alike, in spells that last
            // seconds to minutes; a pair of rounds close in time mostly
            // falls in one spell, and forty ratios give a median that one
            // spell's change does not move.
            rounds: match mode {
                Mode::Stream => 3,
                Mode::Workloads => 40,
                _ => 7,
            },
            round: match mode {
                Mode::Workloads => Duration::from_millis(250),
                _ => Duration::from_secs(2),
            },
            only: None,
            workload: None,
            shape: None,
            rows: 10_000_000,
            rss_of: None,
            shared: None,
        };
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--url" => parsed.url = value,
                "--rounds" => {
                    parsed.rounds = value
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or("--rounds takes a whole number above 0")?;
                }
                "--seconds" => {
                    let seconds: f64 = value
                        .parse()
                        .ok()
                        .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s <= 600.0)
                        .ok_or("--seconds takes a number of seconds in (0, 600]")?;
                    parsed.round = Duration::from_secs_f64(seconds);
                }
                "--only" => parsed.only = Some(value),
                "--workload" => parsed.workload = Some(value),
                "--shape" => parsed.shape = Some(value),
                "--rss-of" => parsed.rss_of = Some(value),
                "--shared" => {
                    parsed.shared = Some(
                        value
                            .parse()
                            .ok()
                            .filter(|n| (1..=64).contains(n))
                            .ok_or("--shared takes a whole number from 1 to 64")?,
                    );
                }
                "--rows" => {
                    parsed.rows = value
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or("--rows takes a whole number above 0")?;
                }
                _ => return Err(format!("unknown flag {flag:?}")),
            }
        }
        Ok(parsed)
    }
}
