//! Names no other test uses, to find a test's own server sessions.

use std::sync::atomic::{AtomicUsize, Ordering};

/// An `application_name` unique to this process and call, for counting a
/// test's own backends in `pg_stat_activity`.
pub(super) fn unique_application_name(what: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "uno_{what}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
