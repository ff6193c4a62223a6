//! The rules of the multiplexed mode: which statements may share a
//! connection with other callers' statements, and which shared connection
//! the next one goes to.
//!
//! A multiplexed client pipelines autocommit statements of many callers
//! over a few shared connections. A statement may go there only when it
//! leaves nothing in the session and relies on nothing left there (read
//! from its SQL by [`SqlEffects`]): everything else needs a connection of
//! its own, from a checkout or a session.

use super::sql_effects::SqlEffects;
use crate::error::{Error, ErrorKind, Result};

/// The SQL a multiplexed client runs for `text`, the text a statement
/// method received: `text` itself, or the SQL of a [`Statement`] (a
/// statement prepared on a pooled connection runs by its text: a
/// multiplexed client prepares and caches it on each shared connection
/// itself).
///
/// [`Statement`]: crate::Statement
#[must_use]
pub fn multiplexed_sql(text: &str) -> &str {
    crate::statement::split_marked(text).map_or(text, |(_, sql)| sql)
}

/// Whether `sql` may run on a shared connection: one extended-protocol
/// statement (`batch` false) or a simple-protocol batch of `;`-separated
/// statements (`batch` true).
///
/// # Errors
///
/// [`Unsupported`](ErrorKind::Unsupported) when the SQL may change or rely
/// on session state (see [`SqlEffects::touches_session`]), open a
/// transaction, change the role or mention the search path: on a shared
/// connection it would leak to other callers or miss what an earlier
/// statement of its caller left. Nothing is sent.
pub fn admit_multiplexed(sql: &str, batch: bool) -> Result<()> {
    let effects = if batch {
        SqlEffects::of_batch(sql)
    } else {
        SqlEffects::of_statement(sql)
    };
    if effects == SqlEffects::default() {
        return Ok(());
    }
    let what = if effects.opens_transaction {
        "may open a transaction"
    } else if effects.changes_role {
        "may change the role"
    } else if effects.changes_search_path {
        "may change the search path"
    } else {
        "may change or rely on session state (a setting, LISTEN, a prepared statement or \
         cursor, a temporary object, a session advisory lock, currval/lastval, a DO block...)"
    };
    Err(Error::with_message(
        ErrorKind::Unsupported,
        format!(
            "the statement {what}, which a multiplexed client cannot keep: its statements \
             share connections with other callers' statements; run it on a connection from \
             connect() or in a session()"
        ),
    ))
}

/// Which shared connection takes the next statement: among those that
/// take statements (`Some(n)`: `n` statements in flight; `None`: broken
/// or retiring), the one with the fewest in flight, ties going to the
/// first from `start` on (callers pass a rotating `start` so that equal
/// loads spread). `None` when none takes statements.
#[must_use]
pub fn least_loaded(loads: &[Option<usize>], start: usize) -> Option<usize> {
    let count = loads.len();
    let mut best: Option<(usize, usize)> = None;
    for offset in 0..count {
        let index = (start + offset) % count;
        if let Some(load) = loads[index]
            && best.is_none_or(|(_, fewest)| load < fewest)
        {
            best = Some((index, load));
            if load == 0 {
                break;
            }
        }
    }
    best.map(|(index, _)| index)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_statements_that_leave_the_session_alone_are_admitted() {
        admit_multiplexed("SELECT $1::int4 + 1", false).unwrap();
        admit_multiplexed("INSERT INTO t VALUES (1)", false).unwrap();
        admit_multiplexed("SELECT 1; SELECT 2", true).unwrap();
        for (sql, batch, says) in [
            ("BEGIN", true, "transaction"),
            ("SELECT 1; BEGIN", true, "transaction"),
            ("SET ROLE other", false, "role"),
            ("SET search_path = x", false, "search path"),
            ("SET work_mem = '1GB'", false, "session state"),
            ("LISTEN ch", false, "session state"),
            ("CREATE TEMP TABLE t (a int)", false, "session state"),
            ("SELECT pg_advisory_lock(1)", false, "session state"),
        ] {
            let error = admit_multiplexed(sql, batch).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Unsupported, "{sql}");
            let text = error.to_string();
            assert!(
                text.contains(says) && text.contains("connect()"),
                "{sql}: {text}"
            );
        }
    }

    #[test]
    fn a_prepared_statement_runs_by_its_text() {
        let statement = crate::Statement::new("SELECT 1", Vec::new(), Vec::new());
        assert_eq!(multiplexed_sql(&statement.prepared_on(7)), "SELECT 1");
        assert_eq!(multiplexed_sql("SELECT 2"), "SELECT 2");
    }

    #[test]
    fn the_least_loaded_usable_connection_is_picked() {
        assert_eq!(least_loaded(&[], 0), None);
        assert_eq!(least_loaded(&[None, None], 1), None);
        assert_eq!(least_loaded(&[Some(3), Some(1), Some(2)], 0), Some(1));
        assert_eq!(least_loaded(&[Some(3), None, Some(3)], 0), Some(0));
        assert_eq!(least_loaded(&[Some(3), None, Some(3)], 1), Some(2));
        assert_eq!(least_loaded(&[Some(0), Some(0)], 1), Some(1));
        assert_eq!(least_loaded(&[Some(0), Some(0)], 5), Some(1));
    }
}
