//! A blocking line server on loopback and a sans-IO client session for the client-mode tests.
//!
//! Server protocol: on connecting it greets `hi <n>` (`n` counts accepted connections from 0),
//! then answers line by line:
//! - `ECHO x` answers `x`;
//! - `QUIT` answers `bye` and closes;
//! - `LAST x` answers `x` and `bye` in one write and closes (a pipelined goodbye);
//! - `CLOSE` closes without a word;
//! - `WAIT` answers nothing (the server keeps reading);
//! - `GATE x` answers `x` once `gate` connections have sent a `GATE` line, or `late` if that did
//!   not happen within 5 s (so only a client that drives its connections at once gets `x`);
//! - `RAW` echoes every following byte as is until EOF, reading and writing on one thread (a
//!   peer that stops reading while it writes deadlocks against it);
//! - anything else answers `what?`.
//!
//! EOF from the client ends the connection. Every line received is recorded per connection.
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use session_api::{Completion, Handler, Session, Work};

/// How the server starts a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Greet {
    /// `hi <n>`, then the protocol above.
    Hi,
    /// Nothing: the server only reads, and closes at the client's EOF.
    Never,
    /// Closes the connection at once, before any greeting.
    CloseAtOnce,
}

/// Counts `GATE` lines across connections.
#[derive(Default)]
struct Gate {
    count: Mutex<usize>,
    all_in: Condvar,
}

/// What the server received, per connection in accept order.
#[derive(Clone, Default)]
pub struct Received(Arc<Mutex<Vec<Vec<String>>>>);

impl Received {
    fn push(&self, conn: usize, line: String) {
        let mut all = self.0.lock().unwrap();
        if all.len() <= conn {
            all.resize(conn + 1, Vec::new());
        }
        all[conn].push(line);
    }

    pub fn lines(&self, conn: usize) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .get(conn)
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until every one of `conns` connections has received `line`; panics after 5 s.
    pub fn wait_for(&self, line: &str, conns: usize) {
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            let done = {
                let all = self.0.lock().unwrap();
                all.len() >= conns
                    && all[..conns]
                        .iter()
                        .all(|lines| lines.iter().any(|l| l == line))
            };
            if done {
                return;
            }
            assert!(
                Instant::now() < end,
                "{line:?} not received on all {conns} connections"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The server: an accept thread and a thread per connection, stopped when dropped.
pub struct LineServer {
    pub addr: SocketAddr,
    pub received: Received,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl LineServer {
    /// `gate`: how many connections must send `GATE` before any is answered.
    pub fn start(greet: Greet, gate: usize) -> LineServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Received::default();
        let stop = Arc::new(AtomicBool::new(false));
        let gate = (Arc::new(Gate::default()), gate);
        let thread = {
            let received = received.clone();
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for (n, stream) in listener.incoming().enumerate() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let received = received.clone();
                    let gate = (Arc::clone(&gate.0), gate.1);
                    std::thread::spawn(move || {
                        // Errors (timeouts included) just end the connection: the client's
                        // assertions then fail.
                        let _ = serve_one(stream, n, greet, &received, &gate);
                    });
                }
            })
        };
        LineServer {
            addr,
            received,
            stop,
            thread: Some(thread),
        }
    }

    pub fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).unwrap()
    }
}

