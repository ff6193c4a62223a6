//! `stream`: a large result read one row at a time through uno-db's
//! `query_stream` against the drivers' own `query_raw`, with the process's
//! resident memory watched while the rows go by; then `COPY ... FROM STDIN`
//! through uno-db's `copy_in` against `psql -c "\copy ..."`.
//!
//! Every contender runs in plaintext (`sslmode=disable`): the drivers here
//! run `NoTls`, so uno-db must not negotiate TLS on a server that offers it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_core::Stream;
use futures_sink::Sink;
use postgres::fallible_iterator::FallibleIterator as _;
use uno_db::blocking::{Client as _, EngineFactory as _};
use uno_db::nonblocking::{Client as _, EngineFactory as _};
use uno_db::{AsyncEngineFactory, ConnectionConfig, ErrorKind, SslMode, SyncEngineFactory};

use crate::args::Args;
use crate::pgbench::find_binary;
use crate::report::Report;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const UNO_ASYNC: &str = "uno-db-async query_stream";
const TOKIO_PG: &str = "tokio-postgres query_raw";
const UNO_SYNC: &str = "uno-db-sync query_stream";
const POSTGRES: &str = "postgres query_raw";
const STREAMERS: [&str; 4] = [UNO_ASYNC, TOKIO_PG, UNO_SYNC, POSTGRES];

const COPY_ASYNC: &str = "uno-db-async copy_in";
const COPY_SYNC: &str = "uno-db-sync copy_in";
const COPY_TOKIO_PG: &str = "tokio-postgres copy_in";
const COPY_POSTGRES: &str = "postgres copy_in";
const PSQL: &str = "psql \\copy";
const COPIERS: [&str; 5] = [COPY_ASYNC, COPY_SYNC, COPY_TOKIO_PG, COPY_POSTGRES, PSQL];

/// Rows loaded by one `COPY`.
const COPY_ROWS: u64 = 1_000_000;
/// About how much `COPY` data one `send` (or `write_all`) carries.
const CHUNK: usize = 64 * 1024;
/// Resident memory is sampled every this many rows.
const SAMPLE_EVERY: u64 = 1_000_000;
/// The table every `COPY` loads; unlogged, made and dropped by this run.
const TABLE: &str = "uno_bench_copy";

type ToSqlSync = dyn tokio_postgres::types::ToSql + Sync;

