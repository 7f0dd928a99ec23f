//! A tiny line protocol, a server harness and a client for the loopback tests.
//!
//! Protocol (after the greeting `hello`), one command per line:
//! - `ECHO x` answers `x`;
//! - `SLOW x` asks the host, whose answer is `Work` that sleeps and then queues `done x`; no
//!   further input is consumed meanwhile;
//! - `QUICK x` asks the host too, which answers `done x` at once inside `on_event`;
//! - `CHAIN x` is `SLOW x` whose answer does not finish it but asks the host again (`QUICK x`),
//!   so the session has an event without having consumed anything;
//! - `NOOP` answers nothing;
//! - `BIG n` answers a line of `n` times `x`, and is the last line one `handle_input` call
//!   consumes (so the adapter's output limit decides whether the next one is offered);
//! - `STUBBORN` answers `ok` and makes the session ignore shutdown;
//! - `BYE` answers `bye` and closes;
//! - `PANIC` starts `Work` that panics; `BOOM` panics inside `handle_input`;
//! - anything else answers `err`.
//!
//! EOF answers `eof` and closes; shutdown answers `shutdown` and closes (after the answer to a
//! pending `SLOW`); no input for `idle` answers `timeout` and closes.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown as HalfClose, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use adapter_mio::{Options, Server, Shutdown};
use session_api::{Completion, ConnInfo, Handler, Notifier, Service, Session, Work};

pub mod peer;

/// Counters the sessions and handlers bump, read by the tests.
#[derive(Default)]
pub struct Stats {
    pub opened: AtomicUsize,
    pub eofs: AtomicUsize,
    pub timeouts: AtomicUsize,
    pub shutdowns: AtomicUsize,
    pub closes: AtomicUsize,
    /// Command lines consumed, over all sessions.
    pub lines: AtomicUsize,
    /// Peer addresses seen by `Service::open`.
    pub peers: Mutex<Vec<SocketAddr>>,
}

