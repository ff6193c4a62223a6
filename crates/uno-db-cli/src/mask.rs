//! Masking the password of a connection string the library could not
//! parse, so that even a rejected input is never echoed with its secret.

/// `input` with every password shown as `***`: the one in a URL's
/// authority (`scheme://role:secret@host`), and any `password=` parameter
/// (URL query or libpq `key=value`, quoted or not).
pub(crate) fn mask_password(input: &str) -> String {
    let masked = mask_authority(input);
    mask_parameters(&masked)
}

fn mask_authority(input: &str) -> String {
    let Some(scheme_end) = input.find("://") else {
        return input.to_owned();
    };
    let rest_start = scheme_end + 3;
    let rest = &input[rest_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return input.to_owned();
    };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else {
        return input.to_owned();
    };
    format!(
        "{}{}:***{}",
        &input[..rest_start],
        &userinfo[..colon],
        &input[rest_start + at..]
    )
}

fn mask_parameters(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(found) = find_key(rest) {
        let (before, after_key) = rest.split_at(found.value_start);
        out.push_str(before);
        out.push_str("***");
        rest = skip_value(after_key, found.in_query);
    }
    out.push_str(rest);
    out
}

struct Found {
    value_start: usize,
    in_query: bool,
}

/// The next `password=` (possibly with spaces around `=`) that starts a
/// parameter: at the start, after whitespace, `?` or `&`.
fn find_key(input: &str) -> Option<Found> {
    let lower = input.to_ascii_lowercase();
    let mut from = 0;
    while let Some(offset) = lower[from..].find("password") {
        let start = from + offset;
        let previous = lower[..start].chars().next_back();
        let starts_parameter = match previous {
            None => true,
            Some(c) => c.is_whitespace() || c == '?' || c == '&',
        };
        let after = &input[start + "password".len()..];
        let trimmed = after.trim_start();
        if starts_parameter && let Some(value) = trimmed.strip_prefix('=') {
            let value = value.trim_start();
            let value_start = input.len() - value.len();
            return Some(Found {
                value_start,
                in_query: matches!(previous, Some('?' | '&')),
            });
        }
        from = start + "password".len();
    }
    None
}

/// What follows a parameter's value: a quoted libpq value ends at its
/// closing quote, a URL query value at `&` or `#`, a libpq value at
/// whitespace.
fn skip_value(value: &str, in_query: bool) -> &str {
    if in_query {
        let end = value.find(['&', '#']).unwrap_or(value.len());
        return &value[end..];
    }
    if let Some(quoted) = value.strip_prefix('\'') {
        let mut escaped = false;
        for (i, c) in quoted.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '\'' if !escaped => return &quoted[i + 1..],
                _ => escaped = false,
            }
        }
        return "";
    }
    let end = value.find(char::is_whitespace).unwrap_or(value.len());
    &value[end..]
}

#[cfg(test)]
mod tests {
    use super::mask_password;

    #[test]
    fn masks_every_form_of_password() {
        let cases = [
            (
                "postgresql://app:s3cret@db:5432/x?pool_size=0",
                "postgresql://app:***@db:5432/x?pool_size=0",
            ),
            ("postgres://app@db/x", "postgres://app@db/x"),
            (
                "postgres://db/x?user=a&password=s3cret&sslmode=nope",
                "postgres://db/x?user=a&password=***&sslmode=nope",
            ),
            (
                "host=db password='s3 cret' port=x",
                "host=db password=*** port=x",
            ),
            ("host=db password = s3cret", "host=db password = ***"),
            ("host=db passwordx=1", "host=db passwordx=1"),
            ("postgres://a:p@ss@db/x", "postgres://a:***@db/x"),
        ];
        for (input, expected) in cases {
            assert_eq!(mask_password(input), expected, "{input}");
        }
    }
}
