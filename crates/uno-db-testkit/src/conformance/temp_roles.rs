//! Roles a case creates on a possibly shared server, and drops again.

use std::sync::mpsc;
use std::time::Duration;

use uno_db_core::ConnectionConfig;

use crate::sql_quote::quote_ident;

/// How long dropping the roles may take before it is abandoned.
const DROP_DEADLINE: Duration = Duration::from_secs(10);

/// `NOLOGIN` roles with names unique to this process and call, dropped
/// (best effort) when this value is dropped, also when the case panics.
///
/// Roles are server-wide, so they outlive the test database unless
/// dropped. The case creates them itself ([`create_sql`](Self::create_sql))
/// through the engine under test; grant them nothing, so that `DROP ROLE`
/// needs no clean-up first.
pub(super) struct TempRoles {
    names: Vec<String>,
    driver: tokio_postgres::Config,
}

impl TempRoles {
    /// `count` role names for the server of `config` (created by nobody yet).
    pub(super) fn new(config: &ConnectionConfig, what: &str, count: usize) -> Self {
        let names = (0..count)
            .map(|i| super::unique_name::unique_application_name(&format!("{what}{i}")))
            .collect();
        let mut driver = config.driver_config();
        driver.application_name("uno-db-testkit");
        Self { names, driver }
    }

    /// The `i`-th name.
    pub(super) fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// `CREATE ROLE ... NOLOGIN` for every name.
    pub(super) fn create_sql(&self) -> String {
        self.names
            .iter()
            .map(|name| format!("CREATE ROLE {} NOLOGIN;", quote_ident(name)))
            .collect()
    }
}

impl Drop for TempRoles {
    fn drop(&mut self) {
        let sql = format!(
            "DROP ROLE IF EXISTS {}",
            self.names
                .iter()
                .map(|name| quote_ident(name))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let config = postgres::Config::from(self.driver.clone());
        let (done, finished) = mpsc::channel();
        // Its own thread: the `postgres` driver must not run inside a
        // tokio runtime, and an async case drops this inside one.
        let spawned = std::thread::Builder::new()
            .name("uno-db-drop-roles".to_owned())
            .spawn(move || {
                let outcome = config
                    .connect(postgres::NoTls)
                    .and_then(|mut client| client.batch_execute(&sql));
                let _ = done.send(outcome);
            });
        let outcome = match spawned {
            Ok(_) => finished.recv_timeout(DROP_DEADLINE).ok(),
            Err(_) => None,
        };
        if !matches!(outcome, Some(Ok(()))) {
            tracing::warn!(roles = ?self.names, "could not drop a case's roles");
        }
    }
}
