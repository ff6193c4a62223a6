//! Options for a [`TestPgBouncer`].

use crate::{PoolMode, TestPgBouncer, TestkitError};

/// Options for a PgBouncer in front of a server; [`start`](Self::start) starts it.
///
/// Made by [`TestPgBouncer::builder`]. The defaults are PgBouncer's own (transaction pooling
/// aside): `max_client_conn = 100`, `default_pool_size = 20`, and
/// `ignore_startup_parameters = extra_float_digits` because drivers such as JDBC and libpq
/// based ones send it and PgBouncer would otherwise refuse them. The users `postgres` and
/// `root` are always in the auth file.
///
/// ```no_run
/// use uno_db_testkit::{PoolMode, TestCluster, TestPgBouncer};
///
/// # fn main() -> Result<(), uno_db_testkit::TestkitError> {
/// let cluster = TestCluster::new()?;
/// let bouncer = TestPgBouncer::builder(cluster.host(), cluster.port())
///     .pool_mode(PoolMode::Session)
///     .default_pool_size(1)
///     .ignore_startup_parameter("search_path")
///     .user("app")
///     .start()?;
/// # let _ = bouncer;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `start` is called"]
pub struct TestPgBouncerBuilder {
    pub(crate) server_host: String,
    pub(crate) server_port: u16,
    pub(crate) pool_mode: PoolMode,
    pub(crate) max_client_conn: u32,
    pub(crate) default_pool_size: u32,
    pub(crate) ignore_startup_parameters: Vec<String>,
    pub(crate) users: Vec<String>,
}

impl TestPgBouncerBuilder {
    pub(crate) fn new(server_host: &str, server_port: u16) -> Self {
        Self {
            server_host: server_host.to_owned(),
            server_port,
            pool_mode: PoolMode::default(),
            max_client_conn: 100,
            default_pool_size: 20,
            ignore_startup_parameters: vec!["extra_float_digits".to_owned()],
            users: vec!["postgres".to_owned(), "root".to_owned()],
        }
    }

    /// The `pool_mode` (default [`PoolMode::Transaction`]).
    pub fn pool_mode(mut self, pool_mode: PoolMode) -> Self {
        self.pool_mode = pool_mode;
        self
    }

    /// The `max_client_conn`: how many clients PgBouncer accepts at once (default 100).
    pub fn max_client_conn(mut self, max_client_conn: u32) -> Self {
        self.max_client_conn = max_client_conn;
        self
    }

    /// The `default_pool_size`: server connections per user and database (default 20).
    /// With 1, every client of a user and database shares one server backend.
    pub fn default_pool_size(mut self, default_pool_size: u32) -> Self {
        self.default_pool_size = default_pool_size;
        self
    }

    /// Adds a startup parameter PgBouncer accepts and drops instead of refusing the client
    /// (`ignore_startup_parameters`; `extra_float_digits` is always there).
    pub fn ignore_startup_parameter(mut self, parameter: &str) -> Self {
        if !self
            .ignore_startup_parameters
            .iter()
            .any(|p| p == parameter)
        {
            self.ignore_startup_parameters.push(parameter.to_owned());
        }
        self
    }

    /// Adds a user to PgBouncer's auth file (`postgres` and `root` are always there). Clients
    /// are trusted (`auth_type = trust`), but PgBouncer only lets in users it knows; the
    /// server must let the user in too.
    pub fn user(mut self, user: &str) -> Self {
        if !self.users.iter().any(|u| u == user) {
            self.users.push(user.to_owned());
        }
        self
    }

    /// Writes the configuration and starts PgBouncer on a free port of 127.0.0.1, waiting
    /// until it accepts connections.
    ///
    /// # Errors
    ///
    /// [`TestkitError::PgBouncerNotFound`] if the binary is missing,
    /// [`TestkitError::PgBouncerStart`] (with the end of its log) if it exits or does not
    /// accept connections within 10 s.
    pub fn start(self) -> Result<TestPgBouncer, TestkitError> {
        TestPgBouncer::start_with(&self)
    }
}
