//! The client-side test session ([`Script`]) and its handler ([`Feeder`]), for connections the
//! test connected itself and a runtime drives ([`Runtime::connections`](crate::Runtime)),
//! typically against [`Peer`](crate::peer::Peer).
//!
//! The session reads the peer's greeting, then one line (or an upload's echo) per request.
//! Everything it reads is an event for the handler, and it reads nothing more until the
//! handler has answered; the handler feeds it [`Job`]s one at a time, each after the previous
//! answer, and records what came back. A line `boom` from the peer makes the session panic.
//! On shutdown the session sends `QUIT` and closes on the peer's `bye` (or at once if it was
//! not greeted yet), unless it was made [`stubborn`](Script::stubborn).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use session_api::{Completion, Deadline, Handler, Session, TimerKind, Work};

/// The byte at `i` of an upload.
pub fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

/// What a [`Script`] reports to its handler.
#[derive(Debug)]
pub enum Event {
    /// The first line.
    Greeting(String),
    /// Any later line.
    Reply(String),
    /// The echo of an upload: how many bytes came back and how many of them differ.
    Echoed {
        /// Bytes echoed.
        len: usize,
        /// Bytes that differ from what was sent.
        wrong: usize,
    },
    /// The peer's `bye` after a `QUIT` the session sent on shutdown; the session is closed.
    Bye,
    /// The peer closed; the session is closed.
    Eof,
    /// The runtime is shutting down.
    Shutdown,
    /// No greeting came in time; the session is closed.
    Timeout,
}

/// The client session; see the [module docs](self).
#[derive(Debug, Default)]
pub struct Script {
    out: Vec<u8>,
    events: VecDeque<Event>,
    greeted: bool,
    /// An event is out and the handler has not answered yet.
    waiting: bool,
    closed: bool,
    /// `QUIT` was sent on shutdown: only `bye` is awaited.
    quitting: bool,
    stubborn: bool,
    /// While an upload's echo is expected: (expected, got, wrong).
    echo: Option<(usize, usize, usize)>,
    /// Closes with [`Event::Timeout`] if no greeting came by then.
    greeting_deadline: Option<Instant>,
}

impl Script {
    /// A session that waits for the greeting as long as it takes.
    pub fn new() -> Script {
        Script::default()
    }

    /// Gives up ([`Event::Timeout`]) if no greeting came within `timeout`.
    pub fn greeting_timeout(mut self, timeout: Duration) -> Script {
        self.greeting_deadline = Some(Instant::now() + timeout);
        self
    }

    /// Ignores shutdown.
    pub fn stubborn(mut self) -> Script {
        self.stubborn = true;
        self
    }

    /// True once the greeting came.
    pub fn is_greeted(&self) -> bool {
        self.greeted
    }

    /// True once the session sent `QUIT` on shutdown.
    pub fn is_quitting(&self) -> bool {
        self.quitting
    }

    fn answered(&mut self) -> bool {
        self.waiting = false;
        !self.quitting && !self.closed
    }

