//! One process-wide `tracing` subscriber that keeps every `uno_db` event
//! (`DEBUG` and above) as a line of text, for tests that check what was
//! logged. Global because events come from background threads and tasks
//! too (a per-thread subscriber would miss them, and races with tracing's
//! callsite interest cache when tests run in parallel).
//!
//! A line reads `LEVEL target: message field=value ...`, string fields
//! quoted (`database="uno_test_1"`), so a test picks out its own events by
//! a field only it has.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// The lines captured so far.
#[derive(Debug, Default)]
pub struct LogCapture {
    lines: Mutex<Vec<String>>,
    next_span: AtomicU64,
}

impl LogCapture {
    /// The process's capture, installed as the global subscriber on first
    /// use.
    ///
    /// # Panics
    ///
    /// When another global subscriber was installed first.
    #[allow(clippy::expect_used)] // A test helper: failing means panicking.
    pub fn global() -> &'static Self {
        static CAPTURE: OnceLock<&'static LogCapture> = OnceLock::new();
        CAPTURE.get_or_init(|| {
            let capture: &'static Self = Box::leak(Box::default());
            tracing::subscriber::set_global_default(Handle(capture))
                .expect("no other global tracing subscriber");
            capture
        })
    }

    /// The captured lines that contain `marker`.
    #[must_use]
    pub fn lines_with(&self, marker: &str) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|line| line.contains(marker))
            .cloned()
            .collect()
    }
}

struct Handle(&'static LogCapture);

struct Line(String);

impl Visit for Line {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, " {value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl Subscriber for Handle {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with("uno_db") && *metadata.level() <= Level::DEBUG
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(self.0.next_span.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let metadata = event.metadata();
        let mut line = Line(format!("{} {}:", metadata.level(), metadata.target()));
        event.record(&mut line);
        self.0
            .lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line.0);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}
