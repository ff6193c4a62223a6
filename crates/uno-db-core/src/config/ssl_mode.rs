//! Whether to use TLS, with libpq's names.

use std::fmt;
use std::str::FromStr;

use crate::config_violation::ConfigViolation;
use crate::error::Error;

/// Whether to use TLS, named as libpq's `sslmode`.
///
/// Certificate verification (`verify-ca`, `verify-full`) is not offered
/// here; it belongs to the TLS connector a backend is given.
///
/// ```
/// use uno_db_core::SslMode;
///
/// assert_eq!("require".parse::<SslMode>()?, SslMode::Require);
/// assert_eq!(SslMode::Prefer.to_string(), "prefer");
/// assert!("verify-full".parse::<SslMode>().is_err());
/// # Ok::<(), uno_db_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SslMode {
    /// Never use TLS.
    Disable,
    /// Use TLS if the server offers it, plaintext otherwise.
    #[default]
    Prefer,
    /// Use TLS; fail if the server does not offer it.
    Require,
}

impl SslMode {
    /// libpq's name of this mode.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
        }
    }

    /// Parses a libpq name, reporting a failure as the rule it broke.
    pub(crate) fn parse_name(name: &str) -> Result<Self, String> {
        match name.to_ascii_lowercase().as_str() {
            "disable" => Ok(Self::Disable),
            "prefer" => Ok(Self::Prefer),
            "require" => Ok(Self::Require),
            "allow" | "verify-ca" | "verify-full" => Err(format!(
                "sslmode `{name}` is not supported; expected disable, prefer or require"
            )),
            _ => Err("must be one of disable, prefer or require".to_owned()),
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SslMode {
    type Err = Error;

    /// Parses `disable`, `prefer` or `require` (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_name(s)
            .map_err(|rule| Error::config(vec![ConfigViolation::new("sslmode", s, rule)]))
    }
}

impl From<SslMode> for tokio_postgres::config::SslMode {
    fn from(mode: SslMode) -> Self {
        match mode {
            SslMode::Disable => Self::Disable,
            SslMode::Prefer => Self::Prefer,
            SslMode::Require => Self::Require,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays_libpq_names() {
        for mode in [SslMode::Disable, SslMode::Prefer, SslMode::Require] {
            assert_eq!(mode.to_string().parse::<SslMode>().unwrap(), mode);
        }
        assert_eq!("REQUIRE".parse::<SslMode>().unwrap(), SslMode::Require);
    }

    #[test]
    fn unsupported_and_unknown_modes_are_errors() {
        let error = "verify-full".parse::<SslMode>().unwrap_err();
        assert!(
            error.config_violations()[0]
                .rule()
                .contains("not supported")
        );
        let error = "maybe".parse::<SslMode>().unwrap_err();
        assert_eq!(error.config_violations()[0].field(), "sslmode");
        assert_eq!(error.config_violations()[0].value(), "maybe");
    }

    #[test]
    fn converts_to_the_driver_mode() {
        assert!(matches!(
            tokio_postgres::config::SslMode::from(SslMode::Require),
            tokio_postgres::config::SslMode::Require
        ));
    }
}
