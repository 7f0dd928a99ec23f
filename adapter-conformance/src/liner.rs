//! The server-side test protocol: a line session ([`Liner`]), its handler and service, and a
//! blocking client for it.
//!
//! After the greeting `hi`, one command per line (lines end in CRLF both ways; a bare LF is
//! accepted):
//!
//! - `ECHO x` answers `x`;
//! - `SLOW x` asks the host, whose answer is [`Work`] that sleeps [`LinerService::slow`] and then
//!   answers `done x`; nothing more is consumed meanwhile;
//! - `QUICK x` asks the host too, which answers `done x` at once inside `on_event`;
//! - `CHAIN x` is `SLOW x` whose completion does not answer but asks the host again (`QUICK x`),
//!   so the session has an event without having consumed anything;
//! - `BURST n` starts `n` pieces of work at once, the `i`-th sleeping `(n - i) × 20 ms`, so they
//!   finish in reverse order; their answers `done 0` to `done n-1` come in the order the work
//!   was started;
//! - `LATE x` answers `closing` and closes at once, with `SLOW x`'s work still running: its
//!   `done x` comes after the close;
//! - `RAW` echoes every following byte as it is, until EOF;
//! - `BIG n` answers a line of `n` times `x`, and is the last line one `handle_input` call
//!   consumes (so the driver's output limit decides whether the next one is offered);
//! - `NOOP` answers nothing;
//! - `STUBBORN` answers `ok` and makes the session ignore shutdown;
//! - `BYE` answers `bye` and closes;
//! - `PANIC session` panics inside `handle_input`, `PANIC handler` inside `on_event`, `PANIC
//!   work` inside the work;
//! - anything else answers `err`.
//!
//! EOF answers `eof` and closes; shutdown answers `shutdown` and closes (after the answer to a
//! pending `SLOW`, `QUICK`, `CHAIN` or `BURST`); no input for [`LinerService::idle`] answers `timeout` and
//! closes. Every session and handler counts what happens to it in the service's [`Stats`].

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown as HalfClose, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use session_api::{
    Completion, ConnInfo, Deadline, Handler, Notifier, Service, Session, TimerKind, Work,
};

use crate::{LIMIT, wait_until};

/// Counters the sessions and handlers of one [`LinerService`] bump, read by the tests.
#[derive(Debug, Default)]
pub struct Stats {
    opened: AtomicUsize,
    eofs: AtomicUsize,
    timeouts: AtomicUsize,
    shutdowns: AtomicUsize,
    closes: AtomicUsize,
    lines: AtomicUsize,
    peers: Mutex<Vec<SocketAddr>>,
}

impl Stats {
    /// Sessions opened by `Service::open`.
    pub fn opened(&self) -> usize {
        self.opened.load(Ordering::SeqCst)
    }

    /// `handle_eof` calls.
    pub fn eofs(&self) -> usize {
        self.eofs.load(Ordering::SeqCst)
    }

    /// Idle timeouts that closed a session.
    pub fn timeouts(&self) -> usize {
        self.timeouts.load(Ordering::SeqCst)
    }

    /// `handle_shutdown` calls.
    pub fn shutdowns(&self) -> usize {
        self.shutdowns.load(Ordering::SeqCst)
    }

    /// `on_close` calls.
    pub fn closes(&self) -> usize {
        self.closes.load(Ordering::SeqCst)
    }

    /// Command lines consumed, over all sessions.
    pub fn lines(&self) -> usize {
        self.lines.load(Ordering::SeqCst)
    }

