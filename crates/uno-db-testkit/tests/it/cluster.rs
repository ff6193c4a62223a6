//! `TestCluster`: starting, restarting, crashing and removing throwaway clusters.

use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};
use uno_db_testkit::TestCluster;

use crate::child_process::{is_child_for, run_child_test};
use crate::deadline::{CLUSTER_TEST_LIMIT, within};

fn effective_uid() -> u32 {
    std::fs::metadata("/proc/self").unwrap().uid()
}

fn uid_of(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&user))
            .then(|| (fields[2].parse().unwrap(), fields[3].parse().unwrap()))
    })
}

fn show(client: &mut Client, setting: &str) -> String {
    client
        .query_one(&format!("SHOW {setting}"), &[])
        .unwrap()
        .get(0)
}

/// The uid of the server process serving `client`'s session.
fn backend_uid(client: &mut Client) -> u32 {
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    std::fs::metadata(format!("/proc/{pid}")).unwrap().uid()
}

#[test]
fn a_cluster_starts_with_its_options_as_the_right_user() {
    within(CLUSTER_TEST_LIMIT, || {
        let started = Instant::now();
        let cluster = TestCluster::builder()
            .max_connections(20)
            .conf_line("work_mem = '8MB'")
            .start()
            .unwrap();
        eprintln!("cluster started in {:?}", started.elapsed());
        assert!(cluster.is_running());
        let mut client = Client::connect(&cluster.admin_url(), NoTls).unwrap();
        assert_eq!(show(&mut client, "max_connections"), "20");
        assert_eq!(show(&mut client, "work_mem"), "8MB");
        assert_eq!(show(&mut client, "fsync"), "off");
        assert_eq!(show(&mut client, "synchronous_commit"), "off");
        assert_eq!(show(&mut client, "full_page_writes"), "off");
        assert_eq!(show(&mut client, "port"), cluster.port().to_string());

        // As root the server runs as the `postgres` system user; otherwise as ourselves.
        let expected_uid = match effective_uid() {
            0 => uid_of("postgres").unwrap().0,
            uid => uid,
        };
        assert_eq!(backend_uid(&mut client), expected_uid);
        assert_eq!(
            std::fs::metadata(cluster.data_dir()).unwrap().uid(),
            expected_uid
        );

        // The unix socket works too.
        let socket_url = format!(
            "host={} port={} user=postgres dbname=postgres",
            cluster.socket_dir().display(),
            cluster.port()
        );
        let mut over_socket = Client::connect(&socket_url, NoTls).unwrap();
        over_socket.simple_query("SELECT 1").unwrap();
    });
}

#[test]
fn a_cluster_starts_in_about_a_second() {
    within(CLUSTER_TEST_LIMIT, || {
        // The first cluster of a machine may have to run initdb; later ones copy its result.
        drop(TestCluster::new().unwrap());
        let started = Instant::now();
        let cluster = TestCluster::new().unwrap();
        let elapsed = started.elapsed();
        eprintln!("cluster start (initdb cached): {elapsed:?}");
        Client::connect(&cluster.admin_url(), NoTls).unwrap();
        assert!(elapsed < Duration::from_secs(5), "start took {elapsed:?}");
    });
}

#[test]
fn restart_keeps_data_and_clients_reconnect() {
    within(CLUSTER_TEST_LIMIT, || {
        let cluster = TestCluster::new().unwrap();
        let port = cluster.port();
        let mut client = Client::connect(&cluster.admin_url(), NoTls).unwrap();
        client
            .batch_execute("CREATE TABLE kept (x int); INSERT INTO kept VALUES (1), (2)")
            .unwrap();

        cluster.restart().unwrap();

        assert!(
            client.simple_query("SELECT 1").is_err(),
            "the old session ended"
        );
        assert_eq!(cluster.port(), port);
        let mut client = Client::connect(&cluster.admin_url(), NoTls).unwrap();
        let count: i64 = client
            .query_one("SELECT count(*) FROM kept", &[])
            .unwrap()
            .get(0);
        assert_eq!(count, 2);
    });
}

#[test]
fn stop_and_start_again() {
    within(CLUSTER_TEST_LIMIT, || {
        let cluster = TestCluster::new().unwrap();
        cluster.stop().unwrap();
        assert!(!cluster.is_running());
        assert!(
            TcpStream::connect(cluster.socket_addr()).is_err(),
            "nothing listens"
        );
        cluster.stop().unwrap(); // idempotent
        cluster.start().unwrap();
        cluster.start().unwrap(); // idempotent
        Client::connect(&cluster.admin_url(), NoTls)
            .unwrap()
            .simple_query("SELECT 1")
            .unwrap();
    });
}

