//! [`Endpoint`]: one server of a configuration's host list.

use std::fmt;
use std::net::IpAddr;

/// One server a configuration can connect to: a host with its port and,
/// when `hostaddr` is set, the address to connect to instead of resolving
/// the host name (the name is still used for TLS and the password file).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    host: String,
    port: u16,
    address: Option<IpAddr>,
}

impl Endpoint {
    pub(crate) fn new(host: String, port: u16, address: Option<IpAddr>) -> Self {
        Self {
            host,
            port,
            address,
        }
    }

    /// The host name, IP address or Unix socket directory.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port (of the TCP address, or of the socket file's name).
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The numeric address to connect to (`hostaddr`), if given.
    #[must_use]
    pub fn address(&self) -> Option<IpAddr> {
        self.address
    }
}

impl fmt::Display for Endpoint {
    /// `host:port`, IPv6 in brackets, the `hostaddr` after it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)?;
        } else {
            write!(f, "{}:{}", self.host, self.port)?;
        }
        match self.address {
            Some(address) => write!(f, " ({address})"),
            None => Ok(()),
        }
    }
}
