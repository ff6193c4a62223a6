//! The freshly initdb'd data directory that every throwaway cluster starts as a copy of.
//!
//! `initdb` is the slow part of starting a cluster, so it runs once per machine (per user,
//! Postgres version and binary directory): the result is kept under
//! `uno-db-testkit-<uid>/` in the scratch directory
//! (`/dev/shm` or `$TMPDIR`, see `scratch_dir`) and each new cluster copies it. A cache entry is built in a
//! private directory and renamed into place, so parallel test processes never see a half-made
//! entry, and a manifest of its files is checked before use, so an entry a tmp cleaner has
//! thinned out is rebuilt rather than copied. If the machine-wide cache cannot be used, the
//! entry lives in a per-process temporary directory instead.

use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use crate::TestkitError;
use crate::bounded_command::run_bounded;
use crate::janitor::Janitor;
use crate::pg_binaries::PgBinaries;
use crate::scratch_dir::scratch_dir;
use crate::server_owner::{ServerOwner, effective_uid};

/// Bump when the way a pristine data directory is made changes.
const CACHE_FORMAT: &str = "v1";

/// The superuser every throwaway cluster has.
pub(crate) const SUPERUSER: &str = "postgres";

/// How long `initdb` may take.
const INITDB_TIMEOUT: Duration = Duration::from_secs(120);

/// The pristine data directory this process copies, once found or made.
static PRISTINE: Mutex<Option<PathBuf>> = Mutex::new(None);

/// The per-process fallback cache, removed when the process ends.
static PROCESS_CACHE: OnceLock<(tempfile::TempDir, Janitor)> = OnceLock::new();

/// The pristine data directory for `bins`, made by `initdb` on first use.
pub(crate) fn pristine_data_dir(
    bins: &PgBinaries,
    owner: ServerOwner,
) -> Result<PathBuf, TestkitError> {
    let mut pristine = PRISTINE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(path) = pristine.as_ref() {
        return Ok(path.clone());
    }
    let path = match machine_cache_root() {
        Some(root) => match from_machine_cache(&root, bins, owner)? {
            Some(path) => path,
            None => from_process_cache(bins, owner)?,
        },
        None => from_process_cache(bins, owner)?,
    };
    *pristine = Some(path.clone());
    Ok(path)
}

/// `<scratch dir>/uno-db-testkit-<euid>`, if it is (or can be made) a directory of ours.
fn machine_cache_root() -> Option<PathBuf> {
    let euid = effective_uid().ok()?;
    let root = scratch_dir().join(format!("uno-db-testkit-{euid}"));
    if let Err(error) = DirBuilder::new().mode(0o711).create(&root)
        && error.kind() != std::io::ErrorKind::AlreadyExists
    {
        return None;
    }
    let metadata = std::fs::symlink_metadata(&root).ok()?;
    if !metadata.is_dir() || metadata.uid() != euid {
        tracing::debug!(root = %root.display(), "not ours; using a per-process initdb cache");
        return None;
    }
    // The server's user (when we are root) must be able to reach its build directory.
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o711)).ok()?;
    Some(root)
}

/// The cache entry for `bins` under `root`, built if missing or damaged.
/// `None` if the cache keeps losing races (the caller falls back to a per-process entry).
fn from_machine_cache(
    root: &Path,
    bins: &PgBinaries,
    owner: ServerOwner,
) -> Result<Option<PathBuf>, TestkitError> {
    remove_abandoned(root);
    let entry = root.join(entry_name(bins));
    for _attempt in 0..3 {
        if manifest_matches(&entry) {
            return Ok(Some(entry.join("data")));
        }
        if entry.exists() {
            tracing::debug!(entry = %entry.display(), "rebuilding a damaged initdb cache entry");
            let stale = root.join(format!(
                "stale-{}-{:08x}",
                std::process::id(),
                fastrand::u32(..)
            ));
            if std::fs::rename(&entry, &stale).is_ok() {
                let _ = std::fs::remove_dir_all(&stale);
            }
        }
        let build = root.join(format!(
            "build-{}-{:08x}",
            std::process::id(),
            fastrand::u32(..)
        ));
        initdb_into(&build, bins, owner)?;
        if std::fs::rename(&build, &entry).is_ok() {
            return Ok(Some(entry.join("data")));
        }
        // Another process put its entry in place first; check and use theirs.
        let _ = std::fs::remove_dir_all(&build);
    }
    Ok(None)
}

