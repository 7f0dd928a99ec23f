//! One NNTP reader connection, server side (RFC 3977, with AUTHINFO from RFC 4643 and
//! STARTTLS from RFC 4642).
//!
//! # Driving it
//!
//! Implements [`session_api::Session`]: offer input with `handle_input` (it returns what it
//! consumed), then drain `poll_event` and `poll_transmit`. Each [`Event::Request`] is answered
//! with [`ServerSession::answer`]; until then the session consumes nothing, so pipelined
//! commands wait their turn and are answered in order.
//!
//! # Who may read what
//!
//! Every group belongs to one user, so reading needs a login: group commands before AUTHINFO
//! answer `480` (RFC 4643 section 2.1), which is also what makes Thunderbird, which never asks
//! for CAPABILITIES, log in. Passwords are taken only over TLS unless the configuration allows
//! plaintext (`483` otherwise, RFC 4643 section 2.2).

mod commands;
mod replies;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use line_protocol::line::{LineReader, Next};
use session_api::{Deadline, Session, TimerKind, TlsInfo, Upgrade};

use crate::config::ServerConfig;
use crate::event::{Answer, Event, GroupInfo, Request, Ticket};
use crate::syntax::{ListKind, MAX_COMMAND_LINE, Range, Wildmat};

/// A line this long ends the conversation: nobody speaking NNTP sends one.
const GIVE_UP_AFTER: usize = 64 * 1024;

/// The group a reader has selected (RFC 3977 section 6.1.1) and its current article.
#[derive(Debug, Clone)]
struct Current {
    info: GroupInfo,
    article: Option<u64>,
}

/// Which of ARTICLE, HEAD, BODY and STAT (RFC 3977 section 6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Article,
    Head,
    Body,
    Stat,
}

/// What a header listing (OVER, HDR, XHDR, XPAT) prints.
#[derive(Debug, Clone)]
enum Listing {
    Over {
        legacy: bool,
    },
    Hdr {
        field: String,
        legacy: bool,
    },
    XPat {
        field: String,
        patterns: Vec<Wildmat>,
    },
}

/// What an outstanding request was for.
#[derive(Debug)]
enum Pending {
    Login,
    Date,
    List(ListKind),
    NewGroups,
    /// GROUP (`listing` None) or LISTGROUP with its range.
    Group {
        listing: Option<Option<Range>>,
    },
    /// ARTICLE and friends; `number` is the number asked for, which becomes current.
    Article {
        part: Part,
        number: Option<u64>,
    },
    /// NEXT (`forward`) or LAST: the nearest article after or before the current one.
    Step {
        forward: bool,
    },
    Listing {
        listing: Listing,
        by_message_id: bool,
    },
    NewNews(Wildmat),
}

/// An NNTP reader session.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Instant;
/// use nntp_core::{ServerConfig, ServerSession};
/// use session_api::Session;
///
/// let now = Instant::now();
/// let mut s = ServerSession::new(Arc::new(ServerConfig::new("news.example.com")), false, now);
/// let mut out = Vec::new();
/// s.poll_transmit(&mut out);
/// assert_eq!(out, b"201 news.example.com buzon NNTP ready, posting not permitted\r\n");
/// out.clear();
/// // slrn's probe before any GROUP, and Thunderbird's first command:
/// assert_eq!(s.handle_input(b"mode reader\r\nXOVER\r\n", now), 20);
/// s.poll_transmit(&mut out);
/// assert_eq!(out, b"201 Reader mode, posting not permitted\r\n480 Authentication required\r\n");
/// ```
#[derive(Debug)]
pub struct ServerSession {
    config: Arc<ServerConfig>,
    tls: bool,
    reader: LineReader,
    out: Vec<u8>,
    events: VecDeque<Event>,
    next_ticket: u64,
    pending: Option<(Ticket, Pending)>,
    logged_in: bool,
    /// The name of an AUTHINFO USER waiting for its PASS.
    auth_user: Option<String>,
    group: Option<Current>,
    errors: u32,
    closed: bool,
    upgrade: Option<Upgrade>,
    /// Between `382` and the end of the handshake.
    awaiting_tls: bool,
    last_activity: Instant,
}

