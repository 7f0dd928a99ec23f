//! One behaviour suite for buzon's runtime adapters, written once and run under each.
//!
//! An adapter's test crate implements [`Runtime`] (start a server for a [`Service`] on a
//! loopback port, stop it) and expands [`suite!`] once; every test below then runs under that
//! runtime, so both runtimes are held to the same behaviour by the same code.
//!
//! The test protocol is [`pubsub`]: lines in, lines out, with `SUB` and `PUB` for server push
//! between connections.

pub mod pubsub;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use session_api::Service;

/// A runtime under test.
pub trait Runtime {
    /// Serves `service` on `127.0.0.1:0` (on threads of its own) until the server is stopped.
    fn start<S: Service>(service: Arc<S>) -> Server;
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

    /// Waits for the server's EOF.
    pub fn expect_eof(&mut self) {
        let mut rest = String::new();
        let n = self.reader.read_line(&mut rest).expect("read until EOF");
        assert_eq!(n, 0, "expected EOF, got {rest:?}");
    }
}

/// A notice from one connection reaches another at once, in order, between its own answers.
pub fn notices_reach_other_connections<R: Runtime>() {
    let server = R::start(Arc::new(pubsub::PubSub::default()));
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
    let server = R::start(Arc::new(pubsub::PubSub::default()));
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
    };
}
