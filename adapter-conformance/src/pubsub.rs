//! The test protocol: `SUB topic` subscribes this connection to a topic, `PUB topic text`
//! sends `notice topic text` to every subscriber (answering how many it reached), `PING`
//! answers `pong`, `QUIT` answers `bye` and closes. `STARTTLS` answers `ready` and asks for
//! TLS, taking no input until it is up; `TLS?` answers `tls VERSION` or `tls none`. Unknown
//! lines answer `?`.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use session_api::{ConnInfo, Deadline, Handler, Notifier, Service, Session, Work};

/// Who is subscribed to what.
type Registry = Arc<Mutex<BTreeMap<String, Vec<Notifier<String>>>>>;

/// The service: one registry shared by every connection.
#[derive(Default)]
pub struct PubSub {
    registry: Registry,
}

impl Service for PubSub {
    type Handler = PubSubHandler;

    fn open(
        &self,
        _conn: &ConnInfo,
        notifier: Notifier<String>,
        _now: Instant,
    ) -> (Lines, PubSubHandler) {
        let handler = PubSubHandler {
            registry: Arc::clone(&self.registry),
            notifier,
        };
        (Lines::default(), handler)
    }
}

/// A line session: each complete line is an event for the handler, whose answer it writes.
#[derive(Default)]
pub struct Lines {
    out: Vec<u8>,
    events: Vec<String>,
    closed: bool,
    /// STARTTLS was answered; no input until TLS is up.
    awaiting_tls: bool,
    upgrade: bool,
    tls: Option<String>,
}

impl Lines {
    /// Queues a line to send.
    pub fn say(&mut self, line: &str) {
        self.out.extend_from_slice(line.as_bytes());
        self.out.push(b'\n');
    }

    /// Says `bye` and closes.
    pub fn quit(&mut self) {
        self.say("bye");
        self.closed = true;
    }
}

impl Session for Lines {
    type Event = String;

    fn handle_input(&mut self, input: &[u8], _now: Instant) -> usize {
        let mut used = 0;
        while !self.closed && !self.awaiting_tls {
            let Some(end) = input[used..].iter().position(|&b| b == b'\n') else {
                break;
            };
            let line = String::from_utf8_lossy(&input[used..used + end]);
            let line = line.trim_end_matches('\r').to_owned();
            used += end + 1;
            if line == "STARTTLS" {
                // The session's own business: answer, ask, and take nothing more.
                self.say("ready");
                self.awaiting_tls = true;
                self.upgrade = true;
            } else {
                self.events.push(line);
            }
        }
        used
    }

    fn handle_eof(&mut self, _now: Instant) {
        self.closed = true;
    }

    fn handle_timeout(&mut self, _now: Instant) {}

    fn handle_shutdown(&mut self, _now: Instant) {
        self.say("shutdown");
        self.closed = true;
    }

    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let n = self.out.len();
        out.append(&mut self.out);
        n
    }

    fn poll_event(&mut self) -> Option<String> {
        (!self.events.is_empty()).then(|| self.events.remove(0))
    }

    fn poll_timeout(&self) -> Option<Deadline> {
        None
    }

    fn is_closed(&self) -> bool {
        self.closed
    }

    fn poll_upgrade(&mut self) -> Option<session_api::Upgrade> {
        std::mem::take(&mut self.upgrade).then_some(session_api::Upgrade::Tls)
    }

    fn handle_tls(&mut self, info: &session_api::TlsInfo, _now: Instant) {
        self.awaiting_tls = false;
        self.tls = Some(info.version.clone());
    }
}

/// Answers the lines; holds this connection's notifier for `SUB`.
pub struct PubSubHandler {
    registry: Registry,
    notifier: Notifier<String>,
}

impl Handler for PubSubHandler {
    type Session = Lines;
    type Notice = String;

    fn on_event(&mut self, session: &mut Lines, line: String, _now: Instant) -> Option<Work<Self>> {
        let mut registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        match line.split_once(' ') {
            Some(("SUB", topic)) => {
                registry
                    .entry(topic.to_owned())
                    .or_default()
                    .push(self.notifier.clone());
                session.say(&format!("subscribed {topic}"));
            }
            Some(("PUB", rest)) => {
                let (topic, text) = rest.split_once(' ').unwrap_or((rest, ""));
                let mut reached = 0;
                if let Some(subscribers) = registry.get_mut(topic) {
                    let notice = format!("{topic} {text}");
                    subscribers.retain(|n| n.notify(notice.clone()));
                    reached = subscribers.len();
                }
                session.say(&format!("published {reached}"));
            }
            _ if line == "PING" => session.say("pong"),
            _ if line == "TLS?" => {
                let tls = session.tls.clone().unwrap_or_else(|| "none".to_owned());
                session.say(&format!("tls {tls}"));
            }
            _ if line == "QUIT" => session.quit(),
            _ => session.say("?"),
        }
        None
    }

    fn on_notice(
        &mut self,
        session: &mut Lines,
        notice: String,
        _now: Instant,
    ) -> Option<Work<Self>> {
        session.say(&format!("notice {notice}"));
        None
    }
}

/// A line client for [`PubSub`] (lines end in LF), with a read timeout of
/// [`LIMIT`](crate::LIMIT), so a broken runtime fails a test instead of hanging it.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect to the server under test");
        stream
            .set_read_timeout(Some(crate::LIMIT))
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

    /// The next line, without its LF; panics on EOF or after the read timeout.
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).expect("read a line");
        assert!(n > 0, "EOF where a line was expected");
        assert!(line.ends_with('\n'), "incomplete line {line:?}");
        line.truncate(line.len() - 1);
        line
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
            Ok(_) => assert!(!rest.contains(&b'\n'), "got {rest:?}"),
            Err(e) => assert!(
                matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                ),
                "expected the connection to end, got {e}"
            ),
        }
    }

    /// Waits for the server's EOF; panics if anything else comes.
    pub fn expect_eof(&mut self) {
        let mut rest = Vec::new();
        self.reader
            .read_to_end(&mut rest)
            .expect("a clean EOF from the server");
        assert!(rest.is_empty(), "expected EOF, got {rest:?}");
    }
}
