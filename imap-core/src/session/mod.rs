//! One IMAP connection, server side.
//!
//! # Driving it
//!
//! Implements [`session_api::Session`]: offer input with `handle_input` (it returns what it
//! consumed), then drain `poll_event` and `poll_transmit`. Each [`Event::Request`] is answered
//! with [`ServerSession::answer`] (a FETCH with [`ServerSession::fetch_progress`]); until then
//! the session consumes nothing, so pipelined commands wait their turn. Changes to the
//! selected mailbox that the host learns of (another session's STORE, a delivery) are given
//! with [`ServerSession::handle_changes`] at any time; the session announces them when RFC
//! 3501 section 7 allows.
//!
//! # Framing
//!
//! A command is a line, or several joined by literals (`{n}` CRLF then n octets, RFC 3501
//! section 4.3; `{n+}` without waiting, RFC 7888). The session answers a synchronising literal
//! with `+` only once it knows it will take it. APPEND's message literal is not gathered: it
//! streams to the host as it arrives.

mod commands;
mod completion;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use line_protocol::line::{LineReader, Next};
use line_protocol::sasl::Exchange;
use session_api::{Deadline, Session, TimerKind, TlsInfo, Upgrade};

use crate::config::ServerConfig;
use crate::event::{Answer, Changes, Event, Request, Ticket};
use crate::fetch::FetchJob;
use crate::syntax::{
    AppendPrefix, ListCommand, QresyncParams, SearchCommand, StatusItem, append_prefix,
    parse_command,
};

pub(crate) mod view;

use view::View;

pub use completion::FetchProgress;

/// Where the connection is (RFC 3501 section 3).
#[derive(Debug)]
enum State {
    NotAuthenticated,
    Authenticated,
    Selected(Box<View>),
    Logout,
}

/// What the input means right now.
#[derive(Debug)]
enum Mode {
    /// Command lines (and their small literals, gathered into `command`).
    Command,
    /// The octets of a literal inside a command.
    Literal { remaining: u64 },
    /// A literal to read and throw away (refused after the client had already sent it:
    /// LITERAL+), then the rest of its line; `reply` is written once the line ends.
    Discard { remaining: u64, reply: Vec<u8> },
    /// APPEND's message, streamed to the host.
    AppendData { remaining: u64, tag: String },
    /// The rest of the line after an APPEND's message: must be empty.
    AfterAppend { tag: String },
    /// The rest of a refused command's line, then `reply`.
    DiscardLine { reply: Vec<u8> },
    /// An AUTHENTICATE exchange: the next line is the client's response.
    Sasl { tag: String, exchange: Exchange },
    /// IDLE: the next line must be DONE.
    Idle { tag: String },
}

/// What an outstanding request was for.
#[derive(Debug)]
enum Pending {
    Login {
        tag: String,
    },
    Select {
        tag: String,
        name: String,
        read_only: bool,
        qresync: Option<QresyncParams>,
    },
    Simple {
        tag: String,
        verb: &'static str,
    },
    List {
        tag: String,
        cmd: ListCommand,
    },
    Status {
        tag: String,
        mailbox: String,
        items: Vec<StatusItem>,
    },
    AppendStart {
        tag: String,
        size: u64,
        non_sync: bool,
    },
    AppendEnd {
        tag: String,
    },
    Sync {
        tag: Option<String>,
        verb: &'static str,
    },
    Fetch {
        tag: String,
        uid: bool,
        first: bool,
    },
    Search {
        tag: String,
        cmd: SearchCommand,
    },
    Store {
        tag: String,
        uid: bool,
        silent: bool,
    },
    Copy {
        tag: String,
        moving: bool,
        uids: Vec<u32>,
    },
    Expunge {
        tag: String,
        close: bool,
    },
}

