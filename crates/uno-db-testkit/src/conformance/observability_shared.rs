//! What the observability cases of both families share: a `tracing`
//! subscriber that keeps every span (name, fields, parent, closed) and
//! event, and readers of a `metrics` debugging snapshot.
// Cases are tests: a poisoned lock or a missing metric panics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

use metrics_util::debugging::{DebugValue, Snapshotter};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One span the capture saw.
#[derive(Debug, Clone)]
pub struct CapturedSpan {
    /// Its id, unique in the capture.
    pub id: u64,
    /// Its name.
    pub name: &'static str,
    /// Its target.
    pub target: &'static str,
    /// Its level.
    pub level: Level,
    /// Its parent span's id.
    pub parent: Option<u64>,
    /// Its fields as recorded (`Debug` of each value; strings bare).
    pub fields: BTreeMap<String, String>,
    /// Whether it was closed (every handle dropped).
    pub closed: bool,
}

impl CapturedSpan {
    /// The field `name`, if recorded.
    #[must_use]
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// One event the capture saw.
#[derive(Debug, Clone)]
pub struct CapturedEvent {
    /// Its target.
    pub target: String,
    /// Its level.
    pub level: Level,
    /// Its message.
    pub message: String,
    /// Its other fields.
    pub fields: BTreeMap<String, String>,
    /// The span it happened in.
    pub parent: Option<u64>,
}

#[derive(Default)]
struct State {
    spans: BTreeMap<u64, (CapturedSpan, usize)>,
    metadata: HashMap<u64, &'static Metadata<'static>>,
    events: Vec<CapturedEvent>,
    stacks: HashMap<ThreadId, Vec<u64>>,
}

/// A `tracing` subscriber keeping every span and event, for
/// `tracing::subscriber::with_default` around a case.
#[derive(Clone, Default)]
pub struct Capture {
    state: Arc<Mutex<State>>,
    next: Arc<AtomicU64>,
}

/// Makes every callsite reach the [`Capture`] installed on this thread,
/// whichever thread reaches it first; call inside `with_default`.
///
/// `tracing` caches each callsite's interest for the whole process, and
/// while a single dispatcher is registered it asks only the registering
/// thread's default: a sibling test's thread (no subscriber) reaching a
/// callsite first cached it as "never", for this capture too (a case once
/// saw no `db.client.connection.acquire` span at all). An inert dispatcher
/// kept for the life of the process means two are always registered, so
/// interest is asked of each of them and re-checked per call; the rebuild
/// re-asks the callsites cached before.
pub(super) fn capture_every_callsite() {
    static ANCHOR: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
    ANCHOR.get_or_init(|| tracing::Dispatch::new(Inert));
    tracing::callsite::rebuild_interest_cache();
}

/// Wants nothing, but asks to be asked again (see
/// [`capture_every_callsite`]).
struct Inert;

impl Subscriber for Inert {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> tracing_core::Interest {
        tracing_core::Interest::sometimes()
    }