pub(crate) fn run(args: &Args) -> Result<(), BoxError> {
    let rows = args.rows;
    let sql = format!("SELECT g, 'row ' || g FROM generate_series(1, {rows}::int8) g");
    println!(
        "stream: `{sql}`, each row decoded (int8, text); {} interleaved rounds; plaintext",
        args.rounds
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let config = args
        .url
        .parse::<ConnectionConfig>()?
        .to_builder()
        .ssl_mode(SslMode::Disable)
        .pool_size(1)
        .max_overflow(0)
        .pool_timeout(Duration::from_secs(30))
        .build()?;
    let pg_config: tokio_postgres::Config = args.url.parse()?;

    // The async contenders live on the runtime; the blocking ones on this
    // thread, outside it (the `postgres` driver runs its own runtime).
    let (uno_async, tokio_pg) = runtime.block_on(async {
        let engine = AsyncEngineFactory::new().engine(&config)?;
        drop(engine.connect().await?);
        let (client, connection) = pg_config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                eprintln!("tokio-postgres connection: {error}");
            }
        });
        Ok::<_, BoxError>((engine, client))
    })?;
    let uno_sync = SyncEngineFactory::new().engine(&config)?;
    drop(uno_sync.connect()?);
    let postgres = args
        .url
        .parse::<postgres::Config>()?
        .connect(postgres::NoTls)?;
    let mut contenders = Contenders {
        runtime,
        uno_async,
        tokio_pg,
        uno_sync,
        postgres,
        sql,
        rows,
    };

    if let Some(contender) = &args.rss_of {
        let streamed = stream(contender, &mut contenders)?;
        println!("rss-of {} {}", streamed.rss.before, streamed.rss.max);
        return Ok(());
    }

    // One untimed pass each: in the first runs of two without it, whichever
    // contender went first was 10 % slower than in the later rounds.
    println!("  warm-up: one untimed pass through each contender");
    for contender in STREAMERS {
        if args.runs(contender) {
            stream(contender, &mut contenders)?;
        }
    }
    let shape = format!("stream {rows}");
    let mut report = Report::with_unit("rows/s");
    for round in 0..args.rounds {
        for slot in 0..STREAMERS.len() {
            let contender = STREAMERS[(round + slot) % STREAMERS.len()];
            if !args.runs(contender) {
                continue;
            }
            let streamed = stream(contender, &mut contenders)?;
            report.record(contender, &shape, streamed.rows_per_sec());
        }
    }
    report.print_medians(&shape, &STREAMERS);
    let shapes = [shape];
    let async_ratio = report.ratio(UNO_ASYNC, TOKIO_PG, "stream", &shapes);
    let sync_ratio = report.ratio(UNO_SYNC, POSTGRES, "stream", &shapes);
    println!(
        "resident memory (VmRSS, sampled every {SAMPLE_EVERY} rows) while streaming {rows} rows, \
         each contender alone in a fresh process:"
    );
    for contender in STREAMERS {
        if args.runs(contender) {
            println!("  {contender:<26} {}", rss_in_child(args, contender)?);
        }
    }
    println!("ratio {UNO_ASYNC}/{TOKIO_PG} = {async_ratio:.3} (stream {rows} rows)");
    println!("ratio {UNO_SYNC}/{POSTGRES} = {sync_ratio:.3} (stream {rows} rows)");

    copy(args, &mut contenders)?;

    contenders.uno_async.dispose();
    contenders.uno_sync.dispose();
    Ok(())
}

/// One connection of each contender, opened before measuring.
struct Contenders {
    /// Runs the async contenders; the blocking ones run outside it (the
    /// `postgres` driver runs its own runtime).
    runtime: tokio::runtime::Runtime,
    uno_async: Arc<dyn uno_db::nonblocking::Engine>,
    tokio_pg: tokio_postgres::Client,
    uno_sync: Arc<dyn uno_db::blocking::Engine>,
    postgres: postgres::Client,
    sql: String,
    rows: u64,
}

/// Streams the query once through `contender`.
fn stream(contender: &str, c: &mut Contenders) -> Result<Streamed, BoxError> {
    let streamed = match contender {
        UNO_ASYNC => c.runtime.block_on(stream_uno_async(&c.uno_async, &c.sql))?,
        TOKIO_PG => c
            .runtime
            .block_on(stream_tokio_postgres(&c.tokio_pg, &c.sql))?,
        UNO_SYNC => stream_uno_sync(&c.uno_sync, &c.sql)?,
        POSTGRES => stream_postgres(&mut c.postgres, &c.sql)?,
        _ => return Err(format!("no streaming contender {contender:?}").into()),
    };
    if streamed.rows != c.rows {
        return Err(format!("{contender} read {} rows, not {}", streamed.rows, c.rows).into());
    }
    Ok(streamed)
}

/// The resident memory of streaming once through `contender`, measured in
/// a new process of this benchmark: in this one, memory the allocator kept
/// from earlier rounds would hide (or inflate) what the stream needs.
fn rss_in_child(args: &Args, contender: &str) -> Result<Rss, BoxError> {
    let output = Command::new(std::env::current_exe()?)
        .args([
            "stream",
            "--url",
            &args.url,
            "--rows",
            &args.rows.to_string(),
        ])
        .args(["--rss-of", contender])
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "the memory pass of {contender} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )
        .into());
    }
    let mut figures = stdout
        .lines()
        .find_map(|line| line.strip_prefix("rss-of "))
        .ok_or_else(|| format!("no `rss-of` line in the memory pass of {contender}: {stdout}"))?
        .split_whitespace()
        .map(str::parse::<u64>);
    match (figures.next(), figures.next()) {
        (Some(Ok(before)), Some(Ok(max))) => Ok(Rss { before, max }),
        _ => Err(format!("unreadable `rss-of` line in the memory pass of {contender}").into()),
    }
}

