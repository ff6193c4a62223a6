//! How the driver's errors become uno-db [`Error`]s, by SQLSTATE and by the
//! types in their cause chain, never by message text (the table is in
//! `docs/errors.md`).

use crate::error::Error;

/// Classifies a driver error raised while establishing a connection to
/// `target` (for example `"app@db.example:5432/orders"`): a server error
/// is [`Auth`](crate::ErrorKind::Auth) for class 28, else
/// [`Connect`](crate::ErrorKind::Connect), its message naming the server's
/// report; without one, a [`TlsError`](crate::TlsError), the driver's
/// `NoTlsError` or a `Tls` error in the chain makes it
/// [`Tls`](crate::ErrorKind::Tls); anything else is `Connect`.
#[must_use]
pub fn from_connect(error: tokio_postgres::Error, target: &str) -> Error {
    Error::from_connect(error, target)
}

/// Classifies a driver error raised by a statement on an established
/// connection: a server report that ends the session (`FATAL`, class 08,
/// 57P01–57P03) is [`Closed`](crate::ErrorKind::Closed), 57014
/// [`QueryTimeout`](crate::ErrorKind::QueryTimeout), class 28
/// [`Auth`](crate::ErrorKind::Auth), any other
/// [`Database`](crate::ErrorKind::Database); without a report, a closed
/// connection or a failed socket is `Closed`, a parameter's `ToSql`
/// failure [`Encode`](crate::ErrorKind::Encode), and no cause at all a
/// `Database` error without SQLSTATE (a protocol problem, such as a wrong
/// number of parameters).
#[must_use]
pub fn from_driver(error: tokio_postgres::Error) -> Error {
    Error::from_driver(error)
}
