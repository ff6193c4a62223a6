//! The template database every per-test database is cloned from.

use std::sync::{Mutex, PoisonError};

use crate::TestkitError;
use crate::admin::{Deadlines, run_admin};
use crate::server::Server;
use crate::sql_quote::quote_ident;

/// The template database the test kit creates once per server.
pub(crate) const TEMPLATE_DB: &str = "uno_db_test_template";

/// Advisory lock key guarding the template's creation across test processes (`uno_dbt1` in ASCII).
const TEMPLATE_LOCK_KEY: i64 = 0x756e_6f5f_6462_7431;

/// What the test kit learnt about a server while preparing it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PreparedServer {
    /// `server_version_num`, e.g. 150004.
    pub(crate) version_num: i32,
}

impl PreparedServer {
    /// Whether `DROP DATABASE ... WITH (FORCE)` exists (Postgres 13 and later).
    pub(crate) fn has_drop_force(self) -> bool {
        self.version_num >= 130_000
    }
}

/// Servers this process has prepared already.
static PREPARED: Mutex<Vec<(Server, PreparedServer)>> = Mutex::new(Vec::new());

/// Makes sure `server` has the template database and that its user may create databases,
/// and drops the test databases that processes of this machine left behind when they died.
///
/// Runs once per server per process; parallel test processes are serialised by an advisory
/// lock, so the template is created exactly once per server.
pub(crate) fn prepare(server: &Server) -> Result<PreparedServer, TestkitError> {
    let mut prepared = PREPARED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, info)) = prepared.iter().find(|(known, _)| known == server) {
        return Ok(*info);
    }
    let (info, privileged) = run_admin(
        server,
        "preparing the template database",
        Deadlines::ADMIN,
        |client| {
            let row = client.query_one(
                "SELECT current_setting('server_version_num')::int4, \
                        coalesce((SELECT rolsuper OR rolcreatedb FROM pg_roles \
                                  WHERE rolname = current_user), false)",
                &[],
            )?;
            let info = PreparedServer {
                version_num: row.get(0),
            };
            let privileged: bool = row.get(1);
            if privileged {
                create_template_once(client)?;
                crate::stale_db::sweep(client, info.has_drop_force())?;
            }
            Ok((info, privileged))
        },
    )?;
    if !privileged {
        return Err(TestkitError::NotPrivileged {
            user: server.user.clone(),
        });
    }
    prepared.push((server.clone(), info));
    Ok(info)
}

fn create_template_once(client: &mut postgres::Client) -> Result<(), postgres::Error> {
    client.execute("SELECT pg_advisory_lock($1)", &[&TEMPLATE_LOCK_KEY])?;
    let exists = client
        .query_opt(
            "SELECT 1 FROM pg_database WHERE datname = $1",
            &[&TEMPLATE_DB],
        )?
        .is_some();
    if !exists {
        let name = quote_ident(TEMPLATE_DB);
        client.batch_execute(&format!(
            "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' \
             LC_COLLATE 'C' LC_CTYPE 'C'"
        ))?;
        client.batch_execute(&format!(
            "ALTER DATABASE {name} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"
        ))?;
        tracing::debug!(template = TEMPLATE_DB, "created the template database");
    }
    client.execute("SELECT pg_advisory_unlock($1)", &[&TEMPLATE_LOCK_KEY])?;
    Ok(())
}