impl Drop for LineServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve_one(
    stream: TcpStream,
    n: usize,
    greet: Greet,
    received: &Received,
    (gate, gate_size): &(Arc<Gate>, usize),
) -> io::Result<()> {
    // A deadlock fails the test within seconds instead of hanging it.
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    match greet {
        Greet::Hi => writer.write_all(format!("hi {n}\r\n").as_bytes())?,
        Greet::Never => {}
        Greet::CloseAtOnce => return Ok(()),
    }
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let text = line.trim_end_matches(['\r', '\n']).to_owned();
        received.push(n, text.clone());
        let (verb, arg) = text.split_once(' ').unwrap_or((&text, ""));
        match verb {
            "ECHO" => writer.write_all(format!("{arg}\r\n").as_bytes())?,
            "QUIT" => {
                writer.write_all(b"bye\r\n")?;
                return Ok(());
            }
            "LAST" => {
                writer.write_all(format!("{arg}\r\nbye\r\n").as_bytes())?;
                return Ok(());
            }
            "CLOSE" => return Ok(()),
            "WAIT" => {}
            "GATE" => {
                let mut count = gate.count.lock().unwrap();
                *count += 1;
                gate.all_in.notify_all();
                let (count, timeout) = gate
                    .all_in
                    .wait_timeout_while(count, Duration::from_secs(5), |c| *c < *gate_size)
                    .unwrap();
                drop(count);
                let reply = if timeout.timed_out() { "late" } else { arg };
                writer.write_all(format!("{reply}\r\n").as_bytes())?;
            }
            "RAW" => {
                // Whatever the line reader already buffered comes first.
                let buffered = reader.buffer().to_vec();
                reader.consume(buffered.len());
                writer.write_all(&buffered)?;
                let mut chunk = vec![0; 64 * 1024];
                loop {
                    let got = reader.get_mut().read(&mut chunk)?;
                    if got == 0 {
                        return Ok(());
                    }
                    writer.write_all(&chunk[..got])?;
                }
            }
            _ => writer.write_all(b"what?\r\n")?,
        }
    }
}

/// The byte at `i` of an upload.
pub fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

/// What the client session reports to its handler. After each one the session reads nothing
/// more until the handler has answered ([`Script::send`], [`Script::upload`], [`Script::listen`] or
/// [`Script::finish`]).
#[derive(Debug)]
pub enum Event {
    Greeting(String),
    Reply(String),
    /// The echo of an upload: how many bytes came back and how many of them differ.
    Echoed {
        len: usize,
        wrong: usize,
    },
    Eof,
    Shutdown,
    Timeout,
}

/// A client session: reads the greeting, then a line (or an upload's echo) per request.
pub struct Script {
    out: Vec<u8>,
    events: VecDeque<Event>,
    greeted: bool,
    /// An event is out and the handler has not answered yet.
    waiting: bool,
    closed: bool,
    /// While echoed upload bytes are expected: (expected, got, wrong).
    echo: Option<(usize, usize, usize)>,
    /// Closes with [`Event::Timeout`] if no greeting came by then.
    greeting_deadline: Option<Instant>,
    ignore_shutdown: bool,
}

impl Script {
    pub fn new(greeting_timeout: Option<Duration>, ignore_shutdown: bool) -> Script {
        Script {
            out: Vec::new(),
            events: VecDeque::new(),
            greeted: false,
            waiting: false,
            closed: false,
            echo: None,
            greeting_deadline: greeting_timeout.map(|t| Instant::now() + t),
            ignore_shutdown,
        }
    }

    /// Sends one request line.
    pub fn send(&mut self, line: &str) {
        self.waiting = false;
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// Sends `RAW` and `len` pattern bytes in one go, then expects them back.
    pub fn upload(&mut self, len: usize) {
        self.waiting = false;
        self.out.extend_from_slice(b"RAW\r\n");
        self.out.extend((0..len).map(pattern));
        self.echo = Some((len, 0, 0));
    }

    /// Sends nothing; reads the next line.
    pub fn listen(&mut self) {
        self.waiting = false;
    }

    /// Closes without a word.
    pub fn finish(&mut self) {
        self.waiting = false;
        self.closed = true;
    }
}

impl Session for Script {
    type Event = Event;

