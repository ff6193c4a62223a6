//! One client connection through the fault proxy.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::watch;

use crate::FaultMode;

/// How long connecting to the upstream server may take.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest chunk forwarded at once.
const CHUNK_BYTES: usize = 16 * 1024;

/// Relays between `client` and `upstream` under the proxy's current [`FaultMode`] until
/// either side closes, or until a reset is signalled on `resets` (then both sockets are
/// closed with RST) or the proxy shuts down (then they are closed normally).
pub(crate) async fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    mut mode: watch::Receiver<FaultMode>,
    mut resets: watch::Receiver<u64>,
) {
    let _ = client.set_nodelay(true);
    let server = tokio::select! {
        changed = resets.changed() => {
            if changed.is_ok() {
                reset(client);
            }
            return;
        }
        server = connect_when_allowed(upstream, &mut mode) => server,
    };
    let Some(server) = server else {
        // The server is unreachable: the client sees its connection reset.
        reset(client);
        return;
    };
    let _ = server.set_nodelay(true);

    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let was_reset = tokio::select! {
        changed = resets.changed() => changed.is_ok(),
        () = relay_both_ways(
            (&mut client_read, &mut server_write),
            (&mut server_read, &mut client_write),
            &mode,
        ) => false,
    };
    if was_reset {
        if let Ok(client) = client_read.reunite(client_write) {
            reset(client);
        }
        if let Ok(server) = server_read.reunite(server_write) {
            reset(server);
        }
    }
}

/// Closes `stream` with RST rather than FIN.
fn reset(stream: TcpStream) {
    // SO_LINGER 0: close() discards unsent data and sends RST without blocking.
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Connects to `upstream` once the proxy is not black-holing; `None` if that fails.
async fn connect_when_allowed(
    upstream: SocketAddr,
    mode: &mut watch::Receiver<FaultMode>,
) -> Option<TcpStream> {
    loop {
        let current = *mode.borrow_and_update();
        if current != FaultMode::BlackHole {
            break;
        }
        mode.changed().await.ok()?;
    }
    match tokio::time::timeout(UPSTREAM_CONNECT_TIMEOUT, TcpStream::connect(upstream)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            tracing::debug!(%upstream, %error, "fault proxy could not reach upstream");
            None
        }
        Err(_) => {
            tracing::debug!(%upstream, "fault proxy timed out connecting upstream");
            None
        }
    }
}

/// Relays both directions. An error in one direction ends both; an orderly close (EOF) of one
/// direction is passed on and the other direction goes on until it closes too.
async fn relay_both_ways(
    to_server: (&mut OwnedReadHalf, &mut OwnedWriteHalf),
    to_client: (&mut OwnedReadHalf, &mut OwnedWriteHalf),
    mode: &watch::Receiver<FaultMode>,
) {
    let to_server = pump(to_server.0, to_server.1, mode.clone());
    let to_client = pump(to_client.0, to_client.1, mode.clone());
    tokio::pin!(to_server, to_client);
    tokio::select! {
        done = &mut to_server => if done.is_ok() { let _ = to_client.await; },
        done = &mut to_client => if done.is_ok() { let _ = to_server.await; },
    }
}

/// Forwards `from` to `to` chunk by chunk, applying the mode to each chunk.
async fn pump(
    from: &mut OwnedReadHalf,
    to: &mut OwnedWriteHalf,
    mut mode: watch::Receiver<FaultMode>,
) -> std::io::Result<()> {
    let mut buffer = vec![0_u8; CHUNK_BYTES];
    loop {
        // While black-holed nothing is read, so data piles up in the kernel's buffers as it
        // would in front of a stalled peer.
        let read = loop {
            let current = *mode.borrow_and_update();
            if current == FaultMode::BlackHole {
                if mode.changed().await.is_err() {
                    return Ok(());
                }
                continue;
            }
            tokio::select! {
                read = from.read(&mut buffer) => break read?,
                changed = mode.changed() => if changed.is_err() { return Ok(()) },
            }
        };
        if read == 0 {
            to.shutdown().await?;
            return Ok(());
        }
        let mut delayed = false;
        loop {
            let current = *mode.borrow_and_update();
            match current {
                FaultMode::BlackHole => {
                    if mode.changed().await.is_err() {
                        return Ok(());
                    }
                }
                FaultMode::Latency(latency) if !delayed => {
                    tokio::time::sleep(latency).await;
                    delayed = true;
                }
                _ => break,
            }
        }
        to.write_all(&buffer[..read]).await?;
    }
}