/// Resident memory around one streamed query, in KiB.
#[derive(Debug, Clone, Copy)]
struct Rss {
    before: u64,
    max: u64,
}

impl Rss {
    fn start() -> Result<Self, BoxError> {
        let now = rss_kib()?;
        Ok(Self {
            before: now,
            max: now,
        })
    }

    fn sample(&mut self) -> Result<(), BoxError> {
        self.max = self.max.max(rss_kib()?);
        Ok(())
    }

    fn growth(&self) -> u64 {
        self.max - self.before
    }
}

impl std::fmt::Display for Rss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |kib: u64| kib as f64 / 1024.0;
        write!(
            f,
            "rss before {:.1} MB, max during {:.1} MB, growth {:.1} MB",
            mib(self.before),
            mib(self.max),
            mib(self.growth())
        )
    }
}

/// The process's resident memory (`VmRSS`), in KiB.
fn rss_kib() -> Result<u64, BoxError> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .ok_or_else(|| "no VmRSS line in /proc/self/status".into())
}

/// What one streamed query did.
struct Streamed {
    rows: u64,
    seconds: f64,
    rss: Rss,
}

impl Streamed {
    fn rows_per_sec(&self) -> f64 {
        self.rows as f64 / self.seconds
    }
}

/// Every row's values, consumed so that decoding them cannot be skipped;
/// samples resident memory as the rows go by.
struct Tally {
    rows: u64,
    sum: i64,
    text_bytes: usize,
    rss: Rss,
    started: Instant,
}

impl Tally {
    fn start() -> Result<Self, BoxError> {
        Ok(Self {
            rows: 0,
            sum: 0,
            text_bytes: 0,
            rss: Rss::start()?,
            started: Instant::now(),
        })
    }

