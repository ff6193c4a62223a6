//! Which backend a configuration is meant for, named by URL scheme.

use std::fmt;
use std::str::FromStr;

use crate::config_violation::ConfigViolation;
use crate::error::Error;

/// The driver a configuration asks for, written as the URL scheme.
///
/// ```
/// use uno_db_core::Driver;
///
/// let driver: Driver = "postgresql+tokio-postgres".parse()?;
/// assert_eq!(driver, Driver::TokioPostgres);
/// assert_eq!(Driver::Postgres.to_string(), "postgresql+postgres");
/// assert!("postgresql+mysql".parse::<Driver>().is_err());
/// # Ok::<(), uno_db_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Driver {
    /// Either backend (scheme `postgresql://` or `postgres://`).
    #[default]
    Any,
    /// The blocking backend, `postgres` + `r2d2` (scheme
    /// `postgresql+postgres://`).
    Postgres,
    /// The async backend, `tokio-postgres` + `deadpool` (scheme
    /// `postgresql+tokio-postgres://`).
    TokioPostgres,
}

impl Driver {
    /// The URL scheme naming this driver.
    #[must_use]
    pub fn scheme(self) -> &'static str {
        match self {
            Self::Any => "postgresql",
            Self::Postgres => "postgresql+postgres",
            Self::TokioPostgres => "postgresql+tokio-postgres",
        }
    }

    /// Parses a scheme, reporting a failure as the rule it broke.
    pub(crate) fn parse_scheme(scheme: &str) -> Result<Self, String> {
        let lower = scheme.to_ascii_lowercase();
        let (base, driver) = match lower.split_once('+') {
            Some((base, driver)) => (base, Some(driver)),
            None => (lower.as_str(), None),
        };
        if base != "postgresql" && base != "postgres" {
            return Err(format!(
                "unsupported scheme `{base}`; expected postgresql or postgres, \
                 optionally with +postgres or +tokio-postgres"
            ));
        }
        match driver {
            None => Ok(Self::Any),
            Some("postgres") => Ok(Self::Postgres),
            Some("tokio-postgres") => Ok(Self::TokioPostgres),
            Some(other) => Err(format!(
                "unknown driver `{other}`; expected postgres or tokio-postgres"
            )),
        }
    }
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scheme())
    }
}

impl FromStr for Driver {
    type Err = Error;

    /// Parses a scheme name: `postgresql`, `postgres`,
    /// `postgresql+postgres` or `postgresql+tokio-postgres` (case-insensitive;
    /// `postgres+...` is accepted too).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_scheme(s)
            .map_err(|rule| Error::config(vec![ConfigViolation::new("driver", s, rule)]))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn parses_every_scheme() {
        for (text, driver) in [
            ("postgresql", Driver::Any),
            ("postgres", Driver::Any),
            ("POSTGRESQL", Driver::Any),
            ("postgresql+postgres", Driver::Postgres),
            ("postgres+postgres", Driver::Postgres),
            ("postgresql+tokio-postgres", Driver::TokioPostgres),
            ("postgres+tokio-postgres", Driver::TokioPostgres),
        ] {
            assert_eq!(text.parse::<Driver>().unwrap(), driver, "{text}");
        }
    }

    #[test]
    fn display_round_trips() {
        for driver in [Driver::Any, Driver::Postgres, Driver::TokioPostgres] {
            assert_eq!(driver.to_string().parse::<Driver>().unwrap(), driver);
        }
    }

    #[test]
    fn unknown_driver_is_a_config_error_naming_it() {
        let error = "postgresql+diesel".parse::<Driver>().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config);
        let violation = &error.config_violations()[0];
        assert_eq!(violation.field(), "driver");
        assert!(violation.rule().contains("unknown driver `diesel`"));
    }

    #[test]
    fn unknown_scheme_is_an_error() {
        let error = "mysql".parse::<Driver>().unwrap_err();
        assert!(
            error.config_violations()[0]
                .rule()
                .contains("unsupported scheme")
        );
        assert!("".parse::<Driver>().is_err());
        assert!("tokio-postgres".parse::<Driver>().is_err());
    }
}
