//! Parses either a URL or a libpq `key=value` string into a layer.

use crate::config::table::Fields;
use crate::config::{libpq, url};
use crate::config_violation::ConfigViolation;

/// Parses `s` as a URL if it starts with `scheme://`, else as libpq
/// `key=value` pairs. Returns the fields set and every malformed part.
pub(crate) fn parse(s: &str) -> (Fields, Vec<ConfigViolation>) {
    let s = s.trim();
    if looks_like_url(s) {
        url::parse(s)
    } else {
        libpq::parse(s)
    }
}

fn looks_like_url(s: &str) -> bool {
    s.split_once("://").is_some_and(|(scheme, _)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn tells_urls_from_key_value_strings() {
        assert!(looks_like_url("postgresql://x"));
        assert!(looks_like_url("mysql://x"));
        assert!(!looks_like_url("host=x password=a://b"));
        assert!(!looks_like_url("://x"));
        assert!(!looks_like_url("host=localhost"));
        assert!(!looks_like_url(""));
    }

    #[test]
    fn surrounding_whitespace_is_ignored() {
        let (fields, errors) = parse("  postgresql://h/db \n");
        assert!(errors.is_empty());
        assert_eq!(fields.database.unwrap(), "db");
        let (fields, errors) = parse("  dbname=db \n");
        assert!(errors.is_empty());
        assert_eq!(fields.database.unwrap(), "db");
    }
}