/// An IMAP server session.
///
/// Implements [`session_api::Session`]: offer input with `handle_input` (it returns what it
/// consumed), then drain `poll_event` and `poll_transmit`. Each [`Event::Request`] is answered
/// with [`ServerSession::answer`] (a FETCH with [`ServerSession::fetch_progress`]); until then
/// the session consumes nothing, so pipelined commands wait their turn. Changes to the
/// selected mailbox the host learns of are given with [`ServerSession::handle_changes`] at any
/// time; the session announces them when RFC 3501 section 7 allows. APPEND's message is never
/// gathered: it leaves as [`Event::AppendData`] pieces.
#[derive(Debug)]
pub struct ServerSession {
    config: Arc<ServerConfig>,
    state: State,
    tls: bool,
    out: Vec<u8>,
    events: VecDeque<Event>,
    closed: bool,
    lines: LineReader,
    /// The command gathered so far (lines and literals).
    command: Vec<u8>,
    mode: Mode,
    next_ticket: u64,
    waiting: Option<(Ticket, Pending)>,
    upgrade: Option<Upgrade>,
    upgrading: bool,
    condstore: bool,
    qresync: bool,
    last_input: Instant,
    last_poll: Instant,
    /// A FETCH between two pieces, waiting for the output to drain.
    fetch: Option<(Ticket, Box<FetchJob>)>,
    fetch_tag: Option<String>,
    fetch_uid: bool,
    backlog: usize,
    shutting_down: bool,
}

/// A line this long is not an IMAP client.
const GIVE_UP: usize = 1024 * 1024;

impl ServerSession {
    /// A new connection; the greeting is queued. `tls` is true for implicit TLS (the driver
    /// also calls `handle_tls` then; either is enough).
    pub fn new(config: Arc<ServerConfig>, tls: bool, now: Instant) -> Self {
        let lines = LineReader::new(config.max_command, GIVE_UP.max(config.max_command));
        let mut s = ServerSession {
            config,
            state: State::NotAuthenticated,
            tls,
            out: Vec::new(),
            events: VecDeque::new(),
            closed: false,
            lines,
            command: Vec::new(),
            mode: Mode::Command,
            next_ticket: 0,
            waiting: None,
            upgrade: None,
            upgrading: false,
            condstore: false,
            qresync: false,
            last_input: now,
            last_poll: now,
            fetch: None,
            fetch_tag: None,
            fetch_uid: false,
            backlog: 0,
            shutting_down: false,
        };
        let caps = s.capabilities();
        s.write(format!(
            "* OK [CAPABILITY {caps}] {} IMAP4rev1 ready",
            s.config.hostname
        ));
        s
    }

    /// The capabilities for the current state (RFC 3501 section 7.2.1): before login, what
    /// login needs; after, everything.
    pub fn capabilities(&self) -> String {
        let mut caps = vec!["IMAP4rev1", "SASL-IR", "LITERAL+", "ID", "ENABLE", "IDLE"];
        let authenticated = !matches!(self.state, State::NotAuthenticated);
        if !authenticated {
            if self.config.starttls && !self.tls {
                caps.push("STARTTLS");
            }
            if self.login_allowed() {
                caps.push("AUTH=PLAIN");
            } else {
                caps.push("LOGINDISABLED");
            }
            return caps.join(" ");
        }
        caps.extend([
            "NAMESPACE",
            "UNSELECT",
            "UIDPLUS",
            "MOVE",
            "CHILDREN",
            "LIST-EXTENDED",
            "SPECIAL-USE",
            "LIST-STATUS",
            "ESEARCH",
            "SEARCHRES",
            "CONDSTORE",
            "QRESYNC",
        ]);
        let mut s = caps.join(" ");
        s.push_str(&format!(" APPENDLIMIT={}", self.config.append_limit));
        s
    }

    fn login_allowed(&self) -> bool {
        self.tls || self.config.plaintext_auth
    }

    /// Answers the request `ticket`. A ticket that is not outstanding, or an answer of the
    /// wrong kind, is the embedding program's mistake: it is ignored (and answers the command
    /// with `NO` if the kind was wrong, so the client is not left waiting).
    pub fn answer(&mut self, ticket: Ticket, answer: Answer, now: Instant) {
        let Some((t, pending)) = self.waiting.take() else {
            return;
        };
        if t != ticket {
            self.waiting = Some((t, pending));
            return;
        }
        self.last_input = now;
        self.apply(pending, answer, now);
        self.after_answer();
    }

