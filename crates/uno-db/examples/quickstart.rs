//! The README's example: `cargo run -p uno-db --example quickstart`.
//! Connects to `DATABASE_URL` (or `UNO_DB_*`/`PG*`), else the local server.
//! With no `DATABASE_URL` and no server answering where the environment
//! points, it starts a throwaway PostgreSQL from the local binaries
//! (`initdb`, `pg_ctl`; the test kit's `TestCluster`) and removes it on exit,
//! also on Ctrl-C.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use uno_db::{ConnectionConfig, DatabaseFactory, ErrorKind, TransactionOptions};
use uno_db_testkit::TestCluster;

/// How long the configured server has to answer before the example starts
/// its own.
const ANSWER_WAIT: Duration = Duration::from_secs(3);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let configured = ConnectionConfig::from_env()?;
    let throwaway = if std::env::var_os("DATABASE_URL").is_none() && !answers(&configured).await? {
        println!("no server answers at {configured}: starting a throwaway PostgreSQL");
        Some(tokio::task::spawn_blocking(TestCluster::new).await??)
    } else {
        None
    };
    let config = match &throwaway {
        Some(cluster) => cluster.admin_url().parse()?,
        None => configured,
    };

    let db = DatabaseFactory::new(config);
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
    drop(conn);

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
    .await??;
    println!("the blocking backend says {}", row.get::<_, i32>("n"));
    db.dispose();
    if throwaway.is_some() {
        println!("removing the throwaway PostgreSQL");
    }
    Ok(())
}

/// Whether the server `config` names accepts connections: any answer
/// (even a refused password) counts, only silence does not.
async fn answers(config: &ConnectionConfig) -> Result<bool, uno_db::Error> {
    let probe = config.to_builder().pool_timeout(ANSWER_WAIT).build()?;
    let db = DatabaseFactory::new(probe);
    let outcome = db.async_engine()?.connect().await;
    db.dispose();
    Ok(match outcome {
        Ok(_) => true,
        Err(error) => !matches!(error.kind(), ErrorKind::Connect | ErrorKind::PoolTimeout),
    })
}
