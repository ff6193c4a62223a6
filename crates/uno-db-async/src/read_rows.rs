//! [`read_rows`]: a prepared query's rows taken as the driver reads them,
//! into what the statement method returns.

use std::future::poll_fn;
use std::pin::pin;

use futures_core::Stream;
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;
use uno_db_core::Result;
use uno_db_core::backend::{PreparedStatement, RowsShape, from_driver};

/// Runs `prepared` and takes its rows into `shape` one at a time (a list
/// made room for `expected` rows ahead), as
/// `Client::query` would collect them into a `Vec` of the driver's rows:
/// `query` then fills only its own `Vec`, `query_one` keeps one row.
pub(crate) async fn read_rows<S: RowsShape>(
    client: &Client,
    prepared: &PreparedStatement,
    params: &[&(dyn ToSql + Sync)],
    shape: S,
    expected: usize,
) -> Result<S::Taken> {
    let params = params.iter().map(|param| *param as &dyn ToSql);
    let stream = client
        .query_raw(prepared, params)
        .await
        .map_err(from_driver)?;
    let mut stream = pin!(stream);
    let mut taken = shape.start(expected);
    while let Some(row) = poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
        S::take(&mut taken, row.map_err(from_driver)?);
    }
    Ok(taken)
}
