//! For the outbound tests: a blocking line server on its own threads, and a client session with
//! a recording handler for [`adapter_mio::Connections`] to drive against it.
//!
//! Server protocol: greets with `hello` (or, made with `greeting: None`, closes every
//! connection at once), then one command per line, each handled before the next is read (a
//! blocking echo: while its answer cannot be written it reads nothing):
//! - `ECHO x` answers `x`;
//! - `WAIT` answers nothing;
//! - `CLOSE` closes the connection without an answer;
//! - `QUIT` answers `bye` and closes;
//! - anything else answers `err`.
//!
//! Client session ([`LineClient`]): waits for the greeting, then sends its lines (one at a time,
//! each after the previous one's answer, or all at once when `pipelined`), then `QUIT`, and
//! closes on `bye` or EOF. Every line it reads is an event for the handler ([`Recorder`]),
//! which must answer it (at once, or through `Work` for lines sent as `ECHO slow...`) before
//! the session reads on. The answer `boom` makes the session panic; `ECHO panic...` makes the
//! handler's `Work` panic. On shutdown it sends `QUIT` at once (unless `stubborn`).

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use session_api::{Completion, Handler, Session, Work};

/// A blocking line server on loopback, serving each connection on its own thread. The threads
/// end with their connections; the accepting one lives as long as the test process.
pub struct LineServer {
    pub addr: SocketAddr,
    /// Command lines read, over all connections.
    pub lines: Arc<AtomicUsize>,
}

impl LineServer {
    pub fn start(greeting: Option<&'static str>) -> LineServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let lines = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&lines);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || {
                    // Errors (the client went away) just end the connection.
                    let _ = serve(stream, greeting, &counter);
                });
            }
        });
        LineServer { addr, lines }
    }

    /// A blocking client stream, as `Connections::push` takes it.
    pub fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).expect("connect")
    }
}

fn serve(stream: TcpStream, greeting: Option<&str>, lines: &AtomicUsize) -> io::Result<()> {
    let Some(greeting) = greeting else {
        return Ok(());
    };
    let mut writer = stream.try_clone()?;
    writer.write_all(format!("{greeting}\r\n").as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        lines.fetch_add(1, Ordering::SeqCst);
        let command = line.trim_end_matches(['\r', '\n']);
        let (verb, arg) = command.split_once(' ').unwrap_or((command, ""));
        match verb {
            "ECHO" => writer.write_all(format!("{arg}\r\n").as_bytes())?,
            "WAIT" => {}
            "CLOSE" => return Ok(()),
            "QUIT" => {
                writer.write_all(b"bye\r\n")?;
                // Read what the client still sends until its EOF, so closing sends a FIN.
                let mut rest = Vec::new();
                let _ = io::Read::read_to_end(&mut reader, &mut rest);
                return Ok(());
            }
            _ => writer.write_all(b"err\r\n")?,
        }
    }
}

/// What a [`LineClient`] tells its handler.
#[derive(Debug)]
pub enum Event {
    Greeting(String),
    /// The answer to `sent`; the session reads nothing more until the handler calls
    /// [`LineClient::answered`].
    Reply {
        sent: String,
        reply: String,
    },
    Bye,
    Eof,
    Shutdown,
}

pub struct LineClient {
    to_send: VecDeque<String>,
    /// Sent, not answered yet.
    in_flight: VecDeque<String>,
    pipelined: bool,
    stubborn: bool,
    greeted: bool,
    /// A `Reply` is unanswered: consume nothing.
    waiting: bool,
    quitting: bool,
    closed: bool,
    out: Vec<u8>,
    events: VecDeque<Event>,
}

impl LineClient {
    /// Sends `lines` one at a time, each after the previous one's answer.
    pub fn new<S: Into<String>>(lines: impl IntoIterator<Item = S>) -> LineClient {
        LineClient {
            to_send: lines.into_iter().map(Into::into).collect(),
            in_flight: VecDeque::new(),
            pipelined: false,
            stubborn: false,
            greeted: false,
            waiting: false,
            quitting: false,
            closed: false,
            out: Vec::new(),
            events: VecDeque::new(),
        }
    }

    /// Sends every line at once, right after the greeting.
    pub fn pipelined(mut self) -> LineClient {
        self.pipelined = true;
        self
    }

