//! The `uno-db` binary run as a user runs it: against the server the test
//! kit uses (`UNO_DB_TEST_URL`, else 127.0.0.1:5432, else a throwaway
//! cluster) and, for `demo`, against no server at all.
// Tests unwrap, panic, and say on stderr why they skip.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

mod bench;
mod check;
mod demo;
mod usage;

use std::net::{TcpListener, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use assert_cmd::Command;

/// The longest any one run of the binary may take.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// The URL of a server the tests may use (as the `postgres` superuser).
pub(crate) fn server_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Some(url) = std::env::var(uno_db_testkit::TEST_URL_ENV)
            .ok()
            .filter(|url| !url.trim().is_empty())
        {
            return url;
        }
        if TcpStream::connect_timeout(&"127.0.0.1:5432".parse().unwrap(), Duration::from_secs(1))
            .is_ok()
        {
            return "postgresql://postgres@127.0.0.1:5432/postgres".to_owned();
        }
        uno_db_testkit::TestCluster::shared()
            .expect("a server for the CLI tests")
            .admin_url()
    })
}

/// The binary, with none of the variables a configuration is read from
/// (`DATABASE_URL`, `UNO_DB_*`, `PG*`) inherited, and a time limit.
pub(crate) fn uno_db() -> Command {
    let mut command = Command::cargo_bin("uno-db").unwrap();
    clean_env(&mut command);
    command.timeout(RUN_LIMIT);
    command
}

/// The binary as a `std::process::Command`, with the same environment.
pub(crate) fn uno_db_std() -> std::process::Command {
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("uno-db"));
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if configures(&name) {
            command.env_remove(name);
        }
    }
    command
}

fn clean_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if configures(&name) {
            command.env_remove(name);
        }
    }
}

/// Whether a variable is one a connection configuration is read from (the
/// test kit's own are kept: they say where the PostgreSQL binaries are).
fn configures(name: &str) -> bool {
    let testkit = [
        uno_db_testkit::PG_BIN_ENV,
        uno_db_testkit::SCRATCH_DIR_ENV,
        uno_db_testkit::TEST_URL_ENV,
    ];
    name == "DATABASE_URL"
        || name.starts_with("PG")
        || (name.starts_with("UNO_DB_") && !testkit.contains(&name))
}

/// A TCP port on 127.0.0.1 nothing listens on.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether something accepts connections on `port` of 127.0.0.1.
pub(crate) fn answers(port: u16) -> bool {
    TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(1),
    )
    .is_ok()
}

/// The test server's URL with a password in it, and that password: the
/// server's own when its URL has one, else `fallback` (which a server with
/// trust authentication ignores).
pub(crate) fn url_with_secret(fallback: &str) -> (String, String) {
    let config = server_url().parse::<uno_db::ConnectionConfig>().unwrap();
    let secret = server_password().unwrap_or_else(|| fallback.to_owned());
    let url = config
        .to_builder()
        .password(secret.as_str())
        .build()
        .unwrap()
        .to_url_with_password();
    (url, secret)
}

/// The password of the test server's URL, if it has one.
pub(crate) fn server_password() -> Option<String> {
    use uno_db::ExposeSecret as _;
    let config = server_url().parse::<uno_db::ConnectionConfig>().unwrap();
    config.password().map(|p| p.expose_secret().to_owned())
}

/// Asserts that stderr holds one `error:` line and no panic or backtrace.
pub(crate) fn assert_one_clear_error(stderr: &str) {
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{stderr}");
    assert!(!stderr.contains("stack backtrace"), "{stderr}");
    let errors = stderr.lines().filter(|l| l.starts_with("error")).count();
    assert_eq!(errors, 1, "{stderr}");
}
