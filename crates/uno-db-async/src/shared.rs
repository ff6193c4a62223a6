//! The state an engine shares with its pool manager, its connections and
//! its background reaper.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use uno_db_core::events::EngineEvents;
use uno_db_core::{AsyncCallbacks, ConnectionConfig, Error, ErrorKind, PoolMetrics};

/// What every part of one engine needs to see.
pub(crate) struct EngineShared {
    pub(crate) config: ConnectionConfig,
    pub(crate) driver: tokio_postgres::Config,
    pub(crate) callbacks: AsyncCallbacks,
    pub(crate) metrics: PoolMetrics,
    /// `SET ROLE ...`, quoted once.
    pub(crate) set_role_sql: Option<String>,
    /// `SET search_path TO ...`, quoted once.
    pub(crate) search_path_sql: Option<String>,
    pub(crate) disposed: AtomicBool,
    pub(crate) reaper_started: AtomicBool,
    /// Connection attempts under way.
    pub(crate) connecting: AtomicUsize,
    last_connect_error: Mutex<Option<Error>>,
}

impl EngineShared {
    pub(crate) fn new(
        config: ConnectionConfig,
        driver: tokio_postgres::Config,
        callbacks: AsyncCallbacks,
        set_role_sql: Option<String>,
        search_path_sql: Option<String>,
    ) -> Self {
        let metrics = PoolMetrics::for_config(&config);
        Self {
            config,
            driver,
            callbacks,
            metrics,
            set_role_sql,
            search_path_sql,
            disposed: AtomicBool::new(false),
            reaper_started: AtomicBool::new(false),
            connecting: AtomicUsize::new(0),
            last_connect_error: Mutex::new(None),
        }
    }

    pub(crate) fn events(&self) -> EngineEvents<'_> {
        EngineEvents::new(&self.config)
    }

    pub(crate) fn is_disposed(&self) -> bool {
        self.disposed.load(Ordering::Acquire)
    }

    /// Remembers why the latest connection attempt failed, for checkout
    /// timeouts to report.
    pub(crate) fn remember_connect_error(&self, error: &Error) {
        *self
            .last_connect_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error.clone());
    }

    /// Forgets the last failure once connecting works again, so a later
    /// timeout from plain exhaustion is not blamed on it.
    pub(crate) fn forget_connect_error(&self) {
        *self
            .last_connect_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Why a checkout that gave up could not get a connection, if
    /// connecting is the problem: the last connect error, or else an
    /// attempt still waiting for the server (a server that accepts but
    /// never answers fails no attempt before `connect_timeout`).
    pub(crate) fn connect_trouble(&self) -> Option<Error> {
        self.last_connect_error().or_else(|| {
            (self.connecting.load(Ordering::Acquire) > 0).then(|| {
                Error::with_message(
                    ErrorKind::Connect,
                    format!(
                        "a connection attempt to {} has had no answer yet",
                        self.config.target()
                    ),
                )
                .with_source(io::Error::from(io::ErrorKind::TimedOut))
            })
        })
    }

    /// The last connect error (sharing its whole cause chain), if
    /// connecting is failing.
    fn last_connect_error(&self) -> Option<Error> {
        self.last_connect_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
