//! An in-process TCP proxy that injects network faults between a client and a server.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::proxy_connection::relay;
use crate::{FaultMode, TestkitError};

/// How long a control call waits for the proxy thread to carry it out.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

/// How long `reset_all` waits for connections to close before aborting them.
const RESET_TIMEOUT: Duration = Duration::from_secs(5);

/// The listening socket's backlog.
const BACKLOG: u32 = 1024;

/// A TCP proxy on 127.0.0.1 that forwards to an upstream server and injects faults on demand.
///
/// Point a client at [`local_addr`](Self::local_addr) (or use
/// [`TestDb::url_through`](crate::TestDb::url_through)) and switch faults on and off from the
/// test with [`latency`](Self::latency), [`black_hole`](Self::black_hole),
/// [`refuse`](Self::refuse), [`reset_all`](Self::reset_all) and [`restore`](Self::restore).
/// Each call has taken effect when it returns. The proxy runs on a Tokio runtime of its own in
/// a background thread, so it works the same from synchronous and asynchronous tests.
/// Dropping it shuts it down and closes every socket it holds.
///
/// ```no_run
/// use std::time::Duration;
/// use uno_db_testkit::{FaultProxy, TestDb};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let db = TestDb::new()?;
/// let proxy = FaultProxy::start(db.socket_addr()?)?;
/// let mut client = postgres::Client::connect(&db.url_through(&proxy), postgres::NoTls)?;
///
/// proxy.latency(Duration::from_millis(100))?; // every query now takes 200 ms longer
/// client.simple_query("SELECT 1")?;
///
/// proxy.reset_all()?; // the connection is reset ...
/// assert!(client.simple_query("SELECT 1").is_err());
/// proxy.restore()?; // ... and new ones work as before
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct FaultProxy {
    local_addr: SocketAddr,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    controls: mpsc::UnboundedSender<Control>,
    thread: Option<JoinHandle<()>>,
}

/// State the proxy thread and the [`FaultProxy`] handle share.
#[derive(Debug)]
struct Shared {
    mode: watch::Sender<FaultMode>,
    accepted: AtomicU64,
    active: AtomicUsize,
}

/// A request to the proxy thread, acknowledged once carried out.
#[derive(Debug)]
struct Control {
    command: Command,
    done: std_mpsc::SyncSender<std::io::Result<()>>,
}

#[derive(Debug)]
enum Command {
    SetMode(FaultMode),
    ResetAll,
    Shutdown,
}

impl FaultProxy {
    /// Starts a proxy on a free port of 127.0.0.1 forwarding to `upstream`, in
    /// [`FaultMode::PassThrough`].
    ///
    /// # Errors
    ///
    /// If the proxy thread, its runtime or its listening socket cannot be created.
    pub fn start(upstream: SocketAddr) -> Result<Self, TestkitError> {
        let (mode, _) = watch::channel(FaultMode::PassThrough);
        let shared = Arc::new(Shared {
            mode,
            accepted: AtomicU64::new(0),
            active: AtomicUsize::new(0),
        });
        let (controls, control_rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = std_mpsc::sync_channel(1);
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("uno-db-fault-proxy".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = ready_tx.send(Err(error));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let listener = match listen(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))) {
                        Ok(listener) => listener,
                        Err(error) => {
                            let _ = ready_tx.send(Err(error));
                            return;
                        }
                    };
                    let local_addr = match listener.local_addr() {
                        Ok(addr) => addr,
                        Err(error) => {
                            let _ = ready_tx.send(Err(error));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(local_addr));
                    let (resets, _) = watch::channel(0);
                    Acceptor {
                        listener: Some(listener),
                        local_addr,
                        upstream,
                        shared: thread_shared,
                        resets,
                        connections: JoinSet::new(),
                    }
                    .run(control_rx)
                    .await;
                });
            })
            .map_err(|source| TestkitError::io("starting the fault proxy thread", source))?;
        let local_addr = match ready_rx.recv_timeout(CONTROL_TIMEOUT) {
            Ok(Ok(addr)) => addr,
            Ok(Err(source)) => {
                return Err(TestkitError::Proxy {
                    action: "start".to_owned(),
                    source,
                });
            }
            Err(_) => {
                return Err(TestkitError::BackgroundThread {
                    action: "the fault proxy".to_owned(),
                });
            }
        };
        tracing::debug!(%local_addr, %upstream, "fault proxy started");
        Ok(Self {
            local_addr,
            upstream,
            shared,
            controls,
            thread: Some(thread),
        })
    }

    /// Forwards traffic unchanged (and listens again if refusing).
    ///
    /// # Errors
    ///
    /// If the proxy thread is gone or the listening socket cannot be reopened.
    pub fn pass_through(&self) -> Result<(), TestkitError> {
        self.control(
            Command::SetMode(FaultMode::PassThrough),
            "pass traffic through",
        )
    }

    /// Holds every chunk of data for `latency` before forwarding it, in both directions, so a
    /// query's round trip takes at least `2 × latency` longer.
    ///
    /// # Errors
    ///
    /// If the proxy thread is gone or the listening socket cannot be reopened.
    pub fn latency(&self, latency: Duration) -> Result<(), TestkitError> {
        self.control(Command::SetMode(FaultMode::Latency(latency)), "add latency")
    }

    /// Stops forwarding in both directions without closing anything: existing connections go
    /// silent and stay open (the half-open sockets a failover leaves behind), and new
    /// connections are accepted but get no answer. Only a client-side timeout gets a client
    /// out. [`restore`](Self::restore) lets held data flow again.
    ///
    /// # Errors
    ///
    /// If the proxy thread is gone or the listening socket cannot be reopened.
    pub fn black_hole(&self) -> Result<(), TestkitError> {
        self.control(Command::SetMode(FaultMode::BlackHole), "black-hole traffic")
    }

    /// Refuses new connections (the listening socket is closed, so connecting fails at once
    /// with "connection refused"); existing connections go on as before.
    ///
    /// # Errors
    ///
    /// If the proxy thread is gone.
    pub fn refuse(&self) -> Result<(), TestkitError> {
        self.control(Command::SetMode(FaultMode::Refuse), "refuse connections")
    }

    /// Resets every current connection: both its sockets are closed with RST, so the client's
    /// next read or write fails with "connection reset". The mode is unchanged, so new
    /// connections are handled as before.
    ///
    /// # Errors
    ///
    /// If the proxy thread is gone.
    pub fn reset_all(&self) -> Result<(), TestkitError> {
        self.control(Command::ResetAll, "reset connections")
    }

    /// Ends any fault: the same as [`pass_through`](Self::pass_through).
    ///
    /// # Errors
    ///
    /// As [`pass_through`](Self::pass_through).
    pub fn restore(&self) -> Result<(), TestkitError> {
        self.pass_through()
    }

    /// The current mode.
    pub fn mode(&self) -> FaultMode {
        *self.shared.mode.borrow()
    }

    /// How many connections the proxy has accepted since it started.
    pub fn connections_accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// How many accepted connections are still open.
    pub fn active_connections(&self) -> usize {
        self.shared.active.load(Ordering::SeqCst)
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The port clients connect to (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// The server the proxy forwards to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    fn control(&self, command: Command, action: &str) -> Result<(), TestkitError> {
        let gone = || TestkitError::BackgroundThread {
            action: "the fault proxy".to_owned(),
        };
        let (done, done_rx) = std_mpsc::sync_channel(1);
        self.controls
            .send(Control { command, done })
            .map_err(|_| gone())?;
        match done_rx.recv_timeout(CONTROL_TIMEOUT) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(TestkitError::Proxy {
                action: action.to_owned(),
                source,
            }),
            Err(std_mpsc::RecvTimeoutError::Timeout) => Err(TestkitError::Timeout {
                action: format!("asking the fault proxy to {action}"),
                after: CONTROL_TIMEOUT,
            }),
            Err(std_mpsc::RecvTimeoutError::Disconnected) => Err(gone()),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        match self.control(Command::Shutdown, "shut down") {
            Ok(()) => {
                if let Some(thread) = self.thread.take() {
                    let _ = thread.join();
                }
            }
            Err(error) => tracing::warn!(
                error = &error as &dyn std::error::Error,
                "the fault proxy did not shut down cleanly"
            ),
        }
    }
}

