//! Durations in text: humantime (`30s`, `1500ms`, `1h 30min`), plain
//! integers as seconds, `none`/`off` for optional ones.

use std::time::Duration;

const RULE: &str = "must be a duration such as `30s`, `1500ms` or `1h 30min`, or whole seconds";

/// Parses a required duration.
pub(crate) fn parse(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return value
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| RULE.to_owned());
    }
    humantime::parse_duration(value).map_err(|_| RULE.to_owned())
}

/// Parses an optional duration: `none` or `off` (any case) is `None`.
pub(crate) fn parse_optional(value: &str) -> Result<Option<Duration>, String> {
    let trimmed = value.trim();
    if trimmed.eq_ignore_ascii_case("none") || trimmed.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    parse(trimmed)
        .map(Some)
        .map_err(|rule| format!("{rule}, or `off`"))
}

/// Formats a duration exactly, in the largest unit that divides it:
/// `30s`, `10min`, `1h`, `1500ms`, `250us`, `7ns`. [`parse`] reads it back.
pub(crate) fn format(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() == 0 {
        if secs == 0 {
            "0s".to_owned()
        } else if secs.is_multiple_of(3600) {
            format!("{}h", secs / 3600)
        } else if secs.is_multiple_of(60) {
            format!("{}min", secs / 60)
        } else {
            format!("{secs}s")
        }
    } else {
        let nanos = d.as_nanos();
        if nanos.is_multiple_of(1_000_000) {
            format!("{}ms", nanos / 1_000_000)
        } else if nanos.is_multiple_of(1_000) {
            format!("{}us", nanos / 1_000)
        } else {
            format!("{nanos}ns")
        }
    }
}

/// Formats an optional duration, `None` as `off`.
pub(crate) fn format_optional(d: Option<Duration>) -> String {
    d.map_or_else(|| "off".to_owned(), format)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_humantime_and_seconds() {
        assert_eq!(parse("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse("1500ms").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse("1h 30min").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse(" 7 ").unwrap(), Duration::from_secs(7));
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "abc",
            "-1",
            "1.5.5s",
            "99999999999999999999",
            "10 parsecs",
            "off",
        ] {
            assert!(
                parse(bad).unwrap_err().contains("must be a duration"),
                "{bad}"
            );
        }
    }

    #[test]
    fn optional_accepts_none_and_off() {
        assert_eq!(parse_optional("none").unwrap(), None);
        assert_eq!(parse_optional("OFF").unwrap(), None);
        assert_eq!(parse_optional("5s").unwrap(), Some(Duration::from_secs(5)));
        assert!(parse_optional("nope").unwrap_err().ends_with("or `off`"));
    }

    #[test]
    fn formats_in_the_largest_exact_unit() {
        assert_eq!(format(Duration::ZERO), "0s");
        assert_eq!(format(Duration::from_secs(30)), "30s");
        assert_eq!(format(Duration::from_secs(600)), "10min");
        assert_eq!(format(Duration::from_secs(7200)), "2h");
        assert_eq!(format(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format(Duration::from_micros(250)), "250us");
        assert_eq!(format(Duration::from_nanos(7)), "7ns");
        assert_eq!(format_optional(None), "off");
    }

    proptest! {
        #[test]
        fn format_round_trips(nanos in 0u64..=(8 * 24 * 3600 * 1_000_000_000)) {
            let d = Duration::from_nanos(nanos);
            prop_assert_eq!(parse(&format(d)).unwrap(), d);
        }

        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = parse(&s);
            let _ = parse_optional(&s);
        }
    }
}
