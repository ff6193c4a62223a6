//! Which operating-system user runs a throwaway cluster's programs.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use crate::TestkitError;

/// The system user Postgres runs as when the tests run as root.
const SERVER_SYSTEM_USER: &str = "postgres";

/// The user a throwaway cluster's `initdb`, `pg_ctl` and `postgres` run as.
///
/// Postgres refuses to run as root, so a root test process runs them as the `postgres`
/// system user and hands it the cluster's directories; anyone else runs them as themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ServerOwner {
    /// The user the test process runs as.
    CurrentUser,
    /// Another user (the `postgres` system user when the tests run as root).
    SystemUser { uid: u32, gid: u32 },
}

impl ServerOwner {
    /// The owner for this process.
    pub(crate) fn detect() -> Result<Self, TestkitError> {
        if effective_uid()? != 0 {
            return Ok(Self::CurrentUser);
        }
        let (uid, gid) = lookup_user(SERVER_SYSTEM_USER).ok_or(TestkitError::NoServerUser)?;
        Ok(Self::SystemUser { uid, gid })
    }

    /// Makes `command` run as this user.
    pub(crate) fn apply(self, command: &mut Command) {
        if let Self::SystemUser { uid, gid } = self {
            command.uid(uid).gid(gid);
        }
    }

    /// Gives `path` to this user (a no-op for the current user).
    pub(crate) fn chown(self, path: &Path) -> Result<(), TestkitError> {
        match self {
            Self::CurrentUser => Ok(()),
            Self::SystemUser { uid, gid } => std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .map_err(|source| {
                    TestkitError::io(format!("giving {} to uid {uid}", path.display()), source)
                }),
        }
    }
}

/// The effective user id of this process.
pub(crate) fn effective_uid() -> Result<u32, TestkitError> {
    // /proc/self belongs to the process's effective user.
    if let Ok(metadata) = std::fs::metadata("/proc/self") {
        return Ok(metadata.uid());
    }
    let output = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|source| TestkitError::io("running `id -u`", source))?;
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .map_err(|_| {
            TestkitError::io(
                "reading the output of `id -u`",
                std::io::Error::new(std::io::ErrorKind::InvalidData, "not a number"),
            )
        })
}

/// The uid and primary gid of a user, from `/etc/passwd`.
pub(crate) fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != name {
            return None;
        }
        let _password = fields.next()?;
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        Some((uid, gid))
    })
}