impl Stats {
    pub fn get(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::SeqCst)
    }

    /// Waits until `counter` reaches `n`; panics after 5 s.
    pub fn wait_for(counter: &AtomicUsize, n: usize, what: &str) {
        let end = Instant::now() + Duration::from_secs(5);
        while counter.load(Ordering::SeqCst) < n {
            assert!(
                Instant::now() < end,
                "{what}: {} after 5 s, wanted {n}",
                counter.load(Ordering::SeqCst)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

pub enum Event {
    Quick(String),
    Slow(String),
    Chain(String),
    Panic,
}

pub struct Liner {
    out: Vec<u8>,
    events: VecDeque<Event>,
    closed: bool,
    /// An event is unanswered: consume nothing.
    waiting: bool,
    stubborn: bool,
    /// Shutdown arrived while waiting: say goodbye after the answer.
    stop_after_answer: bool,
    idle: Duration,
    deadline: Option<Instant>,
    stats: Arc<Stats>,
}

impl Liner {
    fn say(&mut self, line: &str) {
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    fn done(&mut self, what: &str) {
        self.waiting = false;
        self.say(&format!("done {what}"));
        if self.stop_after_answer {
            self.say("shutdown");
            self.closed = true;
        }
    }
}

impl Session for Liner {
    type Event = Event;

    fn handle_input(&mut self, input: &[u8], now: Instant) -> usize {
        let mut used = 0;
        while !self.closed && !self.waiting {
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
            match verb {
                "ECHO" => self.say(arg),
                "QUICK" => {
                    self.events.push_back(Event::Quick(arg.to_owned()));
                    self.waiting = true;
                }
                "CHAIN" => {
                    self.events.push_back(Event::Chain(arg.to_owned()));
                    self.waiting = true;
                }
                "SLOW" => {
                    self.events.push_back(Event::Slow(arg.to_owned()));
                    self.waiting = true;
                }
                "PANIC" => {
                    self.events.push_back(Event::Panic);
                    self.waiting = true;
                }
                "BOOM" => panic!("the session panics on purpose"),
                "NOOP" => {}
                "BIG" => {
                    let n = arg.parse().unwrap_or(0);
                    self.out.resize(self.out.len() + n, b'x');
                    self.out.extend_from_slice(b"\r\n");
                    break;
                }
                "STUBBORN" => {
                    self.stubborn = true;
                    self.say("ok");
                }
                "BYE" => {
                    self.say("bye");
                    self.closed = true;
                }
                _ => self.say("err"),
            }
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

    fn poll_timeout(&self) -> Option<Instant> {
        if self.closed { None } else { self.deadline }
    }

    fn is_closed(&self) -> bool {
        self.closed
    }
}

pub struct LinerHandler {
    slow: Duration,
    stats: Arc<Stats>,
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
            Event::Slow(what) => {
                let slow = self.slow;
                Some(Work::new(move || {
                    std::thread::sleep(slow);
                    Completion::new(move |_handler, session: &mut Liner, _now| session.done(&what))
                }))
            }
            Event::Chain(what) => {
                let slow = self.slow;
                Some(Work::new(move || {
                    std::thread::sleep(slow);
                    Completion::new(move |_handler, session: &mut Liner, _now| {
                        session.events.push_back(Event::Quick(what));
                    })
                }))
            }
            Event::Panic => Some(Work::new(|| panic!("the work panics on purpose"))),
        }
    }

    fn on_close(&mut self) {
        self.stats.closes.fetch_add(1, Ordering::SeqCst);
    }
}

pub struct LinerService {
    /// Idle timeout of every session.
    pub idle: Duration,
    /// How long `SLOW` work sleeps.
    pub slow: Duration,
    pub stats: Arc<Stats>,
}

impl LinerService {
    pub fn new() -> Self {
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
        self.stats.peers.lock().unwrap().push(conn.peer);
        let mut session = Liner {
            out: Vec::new(),
            events: VecDeque::new(),
            closed: false,
            waiting: false,
            stubborn: false,
            stop_after_answer: false,
            idle: self.idle,
            deadline: now.checked_add(self.idle),
            stats: Arc::clone(&self.stats),
        };
        session.say("hello");
        let handler = LinerHandler {
            slow: self.slow,
            stats: Arc::clone(&self.stats),
        };
        (session, handler)
    }
}

/// A server running on its own thread.
pub struct Running {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    pub shutdown: Shutdown,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Running {
    pub fn start(service: LinerService, opts: Options) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let stats = Arc::clone(&service.stats);
        let server = Server::new(listener, Arc::new(service), opts).expect("server");
        let addr = server.local_addr().expect("local address");
        let shutdown = server.shutdown_handle();
        let thread = std::thread::spawn(move || server.run());
        Running {
            addr,
            stats,
            shutdown,
            thread: Some(thread),
        }
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Triggers shutdown and waits for `run` to return; panics if it takes longer than `limit`
    /// or fails.
    pub fn stop_within(&mut self, limit: Duration) -> Duration {
        let start = Instant::now();
        self.shutdown.trigger();
        let thread = self.thread.take().expect("stopped once");
        while !thread.is_finished() {
            assert!(
                start.elapsed() < limit,
                "run() did not return within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        thread
            .join()
            .expect("server thread panicked")
            .expect("run() failed");
        start.elapsed()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.thread.is_some() && !std::thread::panicking() {
            self.stop_within(Duration::from_secs(10));
        } else {
            self.shutdown.trigger();
        }
    }
}

/// A blocking client with a read timeout, so a broken server fails the test instead of
/// hanging it.
pub struct Client {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Client { stream, reader }
    }

    /// Connects and reads the greeting.
    pub fn greeted(addr: SocketAddr) -> Client {
        let mut client = Client::connect(addr);
        assert_eq!(client.line(), "hello");
        client
    }

    pub fn send(&mut self, bytes: &str) {
        self.stream.write_all(bytes.as_bytes()).expect("write");
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

    /// Asserts that the server closed the connection cleanly (a FIN, not a reset).
    pub fn expect_eof(&mut self) {
        let mut rest = Vec::new();
        self.reader
            .read_to_end(&mut rest)
            .expect("clean EOF from the server");
        assert!(rest.is_empty(), "unexpected bytes before EOF: {rest:?}");
    }

    /// Asserts that the server closed the connection (EOF or reset both count).
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
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let silent = match self.reader.fill_buf() {
            Ok(_) => false,
            Err(e) => matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
        };
        self.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        silent
    }

    /// Gets an answer it never reads, then closes: unread input makes the kernel send a reset
    /// instead of a FIN.
    pub fn send_and_drop_with_reset(mut self) {
        self.send("ECHO unread\r\n");
        std::thread::sleep(Duration::from_millis(100));
        drop(self);
    }

    pub fn half_close(&self) {
        self.stream
            .shutdown(HalfClose::Write)
            .expect("shutdown(Write)");
    }
}
