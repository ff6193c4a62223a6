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
