//! Where a command's configuration comes from: a URL argument layered over
//! the environment, or the environment alone.

use serde::Serialize;
use uno_db::{ConfigViolation, ConnectionConfig, EnvSource, ProcessEnv};

use crate::mask::mask_password;

/// The process environment with `DATABASE_URL` replaced by the URL given on
/// the command line: the URL's fields win, `UNO_DB_*` and `PG*` fill in the
/// rest (as libpq does for psql).
struct UrlOverEnv<'a> {
    url: &'a str,
}

impl EnvSource for UrlOverEnv<'_> {
    fn var(&self, name: &str) -> Option<String> {
        if name == "DATABASE_URL" {
            Some(self.url.to_owned())
        } else {
            ProcessEnv.var(name)
        }
    }
}

/// One broken rule, as reported.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Violation {
    /// The field, URL parameter or environment variable at fault.
    pub(crate) field: String,
    /// The offending value (secrets shown as `***`).
    pub(crate) value: String,
    /// The rule it broke.
    pub(crate) rule: String,
}

impl From<&ConfigViolation> for Violation {
    fn from(violation: &ConfigViolation) -> Self {
        Self {
            field: violation.field().to_owned(),
            value: violation.value().to_owned(),
            rule: violation.rule().to_owned(),
        }
    }
}

/// A configuration that did not build: what was given (password masked)
/// and every violation, or a message for any other error.
#[derive(Debug)]
pub(crate) struct Rejected {
    /// What was given: the URL argument or `DATABASE_URL` masked, or
    /// `(environment)`.
    pub(crate) given: String,
    /// Every broken rule (empty when the error was not a list of them).
    pub(crate) violations: Vec<Violation>,
    /// The error with its cause chain.
    pub(crate) message: String,
}

/// Where the configuration came from, for the report.
pub(crate) fn describe_source(url: Option<&str>) -> &'static str {
    if url.is_some() {
        "argument"
    } else {
        "environment"
    }
}

/// The configuration `url` (over the environment) or the environment
/// describes, validated.
///
/// # Errors
///
/// Every violation at once; those of the URL argument alone are named by
/// their URL parameter, not as `DATABASE_URL`.
pub(crate) fn resolve(url: Option<&str>) -> Result<ConnectionConfig, Box<Rejected>> {
    let reject = |given: String, error: &uno_db::Error| {
        Box::new(Rejected {
            given,
            violations: error
                .config_violations()
                .iter()
                .map(Violation::from)
                .collect(),
            message: uno_db::error_chain(error),
        })
    };
    match url {
        Some(url) => {
            let given = mask_password(url);
            if let Err(error) = url.parse::<ConnectionConfig>() {
                return Err(reject(given, &error));
            }
            ConnectionConfig::from_env_with(&UrlOverEnv { url }).map_err(|e| reject(given, &e))
        }
        None => ConnectionConfig::from_env().map_err(|error| {
            let given = ProcessEnv
                .var("DATABASE_URL")
                .filter(|url| !url.trim().is_empty())
                .map_or_else(|| "(environment)".to_owned(), |url| mask_password(&url));
            reject(given, &error)
        }),
    }
}