#[test]
fn kill_makes_clients_see_errors() {
    within(CLUSTER_TEST_LIMIT, || {
        let cluster = TestCluster::new().unwrap();
        let mut client = Client::connect(&cluster.admin_url(), NoTls).unwrap();
        // With `synchronous_commit = off` a crash may lose the latest commits; a checkpoint
        // makes them durable.
        client
            .batch_execute("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
            .unwrap();
        client.batch_execute("CHECKPOINT").unwrap();

        let killed = Instant::now();
        cluster.kill().unwrap();
        assert!(killed.elapsed() < Duration::from_secs(5));
        assert!(!cluster.is_running());

        assert!(
            client.simple_query("SELECT 1").is_err(),
            "the session died with the server"
        );
        let refused = Client::connect(&cluster.admin_url(), NoTls)
            .err()
            .expect("connecting should fail");
        assert!(
            refused.to_string().contains("error connecting"),
            "{refused}"
        );

        // Crash recovery, then up again with the checkpointed data.
        cluster.start().unwrap();
        let mut client = Client::connect(&cluster.admin_url(), NoTls).unwrap();
        let count: i64 = client
            .query_one("SELECT count(*) FROM t", &[])
            .unwrap()
            .get(0);
        assert_eq!(count, 1);
    });
}

#[test]
fn dropping_a_cluster_stops_it_and_removes_its_directory() {
    within(CLUSTER_TEST_LIMIT, || {
        let cluster = TestCluster::new().unwrap();
        let dir = cluster.socket_dir().to_path_buf();
        let addr = cluster.socket_addr();
        let _client = Client::connect(&cluster.admin_url(), NoTls).unwrap();
        assert!(cluster.data_dir().join("PG_VERSION").exists());

        drop(cluster);

        assert!(!dir.exists(), "{} still exists", dir.display());
        assert!(
            TcpStream::connect(addr).is_err(),
            "the server still listens"
        );
    });
}

#[test]
fn the_shared_cluster_is_one_per_process() {
    within(CLUSTER_TEST_LIMIT, || {
        let first = TestCluster::shared().unwrap();
        let second = TestCluster::shared().unwrap();
        assert!(std::ptr::eq(first, second));
        let mut client = Client::connect(&first.admin_url(), NoTls).unwrap();
        assert_eq!(show(&mut client, "max_connections"), "200");
    });
}

#[test]
fn a_cluster_runs_for_a_non_root_user() {
    const CHILD: &str = "cluster::child_starts_a_cluster_as_its_own_user";
    if effective_uid() != 0 {
        eprintln!("already running as a non-root user: the other cluster tests cover this case");
        return;
    }
    // Any unprivileged account will do; `nobody` exists almost everywhere.
    let Some(user) = ["nobody", "postgres"].into_iter().find_map(uid_of) else {
        eprintln!("skipped: no unprivileged user (nobody, postgres) to run the tests as");
        return;
    };
    let outcome = run_child_test(CHILD, Some(user), &[], CLUSTER_TEST_LIMIT);
    assert!(
        outcome.status.success() && outcome.output.contains("1 passed"),
        "the child test failed ({}):\n{}",
        outcome.status,
        outcome.output
    );
}

#[test]
#[ignore = "run in a child process by cluster::a_cluster_runs_for_a_non_root_user"]
fn child_starts_a_cluster_as_its_own_user() {
    if !is_child_for("cluster::child_starts_a_cluster_as_its_own_user") {
        return;
    }
    let uid = effective_uid();
    assert_ne!(uid, 0);
    within(CLUSTER_TEST_LIMIT, move || {
        let cluster = TestCluster::new().unwrap();
        let dir = cluster.socket_dir().to_path_buf();
        let mut client = Client::connect(&cluster.admin_url(), NoTls).unwrap();
        assert_eq!(backend_uid(&mut client), uid);
        assert_eq!(std::fs::metadata(cluster.data_dir()).unwrap().uid(), uid);
        cluster.restart().unwrap();
        drop(client);
        drop(cluster);
        assert!(!dir.exists());
    });
}

#[test]
fn a_dead_test_process_leaves_no_cluster_behind() {
    const CHILD: &str = "cluster::child_starts_a_cluster_and_aborts";
    let outcome = run_child_test(CHILD, None, &[], CLUSTER_TEST_LIMIT);
    assert!(!outcome.status.success(), "the child should have aborted");
    let line = outcome
        .output
        .lines()
        .find_map(|line| line.split_once("CLUSTER ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("the child printed no cluster:\n{}", outcome.output));
    let (dir, port) = line.split_once(' ').unwrap();
    let port: u16 = port.parse().unwrap();

    // The watchdog stops the server and removes the directory right after the process dies.
    let deadline = Instant::now() + Duration::from_secs(10);
    while (std::path::Path::new(dir).exists() || TcpStream::connect(("127.0.0.1", port)).is_ok())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!std::path::Path::new(dir).exists(), "{dir} was left behind");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still listens"
    );
}

#[test]
#[ignore = "run in a child process by cluster::a_dead_test_process_leaves_no_cluster_behind"]
fn child_starts_a_cluster_and_aborts() {
    if !is_child_for("cluster::child_starts_a_cluster_and_aborts") {
        return;
    }
    let cluster = TestCluster::new().unwrap();
    println!(
        "CLUSTER {} {}",
        cluster.socket_dir().display(),
        cluster.port()
    );
    std::process::abort();
}