impl ServerSession {
    /// A session that has just greeted its reader; `implicit_tls` for the NNTPS port (then
    /// [`Session::handle_tls`] comes before any input).
    pub fn new(config: Arc<ServerConfig>, implicit_tls: bool, now: Instant) -> Self {
        let mut s = ServerSession {
            tls: implicit_tls,
            reader: LineReader::new(MAX_COMMAND_LINE, GIVE_UP_AFTER),
            out: Vec::new(),
            events: VecDeque::new(),
            next_ticket: 0,
            pending: None,
            logged_in: false,
            auth_user: None,
            group: None,
            errors: 0,
            closed: false,
            upgrade: None,
            awaiting_tls: false,
            last_activity: now,
            config,
        };
        // 201: notice groups are read-only (RFC 3977 section 5.1.1).
        let greeting = format!(
            "201 {} buzon NNTP ready, posting not permitted",
            s.config.hostname
        );
        s.line(&greeting);
        s
    }

    /// Whether a login has succeeded on this connection.
    pub fn is_logged_in(&self) -> bool {
        self.logged_in
    }

    /// Gives the host's answer to the request `ticket` named. An answer to a ticket that is
    /// not outstanding is ignored.
    pub fn answer(&mut self, ticket: Ticket, answer: Answer, now: Instant) {
        match self.pending.take() {
            Some((t, pending)) if t == ticket => {
                self.last_activity = now;
                self.complete(pending, answer);
            }
            other => self.pending = other,
        }
    }

    fn request(&mut self, request: Request, pending: Pending) {
        let ticket = Ticket(self.next_ticket);
        self.next_ticket += 1;
        self.pending = Some((ticket, pending));
        self.events.push_back(Event::Request { ticket, request });
    }

    /// Queues one reply line.
    fn line(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    /// Counts a bad command; too many end the connection.
    fn error(&mut self, reply: &str) {
        self.line(reply);
        self.errors += 1;
        if self.errors >= self.config.max_errors {
            self.events
                .push_back(Event::Violation("too many bad commands".into()));
            self.line("400 Too many errors, closing connection");
            self.closed = true;
        }
    }

    fn waiting(&self) -> bool {
        self.pending.is_some() || self.awaiting_tls || self.upgrade.is_some()
    }
}

impl Session for ServerSession {
    type Event = Event;

    fn handle_input(&mut self, input: &[u8], now: Instant) -> usize {
        let mut used = 0;
        while !self.closed && !self.waiting() && used < input.len() {
            match self.reader.next(&input[used..]) {
                Next::Line { line, consumed } => {
                    used += consumed;
                    self.last_activity = now;
                    match std::str::from_utf8(line) {
                        Ok(text) => self.command(text),
                        Err(_) => self.error("501 Command is not UTF-8"),
                    }
                }
                Next::Incomplete => break,
                Next::Skipping { consumed } => used += consumed,
                Next::TooLong { consumed } => {
                    used += consumed;
                    self.last_activity = now;
                    self.error("501 Command line too long (RFC 3977 allows 512 octets)");
                }
                Next::GiveUp { consumed } => {
                    used += consumed;
                    self.events
                        .push_back(Event::Violation("endless command line".into()));
                    self.line("400 Command line too long, closing connection");
                    self.closed = true;
                }
            }
        }
        used
    }

    fn handle_eof(&mut self, _now: Instant) {
        self.closed = true;
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|d| now >= d.at) {
            self.line("400 Idle timeout, closing connection");
            self.closed = true;
        }
    }

    fn handle_shutdown(&mut self, _now: Instant) {
        if !self.closed {
            self.line("400 Server shutting down, closing connection");
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
        if self.closed || self.waiting() {
            return None;
        }
        Some(Deadline::new(
            self.last_activity + self.config.idle_timeout,
            TimerKind::Idle,
        ))
    }

    fn is_closed(&self) -> bool {
        self.closed
    }

    fn wants_input(&self) -> bool {
        !self.closed && !self.waiting()
    }

    fn poll_upgrade(&mut self) -> Option<Upgrade> {
        let u = self.upgrade.take();
        if u.is_some() {
            self.awaiting_tls = true;
        }
        u
    }

    fn handle_tls(&mut self, _info: &TlsInfo, now: Instant) {
        // RFC 4642 section 2.2.2: what was learnt before the handshake is forgotten.
        self.tls = true;
        self.awaiting_tls = false;
        self.auth_user = None;
        self.group = None;
        self.last_activity = now;
    }
}
