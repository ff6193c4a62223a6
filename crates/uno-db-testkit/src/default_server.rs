//! Choosing the server [`TestDb::new`](crate::TestDb::new) uses.

use std::sync::{Mutex, PoisonError};

use crate::admin::{Deadlines, run_admin};
use crate::server::Server;
use crate::{TestCluster, TestkitError};

/// The environment variable naming the server to run tests against.
pub const TEST_URL_ENV: &str = "UNO_DB_TEST_URL";

/// The server resolved by the first [`default_server`] call of this process.
static RESOLVED: Mutex<Option<Server>> = Mutex::new(None);

/// The server `TestDb::new` uses, resolved once per process.
///
/// In order: `UNO_DB_TEST_URL` if set; else the conventional local server
/// (`postgres@127.0.0.1:5432`) if it answers within a second and lets its user create
/// databases; else the process-wide throwaway cluster ([`TestCluster::shared`]).
pub(crate) fn default_server() -> Result<Server, TestkitError> {
    let mut resolved = RESOLVED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(server) = resolved.as_ref() {
        return Ok(server.clone());
    }
    let test_url = match std::env::var_os(TEST_URL_ENV) {
        Some(value) => Some(value.into_string().map_err(|_| TestkitError::NotUnicode {
            variable: TEST_URL_ENV,
        })?),
        None => None,
    };
    let local = Server {
        host: "127.0.0.1".to_owned(),
        port: 5432,
        user: "postgres".to_owned(),
        password: None,
        admin_db: "postgres".to_owned(),
    };
    let server = resolve(test_url.as_deref(), &local)?;
    *resolved = Some(server.clone());
    Ok(server)
}

/// The resolution order of [`default_server`], with its inputs made explicit.
pub(crate) fn resolve(test_url: Option<&str>, local: &Server) -> Result<Server, TestkitError> {
    if let Some(url) = test_url.map(str::trim).filter(|url| !url.is_empty()) {
        let env_error = |source| TestkitError::EnvServer {
            source: Box::new(source),
        };
        let server = Server::from_url(url).map_err(env_error)?;
        probe(&server, Deadlines::ADMIN).map_err(env_error)?;
        tracing::debug!(server = %server.describe(), "using the server named by {TEST_URL_ENV}");
        return Ok(server);
    }
    match probe(local, Deadlines::PROBE) {
        Ok(()) => {
            tracing::debug!(server = %local.describe(), "using the local server");
            return Ok(local.clone());
        }
        Err(error) => tracing::debug!(
            server = %local.describe(),
            error = &error as &dyn std::error::Error,
            "the local server is not usable; starting a throwaway cluster"
        ),
    }
    match TestCluster::shared() {
        Ok(cluster) => Ok(cluster.server()),
        Err(source) => Err(TestkitError::NoServer {
            source: Box::new(source),
        }),
    }
}

/// Checks that `server` answers and that its user may create databases.
fn probe(server: &Server, deadlines: Deadlines) -> Result<(), TestkitError> {
    let privileged = run_admin(server, "checking privileges", deadlines, |client| {
        let row = client.query_one(
            "SELECT coalesce((SELECT rolsuper OR rolcreatedb FROM pg_roles \
                              WHERE rolname = current_user), false)",
            &[],
        )?;
        Ok(row.get::<_, bool>(0))
    })?;
    if privileged {
        Ok(())
    } else {
        Err(TestkitError::NotPrivileged {
            user: server.user.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn without_a_url_or_a_local_server_a_throwaway_cluster_is_used() {
        // Nothing listens on port 1.
        let absent = Server {
            port: 1,
            ..TestCluster::shared().unwrap().server()
        };
        let server = resolve(None, &absent).unwrap();
        assert_eq!(server, TestCluster::shared().unwrap().server());
    }

    #[test]
    fn a_blank_url_counts_as_unset() {
        let absent = Server {
            port: 1,
            ..TestCluster::shared().unwrap().server()
        };
        assert!(resolve(Some("  "), &absent).is_ok());
    }

    #[test]
    fn an_unusable_url_is_reported_as_such() {
        let absent = Server {
            port: 1,
            ..TestCluster::shared().unwrap().server()
        };
        let error = resolve(Some("postgres://postgres@127.0.0.1:1/postgres"), &absent).unwrap_err();
        assert!(matches!(error, TestkitError::EnvServer { .. }), "{error:?}");
        let cause = std::error::Error::source(&error).unwrap();
        assert!(
            cause.to_string().starts_with("could not connect"),
            "{cause}"
        );
    }
}