    /// Changes to the selected mailbox, reported by the host whenever it learns of them.
    /// Announced at once during IDLE, else at the end of the next command that allows them.
    pub fn handle_changes(&mut self, changes: Changes, _now: Instant) {
        if let State::Selected(view) = &mut self.state {
            view.absorb(changes);
            if matches!(self.mode, Mode::Idle { .. }) && self.waiting.is_none() {
                self.announce(true);
            }
        }
    }

    /// The selected mailbox's sync point: ask the storage for changes after this mod-sequence.
    pub fn synced_modseq(&self) -> Option<u64> {
        match &self.state {
            State::Selected(v) => Some(v.synced_modseq),
            _ => None,
        }
    }

    /// The selected mailbox's name and whether it is read-only, if one is selected.
    pub fn selected(&self) -> Option<(&str, bool)> {
        match &self.state {
            State::Selected(v) => Some((&v.name, v.read_only)),
            _ => None,
        }
    }

    /// Whether the session is in IDLE.
    pub fn is_idle(&self) -> bool {
        matches!(self.mode, Mode::Idle { .. })
    }

    fn ticket(&mut self) -> Ticket {
        self.next_ticket += 1;
        Ticket(self.next_ticket)
    }

    /// Asks the host; no input is consumed until the answer.
    fn request(&mut self, request: Request, pending: Pending) {
        let ticket = self.ticket();
        self.waiting = Some((ticket, pending));
        self.events.push_back(Event::Request { ticket, request });
    }

    fn write(&mut self, line: impl AsRef<[u8]>) {
        self.out.extend_from_slice(line.as_ref());
        self.out.extend_from_slice(b"\r\n");
    }

    fn violation(&mut self, what: impl Into<String>) {
        self.events.push_back(Event::Violation(what.into()));
    }

    /// After an answer: a session shut down meanwhile closes now.
    fn after_answer(&mut self) {
        if self.shutting_down && self.waiting.is_none() && self.fetch.is_none() {
            self.bye("Server shutting down");
        }
    }

    fn bye(&mut self, text: &str) {
        if self.closed {
            return;
        }
        self.write(format!("* BYE {text}"));
        self.close();
    }

    fn close(&mut self) {
        if self.closed {
            return;
        }
        if matches!(
            self.mode,
            Mode::AppendData { .. } | Mode::AfterAppend { .. }
        ) || matches!(self.waiting, Some((_, Pending::AppendEnd { .. })))
        {
            self.events.push_back(Event::AppendAborted);
        }
        if matches!(self.state, State::Selected(_)) {
            self.events.push_back(Event::Deselected);
        }
        self.state = State::Logout;
        self.closed = true;
        self.fetch = None;
    }

    /// Reads input in the current mode; returns octets consumed, 0 when it needs more.
    fn step(&mut self, input: &[u8], now: Instant) -> usize {
        match &mut self.mode {
            Mode::Literal { remaining } => {
                let n = (*remaining).min(input.len() as u64) as usize;
                self.command.extend_from_slice(&input[..n]);
                *remaining -= n as u64;
                if *remaining == 0 {
                    self.mode = Mode::Command;
                }
                n
            }
            Mode::AppendData { remaining, tag } => {
                let n = (*remaining).min(input.len() as u64) as usize;
                *remaining -= n as u64;
                if n > 0 {
                    self.events
                        .push_back(Event::AppendData(input[..n].to_vec()));
                }
                if *remaining == 0 {
                    let tag = std::mem::take(tag);
                    self.mode = Mode::AfterAppend { tag };
                }
                n
            }
            Mode::Discard { remaining, reply } => {
                let n = (*remaining).min(input.len() as u64) as usize;
                *remaining -= n as u64;
                if *remaining == 0 {
                    let reply = std::mem::take(reply);
                    self.mode = Mode::DiscardLine { reply };
                }
                n
            }
            _ => self.step_line(input, now),
        }
    }

