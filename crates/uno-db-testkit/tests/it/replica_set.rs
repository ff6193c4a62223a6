//! `TestReplicaSet`: streaming standbys, promotion, following and rewinding.

use std::time::{Duration, Instant};

use postgres::error::SqlState;
use postgres::{Client, NoTls};
use uno_db_testkit::TestReplicaSet;

use crate::deadline::{CLUSTER_TEST_LIMIT, within};

const REPLAY_TIMEOUT: Duration = Duration::from_secs(20);

fn connect(url: &str) -> Client {
    Client::connect(url, NoTls).unwrap()
}

fn count(client: &mut Client, table: &str) -> i64 {
    client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .unwrap()
        .get(0)
}

fn in_recovery(client: &mut Client) -> bool {
    client
        .query_one("SELECT pg_is_in_recovery()", &[])
        .unwrap()
        .get(0)
}

#[test]
fn standbys_stream_the_primary_and_refuse_writes() {
    within(CLUSTER_TEST_LIMIT, || {
        let started = Instant::now();
        let set = TestReplicaSet::start(2).unwrap();
        eprintln!("replica set (1 + 2) started in {:?}", started.elapsed());
        assert_eq!(set.members().len(), 3);
        assert_eq!(set.primary_index(), 0);
        assert_eq!(set.primary().port(), set.member(0).port());

        let ports: Vec<String> = set.members().iter().map(|m| m.port().to_string()).collect();
        assert_eq!(
            set.hosts_and_ports(),
            ("127.0.0.1,127.0.0.1,127.0.0.1".to_owned(), ports.join(","))
        );
        assert_eq!(
            set.url("app"),
            format!(
                "postgresql://postgres@127.0.0.1:{},127.0.0.1:{},127.0.0.1:{}/app",
                ports[0], ports[1], ports[2]
            )
        );

        let mut primary = connect(&set.primary().admin_url());
        assert!(!in_recovery(&mut primary));
        let streaming: i64 = primary
            .query_one(
                "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(streaming, 2);
        primary
            .batch_execute("CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 10)")
            .unwrap();
        set.create_database("app").unwrap();
        set.wait_until_replayed(REPLAY_TIMEOUT).unwrap();

        for index in [1, 2] {
            let mut standby = connect(&set.member(index).admin_url());
            assert!(in_recovery(&mut standby));
            assert_eq!(count(&mut standby, "t"), 10);
            connect(&set.member(index).url("app"));
            let error = standby
                .batch_execute("INSERT INTO t VALUES (11)")
                .unwrap_err();
            assert_eq!(error.code(), Some(&SqlState::READ_ONLY_SQL_TRANSACTION));
        }
    });
}

#[test]
fn failover_promote_follow_and_demote() {
    within(CLUSTER_TEST_LIMIT, || {
        let set = TestReplicaSet::start(2).unwrap();
        let mut primary = connect(&set.primary().admin_url());
        primary
            .batch_execute("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
            .unwrap();
        set.wait_until_replayed(REPLAY_TIMEOUT).unwrap();

        let started = Instant::now();
        set.kill(0).unwrap();
        assert!(
            primary.simple_query("SELECT 1").is_err(),
            "the primary crashed"
        );
        set.promote(1).unwrap();
        eprintln!("promoted in {:?}", started.elapsed());
        assert_eq!(set.primary_index(), 1);
        let mut new_primary = connect(&set.member(1).admin_url());
        assert!(!in_recovery(&mut new_primary));
        new_primary
            .batch_execute("INSERT INTO t VALUES (2)")
            .unwrap();

        let started = Instant::now();
        set.follow(2, 1).unwrap();
        eprintln!("member 2 follows member 1 after {:?}", started.elapsed());

        let started = Instant::now();
        set.demote(0).unwrap();
        eprintln!(
            "old primary rewound and streaming after {:?}",
            started.elapsed()
        );

        new_primary
            .batch_execute("INSERT INTO t VALUES (3)")
            .unwrap();
        set.wait_until_replayed(REPLAY_TIMEOUT).unwrap();
        for index in [0, 2] {
            let mut standby = connect(&set.member(index).admin_url());
            assert!(in_recovery(&mut standby), "member {index} is a standby");
            assert_eq!(count(&mut standby, "t"), 3, "member {index} has every row");
        }
        let streaming: i64 = new_primary
            .query_one(
                "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(streaming, 2);
    });
}
