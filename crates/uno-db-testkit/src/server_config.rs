//! The configuration a throwaway cluster's server runs with.

use std::net::Ipv4Addr;
use std::path::Path;

use crate::pristine_data_dir::SUPERUSER;
use crate::tls::{CERT_ROLE, SSL_ONLY_ROLE, server_conf_lines};
use crate::{TestClusterBuilder, TestkitError};

/// The address every throwaway cluster listens on.
pub(crate) const LISTEN_HOST: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// Appends the test kit's settings to `postgresql.conf` and writes `pg_hba.conf` (the rules
/// are documented on [`TestClusterBuilder::password_auth`] and [`TestClusterBuilder::tls`]).
pub(crate) fn write_server_config(
    data_dir: &Path,
    socket_dir: &Path,
    options: &TestClusterBuilder,
) -> Result<(), TestkitError> {
    let socket_dir = socket_dir.to_string_lossy().replace('\'', "''");
    let mut conf = format!(
        "\n# Added by uno-db-testkit.\n\
         listen_addresses = '{LISTEN_HOST}'\n\
         unix_socket_directories = '{socket_dir}'\n\
         fsync = off\n\
         synchronous_commit = off\n\
         full_page_writes = off\n\
         max_connections = {}\n\
         shared_buffers = 32MB\n\
         password_encryption = 'scram-sha-256'\n\
         logging_collector = off\n",
        options.max_connections
    );
    if options.tls.is_some() {
        conf.push_str(&server_conf_lines());
    }
    for line in &options.conf_lines {
        conf.push_str(line);
        conf.push('\n');
    }
    let conf_path = data_dir.join("postgresql.conf");
    let mut existing = std::fs::read_to_string(&conf_path)
        .map_err(|source| TestkitError::io("reading postgresql.conf", source))?;
    existing.push_str(&conf);
    std::fs::write(&conf_path, existing)
        .map_err(|source| TestkitError::io("writing postgresql.conf", source))?;

    let host_method = if options.password_auth {
        "scram-sha-256"
    } else {
        "trust"
    };
    // With TLS, roles that must (or must only) use it come first: the first match wins.
    let tls_rules = if options.tls.is_some() {
        format!(
            "hostssl all {CERT_ROLE} 127.0.0.1/32 cert\n\
             hostssl all {CERT_ROLE} ::1/128 cert\n\
             hostnossl all {CERT_ROLE} all reject\n\
             hostssl all {SSL_ONLY_ROLE} 127.0.0.1/32 {host_method}\n\
             hostssl all {SSL_ONLY_ROLE} ::1/128 {host_method}\n\
             hostnossl all {SSL_ONLY_ROLE} all reject\n"
        )
    } else {
        String::new()
    };
    let hba = format!(
        "# Written by uno-db-testkit.\n\
         local all all trust\n\
         local replication all trust\n\
         {tls_rules}\
         host all {SUPERUSER} 127.0.0.1/32 trust\n\
         host all {SUPERUSER} ::1/128 trust\n\
         host replication {SUPERUSER} 127.0.0.1/32 trust\n\
         host all all 127.0.0.1/32 {host_method}\n\
         host all all ::1/128 {host_method}\n"
    );
    std::fs::write(data_dir.join("pg_hba.conf"), hba)
        .map_err(|source| TestkitError::io("writing pg_hba.conf", source))
}
