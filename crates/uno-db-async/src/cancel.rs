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
use uno_db_core::Endpoint;
use uno_db_core::backend::MakeTls;

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
