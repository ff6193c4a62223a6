//! Quoting SQL identifiers for the statements uno-db writes itself
//! (`SET ROLE`, `SET search_path`, `SAVEPOINT`).

use crate::error::{Error, ErrorKind, Result};

/// Quotes `name` as a SQL identifier (`"name"`, inner quotes doubled).
///
/// ```
/// assert_eq!(uno_db_core::quote_identifier("a\"b").unwrap(), "\"a\"\"b\"");
/// ```
///
/// # Errors
///
/// The name is empty, longer than 63 bytes or contains a NUL byte
/// ([`ErrorKind::Config`]).
pub fn quote_identifier(name: &str) -> Result<String> {
    if name.is_empty() || name.len() > 63 || name.contains('\0') {
        return Err(Error::with_message(
            ErrorKind::Config,
            format!("{name:?} is not a valid identifier: it must be 1 to 63 bytes without NUL"),
        ));
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_rejects() {
        assert_eq!(quote_identifier("sp1").unwrap(), "\"sp1\"");
        assert_eq!(quote_identifier("").unwrap_err().kind(), ErrorKind::Config);
        assert!(quote_identifier("a\0b").is_err());
        assert!(quote_identifier(&"x".repeat(64)).is_err());
    }
}
