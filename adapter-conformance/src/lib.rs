//! One behaviour suite for buzon's runtime adapters, written once and run under each.
//!
//! An adapter's test crate implements [`Runtime`] (start a server for a [`Service`] on a
//! loopback port, stop it) and expands [`suite!`] once; every test below then runs under that
//! runtime, so both runtimes are held to the same behaviour by the same code.
//!
//! The test protocol is [`pubsub`]: lines in, lines out, with `SUB` and `PUB` for server push
//! between connections.

pub mod pubsub;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conn_driver::TlsMode;
use conn_driver::rustls::{self, ClientConfig, ClientConnection, StreamOwned};
use session_api::Service;

/// A runtime under test.
pub trait Runtime {
    /// Serves `service` on `127.0.0.1:0` (on threads of its own), with `tls` for its
    /// connections, until the server is stopped.
    fn start<S: Service>(service: Arc<S>, tls: Option<TlsMode>) -> Server;
}

/// A self-signed certificate for `localhost`: the server's configuration and a client
/// configuration that trusts it.
pub fn test_certificate() -> (Arc<rustls::ServerConfig>, Arc<ClientConfig>) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
        .expect("generate a test certificate");
    let server = conn_driver::server_config_from_pem(
        cert.cert.pem().as_bytes(),
        cert.signing_key.serialize_pem().as_bytes(),
    )
    .expect("the test certificate makes a server configuration");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(cert.cert.der().clone())
        .expect("the test certificate is a root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    (server, Arc::new(client))
}

/// A line client over TLS.
pub struct TlsClient {
    stream: BufReader<StreamOwned<ClientConnection, TcpStream>>,
}

impl TlsClient {
    /// Starts TLS as `localhost` on a connected stream.
    pub fn over(stream: TcpStream, config: &Arc<ClientConfig>) -> TlsClient {
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("a server name");
        let conn = ClientConnection::new(Arc::clone(config), name).expect("a TLS client");
        TlsClient {
            stream: BufReader::new(StreamOwned::new(conn, stream)),
        }
    }

    /// Connects to `addr` and starts TLS at once (implicit TLS).
    pub fn connect(addr: SocketAddr, config: &Arc<ClientConfig>) -> TlsClient {
        let stream = TcpStream::connect(addr).expect("connect to the server under test");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("set a read timeout");
        TlsClient::over(stream, config)
    }

    /// Sends `line` with its LF.
    pub fn send(&mut self, line: &str) {
        let stream = self.stream.get_mut();
        stream
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| stream.flush())
            .expect("write over TLS");
    }

    /// The next line, without its LF.
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self
            .stream
            .read_line(&mut line)
            .expect("read a line over TLS");
        assert!(n > 0, "EOF where a line was expected");
        line.trim_end_matches('\n').to_owned()
    }

    /// Sends `line` and returns the answer.
    pub fn ask(&mut self, line: &str) -> String {
        self.send(line);
        self.line()
    }
}

/// A running server, stopped (and waited for) when dropped.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<Box<dyn FnOnce() + Send>>,
}

impl Server {
    /// A server at `addr` that `stop` shuts down and waits for.
    pub fn new(addr: SocketAddr, stop: impl FnOnce() + Send + 'static) -> Self {
        Server {
            addr,
            stop: Some(Box::new(stop)),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

/// A line client with a read timeout, so a broken runtime fails a test instead of hanging it.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect to the server under test");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("set a read timeout");
        Client {
            writer: stream.try_clone().expect("clone the stream"),
            reader: BufReader::new(stream),
        }
    }

    /// Sends `line` with its LF.
    pub fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\n").as_bytes())
            .expect("write to the server");
    }

    /// The next line, without its LF; panics on EOF or after 5 s.
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).expect("read a line");
        assert!(n > 0, "EOF where a line was expected");
        line.trim_end_matches('\n').to_owned()
    }

    /// Sends `line` and returns the answer.
    pub fn ask(&mut self, line: &str) -> String {
        self.send(line);
        self.line()
    }

    /// The plain stream, to start TLS on (nothing may be buffered unread).
    pub fn into_stream(self) -> TcpStream {
        assert!(self.reader.buffer().is_empty(), "bytes after the last line");
        self.reader.into_inner()
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write to the server");
    }

    /// Waits until the server ends the connection (EOF or reset); panics if it sends a line.
    pub fn expect_end(&mut self) {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => assert!(rest.is_empty() || !rest.contains(&b'\n'), "got {rest:?}"),
            Err(e) => assert_ne!(
                e.kind(),
                std::io::ErrorKind::WouldBlock,
                "no end within 5 s"
            ),
        }
    }

    /// Waits for the server's EOF.
    pub fn expect_eof(&mut self) {
        let mut rest = String::new();
        let n = self.reader.read_line(&mut rest).expect("read until EOF");
        assert_eq!(n, 0, "expected EOF, got {rest:?}");
    }
}

