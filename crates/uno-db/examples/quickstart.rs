//! The README's example: `cargo run -p uno-db --example quickstart`.
//! Connects to `DATABASE_URL` (or `UNO_DB_*`/`PG*`), else the local server.
#![allow(clippy::print_stdout)]

use uno_db::{ConnectionConfig, DatabaseFactory, TransactionOptions};

#[tokio::main]
async fn main() -> Result<(), uno_db::Error> {
    let db = DatabaseFactory::new(ConnectionConfig::from_env()?);
    println!("connecting to {}", db.config()); // the password is masked

    let engine = db.async_engine()?;
    let mut conn = engine.connect().await?;
    let row = conn
        .query_one(
            "SELECT $1::text || current_database() AS hello",
            &[&"hello from "],
        )
        .await?;
    println!("{}", row.get::<_, &str>("hello"));

    let mut session = engine
        .session(&TransactionOptions::new().read_only(true))
        .await?;
    let row = session
        .query_one("SELECT count(*) AS n FROM pg_stat_activity", &[])
        .await?;
    println!("{} server sessions", row.get::<_, i64>("n"));
    session.commit().await?;

    // The blocking backend, from a thread where blocking is fine.
    let sync_engine = db.sync_engine()?;
    let row = tokio::task::spawn_blocking(move || {
        sync_engine.connect()?.query_one("SELECT 40 + 2 AS n", &[])
    })
    .await
    .map_err(|e| uno_db::Error::new(uno_db::ErrorKind::Unsupported).with_source(e))??;
    println!("the blocking backend says {}", row.get::<_, i32>("n"));
    db.dispose();
    Ok(())
}
