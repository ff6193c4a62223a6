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

/// Where the next statement of a multiplexed client goes (see
/// [`pick_shared`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedPick {
    /// To the shared connection at `index`, the least loaded of those that
    /// take statements. With `replace`, some others take none (broken,
    /// retired or never opened): the backend replaces them in the
    /// background, so that the statement does not wait for a connect.
    Use {
        /// The connection's place.
        index: usize,
        /// Whether to replace the others in the background.
        replace: bool,
    },
    /// None takes statements: open the connection at this place (the
    /// first from the rotating start that takes none, so that concurrent
    /// callers open different ones) and send there, waiting at most
    /// `pool_timeout` in all.
    Open(usize),
}

/// Which shared connection takes the next statement. `loads` has one
/// entry per place: `Some(n)` for a connection that takes statements with
/// `n` in flight, `None` for one that takes none. Among those that take
/// statements the one with the fewest in flight wins, ties going to the
/// first from `start` on (callers pass a rotating `start`, so that equal
/// loads spread). `None` when `loads` is empty.
#[must_use]
pub fn pick_shared(loads: &[Option<usize>], start: usize) -> Option<SharedPick> {
    let count = loads.len();
    let order = || (0..count).map(move |offset| (start + offset) % count);
    let mut best: Option<(usize, usize)> = None;
    for index in order() {
        if let Some(load) = loads[index]
            && best.is_none_or(|(_, fewest)| load < fewest)
        {
            best = Some((index, load));
            if load == 0 {
                break;
            }
        }
    }
    match best {
        Some((index, _)) => Some(SharedPick::Use {
            index,
            replace: loads.iter().any(Option::is_none),
        }),
        None => order()
            .find(|&index| loads[index].is_none())
            .map(SharedPick::Open),
    }
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
        let used = |index, replace| Some(SharedPick::Use { index, replace });
        assert_eq!(pick_shared(&[], 0), None);
        assert_eq!(pick_shared(&[Some(3), Some(1), Some(2)], 0), used(1, false));
        assert_eq!(pick_shared(&[Some(3), None, Some(3)], 0), used(0, true));
        assert_eq!(pick_shared(&[Some(3), None, Some(3)], 1), used(2, true));
        assert_eq!(pick_shared(&[Some(0), Some(0)], 1), used(1, false));
        assert_eq!(pick_shared(&[Some(0), Some(0)], 5), used(1, false));
    }

    #[test]
    fn with_none_usable_concurrent_callers_open_different_ones() {
        assert_eq!(pick_shared(&[None, None], 0), Some(SharedPick::Open(0)));
        assert_eq!(pick_shared(&[None, None], 1), Some(SharedPick::Open(1)));
        assert_eq!(
            pick_shared(&[None, None, None], 7),
            Some(SharedPick::Open(1))
        );
    }
}
