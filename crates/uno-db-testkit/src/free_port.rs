//! Picking a TCP port for a server the test kit starts.

use std::net::TcpListener;

use crate::TestkitError;
use crate::server_config::LISTEN_HOST;

/// How many ports to try when another process takes the chosen free port first.
pub(crate) const PORT_ATTEMPTS: usize = 5;

/// A port on 127.0.0.1 that nothing listens on right now.
///
/// Another process may take it before our server binds it; callers retry with a new port
/// (up to [`PORT_ATTEMPTS`] times) when the server reports the address in use.
pub(crate) fn free_port() -> Result<u16, TestkitError> {
    TcpListener::bind((LISTEN_HOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|source| TestkitError::io("finding a free port", source))
}