    /// The peer addresses `Service::open` was given, in order.
    pub fn peers(&self) -> Vec<SocketAddr> {
        self.peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until `counter` reaches `n`; panics after [`LIMIT`].
    ///
    /// ```ignore
    /// server_stats.wait_for(Stats::closes, 1, "on_close after BYE");
    /// ```
    pub fn wait_for(&self, counter: fn(&Stats) -> usize, n: usize, what: &str) {
        wait_until(&format!("{what} ({n})"), || counter(self) >= n);
    }
}

/// What a [`Liner`] asks its host.
#[derive(Debug)]
pub enum Event {
    /// `QUICK x`: answered at once.
    Quick(String),
    /// `SLOW x`: answered by work.
    Slow(String),
    /// `CHAIN x`: work whose completion raises `Quick(x)`.
    Chain(String),
    /// `LATE x`: work answering after the session closed.
    Late(String),
    /// Piece `i` of `BURST n`.
    Burst {
        /// Which piece.
        i: usize,
        /// Of how many.
        n: usize,
    },
    /// `PANIC handler`.
    PanicHandler,
    /// `PANIC work`.
    PanicWork,
}

/// The line session; see the [module docs](self).
pub struct Liner {
    out: Vec<u8>,
    events: VecDeque<Event>,
    closed: bool,
    /// An event is unanswered: consume nothing.
    waiting: bool,
    /// After `RAW`: every byte is echoed.
    raw: bool,
    stubborn: bool,
    /// Shutdown arrived while waiting: say goodbye after the answer.
    stop_after_answer: bool,
    /// Pieces of a `BURST` not answered yet.
    burst_left: usize,
    idle: Duration,
    deadline: Option<Instant>,
    stats: Arc<Stats>,
}

impl Liner {
    fn say(&mut self, line: &str) {
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// The host's answer to `SLOW`, `QUICK`, `CHAIN` or `LATE`.
    fn done(&mut self, what: &str) {
        self.waiting = false;
        self.say(&format!("done {what}"));
        if self.stop_after_answer && !self.closed {
            self.say("shutdown");
            self.closed = true;
        }
    }

    /// The answer to piece `i` of a `BURST`.
    fn burst_done(&mut self, i: usize) {
        self.burst_left -= 1;
        if self.burst_left == 0 {
            self.done(&i.to_string());
        } else {
            self.say(&format!("done {i}"));
        }
    }

    fn ask(&mut self, event: Event) {
        self.events.push_back(event);
        self.waiting = true;
    }
}

impl Session for Liner {
    type Event = Event;

    fn handle_input(&mut self, input: &[u8], now: Instant) -> usize {
        let mut used = 0;
        while !self.closed && !self.waiting && !self.raw {
            let Some(end) = input[used..].iter().position(|&b| b == b'\n') else {
                break;
            };
            let line = &input[used..used + end];
            used += end + 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let line = String::from_utf8_lossy(line).into_owned();
            self.deadline = now.checked_add(self.idle);
            self.stats.lines.fetch_add(1, Ordering::SeqCst);
            let (verb, arg) = line.split_once(' ').unwrap_or((&line, ""));
            match (verb, arg) {
                ("ECHO", _) => self.say(arg),
                ("QUICK", _) => self.ask(Event::Quick(arg.to_owned())),
                ("SLOW", _) => self.ask(Event::Slow(arg.to_owned())),
                ("CHAIN", _) => self.ask(Event::Chain(arg.to_owned())),
                ("BURST", _) => {
                    let n = arg.parse().unwrap_or(0);
                    for i in 0..n {
                        self.ask(Event::Burst { i, n });
                    }
                    self.burst_left = n;
                }
                ("LATE", _) => {
                    self.events.push_back(Event::Late(arg.to_owned()));
                    self.say("closing");
                    self.closed = true;
                }
                ("RAW", "") => self.raw = true,
                ("BIG", _) => {
                    let n = arg.parse().unwrap_or(0);
                    self.out.resize(self.out.len() + n, b'x');
                    self.out.extend_from_slice(b"\r\n");
                    break;
                }
                ("NOOP", "") => {}
                ("STUBBORN", "") => {
                    self.stubborn = true;
                    self.say("ok");
                }
                ("BYE", "") => {
                    self.say("bye");
                    self.closed = true;
                }
                ("PANIC", "session") => panic!("the session panics on purpose"),
                ("PANIC", "handler") => self.ask(Event::PanicHandler),
                ("PANIC", "work") => self.ask(Event::PanicWork),
                _ => self.say("err"),
            }
        }
        if self.raw && !self.closed && used < input.len() {
            self.deadline = now.checked_add(self.idle);
            self.out.extend_from_slice(&input[used..]);
            used = input.len();
        }
        used
    }

