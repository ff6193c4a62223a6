//! The state an engine shares with its pool manager and its physical
//! connections.

use std::sync::atomic::{AtomicBool, Ordering};

use uno_db_core::events::EngineEvents;
use uno_db_core::{ConnectionConfig, PoolMetrics};

/// Configuration, counters and the disposed flag of one engine. Held by the
/// r2d2 manager and every physical connection, so it must not own the pool
/// (that would be a reference cycle).
#[derive(Debug)]
pub(crate) struct EngineState {
    pub(crate) config: ConnectionConfig,
    pub(crate) metrics: PoolMetrics,
    disposed: AtomicBool,
}

impl EngineState {
    pub(crate) fn new(config: ConnectionConfig) -> Self {
        let metrics = PoolMetrics::for_config(&config);
        Self {
            config,
            metrics,
            disposed: AtomicBool::new(false),
        }
    }

    pub(crate) fn events(&self) -> EngineEvents<'_> {
        EngineEvents::new(&self.config)
    }

    pub(crate) fn is_disposed(&self) -> bool {
        self.disposed.load(Ordering::Acquire)
    }

    /// Marks the engine disposed; returns whether it already was.
    pub(crate) fn mark_disposed(&self) -> bool {
        self.disposed.swap(true, Ordering::AcqRel)
    }
}