    /// Reads one line in a line mode.
    fn step_line(&mut self, input: &[u8], now: Instant) -> usize {
        let (line, used) = match self.lines.next(input) {
            Next::Line { line, consumed } => (line, consumed),
            Next::Incomplete => return 0,
            Next::Skipping { consumed } => return consumed,
            Next::TooLong { consumed } => {
                self.command.clear();
                self.mode = Mode::Command;
                self.write("* BAD Command line too long");
                self.violation("command line too long");
                return consumed;
            }
            Next::GiveUp { consumed } => {
                self.violation("line far over the limit");
                self.bye("Line too long");
                return consumed;
            }
        };
        let line = line.to_vec();
        match std::mem::replace(&mut self.mode, Mode::Command) {
            Mode::Command => self.command_line(&line, now),
            Mode::AfterAppend { tag } => {
                if line.is_empty() {
                    self.request(Request::AppendEnd, Pending::AppendEnd { tag });
                } else {
                    // MULTIAPPEND is not offered: a second message is a syntax error.
                    self.events.push_back(Event::AppendAborted);
                    self.write(format!(
                        "{tag} BAD Unexpected text after the message (MULTIAPPEND is not supported)"
                    ));
                }
            }
            Mode::DiscardLine { reply } => {
                if let Some((n, true)) = literal_at_end(&line) {
                    self.mode = Mode::Discard {
                        remaining: n,
                        reply,
                    };
                    return used;
                }
                self.out.extend_from_slice(&reply);
            }
            Mode::Sasl { tag, exchange } => self.sasl_line(tag, exchange, &line),
            Mode::Idle { tag } => {
                if line.eq_ignore_ascii_case(b"DONE") {
                    self.complete(&tag, "OK", None, "IDLE terminated", true);
                } else {
                    // iOS sends a tagged IDLE while already idling: end the IDLE so the
                    // client's state machine and ours meet again.
                    self.violation("expected DONE during IDLE");
                    self.write(format!("{tag} BAD Expected DONE"));
                }
            }
            other => self.mode = other,
        }
        used
    }

    /// A line of a command: complete, or followed by a literal.
    fn command_line(&mut self, line: &[u8], now: Instant) {
        if self.command.len() + line.len() > self.config.max_command {
            self.command.clear();
            self.write("* BAD Command too long");
            self.violation("command too long");
            return;
        }
        self.command.extend_from_slice(line);
        let Some((n, non_sync)) = literal_at_end(line) else {
            let command = std::mem::take(&mut self.command);
            if command.is_empty() {
                // An empty line is nothing; clients sometimes send a stray CRLF.
                return;
            }
            self.last_input = now;
            match parse_command(&command) {
                Ok(c) => self.dispatch(c, now),
                Err(f) => {
                    self.violation(format!("syntax: {}", f.error));
                    match f.tag {
                        Some(tag) => self.write(format!("{tag} BAD {}", f.error)),
                        None => self.write(format!("* BAD {}", f.error)),
                    }
                }
            }
            return;
        };
        match append_prefix(&self.command) {
            AppendPrefix::Message { tag, append } => {
                self.command.clear();
                self.append(tag, append);
            }
            AppendPrefix::Bad(f) => {
                self.command.clear();
                let tag = f.tag.unwrap_or_else(|| "*".into());
                self.refuse_literal(n, non_sync, format!("{tag} BAD {}", f.error));
            }
            AppendPrefix::NotAppend | AppendPrefix::Argument => {
                if self.command.len() as u64 + n > self.config.max_command as u64 {
                    let tag = crate::syntax::parse_tag(&self.command).unwrap_or_else(|| "*".into());
                    self.command.clear();
                    self.violation("literal over the command limit");
                    self.refuse_literal(n, non_sync, format!("{tag} BAD Literal too long"));
                    return;
                }
                self.command.extend_from_slice(b"\r\n");
                if !non_sync {
                    self.write("+ Ready for literal data");
                }
                if n > 0 {
                    self.mode = Mode::Literal { remaining: n };
                }
            }
        }
    }

