//! The pools uno-db is measured against, each built twice: on its own
//! defaults, as its documentation builds it (`(defaults)` in the output),
//! and on settings matching uno-db's (`(matching)`). What "matching" sets,
//! peer by peer:
//!
//! - deadpool-postgres: `wait_timeout` = uno-db's `pool_timeout` (its
//!   default has none: a checkout arms no timer and may wait forever).
//! - sqlx: `test_before_acquire(false)`: uno-db's checkout sends nothing
//!   to the server (it looks for a closed socket), sqlx's default pings
//!   every connection it hands out.
//! - `r2d2_postgres`: `test_on_check_out(false)`, for the same reason (its
//!   default runs an empty query on every checkout), and the statement
//!   prepared once per connection and kept with it, as uno-db's statement
//!   cache serves it (`r2d2_postgres` has no cache: its documentation sends
//!   the SQL text on every call, which prepares it each time).
//!
//! Every other setting (the pool's size, connections opened before
//! measuring, plaintext) is the same in both, and as uno-db's.

use std::time::Duration;

use r2d2::ManageConnection;
use r2d2_postgres::PostgresConnectionManager;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// uno-db's `pool_timeout` in every mode, and the wait of every peer on
/// matching settings.
pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// Which settings a peer runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settings {
    /// The peer's own defaults.
    Defaults,
    /// Settings matching uno-db's (see the module's documentation).
    Matching,
}

/// A deadpool-postgres pool of `size` connections through `connector`,
/// `RecyclingMethod::Fast` (its default), on `settings`.
pub(crate) fn deadpool<T>(
    config: tokio_postgres::Config,
    connector: T,
    size: usize,
    settings: Settings,
) -> Result<deadpool_postgres::Pool, BoxError>
where
    T: tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket> + Clone + Sync + Send + 'static,
    T::Stream: Sync + Send,
    T::TlsConnect: Sync + Send,
    <T::TlsConnect as tokio_postgres::tls::TlsConnect<tokio_postgres::Socket>>::Future: Send,
{
    let manager = deadpool_postgres::Manager::from_config(
        config,
        connector,
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    let builder = deadpool_postgres::Pool::builder(manager).max_size(size);
    let builder = match settings {
        Settings::Defaults => builder,
        // A wait timeout needs deadpool's runtime for its timer.
        Settings::Matching => builder
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(WAIT)),
    };
    Ok(builder.build()?)
}

/// An sqlx pool of `size` connections on `settings`, every connection
/// opened before it is returned.
pub(crate) async fn sqlx(
    url: &str,
    size: usize,
    settings: Settings,
) -> Result<sqlx::PgPool, BoxError> {
    let options = sqlx::postgres::PgPoolOptions::new().max_connections(u32::try_from(size)?);
    let options = match settings {
        Settings::Defaults => options,
        Settings::Matching => options.test_before_acquire(false).acquire_timeout(WAIT),
    };
    let pool = options.connect(url).await?;
    let mut held = Vec::with_capacity(size);
    for _ in 0..size {
        held.push(pool.acquire().await?);
    }
    drop(held);
    Ok(pool)
}

/// An `r2d2_postgres` pool of `size` connections on its defaults (plaintext;
/// the statement's SQL text sent on every call).
pub(crate) fn r2d2_defaults(
    url: &str,
    size: usize,
) -> Result<r2d2::Pool<PostgresConnectionManager<postgres::NoTls>>, BoxError> {
    let manager = PostgresConnectionManager::new(url.parse()?, postgres::NoTls);
    Ok(r2d2::Pool::builder()
        .max_size(u32::try_from(size)?)
        .build(manager)?)
}

/// An r2d2 pool of `size` connections on settings matching uno-db's: no
/// query on checkout, `sql` prepared once per connection.
pub(crate) fn r2d2_matching(
    url: &str,
    size: usize,
    sql: &'static str,
) -> Result<r2d2::Pool<PreparedManager>, BoxError> {
    let manager = PreparedManager {
        inner: PostgresConnectionManager::new(url.parse()?, postgres::NoTls),
        sql,
    };
    Ok(r2d2::Pool::builder()
        .max_size(u32::try_from(size)?)
        .connection_timeout(WAIT)
        .test_on_check_out(false)
        .build(manager)?)
}

/// `r2d2_postgres`'s manager with one statement prepared on every new
/// connection and kept with it: how an r2d2 user keeps a statement
/// prepared, since `r2d2_postgres` has no statement cache.
#[derive(Debug)]
pub(crate) struct PreparedManager {
    inner: PostgresConnectionManager<postgres::NoTls>,
    sql: &'static str,
}

impl ManageConnection for PreparedManager {
    type Connection = (postgres::Client, postgres::Statement);
    type Error = postgres::Error;

    fn connect(&self) -> Result<Self::Connection, Self::Error> {
        let mut client = self.inner.connect()?;
        let statement = client.prepare(self.sql)?;
        Ok((client, statement))
    }

    fn is_valid(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        self.inner.is_valid(&mut conn.0)
    }

    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        self.inner.has_broken(&mut conn.0)
    }
}
