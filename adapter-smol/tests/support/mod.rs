//! A tiny line protocol, a server harness and a client for the loopback tests.
//!
//! Protocol (after the greeting `hi`):
//! - `ECHO x` answers `x`;
//! - `SLOW x` asks the host, whose answer is `Work` that sleeps and then queues `done x`; no
//!   further input is consumed meanwhile;
//! - `RAW` echoes every following byte as is;
//! - `BYE` answers `bye` and closes; `PANIC` panics;
//! - EOF answers `eof` and closes; shutdown answers `shutdown` and closes (unless told to ignore
//!   it); no input for `idle` answers `timeout` and closes.
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown as HalfClose, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use adapter_smol::{Options, Shutdown};
use session_api::{Completion, ConnInfo, Handler, Notifier, Service, Session, Work};

/// What happened on the server side, in order: `open`, `eof`, `timeout`, `shutdown`, `close`.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<&'static str>>>);

impl Log {
    fn push(&self, what: &'static str) {
        self.0.lock().unwrap().push(what);
    }

    pub fn count(&self, what: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|w| **w == what)
            .count()
    }

    /// Waits until `what` has been logged `n` times; panics after 5 s.
    pub fn wait_for(&self, what: &str, n: usize) {
        let end = Instant::now() + Duration::from_secs(5);
        while self.count(what) < n {
            assert!(
                Instant::now() < end,
                "{what} logged {} times, wanted {n}",
                self.count(what)
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

pub enum Event {
    Slow(String),
}

pub struct Liner {
    out: Vec<u8>,
    events: VecDeque<Event>,
    closed: bool,
    waiting: bool,
    raw: bool,
    idle: Duration,
    deadline: Option<Instant>,
    ignore_shutdown: bool,
    log: Log,
}

impl Liner {
    fn done(&mut self, what: &str) {
        self.waiting = false;
        self.out
            .extend_from_slice(format!("done {what}\r\n").as_bytes());
    }
}

impl Session for Liner {
    type Event = Event;

    fn handle_input(&mut self, input: &[u8], now: Instant) -> usize {
        if self.closed || self.waiting {
            return 0;
        }
        self.deadline = Some(now + self.idle);
        let mut used = 0;
        while !self.closed && !self.waiting && !self.raw {
            let Some(end) = input[used..].iter().position(|&b| b == b'\n') else {
                break;
            };
            let line = &input[used..used + end];
            used += end + 1;
            let line = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line));
            let (verb, arg) = line.split_once(' ').unwrap_or((&line, ""));
            match verb {
                "ECHO" => self.out.extend_from_slice(format!("{arg}\r\n").as_bytes()),
                "SLOW" => {
                    self.events.push_back(Event::Slow(arg.to_owned()));
                    self.waiting = true;
                }
                "RAW" => self.raw = true,
                "PANIC" => panic!("the test session was told to panic"),
                "BYE" => {
                    self.out.extend_from_slice(b"bye\r\n");
                    self.closed = true;
                }
                _ => self.out.extend_from_slice(b"what?\r\n"),
            }
        }
        if self.raw && !self.closed {
            self.out.extend_from_slice(&input[used..]);
            used = input.len();
        }
        used
    }

    fn handle_eof(&mut self, _now: Instant) {
        self.log.push("eof");
        if !self.closed {
            self.out.extend_from_slice(b"eof\r\n");
            self.closed = true;
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if !self.closed && self.deadline.is_some_and(|d| now >= d) {
            self.log.push("timeout");
            self.out.extend_from_slice(b"timeout\r\n");
            self.closed = true;
        }
    }

    fn handle_shutdown(&mut self, _now: Instant) {
        self.log.push("shutdown");
        if !self.ignore_shutdown && !self.closed {
            self.out.extend_from_slice(b"shutdown\r\n");
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
    log: Log,
}

impl Handler for LinerHandler {
    type Session = Liner;
    type Notice = ();

    fn on_event(
        &mut self,
        _session: &mut Liner,
        event: Event,
        _now: Instant,
    ) -> Option<Work<Self>> {
        let Event::Slow(what) = event;
        let slow = self.slow;
        Some(Work::new(move || {
            // Stands in for an fsync: blocking, and must not stall the executor.
            std::thread::sleep(slow);
            Completion::new(
                move |_handler: &mut LinerHandler, session: &mut Liner, _now| session.done(&what),
            )
        }))
    }

    fn on_close(&mut self) {
        self.log.push("close");
    }
}

/// Serves [`Liner`].
#[derive(Clone)]
pub struct LineService {
    pub idle: Duration,
    pub slow: Duration,
    pub ignore_shutdown: bool,
    pub log: Log,
}

impl Default for LineService {
    fn default() -> Self {
        LineService {
            idle: Duration::from_secs(30),
            slow: Duration::from_millis(200),
            ignore_shutdown: false,
            log: Log::default(),
        }
    }
}

impl Service for LineService {
    type Handler = LinerHandler;

    fn open(
        &self,
        _conn: &ConnInfo,
        _notifier: Notifier<()>,
        now: Instant,
    ) -> (Liner, LinerHandler) {
        self.log.push("open");
        let session = Liner {
            out: b"hi\r\n".to_vec(),
            events: VecDeque::new(),
            closed: false,
            waiting: false,
            raw: false,
            idle: self.idle,
            deadline: Some(now + self.idle),
            ignore_shutdown: self.ignore_shutdown,
            log: self.log.clone(),
        };
        let handler = LinerHandler {
            slow: self.slow,
            log: self.log.clone(),
        };
        (session, handler)
    }
}

/// `adapter_smol::run` on its own thread, stopped when dropped.
pub struct Server {
    pub addr: SocketAddr,
    pub log: Log,
    pub shutdown: Shutdown,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Server {
    pub fn start(service: LineService, opts: Options) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = Shutdown::new();
        let log = service.log.clone();
        let trigger = shutdown.clone();
        let thread = std::thread::spawn(move || {
            adapter_smol::run(listener, Arc::new(service), trigger, opts)
        });
        Server {
            addr,
            log,
            shutdown,
            thread: Some(thread),
        }
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Triggers shutdown and waits for `run` to return; panics if that takes over 5 s.
    pub fn stop(&mut self) -> io::Result<()> {
        self.shutdown.trigger();
        let thread = self.thread.take().expect("stopped twice");
        let end = Instant::now() + Duration::from_secs(5);
        while !thread.is_finished() {
            assert!(Instant::now() < end, "run did not return after shutdown");
            std::thread::sleep(Duration::from_millis(5));
        }
        thread.join().expect("run panicked")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A blocking client with 10 s timeouts, so a deadlock fails the test instead of hanging it.
pub struct Client {
    pub reader: BufReader<TcpStream>,
    pub stream: TcpStream,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Client { reader, stream }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// The next line, without its CRLF.
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        assert!(line.ends_with("\r\n"), "incomplete line {line:?}");
        line.truncate(line.len() - 2);
        line
    }

    /// Everything until the server closes.
    pub fn rest(&mut self) -> String {
        let mut rest = String::new();
        self.reader.read_to_string(&mut rest).unwrap();
        rest
    }

    pub fn finish_sending(&self) {
        self.stream.shutdown(HalfClose::Write).unwrap();
    }
}
