//! The Rust driver without a runtime: a `tokio_postgres` client whose
//! connection is polled on the calling thread, which blocks in `poll(2)` on
//! its one socket, as libpq does. Measures what the `postgres` crate's
//! per-client runtime costs (its `block_on`: entering the runtime, parking
//! on the I/O and time drivers), against the same protocol code.

use std::future::Future;
use std::io::{self, Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{NoTls, NoTlsStream};
use tokio_postgres::{Client, Connection, Statement};

use crate::peers::WAIT;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A non-blocking socket: every read or write that would block returns
/// `Pending`, and says which readiness to wait for.
struct Socket {
    stream: TcpStream,
    /// Reads land here first: reading into the caller's buffer would
    /// mean zeroing its whole spare capacity on every read (it is not
    /// initialized, and this crate has no `unsafe`).
    scratch: Box<[u8]>,
    /// Whether a read may find bytes: false once one drained the socket,
    /// true again when `poll(2)` says so. Saves the read that would only
    /// say "would block" before every wait.
    readable: Arc<AtomicBool>,
    wants_write: Arc<AtomicBool>,
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.readable.load(Ordering::Relaxed) {
            return Poll::Pending;
        }
        let room = buf.remaining().min(this.scratch.len());
        match (&this.stream).read(&mut this.scratch[..room]) {
            Ok(read) => {
                if read < room && read > 0 {
                    // A short read emptied the socket's buffer.
                    this.readable.store(false, Ordering::Relaxed);
                }
                buf.put_slice(&this.scratch[..read]);
                Poll::Ready(Ok(()))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                this.readable.store(false, Ordering::Relaxed);
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match (&self.stream).write(buf) {
            Ok(written) => Poll::Ready(Ok(written)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.wants_write.store(true, Ordering::Relaxed);
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.stream.shutdown(std::net::Shutdown::Write))
    }
}

/// One connection driven by its caller's thread.
pub(crate) struct RuntimeFree {
    client: Client,
    connection: Connection<Socket, NoTlsStream>,
    /// The same socket, to wait on.
    fd: TcpStream,
    readable: Arc<AtomicBool>,
    wants_write: Arc<AtomicBool>,
    select1: Statement,
}

impl RuntimeFree {
    pub(crate) fn connect(url: &str) -> Result<Self, BoxError> {
        let config: tokio_postgres::Config = url.parse()?;
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            _ => {
                return Err(
                    "the runtime-free driver connects over TCP only: give a host name".into(),
                );
            }
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let address = (host.as_str(), port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| format!("{host}:{port} resolves to no address"))?;
        let stream = TcpStream::connect_timeout(&address, WAIT)?;
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        let fd = stream.try_clone()?;
        let wants_write = Arc::new(AtomicBool::new(false));
        let readable = Arc::new(AtomicBool::new(true));
        let socket = Socket {
            stream,
            scratch: vec![0; 16 * 1024].into_boxed_slice(),
            readable: Arc::clone(&readable),
            wants_write: Arc::clone(&wants_write),
        };
        let (client, mut connection) = wait_for(
            &fd,
            &readable,
            &wants_write,
            None,
            config.connect_raw(socket, NoTls),
        )??;
        let select1 = wait_for(
            &fd,
            &readable,
            &wants_write,
            Some(&mut connection),
            client.prepare("SELECT 1"),
        )??;
        Ok(Self {
            client,
            connection,
            fd,
            readable,
            wants_write,
            select1,
        })
    }

    /// `SELECT 1`, prepared once.
    pub(crate) fn select1(&mut self) -> Result<(), BoxError> {
        let future = self.client.query(&self.select1, &[]);
        let rows = wait_for(
            &self.fd,
            &self.readable,
            &self.wants_write,
            Some(&mut self.connection),
            future,
        )??;
        if rows.len() != 1 {
            return Err("SELECT 1 returned other than one row".into());
        }
        Ok(())
    }
}

/// Polls `future` (and `connection`, which carries its messages) until it
/// is ready, blocking in `poll(2)` on the socket whenever neither can go
/// on, for at most [`WAIT`] (uno-db's `pool_timeout`) each time.
fn wait_for<F: Future>(
    fd: &TcpStream,
    readable: &AtomicBool,
    wants_write: &AtomicBool,
    mut connection: Option<&mut Connection<Socket, NoTlsStream>>,
    future: F,
) -> Result<F::Output, BoxError> {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return Ok(output);
        }
        if let Some(connection) = connection.as_deref_mut() {
            if let Poll::Ready(end) = Pin::new(&mut *connection).poll(&mut cx) {
                end?;
                return Err("the connection closed".into());
            }
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return Ok(output);
            }
        }
        let flags = if wants_write.swap(false, Ordering::Relaxed) {
            PollFlags::IN | PollFlags::OUT
        } else {
            PollFlags::IN
        };
        let mut fds = [PollFd::new(fd, flags)];
        let limit = Timespec {
            tv_sec: WAIT.as_secs().try_into()?,
            tv_nsec: 0,
        };
        if poll(&mut fds, Some(&limit))? == 0 {
            return Err(format!("the server sent nothing for {WAIT:?}").into());
        }
        if fds[0]
            .revents()
            .intersects(PollFlags::IN | PollFlags::ERR | PollFlags::HUP)
        {
            readable.store(true, Ordering::Relaxed);
        }
    }
}
