//! Finding the Postgres server programs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::TestkitError;
use crate::server_owner::ServerOwner;

/// The environment variable that names the directory holding `initdb`, `pg_ctl` and `postgres`.
pub const PG_BIN_ENV: &str = "UNO_DB_TEST_PG_BIN";

/// The programs a throwaway cluster needs.
const PROGRAMS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

/// A directory holding the Postgres server programs, and their version.
#[derive(Debug)]
pub(crate) struct PgBinaries {
    pub(crate) bin_dir: PathBuf,
    /// The version `postgres --version` reports, e.g. `15.4`.
    pub(crate) version: String,
}

static FOUND: OnceLock<PgBinaries> = OnceLock::new();

impl PgBinaries {
    /// The server programs to use, found once per process.
    ///
    /// Looks in `UNO_DB_TEST_PG_BIN`, then on `PATH`, then under
    /// `/usr/lib/postgresql/<version>/bin` (Debian, Ubuntu; highest version first),
    /// `/usr/pgsql-<version>/bin` (RHEL) and `/usr/local/pgsql/bin` (source builds).
    pub(crate) fn locate() -> Result<&'static PgBinaries, TestkitError> {
        if let Some(found) = FOUND.get() {
            return Ok(found);
        }
        let found = candidate_dirs()
            .into_iter()
            .filter(|dir| has_programs(dir))
            .map(resolve_links)
            .find_map(|bin_dir| {
                let version = server_version(&bin_dir)?;
                Some(PgBinaries { bin_dir, version })
            })
            .ok_or(TestkitError::BinariesNotFound)?;
        tracing::debug!(bin_dir = %found.bin_dir.display(), version = %found.version, "found PostgreSQL");
        Ok(FOUND.get_or_init(|| found))
    }

    /// A command running `program` as `owner` in `work_dir`, in the C locale and without the
    /// libpq environment (`PGDATA`, `PGPORT`, ...) of the test process.
    pub(crate) fn command(&self, program: &str, owner: ServerOwner, work_dir: &Path) -> Command {
        let mut command = Command::new(self.bin_dir.join(program));
        command.current_dir(work_dir).env("LC_ALL", "C");
        for (name, _) in std::env::vars_os() {
            if name.to_str().is_some_and(|name| name.starts_with("PG")) {
                command.env_remove(name);
            }
        }
        owner.apply(&mut command);
        command
    }
}

fn has_programs(dir: &Path) -> bool {
    PROGRAMS.iter().all(|program| dir.join(program).is_file())
}

/// The directory the programs really are in, when `dir` holds symbolic links to them (as
/// `/usr/local/bin` may), so that the initdb cache is keyed by the real installation.
fn resolve_links(dir: PathBuf) -> PathBuf {
    match std::fs::canonicalize(dir.join("postgres")) {
        Ok(real) => match real.parent() {
            Some(parent) if has_programs(parent) => parent.to_path_buf(),
            _ => dir,
        },
        Err(_) => dir,
    }
}

fn candidate_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os(PG_BIN_ENV) {
        dirs.push(PathBuf::from(dir));
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.extend(versioned_dirs(Path::new("/usr/lib/postgresql"), "", "bin"));
    dirs.extend(versioned_dirs(Path::new("/usr"), "pgsql-", "bin"));
    dirs.push(PathBuf::from("/usr/local/pgsql/bin"));
    dirs
}

/// `parent/<prefix><version>/<leaf>` for every version present, highest version first.
fn versioned_dirs(parent: &Path, prefix: &str, leaf: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut versions: Vec<(Vec<u32>, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let version = parse_version(name.strip_prefix(prefix)?)?;
            Some((version, entry.path().join(leaf)))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    versions.into_iter().map(|(_, dir)| dir).collect()
}

/// `"15"` → `[15]`, `"9.6"` → `[9, 6]`; anything else is not a version.
fn parse_version(text: &str) -> Option<Vec<u32>> {
    text.split('.').map(|part| part.parse().ok()).collect()
}

/// The version `postgres --version` prints (`postgres (Postgres) 15.4 (Debian ...)` → `15.4`).
fn server_version(bin_dir: &Path) -> Option<String> {
    let output = Command::new(bin_dir.join("postgres"))
        .arg("--version")
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .find(|word| word.starts_with(|c: char| c.is_ascii_digit()))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn versioned_dirs_come_highest_version_first() {
        let parent = tempfile::tempdir().unwrap();
        for name in ["9.6", "15", "main", "10"] {
            std::fs::create_dir(parent.path().join(name)).unwrap();
        }
        let dirs = versioned_dirs(parent.path(), "", "bin");
        let expected: Vec<PathBuf> = ["15", "10", "9.6"]
            .iter()
            .map(|version| parent.path().join(version).join("bin"))
            .collect();
        assert_eq!(dirs, expected);
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(parse_version("10") > parse_version("9.6"));
        assert_eq!(parse_version("main"), None);
    }
}
