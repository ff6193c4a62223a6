//! Finding the PgBouncer program.

use std::path::{Path, PathBuf};

use crate::TestkitError;

/// Where distributions put PgBouncer when it is not on `PATH` (Debian puts it in
/// `/usr/sbin`, which a non-root `PATH` usually lacks).
const FALLBACK_DIRS: [&str; 4] = [
    "/usr/sbin",
    "/usr/local/sbin",
    "/usr/local/bin",
    "/opt/homebrew/bin",
];

/// The `pgbouncer` executable: the first on `PATH`, else in one of the usual directories.
pub(crate) fn pgbouncer_binary() -> Result<PathBuf, TestkitError> {
    let path_dirs = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    path_dirs
        .into_iter()
        .chain(FALLBACK_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join("pgbouncer"))
        .find(|candidate| is_executable(candidate))
        .ok_or(TestkitError::PgBouncerNotFound)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}
