//! What the pool-operation cases of both families share.

use std::time::Duration;

use uno_db_core::{ConnectionConfig, Error};

use crate::LogCapture;

/// The `leak_detection_threshold` of the leak cases.
pub(super) const LEAK_THRESHOLD: Duration = Duration::from_millis(100);

/// How long a leak case holds its connection: well past the threshold and
/// several of the kernel's scan periods.
pub(super) const LEAK_HOLD: Duration = Duration::from_millis(600);

/// The message of the leak warning and of the return that follows it.
pub(super) const LEAK_WARNING: &str = "held past leak_detection_threshold";
pub(super) const LEAK_RETURNED: &str = "reported as a possible leak was returned";

/// How long a refill, a drain or a server state is waited for.
pub(super) const OPS_WAIT: Duration = Duration::from_secs(5);

/// The `pool_timeout` of cases that expect a checkout to fail fast.
pub(super) const SHORT_POOL_TIMEOUT: Duration = Duration::from_millis(500);

/// The captured log lines of the engine on `config`'s database that
/// contain `text`.
pub(super) fn logged(config: &ConnectionConfig, text: &str) -> Vec<String> {
    LogCapture::global()
        .lines_with(&format!("database={:?}", config.database()))
        .into_iter()
        .filter(|line| line.contains(text))
        .collect()
}

/// `config` with its own `application_name`, for counting its backends.
pub(super) fn named(config: &ConnectionConfig, name: &str) -> Result<ConnectionConfig, Error> {
    config.to_builder().application_name(name).build()
}
