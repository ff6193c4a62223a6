//! One broken configuration rule.

use std::fmt;

/// One rule a [`ConnectionConfig`](crate::ConnectionConfig) broke: which
/// field, the offending value (passwords are never shown) and the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigViolation {
    field: String,
    value: String,
    rule: String,
}

impl ConfigViolation {
    /// A violation of `rule` by `value` in `field`. Pass a redacted value
    /// for secrets.
    #[must_use]
    pub fn new(
        field: impl Into<String>,
        value: impl Into<String>,
        rule: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            value: value.into(),
            rule: rule.into(),
        }
    }

    /// The field (or environment variable, or URL parameter) at fault.
    #[must_use]
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The offending value, as given (secrets redacted).
    #[must_use]
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The rule the value broke.
    #[must_use]
    pub fn rule(&self) -> &str {
        &self.rule
    }
}

impl fmt::Display for ConfigViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {:?}: {}", self.field, self.value, self.rule)
    }
}
