//! Looking for one of our errors in a cause chain.

use uno_db_core::{Error, ErrorKind};

/// The message of the first uno-db error of `kind` in `error`'s chain,
/// `error` included.
pub(super) fn find_kind(error: &Error, kind: ErrorKind) -> Option<String> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(ours) = e.downcast_ref::<Error>().filter(|ours| ours.kind() == kind) {
            return Some(ours.to_string());
        }
        current = e.source();
    }
    None
}

/// Whether `error`'s chain holds the operating system's "connection
/// refused", as the driver reported it (not just its text).
pub(super) fn refused_in_chain(error: &Error) -> bool {
    io_error_in_chain(error, std::io::ErrorKind::ConnectionRefused)
}

/// Whether `error`'s chain holds an I/O error of `kind` (a typed cause,
/// not text): for tests that check why a checkout or statement failed.
#[must_use]
pub fn io_error_in_chain(error: &Error, kind: std::io::ErrorKind) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == kind)
        {
            return true;
        }
        current = e.source();
    }
    false
}
