//! `FaultProxy`: each fault as a client sees it.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};
use uno_db_testkit::{FaultMode, FaultProxy, TestDb};

use crate::deadline::{QUICK_TEST_LIMIT, within};

/// A database and a proxy in front of its server.
fn db_and_proxy() -> (TestDb, FaultProxy) {
    let db = TestDb::new().unwrap();
    let proxy = FaultProxy::start(db.socket_addr().unwrap()).unwrap();
    (db, proxy)
}

async fn connect(url: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

async fn select_one(client: &Client) -> Result<i32, tokio_postgres::Error> {
    Ok(client.query_one("SELECT 1", &[]).await?.get(0))
}

/// Runs an async test body with an outer time limit.
async fn limited(body: impl Future<Output = ()>) {
    tokio::time::timeout(QUICK_TEST_LIMIT, body)
        .await
        .expect("the test did not finish in time");
}

#[tokio::test]
async fn pass_through_forwards_everything() {
    limited(async {
        let (db, proxy) = db_and_proxy();
        assert_eq!(proxy.mode(), FaultMode::PassThrough);
        let client = connect(&db.url_through(&proxy)).await.unwrap();
        assert_eq!(select_one(&client).await.unwrap(), 1);
        let name: String = client
            .query_one("SELECT current_database()", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(name, db.name());
        assert_eq!(proxy.connections_accepted(), 1);
        assert_eq!(proxy.active_connections(), 1);

        drop(client);
        let deadline = Instant::now() + Duration::from_secs(5);
        while proxy.active_connections() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            proxy.active_connections(),
            0,
            "a closed connection is no longer active"
        );
    })
    .await;
}

#[test]
fn the_proxy_works_from_a_synchronous_test() {
    within(QUICK_TEST_LIMIT, || {
        let (db, proxy) = db_and_proxy();
        let mut client =
            postgres::Client::connect(&db.url_through(&proxy), postgres::NoTls).unwrap();
        client.simple_query("SELECT 1").unwrap();
        proxy.reset_all().unwrap();
        assert!(client.simple_query("SELECT 1").is_err());
    });
}

#[tokio::test]
async fn latency_delays_each_round_trip() {
    limited(async {
        let (db, proxy) = db_and_proxy();
        let client = connect(&db.url_through(&proxy)).await.unwrap();
        select_one(&client).await.unwrap();

        let latency = Duration::from_millis(150);
        proxy.latency(latency).unwrap();
        assert_eq!(proxy.mode(), FaultMode::Latency(latency));
        let started = Instant::now();
        select_one(&client).await.unwrap();
        let slow = started.elapsed();
        // The query goes through the proxy once in each direction.
        assert!(slow >= 2 * latency, "a round trip took only {slow:?}");

        proxy.restore().unwrap();
        let started = Instant::now();
        select_one(&client).await.unwrap();
        let fast = started.elapsed();
        assert!(
            fast < latency,
            "after restore a round trip still took {fast:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn black_hole_silences_connections_without_closing_them() {
    limited(async {
        let (db, proxy) = db_and_proxy();
        let url = db.url_through(&proxy);
        let client = connect(&url).await.unwrap();
        select_one(&client).await.unwrap();

        proxy.black_hole().unwrap();

        // An existing connection: the query gets no answer, and the connection stays open.
        let query = tokio::time::timeout(Duration::from_millis(500), select_one(&client)).await;
        assert!(
            query.is_err(),
            "the query should have timed out, got {query:?}"
        );
        assert!(!client.is_closed());
        assert_eq!(proxy.active_connections(), 1);

        // A new connection is accepted, but the server never answers.
        let accepted_before = proxy.connections_accepted();
        let attempt = tokio::time::timeout(Duration::from_millis(500), connect(&url)).await;
        assert!(attempt.is_err(), "connecting should have timed out");
        assert_eq!(proxy.connections_accepted(), accepted_before + 1);

        // When the partition heals, the held bytes flow and the old connection works again.
        proxy.restore().unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(5), select_one(&client)).await;
        assert_eq!(answer.unwrap().unwrap(), 1);
    })
    .await;
}

#[test]
fn black_hole_keeps_a_raw_connection_open_and_silent() {
    within(QUICK_TEST_LIMIT, || {
        let (_db, proxy) = db_and_proxy();
        proxy.black_hole().unwrap();
        let mut socket = TcpStream::connect(proxy.local_addr()).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        // An SSLRequest: a server would answer with one byte at once.
        socket.write_all(&[0, 0, 0, 8, 4, 210, 22, 47]).unwrap();
        let mut byte = [0_u8; 1];
        let error = socket.read(&mut byte).unwrap_err();
        assert!(
            matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "expected silence, got {error:?}"
        );
        proxy.restore().unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(
            socket.read(&mut byte).unwrap(),
            1,
            "the server answers after restore"
        );
        assert!(
            matches!(byte[0], b'N' | b'S'),
            "an answer to SSLRequest: {}",
            byte[0]
        );
    });
}

#[tokio::test]
async fn refuse_fails_new_connections_fast_and_restore_accepts_again() {
    limited(async {
        let (db, proxy) = db_and_proxy();
        let url = db.url_through(&proxy);
        let existing = connect(&url).await.unwrap();

        proxy.refuse().unwrap();
        assert_eq!(proxy.mode(), FaultMode::Refuse);

        let started = Instant::now();
        let error = TcpStream::connect(proxy.local_addr()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ConnectionRefused);
        let started_pg = Instant::now();
        assert!(connect(&url).await.is_err());
        assert!(started_pg.elapsed() < Duration::from_secs(1));
        assert!(started.elapsed() < Duration::from_secs(1));

        // Existing connections are not affected.
        assert_eq!(select_one(&existing).await.unwrap(), 1);

        proxy.restore().unwrap();
        let client = connect(&url).await.unwrap();
        assert_eq!(select_one(&client).await.unwrap(), 1);
    })
    .await;
}

#[tokio::test]
async fn reset_all_breaks_existing_connections() {
    limited(async {
        let (db, proxy) = db_and_proxy();
        let url = db.url_through(&proxy);
        let client = connect(&url).await.unwrap();
        select_one(&client).await.unwrap();

        proxy.reset_all().unwrap();
        assert_eq!(proxy.active_connections(), 0);

        let error = select_one(&client).await.unwrap_err();
        assert!(
            error.as_db_error().is_none(),
            "a connection error, not a server one: {error}"
        );
        assert!(client.is_closed());

        // New connections are fine: reset_all does not change the mode.
        let client = connect(&url).await.unwrap();
        assert_eq!(select_one(&client).await.unwrap(), 1);
    })
    .await;
}

#[test]
fn reset_all_sends_rst() {
    within(QUICK_TEST_LIMIT, || {
        let (_db, proxy) = db_and_proxy();
        let mut socket = TcpStream::connect(proxy.local_addr()).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        // Wait until the proxy has connected upstream.
        let deadline = Instant::now() + Duration::from_secs(5);
        while proxy.active_connections() == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        proxy.reset_all().unwrap();
        let mut byte = [0_u8; 1];
        let error = socket.read(&mut byte).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ConnectionReset);
    });
}

#[test]
fn dropping_the_proxy_closes_everything() {
    within(QUICK_TEST_LIMIT, || {
        let (_db, proxy) = db_and_proxy();
        let addr = proxy.local_addr();
        let mut socket = TcpStream::connect(addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        drop(proxy);
        let mut byte = [0_u8; 1];
        let closed = match socket.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(error) => error.kind() == ErrorKind::ConnectionReset,
        };
        assert!(closed, "the connection should be closed");
        assert!(TcpStream::connect(addr).is_err());
    });
}