    /// A literal we will not take: a synchronising one is never sent, so answer now; a
    /// non-synchronising one is already on its way, so read past it first.
    fn refuse_literal(&mut self, n: u64, non_sync: bool, reply: String) {
        if non_sync {
            let mut r = reply.into_bytes();
            r.extend_from_slice(b"\r\n");
            self.mode = Mode::Discard {
                remaining: n,
                reply: r,
            };
        } else {
            self.write(reply);
        }
    }
}

/// The literal a line announces at its end: `{n}` or `{n+}` (RFC 7888), with its length.
fn literal_at_end(line: &[u8]) -> Option<(u64, bool)> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let inner = &body[open + 1..];
    let (digits, non_sync) = match inner.strip_suffix(b"+") {
        Some(d) => (d, true),
        None => (inner, false),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some((n, non_sync))
}

impl Session for ServerSession {
    type Event = Event;

    fn handle_input(&mut self, input: &[u8], now: Instant) -> usize {
        let mut used = 0;
        while used < input.len()
            && !self.closed
            && self.waiting.is_none()
            && !self.upgrading
            && self.fetch.is_none()
        {
            let n = self.step(&input[used..], now);
            if n == 0 {
                break;
            }
            used += n;
        }
        used
    }

    fn handle_eof(&mut self, _now: Instant) {
        self.close();
    }

    fn handle_timeout(&mut self, now: Instant) {
        let Some(d) = self.poll_timeout() else {
            return;
        };
        if now < d.at {
            return;
        }
        if self.is_polling_due(now) {
            self.last_poll = now;
            self.request(
                Request::Sync,
                Pending::Sync {
                    tag: None,
                    verb: "IDLE",
                },
            );
            return;
        }
        self.violation("autologout");
        self.bye("Autologout; idle for too long");
    }

    fn handle_shutdown(&mut self, _now: Instant) {
        self.shutting_down = true;
        if self.waiting.is_none() && self.fetch.is_none() {
            self.bye("Server shutting down");
        }
    }

    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let n = self.out.len();
        out.append(&mut self.out);
        n
    }

    fn poll_event(&mut self) -> Option<Event> {
        if let Some(e) = self.events.pop_front() {
            return Some(e);
        }
        // A FETCH's next piece, once what was written has mostly gone out.
        if self.backlog < self.config.fetch_chunk
            && self.waiting.is_none()
            && let Some((ticket, job)) = self.fetch.take()
        {
            self.waiting = Some((
                ticket,
                Pending::Fetch {
                    tag: self.fetch_tag.take().unwrap_or_default(),
                    uid: self.fetch_uid,
                    first: false,
                },
            ));
            return Some(Event::Request {
                ticket,
                request: Request::Fetch(job),
            });
        }
        None
    }

    fn poll_timeout(&self) -> Option<Deadline> {
        if self.closed || self.waiting.is_some() || self.fetch.is_some() {
            return None;
        }
        let limit = if matches!(self.state, State::NotAuthenticated) {
            self.config.login_timeout
        } else {
            self.config.idle_timeout
        };
        let logout = Deadline::new(self.last_input + limit, TimerKind::Idle);
        if self.is_idle() && matches!(self.state, State::Selected(_)) {
            let poll = self.last_poll + self.config.idle_poll;
            if poll < logout.at {
                return Some(Deadline::new(poll, TimerKind::Idle));
            }
        }
        Some(logout)
    }

    fn is_closed(&self) -> bool {
        self.closed
    }

    fn wants_input(&self) -> bool {
        !self.closed && self.waiting.is_none() && !self.upgrading && self.fetch.is_none()
    }

    fn poll_upgrade(&mut self) -> Option<Upgrade> {
        self.upgrade.take()
    }

    fn handle_output_backlog(&mut self, unsent: usize) {
        self.backlog = unsent;
    }

    fn handle_tls(&mut self, _info: &TlsInfo, _now: Instant) {
        self.tls = true;
        self.upgrading = false;
    }
}

impl ServerSession {
    fn is_polling_due(&self, now: Instant) -> bool {
        self.is_idle()
            && matches!(self.state, State::Selected(_))
            && now >= self.last_poll + self.config.idle_poll
            && now < self.last_input + self.config.idle_timeout
    }
}
