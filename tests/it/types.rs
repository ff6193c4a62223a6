//! The type features (`chrono`, `time`, `uuid`, `serde_json`): each type
//! goes to a real server as a parameter and comes back through `Row::get`,
//! on both backends, unchanged; and a mock's hand-built row decodes it the
//! same way.

use uno_db::{DatabaseFactory, Row, Type};
use uno_db_testkit::TestDb;
use uno_db_testkit::conformance::{CASE_TIMEOUT, case_config, run_with_timeout};

/// One value of each type, and the SQL that sends them back.
struct Values {
    date: chrono::NaiveDate,
    stamp: chrono::DateTime<chrono::Utc>,
    time_stamp: time::OffsetDateTime,
    id: uuid::Uuid,
    document: serde_json::Value,
}

const ECHO: &str = "SELECT $1::date AS date, $2::timestamptz AS stamp, $3::timestamptz AS time_stamp, \
                    $4::uuid AS id, $5::jsonb AS document";

fn values() -> Values {
    Values {
        date: chrono::NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
        stamp: chrono::DateTime::from_timestamp(1_764_547_200, 123_456_000).unwrap(),
        time_stamp: time::OffsetDateTime::from_unix_timestamp_nanos(1_764_547_200_654_321_000)
            .unwrap(),
        id: uuid::Uuid::from_u128(0x67e5_5044_10b1_426f_9247_bb68_0e5f_e0c8),
        document: serde_json::json!({"name": "ada", "tags": ["x", "y"], "n": 3}),
    }
}

fn check(row: &Row, expected: &Values) {
    assert_eq!(row.get::<_, chrono::NaiveDate>("date"), expected.date);
    assert_eq!(
        row.get::<_, chrono::DateTime<chrono::Utc>>("stamp"),
        expected.stamp
    );
    assert_eq!(
        row.get::<_, time::OffsetDateTime>("time_stamp"),
        expected.time_stamp
    );
    assert_eq!(row.get::<_, uuid::Uuid>("id"), expected.id);
    assert_eq!(
        row.get::<_, serde_json::Value>("document"),
        expected.document
    );
}

#[test]
fn the_type_features_round_trip_on_both_backends() {
    run_with_timeout(CASE_TIMEOUT, || {
        let db = TestDb::new().unwrap();
        let factory = DatabaseFactory::new(case_config(db.url()).unwrap());
        let v = values();
        let row = factory
            .sync_engine()
            .unwrap()
            .connect()
            .unwrap()
            .query_one(
                ECHO,
                &[&v.date, &v.stamp, &v.time_stamp, &v.id, &v.document],
            )
            .unwrap();
        check(&row, &v);
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let row = runtime.block_on(async {
            let engine = factory.async_engine().unwrap();
            let mut conn = engine.connect().await.unwrap();
            conn.query_one(
                ECHO,
                &[&v.date, &v.stamp, &v.time_stamp, &v.id, &v.document],
            )
            .await
            .unwrap()
        });
        check(&row, &v);
        factory.dispose();
    });
}

#[test]
fn hand_built_rows_decode_the_same_types() {
    let v = values();
    let row = Row::builder()
        .column("date", Type::DATE, v.date)
        .column("stamp", Type::TIMESTAMPTZ, v.stamp)
        .column("time_stamp", Type::TIMESTAMPTZ, v.time_stamp)
        .column("id", Type::UUID, v.id)
        .column("document", Type::JSONB, v.document.clone())
        .build()
        .unwrap();
    check(&row, &v);
    // A wrong type is an error naming the column, not a panic.
    let error = row.try_get::<_, uuid::Uuid>("date").unwrap_err();
    assert_eq!(error.kind(), uno_db::ErrorKind::Decode);
    assert!(error.to_string().contains("date"), "{error}");
}
