//! The files a [`TestPgBouncer`](crate::TestPgBouncer) runs with.

use std::path::Path;

use crate::TestkitError;
use crate::pgbouncer_builder::TestPgBouncerBuilder;
use crate::server_config::LISTEN_HOST;

/// The configuration file's name in PgBouncer's directory.
pub(crate) const CONFIG_FILE: &str = "pgbouncer.ini";
/// The log file's name in PgBouncer's directory.
pub(crate) const LOG_FILE: &str = "pgbouncer.log";
/// Where PgBouncer's stdout and stderr go (errors before it opens its log land here).
pub(crate) const OUTPUT_FILE: &str = "pgbouncer.out";

/// Writes `pgbouncer.ini` and `userlist.txt` into `dir` for PgBouncer listening on `port`.
pub(crate) fn write_pgbouncer_config(
    dir: &Path,
    port: u16,
    options: &TestPgBouncerBuilder,
) -> Result<(), TestkitError> {
    let auth_file = dir.join("userlist.txt");
    // Passwords are not checked (`auth_type = trust`), but each user needs a line.
    let users: String = options
        .users
        .iter()
        .map(|user| format!("\"{}\" \"\"\n", user.replace('"', "\"\"")))
        .collect();
    std::fs::write(&auth_file, users)
        .map_err(|source| TestkitError::io("writing PgBouncer's auth file", source))?;
    let config = format!(
        "; Written by uno-db-testkit.\n\
         [databases]\n\
         ; Any database name goes to the same server.\n\
         * = host={server_host} port={server_port}\n\
         \n\
         [pgbouncer]\n\
         listen_addr = {LISTEN_HOST}\n\
         listen_port = {port}\n\
         ; TCP only: nothing to collide with in a shared socket directory.\n\
         unix_socket_dir =\n\
         auth_type = trust\n\
         auth_file = {auth_file}\n\
         admin_users = postgres\n\
         pool_mode = {pool_mode}\n\
         max_client_conn = {max_client_conn}\n\
         default_pool_size = {default_pool_size}\n\
         ignore_startup_parameters = {ignored}\n\
         logfile = {log_file}\n\
         pidfile = {pid_file}\n",
        server_host = options.server_host,
        server_port = options.server_port,
        auth_file = auth_file.display(),
        pool_mode = options.pool_mode.as_str(),
        max_client_conn = options.max_client_conn,
        default_pool_size = options.default_pool_size,
        ignored = options.ignore_startup_parameters.join(","),
        log_file = dir.join(LOG_FILE).display(),
        pid_file = dir.join("pgbouncer.pid").display(),
    );
    std::fs::write(dir.join(CONFIG_FILE), config)
        .map_err(|source| TestkitError::io("writing pgbouncer.ini", source))
}
