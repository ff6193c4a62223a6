//! What observability costs: `SELECT 1` through uno-db-async at 64 tasks on
//! a pool of 16, with a `tracing` subscriber at INFO (the `fmt` layer,
//! writing to a sink) and a `metrics` recorder installed ("instrumented"),
//! against neither ("plain"), in interleaved rounds. Ends with
//! `ratio instrumented/plain = X (select1, 64/16)`.
//!
//! One process-wide subscriber serves both: a reloadable filter is set to
//! INFO for the instrumented rounds and to OFF for the plain ones (which
//! then cost what no subscriber costs: every callsite is disabled). The
//! recorder is the one the instrumented engine was built under (its metric
//! handles are registered then); the plain engine was built with none.
//! The recorder keeps counters and gauges in atomics and histograms in
//! fixed buckets, as a Prometheus exporter does.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::reload;
use tracing_subscriber::util::SubscriberInitExt as _;
use uno_db::nonblocking::EngineFactory as _;
use uno_db::{AsyncEngineFactory, ConnectionConfig};

use crate::args::Args;
use crate::async_contenders::measure;
use crate::report::Report;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const TASKS: usize = 64;
const POOL: usize = 16;
const PLAIN: &str = "plain";
const INSTRUMENTED: &str = "instrumented";

pub(crate) fn run(args: &Args) -> Result<(), BoxError> {
    if !cfg!(feature = "observability") {
        return Err(
            "the observability mode needs uno-db's metrics: run it with \
                    `cargo run --release -p uno-db-bench --features observability -- observability`"
                .into(),
        );
    }
    let (filter, switch) = reload::Layer::new(LevelFilter::OFF);
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink))
        .try_init()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(args, &switch))
}

async fn run_async<S>(
    args: &Args,
    switch: &reload::Handle<LevelFilter, S>,
) -> Result<(), BoxError> {
    println!(
        "SELECT 1, prepared, uno-db-async at {TASKS} tasks on a pool of {POOL}; {} interleaved \
         rounds of {:?}; instrumented = tracing subscriber (fmt to a sink) at INFO + metrics \
         recorder, plain = neither",
        args.rounds, args.round
    );
    let config = args
        .url
        .parse::<ConnectionConfig>()?
        .to_builder()
        .pool_size(POOL)
        .max_overflow(0)
        .pool_timeout(Duration::from_secs(30))
        .build()?;
    let plain = AsyncEngineFactory::new().engine(&config)?;
    let recorder = BucketRecorder;
    let instrumented = metrics::with_local_recorder(&recorder, || {
        AsyncEngineFactory::new().engine(
            &config
                .to_builder()
                .application_name("uno-db-bench-instrumented")
                .build()?,
        )
    })?;
    for engine in [&plain, &instrumented] {
        let mut held = Vec::new();
        for _ in 0..POOL {
            held.push(engine.connect().await?);
        }
    }
    let shape = format!("{TASKS}x{POOL}");
    let mut report = Report::default();
    let contenders = [PLAIN, INSTRUMENTED];
    for round in 0..args.rounds {
        for slot in 0..contenders.len() {
            let contender = contenders[(round + slot) % contenders.len()];
            let (engine, level) = if contender == PLAIN {
                (Arc::clone(&plain), LevelFilter::OFF)
            } else {
                (Arc::clone(&instrumented), LevelFilter::INFO)
            };
            switch.reload(level)?;
            let ops = measure(TASKS, args.round, move || {
                let engine = Arc::clone(&engine);
                async move {
                    let mut conn = engine.connect().await?;
                    conn.query("SELECT 1", &[]).await?;
                    Ok(())
                }
            })
            .await?;
            report.record(contender, &shape, ops);
        }
    }
    switch.reload(LevelFilter::OFF)?;
    report.print_medians(&shape, &contenders);
    let ratio = report.ratio(INSTRUMENTED, PLAIN, "select1", &[shape]);
    println!("ratio {INSTRUMENTED}/{PLAIN} = {ratio:.3} (select1, {TASKS}/{POOL})");
    plain.dispose();
    instrumented.dispose();
    Ok(())
}

/// A recorder as cheap as a Prometheus exporter's: counters and gauges in
/// atomics, histograms in fixed buckets.
struct BucketRecorder;

struct AtomicCounter(AtomicU64);

impl CounterFn for AtomicCounter {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }

    fn absolute(&self, value: u64) {
        self.0.fetch_max(value, Ordering::Relaxed);
    }
}

struct AtomicGauge(AtomicU64);

impl AtomicGauge {
    fn update(&self, change: impl Fn(f64) -> f64) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some(change(f64::from_bits(bits)).to_bits())
            });
    }
}

impl GaugeFn for AtomicGauge {
    fn increment(&self, value: f64) {
        self.update(|v| v + value);
    }

    fn decrement(&self, value: f64) {
        self.update(|v| v - value);
    }

    fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }
}

/// Upper bounds (seconds) of the buckets, as Prometheus' defaults.
const BOUNDS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

struct Buckets {
    counts: [AtomicU64; BOUNDS.len() + 1],
    sum_micros: AtomicU64,
}

impl HistogramFn for Buckets {
    fn record(&self, value: f64) {
        let slot = BOUNDS
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(BOUNDS.len());
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        self.sum_micros
            .fetch_add((value * 1e6) as u64, Ordering::Relaxed);
    }
}

impl Recorder for BucketRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(Arc::new(AtomicCounter(AtomicU64::new(0))))
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(Arc::new(AtomicGauge(AtomicU64::new(0))))
    }

    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(Buckets {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_micros: AtomicU64::new(0),
        }))
    }
}
