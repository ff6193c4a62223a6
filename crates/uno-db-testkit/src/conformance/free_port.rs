//! A local port nobody listens on.

use std::net::TcpListener;

/// A port on 127.0.0.1 that was free a moment ago: connecting to it is
/// refused at once.
#[allow(clippy::expect_used)] // Test support: no free port means no test.
pub(super) fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}
