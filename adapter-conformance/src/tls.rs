//! TLS in the driver, under each runtime: STARTTLS and implicit TLS over [`pubsub`].

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use conn_driver::TlsMode;
use conn_driver::rustls::{self, ClientConfig, ClientConnection, StreamOwned};

use crate::liner::{LinerService, Stats};
use crate::pubsub::{self, Client};
use crate::{Options, Runtime};

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

/// A [`pubsub`] line client over TLS.
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
            .set_read_timeout(Some(crate::LIMIT))
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

    /// The next line of a CRLF protocol ([`liner`](crate::liner)), without its CRLF.
    pub fn crlf_line(&mut self) -> String {
        let mut line = self.line();
        assert!(line.ends_with('\r'), "line without CRLF: {line:?}");
        line.pop();
        line
    }

    /// Sends `bytes` and TLS's `close_notify` in one write to the socket, so the server reads
    /// them (and the end of the stream) together.
    pub fn send_and_close(&mut self, bytes: &[u8]) {
        let stream = self.stream.get_mut();
        stream
            .conn
            .writer()
            .write_all(bytes)
            .expect("buffer plaintext");
        stream.conn.send_close_notify();
        let mut records = Vec::new();
        while stream.conn.wants_write() {
            stream.conn.write_tls(&mut records).expect("encrypt");
        }
        stream
            .sock
            .write_all(&records)
            .expect("write to the server");
    }

    /// Waits for the server's `close_notify` and EOF; panics if anything else comes.
    pub fn expect_eof(&mut self) {
        let mut rest = Vec::new();
        self.stream
            .read_to_end(&mut rest)
            .expect("a clean end from the server");
        assert!(rest.is_empty(), "unexpected bytes before the end: {rest:?}");
    }
}

fn start<R: Runtime>(tls: TlsMode) -> crate::Server {
    R::start(
        Arc::new(pubsub::PubSub::default()),
        Options {
            tls: Some(tls),
            ..Options::default()
        },
    )
}

/// STARTTLS: the reply goes out in plaintext, the handshake follows, and a line the client
/// pipelined after STARTTLS in the same write is dropped, never run (RFC 3207 section 4.2,
/// CVE-2011-0411).
pub fn starttls_drops_what_was_pipelined_after_it<R: Runtime>() {
    let (server_tls, client_tls) = test_certificate();
    let server = start::<R>(TlsMode::StartTls(server_tls));
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
    let server = start::<R>(TlsMode::StartTls(server_tls));
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
    let server = start::<R>(TlsMode::Implicit(server_tls));
    let mut tls = TlsClient::connect(server.addr, &client_tls);
    assert_eq!(tls.ask("TLS?"), "tls TLSv1.3");
    assert_eq!(tls.ask("PING"), "pong");
    let mut plain = Client::connect(server.addr);
    plain.send("PING");
    plain.expect_end();
    assert_eq!(tls.ask("PING"), "pong");
}

/// The end of the stream (TLS's `close_notify`) read together with pipelined commands whose
/// answers exceed `max_output`: the answers held back by backpressure all go out before the
/// session hears the EOF. (Over TLS, unlike plain TCP, the EOF and the last commands arrive in
/// one read.)
pub fn close_notify_after_pipelined_commands_waits_for_their_answers<R: Runtime>() {
    const BIG: usize = 100_000;
    const COUNT: usize = 30;
    let (server_tls, client_tls) = test_certificate();
    let service = LinerService::default();
    let stats = Arc::clone(&service.stats);
    let server = R::start(
        Arc::new(service),
        Options {
            tls: Some(TlsMode::Implicit(server_tls)),
            ..Options::default()
        },
    );
    let mut tls = TlsClient::connect(server.addr, &client_tls);
    assert_eq!(tls.crlf_line(), "hi");
    let mut batch = format!("BIG {BIG}\r\n").repeat(COUNT);
    batch.push_str("ECHO last\r\n");
    tls.send_and_close(batch.as_bytes());
    let line = "x".repeat(BIG);
    for i in 0..COUNT {
        assert!(tls.crlf_line() == line, "answer {i} differs");
    }
    assert_eq!(tls.crlf_line(), "last");
    assert_eq!(tls.crlf_line(), "eof");
    tls.expect_eof();
    stats.wait_for(Stats::closes, 1, "on_close after EOF");
    assert_eq!((stats.lines(), stats.eofs()), (COUNT + 1, 1));
}