    fn handle_eof(&mut self, _now: Instant) {
        self.stats.eofs.fetch_add(1, Ordering::SeqCst);
        if !self.closed {
            self.say("eof");
            self.closed = true;
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.closed || self.deadline.is_none_or(|at| now < at) {
            return;
        }
        self.stats.timeouts.fetch_add(1, Ordering::SeqCst);
        self.say("timeout");
        self.closed = true;
    }

    fn handle_shutdown(&mut self, _now: Instant) {
        self.stats.shutdowns.fetch_add(1, Ordering::SeqCst);
        if self.stubborn || self.closed {
            return;
        }
        if self.waiting {
            self.stop_after_answer = true;
        } else {
            self.say("shutdown");
            self.closed = true;
        }
    }

    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let n = self.out.len();
        out.append(&mut self.out);
        n
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Deadline> {
        let at = self.deadline.filter(|_| !self.closed)?;
        Some(Deadline::new(at, TimerKind::Idle))
    }

    fn is_closed(&self) -> bool {
        self.closed
    }
}

/// Answers a [`Liner`]'s events; counts `on_close`.
pub struct LinerHandler {
    slow: Duration,
    stats: Arc<Stats>,
}

impl LinerHandler {
    /// Work that stands in for an fsync: it blocks, and must not stall the event loop.
    fn slow(&self, then: impl FnOnce(&mut Liner) + Send + 'static) -> Work<Self> {
        let slow = self.slow;
        Work::new(move || {
            std::thread::sleep(slow);
            Completion::new(
                move |_handler: &mut LinerHandler, session: &mut Liner, _now| then(session),
            )
        })
    }
}

impl Handler for LinerHandler {
    type Session = Liner;
    type Notice = ();

    fn on_event(&mut self, session: &mut Liner, event: Event, _now: Instant) -> Option<Work<Self>> {
        match event {
            Event::Quick(what) => {
                session.done(&what);
                None
            }
            Event::Slow(what) | Event::Late(what) => {
                Some(self.slow(move |session| session.done(&what)))
            }
            Event::Chain(what) => Some(self.slow(move |session| {
                session.events.push_back(Event::Quick(what));
            })),
            Event::Burst { i, n } => {
                let wait = Duration::from_millis(20) * (n - i) as u32;
                Some(Work::new(move || {
                    std::thread::sleep(wait);
                    Completion::new(move |_handler: &mut LinerHandler, session: &mut Liner, _| {
                        session.burst_done(i)
                    })
                }))
            }
            Event::PanicHandler => panic!("the handler panics on purpose"),
            Event::PanicWork => Some(Work::new(|| panic!("the work panics on purpose"))),
        }
    }

    fn on_close(&mut self) {
        self.stats.closes.fetch_add(1, Ordering::SeqCst);
    }
}

/// Serves [`Liner`] sessions.
#[derive(Debug, Clone)]
pub struct LinerService {
    /// Idle timeout of every session. Default 30 s.
    pub idle: Duration,
    /// How long the work for `SLOW`, `CHAIN` and `LATE` sleeps. Default 200 ms.
    pub slow: Duration,
    /// What the sessions count.
    pub stats: Arc<Stats>,
}

impl Default for LinerService {
    fn default() -> Self {
        LinerService {
            idle: Duration::from_secs(30),
            slow: Duration::from_millis(200),
            stats: Arc::default(),
        }
    }
}

impl Service for LinerService {
    type Handler = LinerHandler;

