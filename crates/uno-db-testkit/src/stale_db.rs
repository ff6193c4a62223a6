//! The names of the test kit's databases, which say which machine and
//! process made them and when, and the sweep of those whose process is
//! gone (killed before it could drop them).
//!
//! A name is `uno_db_test_<host>_<pid>_<created>_<serial>_<random>`:
//! `<host>` is 8 hex digits identifying this machine's boot and host name
//! (process ids mean something only there), `<pid>` the creating process,
//! `<created>` its Unix time in seconds. The sweep drops a database only
//! when its whole name parses so, its host is this one and its process is
//! no longer running: a database made elsewhere, by a process still alive
//! (or one whose id was reused), or named otherwise is never touched.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::sql_quote::quote_ident;

/// What every test database name starts with.
const PREFIX: &str = "uno_db_test_";

/// A new database name for this process's `serial`-th database.
pub(crate) fn database_name(serial: u64) -> String {
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    format!(
        "{PREFIX}{:08x}_{}_{created}_{serial}_{:04x}",
        host_id(),
        std::process::id(),
        fastrand::u16(..)
    )
}

/// Who made a test database, read back from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Owner {
    host: u32,
    pid: u32,
}

/// The owner a name records, if it is a test database name at all.
fn owner(name: &str) -> Option<Owner> {
    let mut parts = name.strip_prefix(PREFIX)?.split('_');
    let host = parts.next().filter(|host| host.len() == 8)?;
    let host = u32::from_str_radix(host, 16).ok()?;
    let pid = parts.next()?.parse().ok()?;
    let _created: u64 = parts.next()?.parse().ok()?;
    let _serial: u64 = parts.next()?.parse().ok()?;
    let random = parts.next().filter(|random| random.len() == 4)?;
    u16::from_str_radix(random, 16).ok()?;
    parts.next().is_none().then_some(Owner { host, pid })
}

/// This machine's boot and host name, hashed (FNV-1a): two containers on
/// one kernel share the boot but, as a rule, not the host name.
fn host_id() -> u32 {
    static ID: OnceLock<u32> = OnceLock::new();
    *ID.get_or_init(|| {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let identity = read("/proc/sys/kernel/random/boot_id") + &read("/proc/sys/kernel/hostname");
        identity.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
            (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
        })
    })
}

/// Whether process `pid` of this machine is known to be gone: `None`
/// where `/proc` cannot tell.
fn process_gone(pid: u32) -> Option<bool> {
    Path::new("/proc/self")
        .exists()
        .then(|| !Path::new(&format!("/proc/{pid}")).exists())
}

/// The names among `names` that are this machine's test databases whose
/// process is gone.
fn stale<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    names
        .into_iter()
        .filter(|name| {
            owner(name).is_some_and(|owner| {
                owner.host == host_id()
                    && owner.pid != std::process::id()
                    && process_gone(owner.pid) == Some(true)
            })
        })
        .collect()
}

/// Drops the stale test databases on the server `client` is connected to
/// (as a user that may drop them), returning their names.
pub(crate) fn sweep(
    client: &mut postgres::Client,
    drop_force: bool,
) -> Result<Vec<String>, postgres::Error> {
    let rows = client.query(
        "SELECT datname::text FROM pg_database WHERE starts_with(datname, $1)",
        &[&PREFIX],
    )?;
    let names: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
    let stale: Vec<String> = stale(names.iter().map(String::as_str))
        .into_iter()
        .map(str::to_owned)
        .collect();
    for name in &stale {
        let force = if drop_force { " WITH (FORCE)" } else { "" };
        client.batch_execute(&format!(
            "DROP DATABASE IF EXISTS {}{force}",
            quote_ident(name)
        ))?;
        tracing::info!(database = %name, "dropped a test database left by a process that is gone");
    }
    Ok(stale)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_record_their_owner() {
        let name = database_name(7);
        assert!(name.len() < 64, "{name}");
        assert_eq!(
            owner(&name),
            Some(Owner {
                host: host_id(),
                pid: std::process::id()
            })
        );
    }

    #[test]
    fn other_names_have_no_owner() {
        for name in [
            "uno_db_test_template",
            "uno_db_test_123_4_abcd",
            "uno_db_test_zzzzzzzz_1_2_3_abcd",
            "uno_db_test_0000000a_1_2_3_abcd_extra",
            "orders",
        ] {
            assert_eq!(owner(name), None, "{name}");
        }
    }

    #[test]
    fn only_this_machines_databases_of_gone_processes_are_stale() {
        // A process that has exited: its id is free (unless reused, which
        // only makes the database look alive).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let host = host_id();
        let mine = format!("{PREFIX}{host:08x}_{}_1_1_abcd", std::process::id());
        let dead = format!("{PREFIX}{host:08x}_{gone}_1_1_abcd");
        let elsewhere = format!("{PREFIX}{:08x}_{gone}_1_1_abcd", host ^ 1);
        let names = [
            mine.as_str(),
            dead.as_str(),
            elsewhere.as_str(),
            "uno_db_test_template",
        ];
        assert_eq!(stale(names), [dead.as_str()]);
    }
}
