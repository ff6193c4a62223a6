//! A drain (`close(deadline)`) as the kernel runs it: when to look again,
//! when it is over, and, past the deadline, what ends the connections
//! still checked out and how long that may take. The backends only look
//! at their pool's size, wait, and run the statement on a connection of
//! their own.

use std::time::{Duration, Instant};

use super::EngineCore;
use crate::error::{Error, ErrorKind, Result};
use crate::status::CloseReport;

/// How often a drain looks whether every checked-out connection is back.
const CLOSE_POLL: Duration = Duration::from_millis(10);

/// One drain under way (see [`EngineCore::drain`]).
#[derive(Debug)]
pub struct Drain {
    until: Instant,
    in_use: usize,
}

/// What a drain does next (see [`EngineCore::drain_step`]).
#[derive(Debug)]
pub enum DrainStep {
    /// It is over: return this.
    Done(CloseReport),
    /// Look at the pool again after this long.
    Wait(Duration),
    /// The deadline passed with connections still out: end them on the
    /// server, then hand the outcome to
    /// [`EngineCore::forced_close_ended`].
    Force(ForcedClose),
}

/// The end of a drain whose deadline passed: the statement that ends the
/// remaining connections' server processes (`None` when there is none to
/// end, or behind PgBouncer), to run on a connection of the backend's own
/// within [`limit`](Self::limit).
#[derive(Debug)]
pub struct ForcedClose {
    sql: Option<String>,
    limit: Duration,
    in_use: usize,
    left: usize,
}

impl ForcedClose {
    /// The statement to run (simple protocol), if any.
    #[must_use]
    pub fn sql(&self) -> Option<&str> {
        self.sql.as_deref()
    }

    /// How long connecting and running it may take in all.
    #[must_use]
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// The error when it took longer than [`limit`](Self::limit).
    #[must_use]
    pub fn timed_out(&self) -> Error {
        Error::with_message(
            ErrorKind::QueryTimeout,
            format!(
                "ending the remaining connections took longer than {:?}",
                self.limit
            ),
        )
    }
}

impl EngineCore {
    /// A drain begins (after `dispose`), with `in_use` connections still
    /// checked out, waiting for them at most `deadline`.
    #[must_use]
    pub fn drain(&self, deadline: Duration, in_use: usize) -> Drain {
        Drain {
            until: Instant::now() + deadline,
            in_use,
        }
    }

    /// What `drain` does now that `left` connections are still out.
    #[must_use]
    pub fn drain_step(&self, drain: &Drain, left: usize) -> DrainStep {
        if left == 0 {
            return DrainStep::Done(self.close_report(drain.in_use, 0));
        }
        let now = Instant::now();
        if now < drain.until {
            return DrainStep::Wait(CLOSE_POLL.min(drain.until - now));
        }
        DrainStep::Force(ForcedClose {
            sql: self.forced_close_sql(),
            limit: self.config().pool_timeout() + self.housekeeping_timeout() * 2,
            in_use: drain.in_use,
            left,
        })
    }

    /// The forced end of a drain ran (`outcome`: its statement's result;
    /// nothing when there was none to run): logged, and the drain's report.
    #[must_use]
    pub fn forced_close_ended(&self, forced: &ForcedClose, outcome: &Result<()>) -> CloseReport {
        if forced.sql.is_some() {
            self.events().forced_close_done(outcome.as_ref().err());
        }
        self.close_report(forced.in_use, forced.left)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::backend::CredentialSource;
    use crate::config::Driver;

    fn core() -> EngineCore {
        EngineCore::new(
            &"postgresql://app@db/x?pool_timeout=2&connect_timeout=3"
                .parse()
                .unwrap(),
            Driver::Any,
            CredentialSource::Configuration,
        )
        .unwrap()
    }

    #[test]
    fn a_drain_waits_in_short_looks_then_ends_or_forces() {
        let core = core();
        let drain = core.drain(Duration::from_secs(60), 3);
        match core.drain_step(&drain, 2) {
            DrainStep::Wait(wait) => assert_eq!(wait, CLOSE_POLL),
            other => panic!("{other:?}"),
        }
        match core.drain_step(&drain, 0) {
            DrainStep::Done(report) => assert_eq!(
                report,
                CloseReport {
                    returned: 3,
                    forced: 0
                }
            ),
            other => panic!("{other:?}"),
        }
        let late = core.drain(Duration::ZERO, 3);
        let DrainStep::Force(forced) = core.drain_step(&late, 1) else {
            panic!("past the deadline it forces");
        };
        // No connection registered a server process: nothing to run.
        assert_eq!(forced.sql(), None);
        assert_eq!(forced.limit(), Duration::from_secs(2 + 3 * 2));
        assert_eq!(forced.timed_out().kind(), ErrorKind::QueryTimeout);
        assert_eq!(
            core.forced_close_ended(&forced, &Ok(())),
            CloseReport {
                returned: 2,
                forced: 1
            }
        );
    }
}
