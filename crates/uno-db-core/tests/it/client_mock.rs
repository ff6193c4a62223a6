//! Repository functions written against `Client`, tested with `MockClient`:
//! the same function then runs on a connection or inside a session.

use uno_db_core::{ErrorKind, Result, Row, Type};

mod blocking {
    use super::*;
    use uno_db_core::blocking::{Client, MockClient, MockSession};

    fn create_user(client: &mut dyn Client, name: &str) -> Result<i64> {
        let row = client.query_one(
            "INSERT INTO users (name) VALUES ($1) RETURNING id",
            &[&name],
        )?;
        Ok(row.get("id"))
    }

    fn id_row(id: i64) -> Result<Row> {
        Row::builder().column("id", Type::INT8, id).build()
    }

    #[test]
    fn create_user_returns_the_new_id() {
        let mut client = MockClient::new();
        client
            .expect_query_one()
            .withf(|sql, params| sql.starts_with("INSERT INTO users") && params.len() == 1)
            .times(1)
            .returning(|_, _| id_row(7));
        assert_eq!(create_user(&mut client, "alice").unwrap(), 7);
    }

    #[test]
    fn the_same_function_runs_inside_a_session() {
        let mut session = MockSession::new();
        session
            .expect_query_one()
            .times(1)
            .returning(|_, _| id_row(8));
        session.expect_commit().times(1).returning(|| Ok(()));
        let mut session: Box<dyn uno_db_core::blocking::Session> = Box::new(session);
        assert_eq!(create_user(&mut *session, "bob").unwrap(), 8);
        session.commit().unwrap();
    }

    #[test]
    fn errors_pass_through() {
        let mut client = MockClient::new();
        client
            .expect_query_one()
            .returning(|_, _| Err(uno_db_core::Error::new(ErrorKind::Closed)));
        assert_eq!(
            create_user(&mut client, "carol").unwrap_err().kind(),
            ErrorKind::Closed
        );
    }

    /// A mock answers `query_stream` as it answers `query`, and refuses
    /// `COPY` (it keeps the trait's defaults).
    #[test]
    fn a_mock_streams_its_query_rows_and_refuses_copy() {
        let mut client = MockClient::new();
        client
            .expect_query()
            .times(1)
            .returning(|_, _| Ok(vec![id_row(1)?, id_row(2)?]));
        let ids: Vec<i64> = client
            .query_stream("SELECT id FROM users", &[])
            .unwrap()
            .map(|row| row.map(|row| row.get("id")))
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(ids, [1, 2]);
        let error = client.copy_in("COPY users FROM STDIN").unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unsupported);
        assert_eq!(
            client.copy_out("COPY users TO STDOUT").unwrap_err().kind(),
            ErrorKind::Unsupported
        );
    }
}

mod nonblocking {
    use super::*;
    use uno_db_core::nonblocking::{Client, MockClient, MockSession};

    async fn create_user(client: &mut dyn Client, name: &str) -> Result<i64> {
        let row = client
            .query_one(
                "INSERT INTO users (name) VALUES ($1) RETURNING id",
                &[&name],
            )
            .await?;
        Ok(row.get("id"))
    }

    fn id_row(id: i64) -> Result<Row> {
        Row::builder().column("id", Type::INT8, id).build()
    }

    #[tokio::test]
    async fn create_user_returns_the_new_id() {
        let mut client = MockClient::new();
        client
            .expect_query_one()
            .withf(|sql, params| sql.starts_with("INSERT INTO users") && params.len() == 1)
            .times(1)
            .returning(|_, _| Box::pin(async { id_row(7) }));
        assert_eq!(create_user(&mut client, "alice").await.unwrap(), 7);
    }

    #[tokio::test]
    async fn the_same_function_runs_inside_a_session() {
        let mut session = MockSession::new();
        session
            .expect_query_one()
            .times(1)
            .returning(|_, _| Box::pin(async { id_row(8) }));
        session
            .expect_commit()
            .times(1)
            .returning(|| Box::pin(async { Ok(()) }));
        let mut session: Box<dyn uno_db_core::nonblocking::Session> = Box::new(session);
        assert_eq!(create_user(&mut *session, "bob").await.unwrap(), 8);
        session.commit().await.unwrap();
    }

    /// A mock answers `query_stream` as it answers `query`, and refuses
    /// `COPY` (it keeps the trait's defaults).
    #[tokio::test]
    async fn a_mock_streams_its_query_rows_and_refuses_copy() {
        let mut client = MockClient::new();
        client
            .expect_query()
            .times(1)
            .returning(|_, _| Box::pin(async { Ok(vec![id_row(1)?, id_row(2)?]) }));
        let mut rows = client
            .query_stream("SELECT id FROM users", &[])
            .await
            .unwrap();
        let mut ids = Vec::new();
        while let Some(row) = rows.try_next().await.unwrap() {
            ids.push(row.get::<_, i64>("id"));
        }
        assert_eq!(ids, [1, 2]);
        drop(rows);
        let error = client.copy_in("COPY users FROM STDIN").await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unsupported);
        assert_eq!(
            client
                .copy_out("COPY users TO STDOUT")
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::Unsupported
        );
    }
}
