//! libpq's `options` string: `-c name=value` settings separated by
//! whitespace, with backslash escaping (as the server splits it).

/// The whitespace the server splits `options` on (C `isspace`).
fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0B' | '\x0C')
}

fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        if c == '\\' || is_separator(c) {
            out.push('\\');
        }
        out.push(c);
    }
}

/// `-c k1=v1 -c k2=v2`, escaped so the server reads back each value.
pub(crate) fn encode(options: &[(String, String)]) -> String {
    let mut out = String::new();
    for (key, value) in options {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str("-c ");
        escape_into(&mut out, key);
        out.push('=');
        escape_into(&mut out, value);
    }
    out
}

fn split(s: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current: Option<String> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if is_separator(c) {
            tokens.extend(current.take());
        } else {
            let c = match (c, chars.clone().next()) {
                ('\\', Some(next)) => {
                    chars.next();
                    next
                }
                _ => c,
            };
            current.get_or_insert_with(String::new).push(c);
        }
    }
    tokens.extend(current);
    tokens
}

/// Parses `-c name=value`, `-cname=value` and `--name=value` settings.
pub(crate) fn decode(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut tokens = split(s).into_iter();
    while let Some(token) = tokens.next() {
        let setting = if token == "-c" {
            tokens
                .next()
                .ok_or_else(|| "`-c` must be followed by name=value".to_owned())?
        } else if let Some(long) = token.strip_prefix("--") {
            match long.split_once('=') {
                Some((name, value)) => format!("{}={value}", name.replace('-', "_")),
                None => long.to_owned(),
            }
        } else if let Some(rest) = token.strip_prefix("-c") {
            rest.to_owned()
        } else {
            return Err(format!(
                "unsupported switch `{token}`; only `-c name=value` settings are supported"
            ));
        };
        match setting.split_once('=') {
            Some((name, value)) => out.push((name.to_owned(), value.to_owned())),
            None => return Err(format!("setting `{setting}` must be name=value")),
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn encodes_with_escapes() {
        let options = pairs(&[("search_path", "a b"), ("x", "c\\d"), ("y", "e=f")]);
        assert_eq!(
            encode(&options),
            "-c search_path=a\\ b -c x=c\\\\d -c y=e=f"
        );
        assert_eq!(decode(&encode(&options)).unwrap(), options);
    }

    #[test]
    fn decodes_every_form() {
        assert_eq!(
            decode("  -c a=1\t-cb=2 --geqo-effort=3 -c empty= ").unwrap(),
            pairs(&[("a", "1"), ("b", "2"), ("geqo_effort", "3"), ("empty", "")])
        );
        assert_eq!(decode("").unwrap(), Vec::new());
        assert_eq!(
            decode("-c q='x y'").unwrap_err(),
            "unsupported switch `y'`; only `-c name=value` settings are supported"
        );
    }

    #[test]
    fn rejects_malformed_options() {
        assert!(decode("-c").unwrap_err().contains("must be followed"));
        assert!(decode("-c novalue").unwrap_err().contains("name=value"));
        assert!(
            decode("-d 2")
                .unwrap_err()
                .contains("unsupported switch `-d`")
        );
        assert!(decode("plain").unwrap_err().contains("unsupported switch"));
    }

    #[test]
    fn trailing_backslash_is_literal() {
        assert_eq!(decode("-c a=b\\").unwrap(), pairs(&[("a", "b\\")]));
    }

    proptest! {
        #[test]
        fn round_trips(options in prop::collection::vec(("[a-z_][a-z0-9_.]{0,8}", "\\PC*|[ \\\\=\"'\t\n]*"), 0..4)) {
            prop_assert_eq!(decode(&encode(&options)).unwrap(), options);
        }

        #[test]
        fn decode_never_panics(s in ".*") {
            let _ = decode(&s);
        }
    }
}
