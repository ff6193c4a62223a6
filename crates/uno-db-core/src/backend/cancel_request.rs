//! What a cancel request sent through a connection's cancel handle
//! reports, the same in both backends.

use std::time::Duration;

use crate::error::{BoxError, Error, ErrorKind};

/// The cancel request could not be delivered: connecting to the server
/// (or its TLS handshake) failed. A [`Connect`](ErrorKind::Connect) error
/// caused by `source`.
#[must_use]
pub fn cancel_request_failed(source: impl Into<BoxError>) -> Error {
    Error::with_message(
        ErrorKind::Connect,
        "the cancel request could not be sent to the server",
    )
    .with_source(source)
}

/// The cancel request was not delivered within `bound` (the engine's
/// `connect_timeout`). A [`Connect`](ErrorKind::Connect) error caused by
/// an `io::Error` of kind `TimedOut`.
#[must_use]
pub fn cancel_request_timed_out(bound: Duration) -> Error {
    Error::with_message(
        ErrorKind::Connect,
        format!(
            "the cancel request was not delivered within {}ms",
            bound.as_millis()
        ),
    )
    .with_source(std::io::Error::from(std::io::ErrorKind::TimedOut))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_errors_say_what_failed() {
        let error = cancel_request_timed_out(Duration::from_millis(1500));
        assert_eq!(error.kind(), ErrorKind::Connect);
        assert!(error.to_string().contains("1500ms"), "{error}");
        let error =
            cancel_request_failed(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(error.kind(), ErrorKind::Connect);
        assert!(std::error::Error::source(&error).is_some());
    }
}
