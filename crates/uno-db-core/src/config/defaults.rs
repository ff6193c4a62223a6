//! The built-in default of every [`ConnectionConfig`](crate::ConnectionConfig)
//! field, in one place. `docs/configuration.md` explains each choice.
//!
//! A default applies only when neither the builder, nor (when requested)
//! the environment, sets the field. No default waits forever.

use std::time::Duration;

use crate::config::{Driver, SslMode};

/// Default host: `localhost`.
pub const HOST: &str = "localhost";

/// Default port: `5432`, the port registered for Postgres.
pub const PORT: u16 = 5432;

/// Default login role: `postgres`.
pub const ROLE: &str = "postgres";

/// Default database: `postgres`, which every cluster has.
pub const DATABASE: &str = "postgres";

/// Default driver: [`Driver::Any`], whichever backend opens the engine.
pub const DRIVER: Driver = Driver::Any;

/// Default number of connections the pool keeps: `10`.
pub const POOL_SIZE: usize = 10;

/// Default number of extra connections opened under a burst: `10`.
pub const MAX_OVERFLOW: usize = 10;

/// Default longest wait for a pooled connection: 30 seconds.
pub const POOL_TIMEOUT: Duration = Duration::from_secs(30);

/// Default longest wait to establish one connection: 10 seconds.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default maximum connection lifetime: 30 minutes.
pub const POOL_RECYCLE: Option<Duration> = Some(Duration::from_secs(30 * 60));

/// Default time a connection may wait in the pool before it is closed: 10
/// minutes. It applies to every idle connection; the pool keeps no minimum.
pub const IDLE_TIMEOUT: Option<Duration> = Some(Duration::from_secs(10 * 60));

/// Default for pinging a connection before handing it out: `false`.
pub const PRE_PING: bool = false;

/// Default server-side statement timeout: none (the server's setting).
pub const STATEMENT_TIMEOUT: Option<Duration> = None;

/// Default TLS mode: [`SslMode::Prefer`], as libpq.
pub const SSL_MODE: SslMode = SslMode::Prefer;

/// Default TCP keepalive idle time: 60 seconds.
pub const KEEPALIVES_IDLE: Option<Duration> = Some(Duration::from_secs(60));

/// Default TCP user timeout (unacknowledged data): 30 seconds.
pub const TCP_USER_TIMEOUT: Option<Duration> = Some(Duration::from_secs(30));

/// Default per-connection prepared statement cache capacity: `256`.
pub const STATEMENT_CACHE_SIZE: usize = 256;
