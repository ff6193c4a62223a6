//! libpq's password file (`~/.pgpass`, or the `passfile` setting): which
//! file, whether it may be used, and the password it holds for a
//! connection. Read at each new connection, as libpq does, so an edited
//! file takes effect without restarting anything.
//!
//! Format, one entry per line: `hostname:port:database:username:password`;
//! `*` in any of the first four fields matches anything; `\:` and `\\`
//! escape a colon and a backslash; lines starting with `#` are comments.
//! The first matching line wins. A Unix-socket host matches `localhost`.
//! On Unix the file is ignored, with a warning, unless it is a regular
//! file that neither group nor others can access (mode `0600` or less).

use std::path::{Path, PathBuf};

use secrecy::SecretString;

use super::events::TARGET;

/// Where a connection's password file is: `passfile`, else `~/.pgpass`.
pub(crate) fn location(configured: Option<&str>) -> Option<PathBuf> {
    match configured {
        Some(path) => Some(PathBuf::from(path)),
        None => std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".pgpass")),
    }
}

/// The password `file` holds for `role` on `host:port`/`database`, if the
/// file exists, may be used, and has a matching line.
pub(crate) fn lookup(
    file: &Path,
    host: &str,
    port: u16,
    database: &str,
    role: &str,
) -> Option<SecretString> {
    let metadata = std::fs::metadata(file).ok()?;
    if let Some(problem) = unsafe_to_use(&metadata) {
        tracing::warn!(
            target: TARGET,
            passfile = %file.display(),
            "password file ignored: {problem}"
        );
        return None;
    }
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(error) => {
            tracing::warn!(
                target: TARGET,
                passfile = %file.display(),
                error = %error,
                "password file could not be read"
            );
            return None;
        }
    };
    // libpq: a socket directory (or no host) is matched as `localhost`.
    let host = if host.is_empty() || host.starts_with('/') {
        "localhost"
    } else {
        host
    };
    let port = port.to_string();
    let wanted = [host, port.as_str(), database, role];
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (fields, password) = split(line)?;
            wanted
                .iter()
                .zip(&fields)
                .all(|(want, field)| field.matches(want))
                .then(|| SecretString::from(password))
        })
}

/// Why the file may not be used, if it may not.
fn unsafe_to_use(metadata: &std::fs::Metadata) -> Option<&'static str> {
    if !metadata.is_file() {
        return Some("not a regular file");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        if metadata.permissions().mode() & 0o077 != 0 {
            return Some(
                "group or others can access it; its permissions should be u=rw (0600) or less",
            );
        }
    }
    None
}

/// One of the first four fields of an entry: its unescaped text, or the
/// wildcard (exactly `*`, unescaped).
enum Field {
    Any,
    Text(String),
}

impl Field {
    fn matches(&self, wanted: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Text(text) => text == wanted,
        }
    }
}

/// The four matching fields and the password of an entry, unescaped;
/// `None` for a line with fewer than five fields.
fn split(line: &str) -> Option<([Field; 4], String)> {
    let mut fields = Vec::with_capacity(4);
    let mut current = String::new();
    let mut raw_star = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                raw_star = false;
                current.push(chars.next().unwrap_or('\\'));
            }
            ':' if fields.len() < 4 => {
                let text = std::mem::take(&mut current);
                fields.push(if raw_star && text == "*" {
                    Field::Any
                } else {
                    Field::Text(text)
                });
                raw_star = false;
            }
            // The password ends at the next unescaped colon, as in libpq.
            ':' => return Some((<[Field; 4]>::try_from(fields).ok()?, current)),
            c => {
                raw_star = current.is_empty() && c == '*';
                current.push(c);
            }
        }
    }
    Some((<[Field; 4]>::try_from(fields).ok()?, current))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::io::Write as _;

    use secrecy::ExposeSecret;

    use super::*;

    fn file(contents: &str, mode: u32) -> (PathBuf, impl Drop) {
        struct Remove(PathBuf);
        impl Drop for Remove {
            fn drop(&mut self) {
                drop(std::fs::remove_file(&self.0));
            }
        }
        let path = std::env::temp_dir().join(format!(
            "uno-db-pgpass-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(contents.as_bytes()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let _ = mode;
        (path.clone(), Remove(path))
    }

    fn find(path: &Path, host: &str, port: u16, db: &str, role: &str) -> Option<String> {
        lookup(path, host, port, db, role).map(|p| p.expose_secret().to_owned())
    }

    const FILE: &str = "\
# comment:*:*:*:nope
db1:5432:orders:app:first
db1:*:*:app:second
*:5433:*:*:third\\:with colon:ignored
localhost:5432:*:local:socket\\\\pw
too:few:fields
\\*:5432:*:star:escaped-star
";

    #[test]
    fn the_first_matching_line_wins_with_wildcards_and_escapes() {
        let (path, _guard) = file(FILE, 0o600);
        assert_eq!(
            find(&path, "db1", 5432, "orders", "app").as_deref(),
            Some("first")
        );
        assert_eq!(
            find(&path, "db1", 6000, "other", "app").as_deref(),
            Some("second")
        );
        assert_eq!(
            find(&path, "anything", 5433, "x", "y").as_deref(),
            Some("third:with colon")
        );
        assert_eq!(find(&path, "db2", 5432, "orders", "app"), None);
        assert_eq!(
            find(&path, "/run/postgresql", 5432, "x", "local").as_deref(),
            Some("socket\\pw")
        );
        // `\*` is a literal star, not a wildcard.
        assert_eq!(find(&path, "db9", 5432, "x", "star"), None);
        assert_eq!(
            find(&path, "*", 5432, "x", "star").as_deref(),
            Some("escaped-star")
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_can_read_is_ignored() {
        let (path, _guard) = file("*:*:*:*:secret\n", 0o644);
        assert_eq!(find(&path, "h", 5432, "d", "r"), None);
        let (path, _guard) = file("*:*:*:*:secret\n", 0o600);
        assert_eq!(find(&path, "h", 5432, "d", "r").as_deref(), Some("secret"));
    }

    #[test]
    fn a_missing_file_gives_nothing() {
        assert_eq!(
            find(Path::new("/nonexistent/pgpass"), "h", 5432, "d", "r"),
            None
        );
    }

    #[test]
    fn the_configured_file_comes_before_the_home_default() {
        assert_eq!(
            location(Some("/run/secrets/pgpass")),
            Some(PathBuf::from("/run/secrets/pgpass"))
        );
        if let Some(home) = std::env::var_os("HOME") {
            assert_eq!(location(None), Some(PathBuf::from(home).join(".pgpass")));
        }
    }
}
