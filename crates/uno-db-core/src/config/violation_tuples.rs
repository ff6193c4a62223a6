//! Test support: the violations of a config error as comparable tuples.

use crate::error::Error;

/// `(field, value, rule)` of every violation `error` lists.
pub(crate) fn violation_tuples(error: &Error) -> Vec<(String, String, String)> {
    error
        .config_violations()
        .iter()
        .map(|v| {
            (
                v.field().to_owned(),
                v.value().to_owned(),
                v.rule().to_owned(),
            )
        })
        .collect()
}