/// A notice from one connection reaches another at once, in order, between its own answers.
pub fn notices_reach_other_connections<R: Runtime>() {
    let server = R::start(Arc::new(pubsub::PubSub::default()), None);
    let mut reader = Client::connect(server.addr);
    let mut other = Client::connect(server.addr);
    assert_eq!(reader.ask("SUB news"), "subscribed news");
    assert_eq!(other.ask("SUB news"), "subscribed news");
    let mut writer = Client::connect(server.addr);
    assert_eq!(writer.ask("PUB news first"), "published 2");
    assert_eq!(writer.ask("PUB news second"), "published 2");
    assert_eq!(writer.ask("PUB sport nobody"), "published 0");
    for client in [&mut reader, &mut other] {
        assert_eq!(client.line(), "notice news first");
        assert_eq!(client.line(), "notice news second");
    }
    // The reader's own requests still get their answers in order.
    assert_eq!(reader.ask("PING"), "pong");
}

/// A notifier of a connection that is gone says so, and is forgotten.
pub fn a_closed_connection_is_reported_gone<R: Runtime>() {
    let server = R::start(Arc::new(pubsub::PubSub::default()), None);
    let mut reader = Client::connect(server.addr);
    assert_eq!(reader.ask("SUB news"), "subscribed news");
    assert_eq!(reader.ask("QUIT"), "bye");
    reader.expect_eof();
    drop(reader);
    let mut writer = Client::connect(server.addr);
    // The server notices the closed connection at its own pace.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = writer.ask("PUB news anyone");
        if answer == "published 0" {
            break;
        }
        assert_eq!(answer, "published 1");
        assert!(Instant::now() < deadline, "the closed reader still counts");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// STARTTLS: the reply goes out in plaintext, the handshake follows, and a line the client
/// pipelined after STARTTLS in the same write is dropped, never run (RFC 3207 section 4.2,
/// CVE-2011-0411).
pub fn starttls_drops_what_was_pipelined_after_it<R: Runtime>() {
    let (server_tls, client_tls) = test_certificate();
    let server = R::start(
        Arc::new(pubsub::PubSub::default()),
        Some(TlsMode::StartTls(server_tls)),
    );
    let mut watcher = Client::connect(server.addr);
    assert_eq!(watcher.ask("SUB news"), "subscribed news");
    let mut client = Client::connect(server.addr);
    assert_eq!(client.ask("TLS?"), "tls none");
    client.send_raw(b"STARTTLS\nPUB news injected\n");
    assert_eq!(client.line(), "ready");
    let mut tls = TlsClient::over(client.into_stream(), &client_tls);
    assert_eq!(tls.ask("TLS?"), "tls TLSv1.3");
    assert_eq!(tls.ask("PUB news inside"), "published 1");
    // The injected line never ran: the first notice is the one sent inside TLS.
    assert_eq!(watcher.line(), "notice news inside");
    assert_eq!(tls.ask("QUIT"), "bye");
}

/// Plaintext sent where the TLS handshake should be ends that connection only.
pub fn a_failed_handshake_ends_only_its_connection<R: Runtime>() {
    let (server_tls, _) = test_certificate();
    let server = R::start(
        Arc::new(pubsub::PubSub::default()),
        Some(TlsMode::StartTls(server_tls)),
    );
    let mut client = Client::connect(server.addr);
    assert_eq!(client.ask("STARTTLS"), "ready");
    client.send_raw(b"PING\nPING\n");
    client.expect_end();
    let mut other = Client::connect(server.addr);
    assert_eq!(other.ask("PING"), "pong");
}

/// Implicit TLS: the handshake comes first, then the protocol; a plaintext client gets nothing.
pub fn implicit_tls<R: Runtime>() {
    let (server_tls, client_tls) = test_certificate();
    let server = R::start(
        Arc::new(pubsub::PubSub::default()),
        Some(TlsMode::Implicit(server_tls)),
    );
    let mut tls = TlsClient::connect(server.addr, &client_tls);
    assert_eq!(tls.ask("TLS?"), "tls TLSv1.3");
    assert_eq!(tls.ask("PING"), "pong");
    let mut plain = Client::connect(server.addr);
    plain.send("PING");
    plain.expect_end();
    assert_eq!(tls.ask("PING"), "pong");
}

/// Expands to one `#[test]` per conformance test, run under the given [`Runtime`].
///
/// ```ignore
/// adapter_conformance::suite!(MyRuntime);
/// ```
#[macro_export]
macro_rules! suite {
    ($runtime:ty) => {
        #[test]
        fn notices_reach_other_connections() {
            $crate::notices_reach_other_connections::<$runtime>();
        }

        #[test]
        fn a_closed_connection_is_reported_gone() {
            $crate::a_closed_connection_is_reported_gone::<$runtime>();
        }

        #[test]
        fn starttls_drops_what_was_pipelined_after_it() {
            $crate::starttls_drops_what_was_pipelined_after_it::<$runtime>();
        }

        #[test]
        fn a_failed_handshake_ends_only_its_connection() {
            $crate::a_failed_handshake_ends_only_its_connection::<$runtime>();
        }

        #[test]
        fn implicit_tls() {
            $crate::implicit_tls::<$runtime>();
        }
    };
}