    fn enabled(&self, _: &Metadata<'_>) -> bool {
        false
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, _: &Event<'_>) {}

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl Capture {
    /// Every span seen so far, in creation order.
    #[must_use]
    pub fn spans(&self) -> Vec<CapturedSpan> {
        let state = self.state.lock().unwrap();
        state.spans.values().map(|(span, _)| span.clone()).collect()
    }

    /// The spans named `name`.
    #[must_use]
    pub fn spans_named(&self, name: &str) -> Vec<CapturedSpan> {
        self.spans()
            .into_iter()
            .filter(|s| s.name == name)
            .collect()
    }

    /// Every event seen so far.
    #[must_use]
    pub fn events(&self) -> Vec<CapturedEvent> {
        self.state.lock().unwrap().events.clone()
    }

    /// Everything captured, as text (to look for what must not be there).
    #[must_use]
    pub fn all_text(&self) -> String {
        let mut text = String::new();
        for span in self.spans() {
            let _ = writeln!(text, "{} {:?}", span.name, span.fields);
        }
        for event in self.events() {
            let _ = writeln!(text, "{} {:?}", event.message, event.fields);
        }
        text
    }

    fn current(state: &State) -> Option<u64> {
        state
            .stacks
            .get(&std::thread::current().id())
            .and_then(|stack| stack.last().copied())
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn new_span(&self, attributes: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut fields = BTreeMap::new();
        attributes.record(&mut Fields(&mut fields));
        let mut state = self.state.lock().unwrap();
        let parent = if attributes.is_root() {
            None
        } else if let Some(parent) = attributes.parent() {
            Some(parent.into_u64())
        } else {
            Self::current(&state)
        };
        let metadata = attributes.metadata();
        state.metadata.insert(id, metadata);
        state.spans.insert(
            id,
            (
                CapturedSpan {
                    id,
                    name: metadata.name(),
                    target: metadata.target(),
                    level: *metadata.level(),
                    parent,
                    fields,
                    closed: false,
                },
                1,
            ),
        );
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut state = self.state.lock().unwrap();
        if let Some((span, _)) = state.spans.get_mut(&span.into_u64()) {
            values.record(&mut Fields(&mut span.fields));
        }
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn current_span(&self) -> tracing_core::span::Current {
        let state = self.state.lock().unwrap();
        match Self::current(&state).and_then(|id| state.metadata.get(&id).map(|m| (id, *m))) {
            Some((id, metadata)) => tracing_core::span::Current::new(Id::from_u64(id), metadata),
            None => tracing_core::span::Current::none(),
        }
    }

    fn event(&self, event: &Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let message = fields.remove("message").unwrap_or_default();
        let mut state = self.state.lock().unwrap();
        let parent = if event.is_root() {
            None
        } else if let Some(parent) = event.parent() {
            Some(parent.into_u64())
        } else {
            Self::current(&state)
        };
        state.events.push(CapturedEvent {
            target: event.metadata().target().to_owned(),
            level: *event.metadata().level(),
            message,
            fields,
            parent,
        });
    }

    fn enter(&self, span: &Id) {
        let mut state = self.state.lock().unwrap();
        state
            .stacks
            .entry(std::thread::current().id())
            .or_default()
            .push(span.into_u64());
    }

    fn exit(&self, span: &Id) {
        let mut state = self.state.lock().unwrap();
        if let Some(stack) = state.stacks.get_mut(&std::thread::current().id())
            && let Some(at) = stack.iter().rposition(|&id| id == span.into_u64())
        {
            stack.remove(at);
        }
    }

    fn clone_span(&self, span: &Id) -> Id {
        let mut state = self.state.lock().unwrap();
        if let Some((_, refs)) = state.spans.get_mut(&span.into_u64()) {
            *refs += 1;
        }
        span.clone()
    }

    fn try_close(&self, span: Id) -> bool {
        let mut state = self.state.lock().unwrap();
        if let Some((captured, refs)) = state.spans.get_mut(&span.into_u64()) {
            *refs = refs.saturating_sub(1);
            if *refs == 0 {
                captured.closed = true;
                return true;
            }
        }
        false
    }
}

/// One metric of a debugging snapshot: its name, labels and value.
pub type MetricRow = (String, Vec<(String, String)>, DebugValue);

/// The metrics a debugging recorder holds now.
#[must_use]
pub fn metric_rows(snapshotter: &Snapshotter) -> Vec<MetricRow> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            (
                key.name().to_owned(),
                key.labels()
                    .map(|l| (l.key().to_owned(), l.value().to_owned()))
                    .collect(),
                value,
            )
        })
        .collect()
}

/// The value of metric `name` whose labels include every one of `labels`.
#[must_use]
pub fn metric<'a>(
    rows: &'a [MetricRow],
    name: &str,
    labels: &[(&str, &str)],
) -> Option<&'a DebugValue> {
    rows.iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|(_, _, value)| value)
}

/// A gauge's value (panics when absent or not a gauge).
#[must_use]
pub fn gauge(rows: &[MetricRow], name: &str, labels: &[(&str, &str)]) -> f64 {
    match metric(rows, name, labels) {
        Some(DebugValue::Gauge(value)) => value.into_inner(),
        other => panic!("gauge {name} {labels:?}: {other:?} in {rows:?}"),
    }
}

/// How many values a histogram holds (panics when absent).
#[must_use]
pub fn histogram_count(rows: &[MetricRow], name: &str, labels: &[(&str, &str)]) -> usize {
    match metric(rows, name, labels) {
        Some(DebugValue::Histogram(values)) => values.len(),
        other => panic!("histogram {name} {labels:?}: {other:?}"),
    }
}

/// A counter's value (panics when absent).
#[must_use]
pub fn counter(rows: &[MetricRow], name: &str, labels: &[(&str, &str)]) -> u64 {
    match metric(rows, name, labels) {
        Some(DebugValue::Counter(value)) => *value,
        other => panic!("counter {name} {labels:?}: {other:?}"),
    }
}

/// The SQL of the statement cases, with a parameter whose value must
/// never be recorded.
pub(super) const PARAM_SQL: &str = "SELECT $1::text AS echoed";
/// The parameter value no span or event may hold.
pub(super) const SECRET_PARAM: &str = "param-value-never-recorded-7f3a";
/// A statement that fails with 42P01.
pub(super) const MISSING_TABLE: &str = "SELECT * FROM no_such_table_for_observability";

/// Asserts what every statement span holds, on `database`.
pub(super) fn assert_statement_span(
    span: &CapturedSpan,
    operation: &str,
    database: &str,
    host: &str,
) {
    assert_eq!(span.target, "uno_db::span", "{span:?}");
    assert_eq!(span.level, Level::DEBUG, "{span:?}");
    assert_eq!(span.field("db.system.name"), Some("postgresql"), "{span:?}");
    assert_eq!(span.field("db.namespace"), Some(database), "{span:?}");
    assert_eq!(span.field("db.operation.name"), Some(operation), "{span:?}");
    assert_eq!(span.field("otel.name"), Some(operation), "{span:?}");
    assert_eq!(span.field("server.address"), Some(host), "{span:?}");
    assert!(span.field("server.port").is_some(), "{span:?}");
    assert!(span.closed, "the statement's span ends with it: {span:?}");
}

/// The spans named `name` whose parent is `parent`.
pub(super) fn children(capture: &Capture, parent: u64, name: &str) -> Vec<CapturedSpan> {
    capture
        .spans_named(name)
        .into_iter()
        .filter(|s| s.parent == Some(parent))
        .collect()
}
