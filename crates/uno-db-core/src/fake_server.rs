//! A scripted stand-in for a PostgreSQL server, speaking just enough of the
//! wire protocol to make the driver produce its real, typed errors (server
//! reports, closed connections, I/O errors, TLS refusals, `ToSql`
//! failures). The driver's error types have no public constructors, and the
//! classification must be tested on the values the driver really returns.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A server error report, as the `ErrorResponse` message carries it.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    pub(crate) severity: &'static str,
    pub(crate) code: &'static str,
    pub(crate) message: &'static str,
    pub(crate) detail: Option<&'static str>,
}

impl Report {
    /// An `ERROR` report without detail.
    pub(crate) fn error(code: &'static str, message: &'static str) -> Self {
        Self {
            severity: "ERROR",
            code,
            message,
            detail: None,
        }
    }

    /// A `FATAL` report without detail.
    pub(crate) fn fatal(code: &'static str, message: &'static str) -> Self {
        Self {
            severity: "FATAL",
            ..Self::error(code, message)
        }
    }

    /// The same report with a DETAIL field.
    pub(crate) fn with_detail(self, detail: &'static str) -> Self {
        Self {
            detail: Some(detail),
            ..self
        }
    }
}

/// What the fake server does with the one connection it accepts.
#[derive(Debug, Clone)]
pub(crate) enum Script {
    /// Answers the startup message with this report, then hangs up (as the
    /// server does for a wrong password or while it starts up).
    RejectStartup(Report),
    /// Answers the client's `SSLRequest` with "yes", which a client without
    /// a TLS connector cannot follow.
    OfferTls,
    /// Accepts the startup, then answers every simple query with this
    /// report.
    FailQueries(Report),
    /// Accepts the startup and describes every prepared statement as taking
    /// one `text` parameter and returning no rows.
    OneTextParameter,
    /// Accepts the startup, then sends this report unprompted and hangs up,
    /// as `pg_terminate_backend` does (`FATAL 57P01`).
    TerminateAfterReady(Report),
    /// Accepts the startup, then closes the socket without a word.
    HangUpAfterReady,
    /// Accepts the startup, then resets the TCP connection.
    ResetAfterReady,
    /// Accepts the startup and answers every query with the same result:
    /// the columns `id` (`int4`) and `Name` (`text`), and these rows.
    Rows(Vec<(i32, &'static str)>),
}

/// Starts a fake server playing `script` for one connection and returns a
/// driver configuration pointing at it.
pub(crate) async fn start(script: Script) -> tokio_postgres::Config {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        // A client that gives up early makes the script fail to write;
        // that is the client's business, not a test failure here.
        let _ = play(stream, script).await;
    });
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(port)
        .user("app")
        .dbname("test")
        .connect_timeout(Duration::from_secs(5));
    config
}