/// A listening socket on `addr` (with `SO_REUSEADDR`, so the port can be taken again after
/// [`FaultMode::Refuse`]).
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Counts a connection as active while it lives.
struct ActiveConnection(Arc<Shared>);

impl ActiveConnection {
    fn new(shared: &Arc<Shared>) -> Self {
        shared.active.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(shared))
    }
}

impl Drop for ActiveConnection {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The proxy thread's main task: accepts connections and carries out controls.
struct Acceptor {
    /// `None` while refusing.
    listener: Option<TcpListener>,
    local_addr: SocketAddr,
    upstream: SocketAddr,
    shared: Arc<Shared>,
    /// Bumped to reset every connection.
    resets: watch::Sender<u64>,
    connections: JoinSet<()>,
}

impl Acceptor {
    async fn run(mut self, mut controls: mpsc::UnboundedReceiver<Control>) {
        loop {
            tokio::select! {
                control = controls.recv() => {
                    let Some(Control { command, done }) = control else {
                        break;
                    };
                    if let Command::Shutdown = command {
                        self.listener = None;
                        self.connections.shutdown().await;
                        let _ = done.send(Ok(()));
                        return;
                    }
                    let outcome = self.apply(command).await;
                    let _ = done.send(outcome);
                }
                accepted = accept(self.listener.as_ref()) => match accepted {
                    Ok(client) => self.spawn_relay(client),
                    Err(error) => {
                        tracing::warn!(%error, "fault proxy could not accept a connection");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                Some(_) = self.connections.join_next(), if !self.connections.is_empty() => {}
            }
        }
        self.connections.shutdown().await;
    }

    async fn apply(&mut self, command: Command) -> std::io::Result<()> {
        match command {
            Command::SetMode(mode) => {
                self.shared.mode.send_replace(mode);
                if mode == FaultMode::Refuse {
                    self.listener = None;
                } else if self.listener.is_none() {
                    self.listener = Some(listen(self.local_addr)?);
                }
            }
            Command::ResetAll => {
                self.resets.send_modify(|generation| *generation += 1);
                let all_closed = async { while self.connections.join_next().await.is_some() {} };
                if tokio::time::timeout(RESET_TIMEOUT, all_closed)
                    .await
                    .is_err()
                {
                    self.connections.shutdown().await;
                }
            }
            Command::Shutdown => {}
        }
        Ok(())
    }

    fn spawn_relay(&mut self, client: TcpStream) {
        self.shared.accepted.fetch_add(1, Ordering::SeqCst);
        let active = ActiveConnection::new(&self.shared);
        let mode = self.shared.mode.subscribe();
        let resets = self.resets.subscribe();
        let upstream = self.upstream;
        self.connections.spawn(async move {
            let _active = active;
            relay(client, upstream, mode, resets).await;
        });
    }
}

/// The next connection on `listener`; never, while there is none.
async fn accept(listener: Option<&TcpListener>) -> std::io::Result<TcpStream> {
    match listener {
        Some(listener) => listener.accept().await.map(|(stream, _)| stream),
        None => std::future::pending().await,
    }
}