    fn open(
        &self,
        conn: &ConnInfo,
        _notifier: Notifier<()>,
        now: Instant,
    ) -> (Liner, LinerHandler) {
        self.stats.opened.fetch_add(1, Ordering::SeqCst);
        self.stats
            .peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(conn.peer);
        let mut session = Liner {
            out: Vec::new(),
            events: VecDeque::new(),
            closed: false,
            waiting: false,
            raw: false,
            stubborn: false,
            stop_after_answer: false,
            burst_left: 0,
            idle: self.idle,
            deadline: now.checked_add(self.idle),
            stats: Arc::clone(&self.stats),
        };
        session.say("hi");
        let handler = LinerHandler {
            slow: self.slow,
            stats: Arc::clone(&self.stats),
        };
        (session, handler)
    }
}

/// A blocking client for [`Liner`] with read and write timeouts of [`LIMIT`], so a broken
/// runtime fails the test instead of hanging it.
pub struct Client {
    /// The socket, for writes of the test's own (bulk data, a half-close).
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect to the server under test");
        stream.set_read_timeout(Some(LIMIT)).expect("read timeout");
        stream
            .set_write_timeout(Some(LIMIT))
            .expect("write timeout");
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let reader = BufReader::new(stream.try_clone().expect("clone the stream"));
        Client { stream, reader }
    }

    /// Connects and reads the greeting.
    pub fn greeted(addr: SocketAddr) -> Client {
        let mut client = Client::connect(addr);
        assert_eq!(client.line(), "hi");
        client
    }

    /// Sends `text` as it is.
    pub fn send(&mut self, text: &str) {
        self.send_bytes(text.as_bytes());
    }

    /// Sends `bytes` as they are.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to the server");
    }

    /// The next line without its CRLF; panics on EOF, error or timeout.
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).expect("read a line");
        assert!(n > 0, "EOF where a line was expected");
        assert!(line.ends_with("\r\n"), "line without CRLF: {line:?}");
        line.truncate(line.len() - 2);
        line
    }

    /// Exactly `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut got = vec![0; n];
        self.reader.read_exact(&mut got).expect("read bytes");
        got
    }

    /// Everything until the server's EOF, which must be clean (a FIN, not a reset).
    pub fn rest(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        self.reader
            .read_to_end(&mut rest)
            .expect("a clean EOF from the server");
        rest
    }

    /// Asserts that the server closed the connection cleanly (a FIN, not a reset) with nothing
    /// more to say.
    pub fn expect_eof(&mut self) {
        let rest = self.rest();
        assert!(
            rest.is_empty(),
            "unexpected bytes before EOF: {:?}",
            String::from_utf8_lossy(&rest)
        );
    }

    /// Asserts that the server ended the connection without another byte (EOF or reset both
    /// count).
    pub fn expect_gone(&mut self) {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => assert!(rest.is_empty(), "unexpected bytes before EOF: {rest:?}"),
            Err(e) => assert!(
                matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
                ),
                "expected the connection to be closed, got {e}"
            ),
        }
    }

    /// True if nothing arrives within `wait`.
    pub fn silent_for(&mut self, wait: Duration) -> bool {
        self.stream
            .set_read_timeout(Some(wait))
            .expect("read timeout");
        let silent = match self.reader.fill_buf() {
            Ok(_) => false,
            Err(e) => matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
        };
        self.stream
            .set_read_timeout(Some(LIMIT))
            .expect("read timeout");
        silent
    }

    /// Waits until something has arrived, without reading it.
    pub fn wait_readable(&mut self) {
        if !self.reader.buffer().is_empty() {
            return;
        }
        let mut byte = [0];
        let n = self.stream.peek(&mut byte).expect("peek");
        assert_eq!(n, 1, "EOF where input was expected");
    }

    /// Shuts down the sending side (the server reads EOF).
    pub fn half_close(&self) {
        self.stream
            .shutdown(HalfClose::Write)
            .expect("shutdown(Write)");
    }
}