    /// Ignores shutdown.
    pub fn stubborn(mut self) -> LineClient {
        self.stubborn = true;
        self
    }

    pub fn is_quitting(&self) -> bool {
        self.quitting
    }

    /// The handler has taken the last `Reply`.
    pub fn answered(&mut self) {
        self.waiting = false;
        self.send_more();
    }

    fn write(&mut self, line: &str) {
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    fn send_more(&mut self) {
        if !self.greeted || self.quitting || self.closed {
            return;
        }
        while (self.pipelined || self.in_flight.is_empty())
            && let Some(line) = self.to_send.pop_front()
        {
            self.write(&line);
            self.in_flight.push_back(line);
        }
        if self.to_send.is_empty() && self.in_flight.is_empty() {
            self.write("QUIT");
            self.quitting = true;
        }
    }
}

impl Session for LineClient {
    type Event = Event;

    fn handle_input(&mut self, input: &[u8], _now: Instant) -> usize {
        let mut used = 0;
        while !self.closed && !self.waiting {
            let Some(end) = input[used..].iter().position(|&b| b == b'\n') else {
                break;
            };
            let line = &input[used..used + end];
            used += end + 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let line = String::from_utf8_lossy(line).into_owned();
            if !self.greeted {
                self.greeted = true;
                self.events.push_back(Event::Greeting(line));
                self.send_more();
            } else if self.quitting && line == "bye" {
                self.events.push_back(Event::Bye);
                self.closed = true;
            } else if line == "boom" {
                panic!("the client session panics on purpose");
            } else {
                let sent = self.in_flight.pop_front().unwrap_or_default();
                self.events.push_back(Event::Reply { sent, reply: line });
                self.waiting = true;
            }
        }
        used
    }

    fn handle_eof(&mut self, _now: Instant) {
        self.events.push_back(Event::Eof);
        self.closed = true;
    }

    fn handle_timeout(&mut self, _now: Instant) {}

    fn handle_shutdown(&mut self, _now: Instant) {
        self.events.push_back(Event::Shutdown);
        if self.stubborn || self.closed {
            return;
        }
        self.to_send.clear();
        if !self.greeted {
            self.closed = true;
        } else if !self.quitting {
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

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn is_closed(&self) -> bool {
        self.closed
    }
}

/// Keeps what its session reports, for the test to read once `run` gives it back.
pub struct Recorder {
    pub name: String,
    /// `greeting x`, each reply (`x`, or `x (work)` when answered through `Work`), `bye`,
    /// `eof`, `shutdown`, in order.
    pub log: Vec<String>,
    pub closes: usize,
    /// How long the `Work` for `ECHO slow...` sleeps.
    pub slow: Duration,
}

impl Recorder {
    pub fn new(name: &str) -> Recorder {
        Recorder {
            name: name.to_owned(),
            log: Vec::new(),
            closes: 0,
            slow: Duration::from_millis(100),
        }
    }

    pub fn slow(mut self, slow: Duration) -> Recorder {
        self.slow = slow;
        self
    }
}

impl Handler for Recorder {
    type Session = LineClient;
    type Notice = ();

    fn on_event(
        &mut self,
        session: &mut LineClient,
        event: Event,
        _now: Instant,
    ) -> Option<Work<Self>> {
        match event {
            Event::Greeting(greeting) => self.log.push(format!("greeting {greeting}")),
            Event::Reply { sent, reply } => {
                if sent.starts_with("ECHO slow") {
                    let slow = self.slow;
                    return Some(Work::new(move || {
                        std::thread::sleep(slow);
                        Completion::new(
                            move |handler: &mut Recorder, session: &mut LineClient, _| {
                                handler.log.push(format!("{reply} (work)"));
                                session.answered();
                            },
                        )
                    }));
                }
                if sent.starts_with("ECHO panic") {
                    return Some(Work::new(|| panic!("the work panics on purpose")));
                }
                self.log.push(reply);
                session.answered();
            }
            Event::Bye => self.log.push("bye".to_owned()),
            Event::Eof => self.log.push("eof".to_owned()),
            Event::Shutdown => self.log.push("shutdown".to_owned()),
        }
        None
    }

    fn on_close(&mut self) {
        self.closes += 1;
    }
}
