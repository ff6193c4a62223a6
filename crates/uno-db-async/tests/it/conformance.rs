//! The test kit's conformance suite against this backend: the one place it
//! runs for it (not also from the workspace's `tests/it`).

uno_db_testkit::nonblocking_conformance!(uno_db_async::AsyncEngineFactory::new());

/// TLS and credentials, against the test kit's TLS and plaintext clusters.
mod security {
    use std::sync::Arc;

    use uno_db_async::AsyncEngineFactory;
    use uno_db_core::CredentialRequest;
    use uno_db_core::nonblocking::{CredentialProvider, EngineFactory};

    fn with_provider(provider: Arc<dyn CredentialProvider>) -> Box<dyn EngineFactory> {
        Box::new(AsyncEngineFactory::with_credential_provider(
            move |request: CredentialRequest| {
                let provider = Arc::clone(&provider);
                async move { provider.password(&request).await }
            },
        ))
    }

    uno_db_testkit::nonblocking_security_conformance!(AsyncEngineFactory::new(), with_provider);
}

/// High availability: host selection, read routing, role re-checks and
/// failover, each case against a primary and two standbys of its own.
mod ha {
    uno_db_testkit::nonblocking_ha_conformance!(uno_db_async::AsyncEngineFactory::new());
}

/// The suite behind PgBouncer in transaction mode.
mod pgbouncer {
    uno_db_testkit::nonblocking_pgbouncer_conformance!(uno_db_async::AsyncEngineFactory::new());
}

/// `LISTEN`/`NOTIFY`: the listener, its reconnects and channel quoting.
mod listen {
    uno_db_testkit::nonblocking_listen_conformance!(uno_db_async::AsyncEngineFactory::new());
}

/// The multiplexed mode: the statement cases that apply to it, and its
/// own rules.
mod multiplex {
    uno_db_testkit::nonblocking_multiplex_conformance!(uno_db_async::AsyncEngineFactory::new());
}

/// Streamed rows and `COPY`.
mod streaming {
    uno_db_testkit::nonblocking_streaming_conformance!(uno_db_async::AsyncEngineFactory::new());
}

/// Pool operations: leak detection, `min_idle` and `warm_up`, draining
/// with `close(deadline)`, resizing at runtime.
mod ops {
    uno_db_testkit::nonblocking_ops_conformance!(uno_db_async::AsyncEngineFactory::new());
}

/// Per-transaction server limits (`statement_timeout`, `lock_timeout`,
/// `idle_in_transaction_session_timeout`).
mod tx {
    uno_db_testkit::nonblocking_tx_conformance!(uno_db_async::AsyncEngineFactory::new());
}

/// Spans, metrics and log levels (docs/observability.md).
mod observability {
    uno_db_testkit::nonblocking_observability_conformance!(uno_db_async::AsyncEngineFactory::new());
}
