//! Rows as values: `#[derive(FromRow)]` (rename, `Option`, flatten), the
//! `ClientExt` helpers on both backends and on a mock, and the errors of a
//! row that does not map, after which the pool is still healthy.

use uno_db::blocking::{ClientExt as _, MockClient};
use uno_db::nonblocking::ClientExt as _;
use uno_db::{DatabaseFactory, ErrorKind, FromRow, Row, Type};
use uno_db_testkit::TestDb;
use uno_db_testkit::conformance::{CASE_TIMEOUT, case_config, run_with_timeout};

#[derive(Debug, PartialEq, FromRow)]
struct Audit {
    created_by: String,
}

#[derive(Debug, PartialEq, FromRow)]
struct Todo {
    id: i64,
    #[uno_db(rename = "title")]
    name: String,
    note: Option<String>,
    #[uno_db(flatten)]
    audit: Audit,
}

const TODOS: &str = "SELECT g::int8 AS id, 'todo ' || g AS title, \
                     CASE WHEN g = 2 THEN 'urgent' END AS note, 'ada' AS created_by \
                     FROM generate_series(1, 3) AS g ORDER BY g";

fn todo(id: i64, note: Option<&str>) -> Todo {
    Todo {
        id,
        name: format!("todo {id}"),
        note: note.map(str::to_owned),
        audit: Audit {
            created_by: "ada".to_owned(),
        },
    }
}

#[test]
fn derived_rows_map_on_both_backends_and_bad_rows_name_the_column() {
    run_with_timeout(CASE_TIMEOUT, || {
        let db = TestDb::new().unwrap();
        let config = case_config(db.url())
            .unwrap()
            .to_builder()
            .pool_size(1)
            .max_overflow(0)
            .build()
            .unwrap();
        let factory = DatabaseFactory::new(config);
        let expected = vec![todo(1, None), todo(2, Some("urgent")), todo(3, None)];

        let engine = factory.sync_engine().unwrap();
        let mut conn = engine.connect().unwrap();
        assert_eq!(conn.query_as::<Todo>(TODOS, &[]).unwrap(), expected);
        let first: Todo = conn.query_one_as(&format!("{TODOS} LIMIT 1"), &[]).unwrap();
        assert_eq!(first, todo(1, None));
        let missing = conn
            .query_one_as::<Todo>("SELECT 1::int8 AS id, 'x' AS title, NULL AS note", &[])
            .unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::Decode);
        assert!(missing.to_string().contains("created_by"), "{missing}");
        let mistyped = conn
            .query_opt_as::<Todo>(
                "SELECT 'one' AS id, 'x' AS title, NULL AS note, 'ada' AS created_by",
                &[],
            )
            .unwrap_err();
        assert_eq!(mistyped.kind(), ErrorKind::Decode);
        assert!(mistyped.to_string().contains("id"), "{mistyped}");
        assert!(!conn.is_closed());
        drop(conn);
        // The pool is healthy: its one connection serves the next user.
        let none: Option<Todo> = engine
            .connect()
            .unwrap()
            .query_opt_as(&format!("{TODOS} LIMIT 0"), &[])
            .unwrap();
        assert_eq!(none, None);

        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let engine = factory.async_engine().unwrap();
            let mut conn = engine.connect().await.unwrap();
            assert_eq!(conn.query_as::<Todo>(TODOS, &[]).await.unwrap(), expected);
            let second: Todo = conn
                .query_one_as(&format!("{TODOS} OFFSET 1 LIMIT 1"), &[])
                .await
                .unwrap();
            assert_eq!(second, todo(2, Some("urgent")));
            let missing = conn
                .query_one_as::<Todo>("SELECT 1::int8 AS id", &[])
                .await
                .unwrap_err();
            assert_eq!(missing.kind(), ErrorKind::Decode);
            assert!(missing.to_string().contains("title"), "{missing}");
        });
        factory.dispose();
    });
}

#[test]
fn mocks_map_hand_built_rows_through_the_same_trait() {
    let mut client = MockClient::new();
    client.expect_query().returning(|_, _| {
        Ok(vec![
            Row::builder()
                .column("id", Type::INT8, 7_i64)
                .column("title", Type::TEXT, "todo 7")
                .column("note", Type::TEXT, None::<&str>)
                .column("created_by", Type::TEXT, "ada")
                .build()?,
        ])
    });
    let todos: Vec<Todo> = client.query_as("SELECT ...", &[]).unwrap();
    assert_eq!(todos, [todo(7, None)]);
    let row = Row::builder()
        .column("id", Type::INT8, 7_i64)
        .build()
        .unwrap();
    let error = Todo::from_row(&row).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Decode);
    assert!(error.to_string().contains("title"), "{error}");
}
