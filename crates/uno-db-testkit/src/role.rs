//! Login roles with passwords, for authentication tests.

use crate::TestkitError;
use crate::admin::{Deadlines, run_admin};
use crate::postgres_url::postgres_url;
use crate::server::Server;
use crate::sql_quote::{quote_ident, quote_literal};

/// The longest identifier Postgres keeps (`NAMEDATALEN - 1`).
const MAX_NAME_BYTES: usize = 63;

/// A login role with a password, created by [`TestCluster::create_role`](crate::TestCluster::create_role)
/// and dropped (best effort) when this value is dropped.
#[derive(Debug)]
pub struct TestRole {
    name: String,
    password: String,
    url: String,
    server: Server,
}

impl TestRole {
    pub(crate) fn create(server: Server, name: &str, password: &str) -> Result<Self, TestkitError> {
        validate_name(name)?;
        let statement = format!(
            "CREATE ROLE {} LOGIN PASSWORD {}",
            quote_ident(name),
            quote_literal(password)
        );
        run_admin(
            &server,
            &format!("creating role {name}"),
            Deadlines::ADMIN,
            move |client| client.batch_execute(&statement),
        )?;
        Ok(Self {
            name: name.to_owned(),
            password: password.to_owned(),
            url: postgres_url(&server.host, server.port, name, Some(password), "postgres"),
            server,
        })
    }

    /// Changes the role's password on the server (`ALTER ROLE ... PASSWORD`),
    /// as a password rotation does; [`password`](Self::password) and the
    /// URLs keep the original one. Blocks the calling thread (its own
    /// admin session, on a thread of its own, bounded).
    ///
    /// # Errors
    ///
    /// The server could not be reached or refused the statement.
    pub fn rotate_password(&self, new_password: &str) -> Result<(), TestkitError> {
        let statement = format!(
            "ALTER ROLE {} PASSWORD {}",
            quote_ident(&self.name),
            quote_literal(new_password)
        );
        run_admin(
            &self.server,
            &format!("rotating the password of role {}", self.name),
            Deadlines::ADMIN,
            move |client| client.batch_execute(&statement),
        )
    }

    /// The role's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The role's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// A URL for the `postgres` database as this role, with its password.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A URL for `database` as this role, with its password.
    pub fn url_for(&self, database: &str) -> String {
        postgres_url(
            &self.server.host,
            self.server.port,
            &self.name,
            Some(&self.password),
            database,
        )
    }

    /// A URL for `database` as this role but with `password` instead of the role's own.
    pub fn url_with_password(&self, database: &str, password: &str) -> String {
        postgres_url(
            &self.server.host,
            self.server.port,
            &self.name,
            Some(password),
            database,
        )
    }
}

impl Drop for TestRole {
    fn drop(&mut self) {
        let statement = format!("DROP ROLE IF EXISTS {}", quote_ident(&self.name));
        if let Err(error) = run_admin(
            &self.server,
            &format!("dropping role {}", self.name),
            Deadlines::ADMIN,
            move |client| client.batch_execute(&statement),
        ) {
            tracing::warn!(
                role = %self.name,
                error = &error as &dyn std::error::Error,
                "could not drop a test role"
            );
        }
    }
}

fn validate_name(name: &str) -> Result<(), TestkitError> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > MAX_NAME_BYTES {
        "PostgreSQL truncates names longer than 63 bytes"
    } else if name.contains('\0') {
        "it contains NUL"
    } else {
        return Ok(());
    };
    Err(TestkitError::InvalidName {
        name: name.to_owned(),
        reason,
    })
}
