//! A database of its own for a piece of work, the way a test gets one:
//! `cargo run -p uno-db-testkit --example per_test_database`.
#![allow(clippy::print_stdout)]

use uno_db_testkit::TestDb;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let db = TestDb::new()?;
    let mut client = postgres::Client::connect(db.url(), postgres::NoTls)?;
    client.batch_execute("CREATE TABLE users (name text); INSERT INTO users VALUES ('alice')")?;
    let count: i64 = client.query_one("SELECT count(*) FROM users", &[])?.get(0);
    println!(
        "database {} on {}:{} holds {count} user",
        db.name(),
        db.host(),
        db.port()
    );
    Ok(())
}
