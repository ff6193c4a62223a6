//! The test kit's conformance suite against this backend: the one place it
//! runs for it (not also from the workspace's `tests/it`).

uno_db_testkit::blocking_conformance!(uno_db_sync::SyncEngineFactory::new());

/// TLS and credentials, against the test kit's TLS and plaintext clusters.
mod security {
    use std::sync::Arc;

    use uno_db_core::CredentialRequest;
    use uno_db_core::blocking::{CredentialProvider, EngineFactory};
    use uno_db_sync::SyncEngineFactory;

    fn with_provider(provider: Arc<dyn CredentialProvider>) -> Box<dyn EngineFactory> {
        Box::new(SyncEngineFactory::with_credential_provider(
            move |request: &CredentialRequest| provider.password(request),
        ))
    }

    uno_db_testkit::blocking_security_conformance!(SyncEngineFactory::new(), with_provider);
}

/// High availability: host selection, read routing, role re-checks and
/// failover, each case against a primary and two standbys of its own.
mod ha {
    uno_db_testkit::blocking_ha_conformance!(uno_db_sync::SyncEngineFactory::new());
}

/// The suite behind PgBouncer in transaction mode.
mod pgbouncer {
    uno_db_testkit::blocking_pgbouncer_conformance!(uno_db_sync::SyncEngineFactory::new());
}

/// `LISTEN`/`NOTIFY`: the listener, its reconnects and channel quoting.
mod listen {
    uno_db_testkit::blocking_listen_conformance!(uno_db_sync::SyncEngineFactory::new());
}

/// Streamed rows and `COPY`.
mod streaming {
    uno_db_testkit::blocking_streaming_conformance!(uno_db_sync::SyncEngineFactory::new());
}

/// Pool operations: leak detection, `min_idle` and `warm_up`, draining
/// with `close(deadline)`, resizing at runtime.
mod ops {
    uno_db_testkit::blocking_ops_conformance!(uno_db_sync::SyncEngineFactory::new());
}

/// Per-transaction server limits (`statement_timeout`, `lock_timeout`,
/// `idle_in_transaction_session_timeout`).
mod tx {
    uno_db_testkit::blocking_tx_conformance!(uno_db_sync::SyncEngineFactory::new());
}

/// Spans, metrics and log levels (docs/observability.md).
mod observability {
    uno_db_testkit::blocking_observability_conformance!(uno_db_sync::SyncEngineFactory::new());
}
