//! [`DescribePlan`]: how a backend learns the parameter types of a
//! statement it sends as the unnamed statement (statement cache off).

use std::sync::Arc;

use postgres_types::Type;

use crate::error::{Error, ErrorKind};

/// How to learn the parameter types of a statement with parameters before
/// sending it as the unnamed statement; from
/// [`ConnState::describe_plan`](super::ConnState::describe_plan).
#[derive(Debug, Clone)]
pub enum DescribePlan {
    /// Known from an earlier describe on this connection: send at once,
    /// one round trip.
    Known(Arc<[Type]>),
    /// Prepare it and read the types from the prepared statement.
    Describe,
    /// As `Describe`, but between `BEGIN` and `ROLLBACK` (the backend runs
    /// [`PINNED_BEGIN`] and [`PINNED_END`] around it, dropping the prepared
    /// statement before the end): behind PgBouncer in transaction mode a
    /// named statement prepared outside a transaction stays on whichever
    /// server connection took it, where its `Close` may never arrive and
    /// its name may collide with another client's.
    DescribeInTransaction,
}

/// Opens the transaction that keeps one server connection behind PgBouncer
/// for a describe.
pub const PINNED_BEGIN: &str = "BEGIN";

/// Ends it; nothing was written.
pub const PINNED_END: &str = "ROLLBACK";

/// The error for `given` parameters to a statement that takes `expected`,
/// found by a describe (the driver would find it only when the prepared
/// statement is used, which a describe in a transaction does not keep).
#[must_use]
pub(super) fn parameter_count_mismatch(expected: usize, given: usize) -> Error {
    Error::with_message(
        ErrorKind::Encode,
        format!("the statement takes {expected} parameters, and {given} were given"),
    )
}