/// A per-process entry, removed when the process ends (by a [`Janitor`]).
fn from_process_cache(bins: &PgBinaries, owner: ServerOwner) -> Result<PathBuf, TestkitError> {
    if let Some((dir, _)) = PROCESS_CACHE.get() {
        return Ok(dir.path().join("entry").join("data"));
    }
    let dir = tempfile::Builder::new()
        .prefix("uno-db-initdb-")
        .tempdir_in(scratch_dir())
        .map_err(|source| TestkitError::io("creating a directory for initdb", source))?;
    owner.chown(dir.path())?;
    let janitor = Janitor::watch(dir.path())?;
    let entry = dir.path().join("entry");
    initdb_into(&entry, bins, owner)?;
    let (dir, _) = PROCESS_CACHE.get_or_init(|| (dir, janitor));
    Ok(dir.path().join("entry").join("data"))
}

/// The cache entry's name: cache format, server version and where the binaries are.
fn entry_name(bins: &PgBinaries) -> String {
    let bin_dir: String = bins
        .bin_dir
        .to_string_lossy()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "initdb-{CACHE_FORMAT}-pg{}-{}",
        bins.version,
        bin_dir.trim_matches('_')
    )
}

/// Runs `initdb` into `entry/data` and writes `entry/manifest`.
fn initdb_into(entry: &Path, bins: &PgBinaries, owner: ServerOwner) -> Result<(), TestkitError> {
    DirBuilder::new()
        .mode(0o700)
        .create(entry)
        .map_err(|source| TestkitError::io(format!("creating {}", entry.display()), source))?;
    owner.chown(entry)?;
    let data = entry.join("data");
    let mut initdb = bins.command("initdb", owner, entry);
    initdb
        .arg("--pgdata")
        .arg(&data)
        .arg(format!("--username={SUPERUSER}"))
        .args(["--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"]);
    let started = std::time::Instant::now();
    run_bounded(initdb, "initdb", INITDB_TIMEOUT)?;
    tracing::debug!(elapsed = ?started.elapsed(), data = %data.display(), "initdb finished");
    let manifest = manifest_of(&data)
        .map_err(|source| TestkitError::io(format!("listing {}", data.display()), source))?;
    std::fs::write(entry.join("manifest"), manifest)
        .map_err(|source| TestkitError::io("writing the initdb cache manifest", source))
}

/// Whether `entry` holds a data directory whose files are exactly those its manifest lists.
fn manifest_matches(entry: &Path) -> bool {
    let Ok(expected) = std::fs::read_to_string(entry.join("manifest")) else {
        return false;
    };
    manifest_of(&entry.join("data")).is_ok_and(|actual| actual == expected)
}

/// Every directory and file (with its size) under `data`, sorted.
fn manifest_of(data: &Path) -> std::io::Result<String> {
    fn walk(dir: &Path, relative: &Path, lines: &mut Vec<String>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = relative.join(entry.file_name());
            let metadata = entry.metadata()?;
            if metadata.is_dir() {
                lines.push(format!("d {}", path.display()));
                walk(&entry.path(), &path, lines)?;
            } else {
                lines.push(format!("f {} {}", metadata.len(), path.display()));
            }
        }
        Ok(())
    }
    let mut lines = vec![CACHE_FORMAT.to_owned()];
    walk(data, Path::new(""), &mut lines)?;
    lines[1..].sort();
    Ok(lines.join("\n"))
}

/// Removes build and stale directories left by test processes that no longer exist.
fn remove_abandoned(root: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("build-")
            .or_else(|| name.strip_prefix("stale-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Copies the data directory `from` to `to` (which must not exist), giving it to `owner`.
pub(crate) fn copy_data_dir(
    from: &Path,
    to: &Path,
    owner: ServerOwner,
) -> Result<(), TestkitError> {
    fn copy(from: &Path, to: &Path, owner: ServerOwner) -> std::io::Result<()> {
        let mode = std::fs::metadata(from)?.permissions().mode();
        DirBuilder::new().mode(mode & 0o777).create(to)?;
        chown(owner, to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            let target = to.join(entry.file_name());
            if entry.file_type()?.is_dir() {
                copy(&entry.path(), &target, owner)?;
            } else {
                std::fs::copy(entry.path(), &target)?;
                chown(owner, &target)?;
            }
        }
        Ok(())
    }
    fn chown(owner: ServerOwner, path: &Path) -> std::io::Result<()> {
        match owner {
            ServerOwner::CurrentUser => Ok(()),
            ServerOwner::SystemUser { uid, gid } => {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))
            }
        }
    }
    copy(from, to, owner).map_err(|source| {
        TestkitError::io(
            format!("copying {} to {}", from.display(), to.display()),
            source,
        )
    })
}
