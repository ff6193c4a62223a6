//! Pool status snapshots and counters, filled in the same way by both
//! backends.

use std::time::Duration;

/// A snapshot of an engine's pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatus {
    /// The most connections the pool may hold: `pool_size + max_overflow`.
    pub max_size: usize,
    /// Open physical connections, idle or in use.
    pub size: usize,
    /// Open connections waiting in the pool.
    pub idle: usize,
    /// Connections checked out by callers.
    pub in_use: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
}

/// What a drain (`Engine::close(deadline)`) found: how many of the
/// connections checked out when it began came back by the deadline, and
/// how many did not. Those still out are closed as soon as they are
/// returned (the engine is closed), never handed out again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CloseReport {
    /// Connections returned before the deadline (closed on return).
    pub returned: usize,
    /// Connections still checked out at the deadline, closed when their
    /// holders return them.
    pub forced: usize,
}

/// Why a physical connection was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// Older than `pool_recycle`.
    Expired,
    /// Idle longer than `idle_timeout`.
    Idle,
    /// Found broken (closed by the server, failed pre-ping, I/O error).
    Broken,
    /// Returned while the pool already held `pool_size` idle connections:
    /// an overflow connection is not kept.
    Overflow,
    /// Returned in a state that could not be cleaned (open transaction,
    /// cancelled query) and discarded rather than reused.
    Dirty,
    /// A connection callback failed on it.
    CallbackFailed,
    /// The engine was disposed.
    Disposed,
    /// Its server no longer has the role `target_session_attrs` asks for
    /// (a primary demoted to a standby), or it refused a write (25006)
    /// under a target that needs writes.
    WrongRole,
}

impl CloseReason {
    /// Every reason, in a fixed order. A slice rather than an array, so
    /// that adding a reason changes no public type.
    pub const ALL: &'static [CloseReason] = &[
        Self::Expired,
        Self::Idle,
        Self::Broken,
        Self::Overflow,
        Self::Dirty,
        Self::CallbackFailed,
        Self::Disposed,
        Self::WrongRole,
    ];

    /// How many reasons there are: the size of the private per-reason
    /// counter arrays.
    pub(crate) const COUNT: usize = Self::ALL.len();

    /// The reason as a short lowercase word, as logged.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Idle => "idle",
            Self::Broken => "broken",
            Self::Overflow => "overflow",
            Self::Dirty => "dirty",
            Self::CallbackFailed => "callback_failed",
            Self::Disposed => "disposed",
            Self::WrongRole => "wrong_role",
        }
    }

    // The reason's index in `ALL` and in the counter arrays.
    pub(crate) fn slot(self) -> usize {
        match self {
            Self::Expired => 0,
            Self::Idle => 1,
            Self::Broken => 2,
            Self::Overflow => 3,
            Self::Dirty => 4,
            Self::CallbackFailed => 5,
            Self::Disposed => 6,
            Self::WrongRole => 7,
        }
    }
}

/// Cumulative counters of an engine since it was created.
///
/// Closed connections are counted per [`CloseReason`], read with
/// [`closed`](Self::closed), [`closed_total`](Self::closed_total) and
/// [`closed_by_reason`](Self::closed_by_reason); their storage is private
/// so that a new reason is not a breaking change. Test doubles start from
/// `PoolCounters::default()` and set counts with
/// [`with_closed`](Self::with_closed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolCounters {
    /// Physical connections opened.
    pub created: u64,
    // Physical connections closed, indexed by `CloseReason::slot`.
    pub(crate) closed: [u64; CloseReason::COUNT],
    /// Successful checkouts.
    pub acquired: u64,
    /// Checkouts that gave up after `pool_timeout`.
    pub acquire_timeouts: u64,
    /// Total time callers spent waiting for checkouts (successful or not).
    pub total_wait: Duration,
}

impl PoolCounters {
    /// Connections closed for `reason`.
    #[must_use]
    pub fn closed(&self, reason: CloseReason) -> u64 {
        self.closed[reason.slot()]
    }

    /// Connections closed for any reason.
    #[must_use]
    pub fn closed_total(&self) -> u64 {
        self.closed.iter().sum()
    }

    /// Connections closed for each reason, every reason of
    /// [`CloseReason::ALL`] in its order (zeros included).
    pub fn closed_by_reason(&self) -> impl Iterator<Item = (CloseReason, u64)> + '_ {
        CloseReason::ALL
            .iter()
            .map(|&reason| (reason, self.closed(reason)))
    }

    /// These counters with `count` connections closed for `reason`, for
    /// test doubles that report pool activity.
    #[must_use]
    pub fn with_closed(mut self, reason: CloseReason, count: u64) -> Self {
        self.closed[reason.slot()] = count;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_have_distinct_slots() {
        let mut slots: Vec<usize> = CloseReason::ALL.iter().map(|r| r.slot()).collect();
        slots.dedup();
        assert_eq!(slots, (0..CloseReason::COUNT).collect::<Vec<_>>());
    }

    #[test]
    fn test_doubles_set_closed_counts() {
        let counters = PoolCounters::default()
            .with_closed(CloseReason::Idle, 4)
            .with_closed(CloseReason::Dirty, 1);
        assert_eq!(counters.closed(CloseReason::Idle), 4);
        assert_eq!(counters.closed(CloseReason::Dirty), 1);
        assert_eq!(counters.closed(CloseReason::Broken), 0);
        assert_eq!(counters.closed_total(), 5);
    }
}