    fn handle_input(&mut self, input: &[u8], _now: Instant) -> usize {
        if self.closed || self.waiting {
            return 0;
        }
        if let Some((len, got, wrong)) = &mut self.echo {
            let take = input.len().min(*len - *got);
            for (i, &b) in input[..take].iter().enumerate() {
                if b != pattern(*got + i) {
                    *wrong += 1;
                }
            }
            *got += take;
            if *got == *len {
                self.events.push_back(Event::Echoed {
                    len: *len,
                    wrong: *wrong,
                });
                self.echo = None;
                self.waiting = true;
            }
            return take;
        }
        let Some(end) = input.iter().position(|&b| b == b'\n') else {
            return 0;
        };
        let line = &input[..end];
        let line = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line)).into_owned();
        self.events.push_back(if self.greeted {
            Event::Reply(line)
        } else {
            self.greeted = true;
            self.greeting_deadline = None;
            Event::Greeting(line)
        });
        self.waiting = true;
        end + 1
    }

    fn handle_eof(&mut self, _now: Instant) {
        if !self.closed {
            self.events.push_back(Event::Eof);
            self.closed = true;
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if !self.closed && self.greeting_deadline.is_some_and(|d| now >= d) {
            self.events.push_back(Event::Timeout);
            self.closed = true;
        }
    }

    fn handle_shutdown(&mut self, _now: Instant) {
        self.events.push_back(Event::Shutdown);
        if !self.ignore_shutdown && !self.closed {
            self.out.extend_from_slice(b"QUIT\r\n");
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
        if self.closed {
            None
        } else {
            self.greeting_deadline
        }
    }

    fn is_closed(&self) -> bool {
        self.closed
    }
}

/// One thing for the handler to have the session do.
#[derive(Debug, Clone)]
pub enum Job {
    Line(String),
    Upload(usize),
    /// Sends nothing, waits for the next line.
    Listen,
    /// The handler panics when it gets here.
    Panic,
}

impl Job {
    pub fn line(line: &str) -> Job {
        Job::Line(line.to_owned())
    }
}

/// The host side: feeds the session its jobs one at a time, each after the previous answer,
/// and records what came back. With no jobs left it finishes the session.
#[derive(Debug)]
pub struct Feeder {
    jobs: VecDeque<Job>,
    /// When set, each next job is given through `Work` that sleeps this long first.
    slow: Option<Duration>,
    /// What came back, in order: `greeting <g>`, each reply, `echoed <len> wrong <n>`, `eof`,
    /// `shutdown`, `timeout`.
    pub log: Vec<String>,
    /// How often `on_close` was called.
    pub closes: usize,
}

impl Feeder {
    pub fn new(jobs: impl IntoIterator<Item = Job>, slow: Option<Duration>) -> Feeder {
        Feeder {
            jobs: jobs.into_iter().collect(),
            slow,
            log: Vec::new(),
            closes: 0,
        }
    }

    fn next_job(&mut self, session: &mut Script) {
        match self.jobs.pop_front() {
            Some(Job::Line(line)) => session.send(&line),
            Some(Job::Upload(len)) => session.upload(len),
            Some(Job::Listen) => session.listen(),
            Some(Job::Panic) => panic!("the test handler was told to panic"),
            None => session.finish(),
        }
    }
}

impl Handler for Feeder {
    type Session = Script;
    type Notice = ();

    fn on_event(
        &mut self,
        session: &mut Script,
        event: Event,
        _now: Instant,
    ) -> Option<Work<Self>> {
        match event {
            Event::Greeting(g) => self.log.push(format!("greeting {g}")),
            Event::Reply(r) => self.log.push(r),
            Event::Echoed { len, wrong } => self.log.push(format!("echoed {len} wrong {wrong}")),
            Event::Eof => {
                self.log.push("eof".into());
                return None;
            }
            Event::Shutdown => {
                self.log.push("shutdown".into());
                return None;
            }
            Event::Timeout => {
                self.log.push("timeout".into());
                return None;
            }
        }
        match self.slow {
            None => {
                self.next_job(session);
                None
            }
            Some(slow) => Some(Work::new(move || {
                std::thread::sleep(slow);
                Completion::new(|feeder: &mut Feeder, session: &mut Script, _now| {
                    feeder.next_job(session)
                })
            })),
        }
    }

    fn on_close(&mut self) {
        self.closes += 1;
    }
}
