//! A fresh database per test.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::admin::{Deadlines, run_admin};
use crate::default_server::default_server;
use crate::postgres_url::postgres_url;
use crate::server::Server;
use crate::sql_quote::{quote_ident, quote_literal};
use crate::stale_db::database_name;
use crate::template_db::{PreparedServer, TEMPLATE_DB, prepare};
use crate::{FaultProxy, TestCluster, TestkitError};

/// Numbers the databases this process creates.
static NEXT_DB: AtomicU64 = AtomicU64::new(1);

/// A fresh, uniquely named database for one test, dropped when this value is dropped.
///
/// Its name (`uno_db_test_<host>_<pid>_<created>_...`) says which machine and process made it
/// and when. A process killed before it could drop its databases leaves them behind; the
/// first `TestDb` of a later process on the same machine and server drops those whose process
/// is gone, and never a database made elsewhere, by a live process, or named otherwise.
///
/// [`TestDb::new`] finds a server by itself (see there); [`TestDb::on_cluster`] and
/// [`TestDb::on_server`] use a given one. Each database is cloned from a template database
/// (`uno_db_test_template`) that the test kit creates once per server, so it starts empty
/// (UTF-8, C collation). Dropping the `TestDb`, also while a test panics, drops the database
/// with `DROP DATABASE ... WITH (FORCE)`, which disconnects any sessions still using it.
///
/// Everything it does runs on short-lived threads of its own, with deadlines, so it works
/// from a plain `#[test]` and from inside a `#[tokio::test]` of either flavour alike.
///
/// ```no_run
/// use uno_db_testkit::TestDb;
///
/// #[test]
/// fn inserts_a_row() -> Result<(), Box<dyn std::error::Error>> {
///     let db = TestDb::new()?;
///     let mut client = postgres::Client::connect(db.url(), postgres::NoTls)?;
///     client.batch_execute("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")?;
///     Ok(())
/// } // the database is dropped here
/// ```
#[derive(Debug)]
pub struct TestDb {
    server: Server,
    prepared: PreparedServer,
    name: String,
    url: String,
    admin_url: String,
}

impl TestDb {
    /// A fresh database on the first server found of:
    ///
    /// 1. the one `UNO_DB_TEST_URL` names (a superuser's URL, or that of a user with
    ///    `CREATEDB`), if the variable is set;
    /// 2. the local server at 127.0.0.1:5432, as user `postgres` without a password, if it
    ///    answers within a second;
    /// 3. a throwaway cluster started from the local Postgres binaries and shared by the
    ///    whole test process ([`TestCluster::shared`]).
    ///
    /// The choice is made once per process.
    ///
    /// # Errors
    ///
    /// If no server is usable ([`TestkitError::NoServer`] says what to install or set), or
    /// the database cannot be created.
    pub fn new() -> Result<Self, TestkitError> {
        Self::create(default_server()?)
    }

    /// A fresh database on `cluster`.
    ///
    /// # Errors
    ///
    /// If the cluster is not running or the database cannot be created.
    pub fn on_cluster(cluster: &TestCluster) -> Result<Self, TestkitError> {
        Self::create(cluster.server())
    }

    /// A fresh database on the server `admin_url` names, administered as that URL's user
    /// (a superuser, or a user with `CREATEDB`).
    ///
    /// # Errors
    ///
    /// If the URL is invalid, the server cannot be reached, or the database cannot be created.
    pub fn on_server(admin_url: &str) -> Result<Self, TestkitError> {
        Self::create(Server::from_url(admin_url)?)
    }

    fn create(server: Server) -> Result<Self, TestkitError> {
        let prepared = prepare(&server)?;
        let name = database_name(NEXT_DB.fetch_add(1, Ordering::Relaxed));
        let statement = format!(
            "CREATE DATABASE {} TEMPLATE {}",
            quote_ident(&name),
            quote_ident(TEMPLATE_DB)
        );
        run_admin(
            &server,
            &format!("creating database {name}"),
            Deadlines::ADMIN,
            move |client| client.batch_execute(&statement),
        )?;
        tracing::debug!(database = %name, server = %server.describe(), "created a test database");
        Ok(Self {
            url: server.url(&name),
            admin_url: server.url(&server.admin_db),
            server,
            prepared,
            name,
        })
    }

    /// A `postgres://` URL for this database, with the user and (if any) password.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The same URL as [`url`](Self::url) but pointing at `proxy` (which should forward to
    /// this database's server).
    pub fn url_through(&self, proxy: &FaultProxy) -> String {
        postgres_url(
            &proxy.local_addr().ip().to_string(),
            proxy.port(),
            &self.server.user,
            self.server.password.as_deref(),
            &self.name,
        )
    }

    /// The server's host (a name, an IP address, or a unix socket directory).
    pub fn host(&self) -> &str {
        &self.server.host
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// The server's TCP address, e.g. for [`FaultProxy::start`].
    ///
    /// # Errors
    ///
    /// If the host is a unix socket directory or does not resolve.
    pub fn socket_addr(&self) -> Result<SocketAddr, TestkitError> {
        self.server.socket_addr()
    }

    /// The user [`url`](Self::url) logs in as (the server's administrative user).
    pub fn user(&self) -> &str {
        &self.server.user
    }

    /// The password [`url`](Self::url) uses, if any.
    pub fn password(&self) -> Option<&str> {
        self.server.password.as_deref()
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL for the server's administrative database (usually `postgres`), as the same user.
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let force = self.prepared.has_drop_force();
        let result = run_admin(
            &self.server,
            &format!("dropping database {name}"),
            Deadlines::ADMIN,
            move |client| {
                if force {
                    client.batch_execute(&format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        quote_ident(&name)
                    ))
                } else {
                    client.execute(
                        &format!(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                             WHERE datname = {}",
                            quote_literal(&name)
                        ),
                        &[],
                    )?;
                    client.batch_execute(&format!("DROP DATABASE IF EXISTS {}", quote_ident(&name)))
                }
            },
        );
        if let Err(error) = result {
            tracing::warn!(
                database = %self.name,
                error = &error as &dyn std::error::Error,
                "could not drop a test database"
            );
        }
    }
}