async fn play(mut stream: TcpStream, script: Script) -> std::io::Result<()> {
    const SSL_REQUEST: i32 = 80_877_103;
    let mut startup = read_startup(&mut stream).await?;
    if code_of(&startup) == SSL_REQUEST {
        if let Script::OfferTls = script {
            stream.write_all(b"S").await?;
            // The client finds it cannot do TLS and hangs up.
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest).await;
            return Ok(());
        }
        stream.write_all(b"N").await?;
        startup = read_startup(&mut stream).await?;
    }
    let _ = startup;
    if let Script::RejectStartup(report) = &script {
        stream.write_all(&error_response(report)).await?;
        return Ok(());
    }
    let mut ready = message(b'R', &0_i32.to_be_bytes());
    let mut key = Vec::new();
    key.extend_from_slice(&4242_i32.to_be_bytes());
    key.extend_from_slice(&7_i32.to_be_bytes());
    ready.extend(message(b'K', &key));
    ready.extend(ready_for_query());
    stream.write_all(&ready).await?;
    match script {
        Script::TerminateAfterReady(report) => {
            tokio::time::sleep(Duration::from_millis(20)).await;
            stream.write_all(&error_response(&report)).await?;
            Ok(())
        }
        Script::HangUpAfterReady => {
            tokio::time::sleep(Duration::from_millis(20)).await;
            stream.shutdown().await
        }
        Script::ResetAfterReady => {
            tokio::time::sleep(Duration::from_millis(20)).await;
            // A zero linger turns the close into a reset (RST).
            stream.set_zero_linger()?;
            drop(stream);
            Ok(())
        }
        Script::FailQueries(report) => loop {
            let Some((tag, _)) = read_message(&mut stream).await? else {
                return Ok(());
            };
            match tag {
                b'Q' => {
                    let mut reply = error_response(&report);
                    reply.extend(ready_for_query());
                    stream.write_all(&reply).await?;
                }
                b'X' => return Ok(()),
                _ => {}
            }
        },
        Script::OneTextParameter => loop {
            let Some((tag, _)) = read_message(&mut stream).await? else {
                return Ok(());
            };
            match tag {
                // Parse and Describe are answered at Sync, in order.
                b'S' => {
                    let mut reply = message(b'1', &[]);
                    let mut params = Vec::new();
                    params.extend_from_slice(&1_i16.to_be_bytes());
                    params.extend_from_slice(&25_u32.to_be_bytes()); // text
                    reply.extend(message(b't', &params));
                    reply.extend(message(b'n', &[]));
                    reply.extend(ready_for_query());
                    stream.write_all(&reply).await?;
                }
                b'X' => return Ok(()),
                _ => {}
            }
        },
        Script::Rows(rows) => {
            // Sync ends either a prepare (Parse, Describe) or an execution
            // (Bind, Execute); the answer depends on which.
            let mut executing = false;
            loop {
                let Some((tag, _)) = read_message(&mut stream).await? else {
                    return Ok(());
                };
                match tag {
                    b'P' => executing = false,
                    b'B' => executing = true,
                    b'S' if executing => {
                        let mut reply = message(b'2', &[]);
                        for (id, name) in &rows {
                            let mut body = Vec::new();
                            body.extend_from_slice(&2_i16.to_be_bytes());
                            body.extend_from_slice(&4_i32.to_be_bytes());
                            body.extend_from_slice(&id.to_be_bytes());
                            body.extend_from_slice(
                                &i32::try_from(name.len()).unwrap().to_be_bytes(),
                            );
                            body.extend_from_slice(name.as_bytes());
                            reply.extend(message(b'D', &body));
                        }
                        reply.extend(message(b'C', format!("SELECT {}\0", rows.len()).as_bytes()));
                        reply.extend(ready_for_query());
                        stream.write_all(&reply).await?;
                    }
                    b'S' => {
                        let mut reply = message(b'1', &[]);
                        reply.extend(message(b't', &0_i16.to_be_bytes()));
                        let mut fields = Vec::new();
                        fields.extend_from_slice(&2_i16.to_be_bytes());
                        for (name, oid, size) in [("id", 23_u32, 4_i16), ("Name", 25, -1)] {
                            fields.extend_from_slice(name.as_bytes());
                            fields.push(0);
                            fields.extend_from_slice(&0_i32.to_be_bytes()); // table
                            fields.extend_from_slice(&0_i16.to_be_bytes()); // column
                            fields.extend_from_slice(&oid.to_be_bytes());
                            fields.extend_from_slice(&size.to_be_bytes());
                            fields.extend_from_slice(&(-1_i32).to_be_bytes()); // modifier
                            fields.extend_from_slice(&0_i16.to_be_bytes()); // format
                        }
                        reply.extend(message(b'T', &fields));
                        reply.extend(ready_for_query());
                        stream.write_all(&reply).await?;
                    }
                    b'X' => return Ok(()),
                    _ => {}
                }
            }
        }
        Script::RejectStartup(_) | Script::OfferTls => Ok(()),
    }
}

fn code_of(startup: &[u8]) -> i32 {
    i32::from_be_bytes([startup[0], startup[1], startup[2], startup[3]])
}

/// Reads a startup-phase message (no type byte) and returns its body.
async fn read_startup(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let len = stream.read_i32().await?;
    let mut body = vec![0; usize::try_from(len - 4).unwrap()];
    stream.read_exact(&mut body).await?;
    Ok(body)
}

/// Reads a tagged message; `None` once the client has hung up.
async fn read_message(stream: &mut TcpStream) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let tag = match stream.read_u8().await {
        Ok(tag) => tag,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = stream.read_i32().await?;
    let mut body = vec![0; usize::try_from(len - 4).unwrap()];
    stream.read_exact(&mut body).await?;
    Ok(Some((tag, body)))
}

fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&i32::try_from(body.len() + 4).unwrap().to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn ready_for_query() -> Vec<u8> {
    message(b'Z', b"I")
}

fn error_response(report: &Report) -> Vec<u8> {
    let mut body = Vec::new();
    let mut field = |tag: u8, value: &str| {
        body.push(tag);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    };
    field(b'S', report.severity);
    field(b'V', report.severity);
    field(b'C', report.code);
    field(b'M', report.message);
    if let Some(detail) = report.detail {
        field(b'D', detail);
    }
    body.push(0);
    message(b'E', &body)
}