    fn write(&mut self, line: &str) {
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// Sends one request line and reads the answer.
    pub fn send(&mut self, line: &str) {
        if self.answered() {
            self.write(line);
        }
    }

    /// Sends every line in one write (pipelining) and reads the answers one by one.
    pub fn send_all(&mut self, lines: &[String]) {
        if self.answered() {
            for line in lines {
                self.write(line);
            }
        }
    }

    /// Sends `RAW` and `len` pattern bytes in one go, then expects them back.
    pub fn upload(&mut self, len: usize) {
        if self.answered() {
            self.write("RAW");
            self.out.extend((0..len).map(pattern));
            self.echo = Some((len, 0, 0));
        }
    }

    /// Sends nothing; reads the next line.
    pub fn listen(&mut self) {
        self.answered();
    }

    /// Sends `line` and closes at once, without waiting for an answer.
    pub fn send_and_close(&mut self, line: &str) {
        if self.answered() {
            self.write(line);
            self.closed = true;
        }
    }

    /// Sends `len` pattern bytes and closes at once.
    pub fn flood_and_close(&mut self, len: usize) {
        if self.answered() {
            self.out.extend((0..len).map(pattern));
            self.closed = true;
        }
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
        if !self.greeted {
            self.greeted = true;
            self.greeting_deadline = None;
            self.events.push_back(Event::Greeting(line));
            self.waiting = true;
        } else if line == "boom" {
            panic!("the client session panics on purpose");
        } else if self.quitting && line == "bye" {
            self.events.push_back(Event::Bye);
            self.closed = true;
        } else {
            self.events.push_back(Event::Reply(line));
            self.waiting = true;
        }
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
        if self.stubborn || self.closed || self.quitting {
            return;
        }
        if !self.greeted {
            self.closed = true;
        } else {
            self.write("QUIT");
            self.quitting = true;
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
        let at = self.greeting_deadline.filter(|_| !self.closed)?;
        Some(Deadline::new(at, TimerKind::Greeting))
    }

    fn is_closed(&self) -> bool {
        self.closed
    }
}

/// One thing for the handler to have the session do.
#[derive(Debug, Clone)]
pub enum Job {
    /// Send a line, read its answer.
    Line(String),
    /// Send every line in one write, read all their answers.
    Pipeline(Vec<String>),
    /// [`Script::upload`].
    Upload(usize),
    /// Send nothing; read the next line.
    Listen,
    /// [`Script::send_and_close`].
    SendAndClose(String),
    /// [`Script::flood_and_close`].
    FloodAndClose(usize),
    /// The handler panics when it gets here.
    PanicHandler,
    /// The handler returns work that panics.
    PanicWork,
}

impl Job {
    /// [`Job::Line`] from a `&str`.
    pub fn line(line: &str) -> Job {
        Job::Line(line.to_owned())
    }
}

/// The host side of a [`Script`]: feeds the session its jobs one at a time, each after the
/// previous answer, and records what came back. With no jobs left it closes the session.
#[derive(Debug)]
pub struct Feeder {
    jobs: VecDeque<Job>,
    /// When set, each next job is given through work that sleeps this long first.
    slow: Option<Duration>,
    /// Answers still due for the last [`Job::Pipeline`].
    due: usize,
    panic_on_close: bool,
    /// What came back, in order: `greeting <g>`, each reply, `echoed <len> wrong <n>`, `bye`,
    /// `eof`, `shutdown`, `timeout`.
    pub log: Vec<String>,
    /// How often `on_close` was called.
    pub closes: usize,
}

impl Feeder {
    /// A handler with `jobs`, answering at once.
    pub fn new(jobs: impl IntoIterator<Item = Job>) -> Feeder {
        Feeder {
            jobs: jobs.into_iter().collect(),
            slow: None,
            due: 0,
            panic_on_close: false,
            log: Vec::new(),
            closes: 0,
        }
    }

    /// Gives each next job through work that sleeps `slow` first.
    pub fn slow(mut self, slow: Duration) -> Feeder {
        self.slow = Some(slow);
        self
    }

    /// Panics in `on_close`.
    pub fn panic_on_close(mut self) -> Feeder {
        self.panic_on_close = true;
        self
    }

    fn next_job(&mut self, session: &mut Script) {
        match self.jobs.pop_front() {
            Some(Job::Line(line)) => session.send(&line),
            Some(Job::Pipeline(lines)) => {
                self.due = lines.len();
                session.send_all(&lines);
            }
            Some(Job::Upload(len)) => session.upload(len),
            Some(Job::Listen) => session.listen(),
            Some(Job::SendAndClose(line)) => session.send_and_close(&line),
            Some(Job::FloodAndClose(len)) => session.flood_and_close(len),
            Some(Job::PanicHandler) => panic!("the handler panics on purpose"),
            Some(Job::PanicWork) => unreachable!("work is started in on_event"),
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
            Event::Reply(r) => {
                self.log.push(r);
                if self.due > 1 {
                    self.due -= 1;
                    session.listen();
                    return None;
                }
                self.due = 0;
            }
            Event::Echoed { len, wrong } => self.log.push(format!("echoed {len} wrong {wrong}")),
            Event::Bye | Event::Eof | Event::Shutdown | Event::Timeout => {
                let what = format!("{event:?}").to_lowercase();
                self.log.push(what);
                return None;
            }
        }
        if session.is_quitting() {
            session.listen();
            return None;
        }
        if let Some(Job::PanicWork) = self.jobs.front() {
            self.jobs.pop_front();
            return Some(Work::new(|| panic!("the work panics on purpose")));
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
        if self.panic_on_close {
            panic!("on_close panics on purpose");
        }
    }
}
