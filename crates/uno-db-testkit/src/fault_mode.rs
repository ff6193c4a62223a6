//! What a fault proxy does to the traffic through it.

use std::time::Duration;

/// The fault a [`FaultProxy`](crate::FaultProxy) injects; set with its methods.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultMode {
    /// Traffic flows unchanged.
    #[default]
    PassThrough,
    /// Every chunk of data is held for this long before it is forwarded, in both directions.
    Latency(Duration),
    /// Nothing is forwarded in either direction, and connections stay open: new connections
    /// are accepted but get no answer, existing ones go silent. What a client sees of a
    /// server lost in a network partition or a failover.
    BlackHole,
    /// New connections are refused (the listening socket is closed); existing ones go on.
    Refuse,
}
