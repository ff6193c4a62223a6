//! Cancel requests that wait for the other side to take them.
//!
//! The driver's `cancel_query` shuts its socket down as soon as the
//! request is written. A server does not mind, but PgBouncer forwards the
//! request on a connection of its own, and before 1.20 it crashes when the
//! cancelling client leaves before that is done (pgbouncer#801). The
//! protocol has the receiver close the socket once the request is handled,
//! so behind PgBouncer this backend waits for that close instead.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
#[cfg(unix)]
use tokio::net::UnixStream;
use tokio_postgres::CancelToken;
use tokio_postgres::tls::MakeTlsConnect;
use uno_db_core::backend::{MakeTls, cancel_request_failed, cancel_request_timed_out};
use uno_db_core::{Endpoint, Result};

/// Cancels whatever statement its connection is running, from any task or
/// thread: taken from
/// [`AsyncConnection::cancel_handle`](crate::AsyncConnection::cancel_handle)
/// or [`AsyncSession::cancel_handle`](crate::AsyncSession::cancel_handle)
/// before the statement starts, then moved or cloned to where the decision
/// to cancel is made. The async counterpart of `uno_db_sync::CancelHandle`.
///
/// [`cancel`](Self::cancel) sends `PostgreSQL`'s cancel request (on a
/// connection of its own, with the same TLS settings as the connection).
/// A statement the server was running then fails with SQLSTATE 57014,
/// classified as every 57014 is: [`QueryTimeout`](uno_db_core::ErrorKind::QueryTimeout).
/// The connection stays usable (only the statement ended); inside a
/// session the transaction is aborted, as by any failed statement. A
/// request that arrives while nothing runs does nothing. As in libpq, a
/// request sent just as one statement ends may reach the next one.
///
/// ```no_run
/// # async fn demo(engine: &uno_db_async::AsyncEngine) -> uno_db_core::Result<()> {
/// use uno_db_core::nonblocking::Client;
///
/// let mut conn = engine.checkout().await?;
/// let handle = conn.cancel_handle()?;
/// let canceller = tokio::spawn(async move {
///     tokio::time::sleep(std::time::Duration::from_millis(200)).await;
///     handle.cancel().await
/// });
/// let error = conn.execute("SELECT pg_sleep(30)", &[]).await.unwrap_err();
/// assert_eq!(error.kind(), uno_db_core::ErrorKind::QueryTimeout);
/// canceller.await.expect("the canceller")?;
/// conn.execute("SELECT 1", &[]).await?; // still usable
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct CancelHandle {
    token: CancelToken,
    tls: MakeTls,
    /// Behind PgBouncer: the server the connection reached, whose closing
    /// of the request's socket is awaited.
    wait_for_close: Option<(Duration, Endpoint)>,
    bound: Duration,
}

impl std::fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelHandle")
            .field("bound", &self.bound)
            .finish_non_exhaustive()
    }
}

impl CancelHandle {
    pub(crate) fn new(
        token: CancelToken,
        tls: MakeTls,
        wait_for_close: Option<(Duration, Endpoint)>,
        bound: Duration,
    ) -> Self {
        Self {
            token,
            tls,
            wait_for_close,
            bound,
        }
    }

    /// Sends the cancel request and waits until it was delivered, at most
    /// the engine's `connect_timeout` (behind PgBouncer, until PgBouncer
    /// closed the request's socket, as the pool's own cancel requests do).
    /// Dropping the future stops the request.
    ///
    /// # Errors
    ///
    /// [`Connect`](uno_db_core::ErrorKind::Connect): the request could not
    /// be sent (the server is unreachable, the TLS handshake failed) or was
    /// not delivered within `connect_timeout`. The statement then runs on.
    pub async fn cancel(&self) -> Result<()> {
        // Without the `tls` feature the connector is `Copy`.
        #[allow(clippy::clone_on_copy)]
        let tls = self.tls.clone();
        let token = self.token.clone();
        let outcome = match &self.wait_for_close {
            Some((_, endpoint)) => {
                tokio::time::timeout(self.bound, send(token, tls, endpoint)).await
            }
            None => {
                tokio::time::timeout(self.bound, async move {
                    token.cancel_query(tls).await.map_err(io::Error::other)
                })
                .await
            }
        };
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(cancel_request_failed(error)),
            Err(_) => Err(cancel_request_timed_out(self.bound)),
        }
    }
}

/// Sends `token`'s cancel request to `endpoint` and returns once the other
/// side closed the socket (it handled the request), or after `wait`.
pub(crate) async fn cancel_and_wait(
    token: CancelToken,
    tls: MakeTls,
    endpoint: Endpoint,
    wait: Duration,
) {
    let _ = tokio::time::timeout(wait, send(token, tls, &endpoint)).await;
}

async fn send(token: CancelToken, tls: MakeTls, endpoint: &Endpoint) -> io::Result<()> {
    let host = endpoint.host();
    #[cfg(unix)]
    if host.starts_with('/') {
        let path = format!("{host}/.s.PGSQL.{}", endpoint.port());
        // No server name over a socket, as the driver does.
        return send_on(&token, tls, UnixStream::connect(path).await?, "").await;
    }
    let stream = match endpoint.address() {
        Some(address) => TcpStream::connect((address, endpoint.port())).await?,
        None => TcpStream::connect((host, endpoint.port())).await?,
    };
    send_on(&token, tls, stream, host).await
}

/// Sends the cancel request on `stream`, TLS as the connection negotiated
/// it (`host` names the server for the handshake), and waits for the
/// other side to close.
async fn send_on<S>(token: &CancelToken, mut tls: MakeTls, stream: S, host: &str) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let connect = MakeTlsConnect::<WaitForClose<S>>::make_tls_connect(&mut tls, host)
        .map_err(io::Error::other)?;
    token
        .cancel_query_raw(WaitForClose(stream), connect)
        .await
        .map_err(io::Error::other)
}

/// A stream whose shutdown waits for the other side to close, rather than
/// closing this side.
struct WaitForClose<S>(S);

impl<S: AsyncRead + Unpin> AsyncRead for WaitForClose<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WaitForClose<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut scratch = [0_u8; 64];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.0).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
