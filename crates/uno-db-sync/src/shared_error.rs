//! Copying a recorded error for other callers.

use std::error::Error as StdError;

use uno_db_core::Error;
use uno_db_core::events::error_chain;

/// A copy of `error` for another caller: same kind, message and SQLSTATE
/// (so the same classification), with the cause chain as text. [`Error`]
/// is not `Clone` because its driver cause is not; the caller whose attempt
/// failed gets the original.
pub(crate) fn shallow_copy(error: &Error) -> Error {
    let mut copy = Error::with_message(error.kind(), error.to_string());
    if let Some(code) = error.sqlstate() {
        copy = copy.with_sqlstate(code.clone());
    }
    if let Some(cause) = StdError::source(error) {
        copy = copy.with_source(error_chain(cause));
    }
    copy
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io;

    use uno_db_core::{ErrorKind, SqlState};

    use super::*;

    #[test]
    fn keeps_kind_message_sqlstate_and_cause_text() {
        let original = Error::with_message(ErrorKind::Connect, "could not connect to x")
            .with_sqlstate(SqlState::CANNOT_CONNECT_NOW)
            .with_source(io::Error::new(io::ErrorKind::ConnectionRefused, "refused"));
        let copy = shallow_copy(&original);
        assert_eq!(copy.kind(), ErrorKind::Connect);
        assert_eq!(copy.to_string(), "could not connect to x");
        assert_eq!(copy.sqlstate(), Some(&SqlState::CANNOT_CONNECT_NOW));
        assert_eq!(StdError::source(&copy).unwrap().to_string(), "refused");
        assert_eq!(copy.is_transient(), original.is_transient());
    }
}
