//! Where a Postgres server is and how the test kit logs in to administer it.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use tokio_postgres::config::Host;

use crate::TestkitError;
use crate::postgres_url::postgres_url;

/// Server-side limits put on every administrative session, so nothing the test kit runs can hang.
const ADMIN_SESSION_OPTIONS: &str = "-c statement_timeout=30000 -c lock_timeout=30000";

/// A Postgres server and the superuser (or `CREATEDB` user) the test kit administers it as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Server {
    /// A host name, an IP address, or (starting with `/`) a unix socket directory.
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) password: Option<String>,
    /// The database administrative sessions connect to.
    pub(crate) admin_db: String,
}

impl Server {
    /// A server as described by a `postgres://` URL (or a key-value connection string).
    ///
    /// Missing parts default like libpq's: host `localhost`, port 5432, user `postgres`,
    /// database `postgres`.
    pub(crate) fn from_url(url: &str) -> Result<Self, TestkitError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|source| TestkitError::InvalidUrl { source })?;
        let host = match config.get_hosts().first() {
            Some(Host::Tcp(host)) => host.clone(),
            Some(Host::Unix(path)) => path.to_string_lossy().into_owned(),
            None => "localhost".to_owned(),
        };
        Ok(Self {
            host,
            port: config.get_ports().first().copied().unwrap_or(5432),
            user: config.get_user().unwrap_or("postgres").to_owned(),
            password: config
                .get_password()
                .map(|password| String::from_utf8_lossy(password).into_owned()),
            admin_db: config.get_dbname().unwrap_or("postgres").to_owned(),
        })
    }

    /// A URL for `database` on this server, as this server's user.
    pub(crate) fn url(&self, database: &str) -> String {
        postgres_url(
            &self.host,
            self.port,
            &self.user,
            self.password.as_deref(),
            database,
        )
    }

    /// `host:port as user`, for messages (never includes the password).
    pub(crate) fn describe(&self) -> String {
        format!("{}:{} as user {}", self.host, self.port, self.user)
    }

    /// Driver configuration for an administrative session on `database`.
    pub(crate) fn admin_config(
        &self,
        database: &str,
        connect_timeout: Duration,
    ) -> postgres::Config {
        let mut config = postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(database)
            .application_name("uno-db-testkit")
            .options(ADMIN_SESSION_OPTIONS)
            .connect_timeout(connect_timeout);
        if let Some(password) = &self.password {
            config.password(password);
        }
        config
    }

    /// The server's TCP address (the first one the host resolves to).
    pub(crate) fn socket_addr(&self) -> Result<SocketAddr, TestkitError> {
        let not_tcp = || TestkitError::NotTcp {
            host: self.host.clone(),
            port: self.port,
        };
        if self.host.starts_with('/') {
            return Err(not_tcp());
        }
        (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|source| TestkitError::io(format!("resolving {}", self.host), source))?
            .next()
            .ok_or_else(not_tcp)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parses_url_with_defaults() {
        let server = Server::from_url("postgres://alice@db.example").unwrap();
        assert_eq!(server.host, "db.example");
        assert_eq!(server.port, 5432);
        assert_eq!(server.user, "alice");
        assert_eq!(server.password, None);
        assert_eq!(server.admin_db, "postgres");
    }

    #[test]
    fn parses_full_url() {
        let server = Server::from_url("postgres://bob:s%40cret@10.0.0.1:6543/admin").unwrap();
        assert_eq!(server.password.as_deref(), Some("s@cret"));
        assert_eq!(server.port, 6543);
        assert_eq!(server.admin_db, "admin");
        assert_eq!(server.url("x"), "postgres://bob:s%40cret@10.0.0.1:6543/x");
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            Server::from_url("postgres://host:notaport/db"),
            Err(TestkitError::InvalidUrl { .. })
        ));
    }
}
