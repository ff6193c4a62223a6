//! Where throwaway clusters and the initdb cache live.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The environment variable that chooses the directory throwaway clusters are created in.
pub const SCRATCH_DIR_ENV: &str = "UNO_DB_TEST_TMPDIR";

/// A RAM-backed directory present on most Linux systems.
const RAM_DIR: &str = "/dev/shm";

/// How much room the RAM-backed directory must have to be used (a cluster takes about 40 MB).
const RAM_DIR_MIN_FREE_KIB: u64 = 1024 * 1024;

static SCRATCH_DIR: OnceLock<PathBuf> = OnceLock::new();

/// The directory throwaway clusters and the initdb cache are created in, chosen once per
/// process: `UNO_DB_TEST_TMPDIR` if set; else `/dev/shm` if it is a writable RAM disk with at
/// least 1 GiB free (copying a data directory there takes a tenth of the time it takes on
/// disk, and nothing of a throwaway cluster needs to survive a reboot); else the system's
/// temporary directory.
pub(crate) fn scratch_dir() -> &'static Path {
    SCRATCH_DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os(SCRATCH_DIR_ENV).filter(|dir| !dir.is_empty()) {
            return PathBuf::from(dir);
        }
        if ram_dir_usable() {
            return PathBuf::from(RAM_DIR);
        }
        std::env::temp_dir()
    })
}

fn ram_dir_usable() -> bool {
    let writable = std::fs::metadata(RAM_DIR)
        .is_ok_and(|metadata| metadata.is_dir() && !metadata.permissions().readonly());
    writable && free_kib(Path::new(RAM_DIR)).is_some_and(|free| free >= RAM_DIR_MIN_FREE_KIB)
}

/// Free space in KiB as `df -Pk` reports it.
fn free_kib(path: &Path) -> Option<u64> {
    let output = Command::new("df").arg("-Pk").arg(path).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    // Filesystem 1024-blocks Used Available Capacity Mounted-on
    text.lines().nth(1)?.split_whitespace().nth(3)?.parse().ok()
}