    fn add(&mut self, id: i64, text: &str) -> Result<(), BoxError> {
        self.sum = self.sum.wrapping_add(std::hint::black_box(id));
        self.text_bytes += std::hint::black_box(text).len();
        self.rows += 1;
        if self.rows.is_multiple_of(SAMPLE_EVERY) {
            self.rss.sample()?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Streamed, BoxError> {
        let seconds = self.started.elapsed().as_secs_f64();
        self.rss.sample()?;
        std::hint::black_box((self.sum, self.text_bytes));
        Ok(Streamed {
            rows: self.rows,
            seconds,
            rss: self.rss,
        })
    }
}

async fn stream_uno_async(
    engine: &Arc<dyn uno_db::nonblocking::Engine>,
    sql: &str,
) -> Result<Streamed, BoxError> {
    let mut conn = engine.connect().await?;
    let mut tally = Tally::start()?;
    let mut rows = conn.query_stream(sql, &[]).await?;
    while let Some(row) = rows.try_next().await? {
        tally.add(row.try_get(0)?, row.try_get(1)?)?;
    }
    tally.finish()
}

async fn stream_tokio_postgres(
    client: &tokio_postgres::Client,
    sql: &str,
) -> Result<Streamed, BoxError> {
    let mut tally = Tally::start()?;
    let params: [&ToSqlSync; 0] = [];
    let rows = client.query_raw(sql, params).await?;
    let mut rows = std::pin::pin!(rows);
    while let Some(row) = std::future::poll_fn(|cx| rows.as_mut().poll_next(cx)).await {
        let row = row?;
        tally.add(row.try_get(0)?, row.try_get(1)?)?;
    }
    tally.finish()
}

fn stream_uno_sync(
    engine: &Arc<dyn uno_db::blocking::Engine>,
    sql: &str,
) -> Result<Streamed, BoxError> {
    let mut conn = engine.connect()?;
    let mut tally = Tally::start()?;
    for row in conn.query_stream(sql, &[])? {
        let row = row?;
        tally.add(row.try_get(0)?, row.try_get(1)?)?;
    }
    tally.finish()
}

fn stream_postgres(client: &mut postgres::Client, sql: &str) -> Result<Streamed, BoxError> {
    let mut tally = Tally::start()?;
    let params: [&ToSqlSync; 0] = [];
    let mut rows = client.query_raw(sql, params)?;
    while let Some(row) = rows.next()? {
        tally.add(row.try_get(0)?, row.try_get(1)?)?;
    }
    tally.finish()
}

/// `COPY` of [`COPY_ROWS`] rows into [`TABLE`], emptied before each.
fn copy(args: &Args, contenders: &mut Contenders) -> Result<(), BoxError> {
    let Contenders {
        runtime,
        uno_async,
        tokio_pg,
        uno_sync,
        postgres,
        ..
    } = contenders;
    let chunks = copy_data();
    let bytes: usize = chunks.iter().map(Bytes::len).sum();
    let mut file = tempfile::Builder::new()
        .prefix("uno-db-bench-copy")
        .suffix(".tsv")
        .tempfile()?;
    for chunk in &chunks {
        file.write_all(chunk)?;
    }
    file.flush()?;
    let psql = Psql::new(&args.url)?;
    let startup = psql.startup()?;
    println!(
        "copy: {COPY_ROWS} rows (id int8, name text; text format, {:.1} MB in {} chunks of ~{} KiB) \
         into an unlogged table, emptied before each; {} interleaved rounds",
        bytes as f64 / 1e6,
        chunks.len(),
        CHUNK / 1024,
        args.rounds
    );
    println!(
        "  psql is timed from process start to exit, from a file written beforehand; \
         its start-up and connect alone (`psql -c 'SELECT 1'`) take {:.1} ms",
        startup.as_secs_f64() * 1e3
    );
    postgres.batch_execute(&format!(
        "DROP TABLE IF EXISTS {TABLE}; CREATE UNLOGGED TABLE {TABLE} (id int8, name text)"
    ))?;
    let statement = format!("COPY {TABLE} (id, name) FROM STDIN");
    let shape = "copy 1M".to_owned();
    let mut report = Report::with_unit("rows/s");
    let mut skipped: Vec<&str> = Vec::new();
    for round in 0..args.rounds {
        for slot in 0..COPIERS.len() {
            let contender = COPIERS[(round + slot) % COPIERS.len()];
            if !args.runs(contender) || skipped.contains(&contender) {
                continue;
            }
            postgres.batch_execute(&format!("TRUNCATE {TABLE}"))?;
            let started = Instant::now();
            let loaded = match contender {
                COPY_ASYNC => runtime.block_on(async {
                    let mut conn = uno_async.connect().await?;
                    let mut sink = conn.copy_in(&statement).await?;
                    for chunk in &chunks {
                        sink.send(chunk.clone()).await?;
                    }
                    sink.finish().await
                }),
                COPY_SYNC => (|| {
                    let mut conn = uno_sync.connect()?;
                    let mut writer = conn.copy_in(&statement)?;
                    for chunk in &chunks {
                        writer.write_all(chunk).map_err(uno_db::Error::from_io)?;
                    }
                    writer.finish()
                })(),
                COPY_TOKIO_PG => {
                    Ok(runtime.block_on(copy_tokio_postgres(tokio_pg, &statement, &chunks))?)
                }
                COPY_POSTGRES => {
                    let mut writer = postgres.copy_in(&statement)?;
                    for chunk in &chunks {
                        writer.write_all(chunk)?;
                    }
                    Ok(writer.finish()?)
                }
                _ => Ok(psql.copy(file.path())?),
            };
            let seconds = started.elapsed().as_secs_f64();
            let loaded = match loaded {
                Ok(loaded) => loaded,
                Err(error) if error.kind() == ErrorKind::Unsupported => {
                    println!("  {shape:<14} {contender:<18} skipped: {error}");
                    skipped.push(contender);
                    continue;
                }
                Err(error) => return Err(error.into()),
            };
            if loaded != COPY_ROWS {
                return Err(format!("{contender} loaded {loaded} rows, not {COPY_ROWS}").into());
            }
            report.record(contender, &shape, COPY_ROWS as f64 / seconds);
        }
    }
    postgres.batch_execute(&format!("DROP TABLE {TABLE}"))?;
    let measured: Vec<&str> = COPIERS
        .into_iter()
        .filter(|contender| !skipped.contains(contender))
        .collect();
    report.print_medians(&shape, &measured);
    let shapes = [shape];
    let pairs = [
        (COPY_ASYNC, PSQL),
        (COPY_SYNC, PSQL),
        (COPY_ASYNC, COPY_TOKIO_PG),
        (COPY_SYNC, COPY_POSTGRES),
    ];
    for (ours, theirs) in pairs {
        if skipped.contains(&ours) {
            println!("ratio {ours}/{theirs} = n/a (copy 1M rows; {ours} does not implement COPY)");
        } else {
            let ratio = report.ratio(ours, theirs, "copy", &shapes);
            println!("ratio {ours}/{theirs} = {ratio:.3} (copy 1M rows)");
        }
    }
    Ok(())
}

/// The driver's own `copy_in`: one `CopyData` per chunk, as uno-db-async's
/// `send`.
async fn copy_tokio_postgres(
    client: &tokio_postgres::Client,
    statement: &str,
    chunks: &[Bytes],
) -> Result<u64, BoxError> {
    let sink = client.copy_in::<_, Bytes>(statement).await?;
    let mut sink = std::pin::pin!(sink);
    for chunk in chunks {
        std::future::poll_fn(|cx| sink.as_mut().poll_ready(cx)).await?;
        sink.as_mut().start_send(chunk.clone())?;
    }
    Ok(sink.finish().await?)
}

/// [`COPY_ROWS`] rows of `COPY` text (`id<TAB>name<LF>`), cut into chunks
/// of about [`CHUNK`] bytes at row ends.
fn copy_data() -> Vec<Bytes> {
    let mut chunks = Vec::new();
    let mut chunk = Vec::with_capacity(CHUNK + 64);
    for id in 1..=COPY_ROWS {
        // Writing into a Vec cannot fail.
        let _ = writeln!(chunk, "{id}\tname {id}");
        if chunk.len() >= CHUNK {
            chunks.push(Bytes::from(std::mem::replace(
                &mut chunk,
                Vec::with_capacity(CHUNK + 64),
            )));
        }
    }
    if !chunk.is_empty() {
        chunks.push(Bytes::from(chunk));
    }
    chunks
}

/// `psql` on the same server.
struct Psql {
    binary: PathBuf,
    url: String,
}

impl Psql {
    fn new(url: &str) -> Result<Self, BoxError> {
        let binary = find_binary("psql")
            .ok_or("psql not found on PATH or under /usr/lib/postgresql/*/bin")?;
        Ok(Self {
            binary,
            url: url.to_owned(),
        })
    }

    /// `psql -X -c COMMAND`, plaintext; returns its standard output.
    fn run(&self, command: &str) -> Result<String, BoxError> {
        let output = Command::new(&self.binary)
            .env("PGSSLMODE", "disable")
            .args([
                "-X",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &self.url,
                "-c",
                command,
            ])
            .output()?;
        if !output.status.success() {
            return Err(format!(
                "psql failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )
            .into());
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The median of three `psql -c 'SELECT 1'`: what starting psql and
    /// connecting cost.
    fn startup(&self) -> Result<Duration, BoxError> {
        let mut times = Vec::new();
        for _ in 0..3 {
            let started = Instant::now();
            self.run("SELECT 1")?;
            times.push(started.elapsed());
        }
        times.sort();
        Ok(times[1])
    }

    /// `\copy TABLE FROM 'file'`; returns the rows loaded.
    fn copy(&self, file: &Path) -> Result<u64, BoxError> {
        let path = file.to_str().ok_or("temporary file path is not UTF-8")?;
        let stdout = self.run(&format!("\\copy {TABLE} (id, name) FROM '{path}'"))?;
        stdout
            .lines()
            .find_map(|line| line.strip_prefix("COPY "))
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| format!("no `COPY n` line in psql's output: {stdout}").into())
    }
}
