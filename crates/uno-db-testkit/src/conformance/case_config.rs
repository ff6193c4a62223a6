//! The configuration every conformance case starts from.

use std::time::Duration;

use uno_db_core::{ConnectionConfig, Error, RetryPolicy};

/// A configuration for the database at `url`, with small pools and short
/// timeouts so that failing cases fail fast.
///
/// # Errors
///
/// The URL does not parse.
pub fn case_config(url: &str) -> Result<ConnectionConfig, Error> {
    url.parse::<ConnectionConfig>()?
        .to_builder()
        .pool_size(2)
        .max_overflow(2)
        .pool_timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(5))
        .retry(
            RetryPolicy::default()
                .max_attempts(3)
                .initial_delay(Duration::from_millis(20))
                .max_delay(Duration::from_millis(100))
                .deadline(Duration::from_secs(3)),
        )
        .build()
}
