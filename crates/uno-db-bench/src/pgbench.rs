//! Running pgbench on the same server, as the floor of what a client can do.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// pgbench with a `SELECT 1` script.
pub(crate) struct Pgbench {
    binary: PathBuf,
    script: tempfile::NamedTempFile,
    url: String,
}

impl Pgbench {
    pub(crate) fn new(url: &str) -> Result<Self, BoxError> {
        let binary = find_binary("pgbench").ok_or(
            "pgbench not found on PATH or under /usr/lib/postgresql/*/bin: install postgresql-client",
        )?;
        let mut script = tempfile::Builder::new()
            .prefix("select1")
            .suffix(".sql")
            .tempfile()?;
        script.write_all(b"SELECT 1;\n")?;
        Ok(Self {
            binary,
            script,
            url: url.to_owned(),
        })
    }

    /// `pgbench -M PROTOCOL -f select1.sql -c CLIENTS -j THREADS` for
    /// `length`; returns its transactions per second.
    pub(crate) fn run(
        &self,
        protocol: Protocol,
        clients: usize,
        threads: usize,
        length: Duration,
    ) -> Result<f64, BoxError> {
        let seconds = length.as_secs().max(1);
        let output = Command::new(&self.binary)
            .args(["-n", "-M", protocol.name(), "-j", &threads.to_string()])
            // Plaintext, as every other contender runs.
            .env("PGSSLMODE", "disable")
            .arg("-f")
            .arg(self.script.path())
            .args(["-c", &clients.to_string(), "-T", &seconds.to_string()])
            .arg(&self.url)
            .output()?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!(
                "pgbench failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )
            .into());
        }
        stdout
            .lines()
            .find_map(|line| line.strip_prefix("tps = "))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|tps| tps.parse().ok())
            .ok_or_else(|| format!("no `tps = ` line in pgbench's output: {stdout}").into())
    }
}

/// pgbench's query protocol (`-M`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// pgbench's default: each statement's text in a simple `Query`.
    Simple,
    /// Each statement prepared once per client, as uno-db's statement
    /// cache serves them.
    Prepared,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Self::Simple => "simple",
            Self::Prepared => "prepared",
        }
    }
}

/// `name` on `PATH`, else under `/usr/lib/postgresql/*/bin`.
pub(crate) fn find_binary(name: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(name));
    let installed = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin").join(name));
    on_path
        .chain(installed)
        .find(|candidate| candidate.is_file())
}
