//! The client session: one SMTP connection seen from the sending side (RFC 5321 section 3).

mod extensions;
mod security;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use session_api::{Deadline, TimerKind};

use crate::Reply;
use crate::address::{ForwardPath, ReversePath};
use crate::command::{Command, Param};
use crate::dot::DotEncoder;
use crate::reply::{self, Parsed};

pub use extensions::Extensions;
pub use security::{ClientLogin, StartTls};

/// Settings of a client session.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The name we give in EHLO/HELO.
    pub helo: String,
    /// How long to wait for each reply.
    pub timeouts: ClientTimeouts,
    /// Batch MAIL, RCPT and DATA when the server offers PIPELINING (RFC 2920).
    pub pipelining: bool,
    /// Send bodies with BDAT when the server offers CHUNKING (RFC 3030).
    pub chunking: bool,
    /// Longest reply line accepted; longer ones end the session as a protocol error.
    pub max_reply_line: usize,
    /// When to ask for TLS with STARTTLS (RFC 3207). Default: whenever the server offers it.
    pub starttls: StartTls,
    /// Log in with these after TLS (RFC 4954); a password is never sent without TLS.
    pub login: Option<ClientLogin>,
}

impl ClientConfig {
    /// Defaults: pipelining and chunking used when offered, RFC 5321 timeouts.
    pub fn new(helo: impl Into<String>) -> Self {
        ClientConfig {
            helo: helo.into(),
            timeouts: ClientTimeouts::default(),
            pipelining: true,
            chunking: true,
            max_reply_line: 4096,
            starttls: StartTls::IfOffered,
            login: None,
        }
    }
}

/// Reply timeouts (RFC 5321 section 4.5.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientTimeouts {
    /// The 220 greeting, and replies to EHLO, MAIL, RCPT, RSET, QUIT: 5 minutes.
    pub command: Duration,
    /// The 354 after DATA: 2 minutes.
    pub data_init: Duration,
    /// The reply after the final dot or the last BDAT chunk: 10 minutes.
    pub data_end: Duration,
}

impl Default for ClientTimeouts {
    fn default() -> Self {
        ClientTimeouts {
            command: Duration::from_secs(300),
            data_init: Duration::from_secs(120),
            data_end: Duration::from_secs(600),
        }
    }
}

/// A message to send: the envelope and the body (CRLF line endings, not dot-stuffed).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Message {
    /// MAIL FROM.
    pub from: ReversePath,
    /// RCPT TO, in order.
    pub recipients: Vec<ForwardPath>,
    /// Header and body, as it should arrive.
    pub body: Vec<u8>,
}

impl Message {
    /// A message from `from` to `recipients`; `body` is the header and body with CRLF line
    /// endings, not dot-stuffed.
    pub fn new(from: ReversePath, recipients: Vec<ForwardPath>, body: Vec<u8>) -> Self {
        Message {
            from,
            recipients,
            body,
        }
    }

    /// True if an address is outside ASCII, so SMTPUTF8 is needed (RFC 6531).
    pub fn needs_smtputf8(&self) -> bool {
        !self.from.is_ascii() || self.recipients.iter().any(|r| !r.is_ascii())
    }

    /// True if the body has octets above 127, so 8BITMIME is needed (RFC 6152).
    pub fn is_8bit(&self) -> bool {
        !self.body.is_ascii()
    }
}

/// Identifies a submitted message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(pub u64);

/// Events of a client session, drained with [`ClientSession::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The server's 220 (or refusal) arrived.
    Greeting(Reply),
    /// EHLO (or the HELO fallback) succeeded; these are the server's extensions.
    Ready(Extensions),
    /// The server answered one RCPT of a message.
    Recipient {
        /// The message.
        job: JobId,
        /// Index into the message's recipients.
        index: usize,
        /// The server's reply: 2xx accepted, 4xx deferred, 5xx refused.
        reply: Reply,
    },
    /// The server took responsibility for the message (for the accepted recipients).
    Delivered {
        /// The message.
        job: JobId,
        /// The reply after the data.
        reply: Reply,
    },
    /// The message was not delivered to anyone.
    Failed {
        /// The message.
        job: JobId,
        /// Why.
        failure: Failure,
    },
    /// Nothing is queued or in flight: submit more, or [`quit`](ClientSession::quit).
    Idle,
    /// The connection is over; every submitted message has had its outcome.
    Closed(CloseReason),
}

/// Why a message was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// The server refused the message with this reply (at MAIL, DATA or after the data).
    Refused(Reply),
    /// Every recipient was refused; their replies came as [`ClientEvent::Recipient`].
    NoRecipientAccepted {
        /// True if every refusal was a 5xx: trying again cannot help.
        permanent: bool,
    },
    /// The message needs something the server does not offer (SMTPUTF8, 8BITMIME, its size).
    Unsupported(&'static str),
    /// The connection ended before the outcome was known.
    ConnectionLost,
    /// The server did not answer in time.
    Timeout,
    /// The server broke the protocol.
    Protocol(&'static str),
    /// The session was told to stop before this message was sent.
    NotSent,
}

impl Failure {
    /// True if trying again cannot help: a 5xx refusal or a missing server feature.
    pub fn is_permanent(&self) -> bool {
        match self {
            Failure::Refused(r) => r.is_permanent(),
            Failure::NoRecipientAccepted { permanent } => *permanent,
            Failure::Unsupported(_) => true,
            _ => false,
        }
    }
}

/// Why a client session closed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// We said QUIT.
    Quit,
    /// The server refused service (a non-220 greeting, or a 421 at any time).
    Refused(Reply),
    /// The server closed the connection unannounced.
    Disconnected,
    /// The server did not answer in time.
    Timeout,
    /// The server broke the protocol.
    Protocol(&'static str),
    /// The connection could not be made secure as configured (no STARTTLS where it is
    /// required, no AUTH mechanism we speak, a password that would go out in the clear).
    Insecure(&'static str),
    /// The server refused our login (a 535, or any other answer to AUTH).
    AuthFailed(Reply),
    /// The server refused STARTTLS where it was required.
    StartTlsRefused(Reply),
}

/// What the next reply answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Greeting,
    Ehlo,
    Helo,
    Mail,
    Rcpt(usize),
    Data,
    /// The reply after the final dot or the last BDAT chunk.
    End,
    Rset,
    Quit,
    /// The 220 to STARTTLS.
    StartTls,
    /// The end of an AUTH exchange (235), or a 334 asking for PLAIN's response.
    AuthDone,
    /// LOGIN's 334 asking for the user name, then for the password.
    AuthUser,
    AuthPassword,
}

/// The message in flight.
#[derive(Debug)]
struct Active {
    id: JobId,
    message: Message,
    mail_ok: bool,
    accepted: usize,
    /// Some recipient got a 4xx: a failure for want of recipients is worth retrying.
    deferred: bool,
    /// The outcome once known to be a failure; reported when the last reply of the batch is in.
    failure: Option<Failure>,
}

/// One SMTP connection, client side, with no I/O of its own.
///
/// Drive it like the server session: offer the server's bytes to
/// [`handle_input`](Self::handle_input), send what [`poll_transmit`](Self::poll_transmit) gives,
/// react to [`poll_event`](Self::poll_event), call [`handle_timeout`](Self::handle_timeout) at
/// [`poll_timeout`](Self::poll_timeout). Messages queued with [`submit`](Self::submit) go out
/// one transaction at a time, on the same connection; [`quit`](Self::quit) ends it once the
/// queue is empty.
///
/// ```
/// use std::time::Instant;
/// use smtp_core::address::{parse_forward_path, parse_reverse_path};
/// use smtp_core::client::{ClientConfig, ClientEvent, ClientSession, Message};
///
/// let now = Instant::now();
/// let mut c = ClientSession::new(ClientConfig::new("client.example"), now);
/// let job = c.submit(Message::new(
///     parse_reverse_path("<a@client.example>").unwrap().0,
///     vec![parse_forward_path("<b@mx.example>").unwrap().0],
///     b"Subject: hi\r\n\r\nhello\r\n".to_vec(),
/// ));
/// c.quit();
/// let mut out = Vec::new();
/// c.handle_input(b"220 mx.example ESMTP\r\n", now);
/// c.poll_transmit(&mut out);
/// assert_eq!(out, b"EHLO client.example\r\n");
/// c.handle_input(b"250-mx.example\r\n250 PIPELINING\r\n", now);
/// out.clear();
/// c.poll_transmit(&mut out);
/// assert_eq!(out, b"MAIL FROM:<a@client.example>\r\nRCPT TO:<b@mx.example>\r\nDATA\r\n");
/// c.handle_input(b"250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n221 bye\r\n", now);
/// let events: Vec<_> = std::iter::from_fn(|| c.poll_event()).collect();
/// assert!(events.iter().any(|e| matches!(e, ClientEvent::Delivered { job: j, .. } if *j == job)));
/// assert!(c.is_closed());
/// ```
#[derive(Debug)]
pub struct ClientSession {
    config: ClientConfig,
    out: Vec<u8>,
    events: VecDeque<ClientEvent>,
    expect: VecDeque<Expect>,
    queue: VecDeque<(JobId, Message)>,
    active: Option<Active>,
    ext: Option<Extensions>,
    next_job: u64,
    quit_requested: bool,
    idle_reported: bool,
    deadline: Option<Deadline>,
    closed: bool,
    /// The connection is TLS (implicit, or after STARTTLS).
    tls: bool,
    /// STARTTLS was accepted: the driver has to switch before anything more is read.
    awaiting_tls: bool,
    /// `poll_upgrade` has yet to say so.
    upgrade: bool,
    /// The server's extensions while STARTTLS or AUTH is under way.
    pending_ext: Option<Extensions>,
    /// AUTH succeeded.
    logged_in: bool,
    /// Why the session is closing, once set up failed; reported after QUIT.
    setup_failed: Option<CloseReason>,
    /// The `now` of the latest input: `submit` and `quit` take none, and a command they send
    /// on an idle connection needs its reply timer from somewhere. They are called in answer
    /// to an event, at that event's time.
    clock: Instant,
}

impl ClientSession {
    /// A session that waits for the server's greeting.
    pub fn new(config: ClientConfig, now: Instant) -> Self {
        let mut s = ClientSession {
            config,
            out: Vec::new(),
            events: VecDeque::new(),
            expect: VecDeque::from([Expect::Greeting]),
            queue: VecDeque::new(),
            active: None,
            ext: None,
            next_job: 0,
            quit_requested: false,
            idle_reported: false,
            deadline: None,
            closed: false,
            tls: false,
            awaiting_tls: false,
            upgrade: false,
            pending_ext: None,
            logged_in: false,
            setup_failed: None,
            clock: now,
        };
        s.arm_timer(now);
        s
    }

    /// Queues a message; it is sent once the connection is ready and earlier ones are done.
    pub fn submit(&mut self, message: Message) -> JobId {
        self.next_job += 1;
        let id = JobId(self.next_job);
        if self.closed || self.quit_requested {
            self.events.push_back(ClientEvent::Failed {
                job: id,
                failure: Failure::NotSent,
            });
            return id;
        }
        self.queue.push_back((id, message));
        self.idle_reported = false;
        self.start_next();
        id
    }

    /// Says QUIT once every queued message has been sent.
    pub fn quit(&mut self) {
        self.quit_requested = true;
        self.start_next();
    }

    /// The server's extensions, once EHLO/HELO has been answered.
    pub fn extensions(&self) -> Option<&Extensions> {
        self.ext.as_ref()
    }

    /// True when ready, with nothing queued or in flight.
    pub fn is_idle(&self) -> bool {
        !self.closed && self.ext.is_some() && self.active.is_none() && self.queue.is_empty()
    }

    /// True once the session is over; flush the output and close.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Offers bytes from the server; returns how many were consumed (whole replies only).
    pub fn handle_input(&mut self, input: &[u8], now: Instant) -> usize {
        self.clock = self.clock.max(now);
        let mut used = 0;
        while !self.closed && !self.awaiting_tls && used < input.len() {
            match reply::parse(&input[used..], self.config.max_reply_line) {
                Parsed::Complete(reply, n) => {
                    used += n;
                    self.on_reply(reply, now);
                }
                Parsed::Incomplete => break,
                Parsed::Invalid(why) => {
                    used = input.len();
                    self.abort(Failure::Protocol(why), CloseReason::Protocol(why));
                }
            }
        }
        used
    }

    /// The server closed the connection.
    pub fn handle_eof(&mut self, _now: Instant) {
        if self.closed {
            return;
        }
        if self.expect.front() == Some(&Expect::Quit) {
            let reason = self.setup_failed.take().unwrap_or(CloseReason::Quit);
            self.close(reason);
        } else {
            self.abort(Failure::ConnectionLost, CloseReason::Disconnected);
        }
    }

    /// Gives up if the reply awaited is overdue; early calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.clock = self.clock.max(now);
        if self.deadline.is_some_and(|d| now >= d.at) && !self.closed {
            self.abort(Failure::Timeout, CloseReason::Timeout);
        }
    }

    /// Stop: queued messages are not sent ([`Failure::NotSent`]); the one in flight finishes,
    /// then QUIT.
    pub fn handle_shutdown(&mut self, _now: Instant) {
        for (job, _) in std::mem::take(&mut self.queue) {
            self.events.push_back(ClientEvent::Failed {
                job,
                failure: Failure::NotSent,
            });
        }
        self.quit();
    }

    /// Appends the bytes to send to `out`; returns how many.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let n = self.out.len();
        out.append(&mut self.out);
        n
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout), and which timer that is:
    /// [`TimerKind::Greeting`] until the server's 220 arrives, then [`TimerKind::Reply`] while a
    /// reply is awaited (its length from [`ClientTimeouts`]). `None` while nothing is awaited:
    /// an idle connection is the server's to time out.
    pub fn poll_timeout(&self) -> Option<Deadline> {
        if self.closed { None } else { self.deadline }
    }

    fn on_reply(&mut self, reply: Reply, now: Instant) {
        let Some(expect) = self.expect.pop_front() else {
            let why = "reply without a command";
            return self.abort(Failure::Protocol(why), CloseReason::Protocol(why));
        };
        // 421 may come in answer to anything: the server is closing (RFC 5321 section 3.8).
        if reply.code() == 421 && expect != Expect::Quit {
            return self.abort(Failure::Refused(reply.clone()), CloseReason::Refused(reply));
        }
        match expect {
            Expect::Greeting => {
                self.events.push_back(ClientEvent::Greeting(reply.clone()));
                if reply.code() == 220 {
                    self.send(&Command::Ehlo(self.config.helo.clone()), Expect::Ehlo);
                } else {
                    // RFC 5321 section 3.1: a 554 greeting; QUIT and go.
                    self.fail_all(Failure::Refused(reply.clone()));
                    self.send(&Command::Quit, Expect::Quit);
                }
            }
            Expect::Ehlo if reply.is_positive() => self.secure(Extensions::from_ehlo(&reply)),
            Expect::Ehlo if reply.is_permanent() => {
                // RFC 5321 section 3.2: an old server that does not know EHLO.
                self.send(&Command::Helo(self.config.helo.clone()), Expect::Helo);
            }
            Expect::Helo if reply.is_positive() => self.secure(Extensions::default()),
            Expect::Ehlo | Expect::Helo => {
                self.fail_all(Failure::Refused(reply));
                self.send(&Command::Quit, Expect::Quit);
            }
            Expect::Mail => self.on_mail(reply),
            Expect::Rcpt(i) => self.on_rcpt(i, reply),
            Expect::Data => self.on_data(reply),
            Expect::End => self.on_end(reply),
            Expect::Rset => {}
            Expect::Quit => {
                let reason = self.setup_failed.take().unwrap_or(CloseReason::Quit);
                return self.close(reason);
            }
            Expect::StartTls => self.on_starttls(reply),
            Expect::AuthDone | Expect::AuthUser | Expect::AuthPassword => {
                self.on_auth(expect, reply)
            }
        }
        self.start_next();
        self.arm_timer(now);
    }

    fn ready(&mut self, ext: Extensions) {
        self.events.push_back(ClientEvent::Ready(ext.clone()));
        self.ext = Some(ext);
    }

    fn pipelining(&self) -> bool {
        self.config.pipelining && self.ext.as_ref().is_some_and(|e| e.pipelining)
    }

    fn chunking(&self) -> bool {
        self.config.chunking && self.ext.as_ref().is_some_and(|e| e.chunking)
    }

    /// Starts the next queued message if the connection is free, or QUITs, or reports idle.
    fn start_next(&mut self) {
        if self.closed || self.ext.is_none() || self.active.is_some() || !self.expect.is_empty() {
            return;
        }
        while let Some((id, message)) = self.queue.pop_front() {
            if let Some(why) = self.unsupported(&message) {
                self.events.push_back(ClientEvent::Failed {
                    job: id,
                    failure: Failure::Unsupported(why),
                });
                continue;
            }
            return self.begin(id, message);
        }
        if self.quit_requested {
            self.send(&Command::Quit, Expect::Quit);
        } else if !self.idle_reported {
            self.idle_reported = true;
            self.events.push_back(ClientEvent::Idle);
        }
    }

    /// A reason this message cannot go to this server, checked before MAIL.
    fn unsupported(&self, m: &Message) -> Option<&'static str> {
        let ext = self.ext.as_ref()?;
        if m.recipients.is_empty() {
            return Some("no recipients");
        }
        if m.needs_smtputf8() && !ext.smtputf8 {
            // RFC 6531 section 3.2: never send UTF-8 addresses to a server without SMTPUTF8.
            return Some("a non-ASCII address needs SMTPUTF8, which the server does not offer");
        }
        if m.is_8bit() && !ext.eight_bit_mime {
            return Some("an 8-bit body needs 8BITMIME, which the server does not offer");
        }
        if let Some(max) = ext.size.filter(|&n| n > 0)
            && m.body.len() as u64 > max
        {
            return Some("the message is larger than the server's SIZE limit");
        }
        None
    }

    fn begin(&mut self, id: JobId, message: Message) {
        let ext = self.ext.clone().unwrap_or_default();
        let mut params = Vec::new();
        if ext.size.is_some() {
            params.push(param("SIZE", Some(message.body.len().to_string())));
        }
        if message.is_8bit() && ext.eight_bit_mime {
            params.push(param("BODY", Some("8BITMIME".into())));
        }
        if message.needs_smtputf8() {
            params.push(param("SMTPUTF8", None));
        }
        self.send(&Command::Mail(message.from.clone(), params), Expect::Mail);
        let pipelining = self.pipelining();
        if pipelining {
            for (i, to) in message.recipients.iter().enumerate() {
                self.send(&Command::Rcpt(to.clone(), Vec::new()), Expect::Rcpt(i));
            }
            if self.chunking() {
                self.send_bdat(&message.body);
            } else {
                self.send(&Command::Data, Expect::Data);
            }
        }
        self.active = Some(Active {
            id,
            message,
            mail_ok: false,
            accepted: 0,
            deferred: false,
            failure: None,
        });
    }

    fn on_mail(&mut self, reply: Reply) {
        let pipelining = self.pipelining();
        let Some(a) = &mut self.active else { return };
        a.mail_ok = reply.is_positive();
        if !a.mail_ok {
            a.failure = Some(Failure::Refused(reply));
            if !pipelining {
                self.finish(true);
            }
        } else if !pipelining {
            let to = a.message.recipients[0].clone();
            self.send(&Command::Rcpt(to, Vec::new()), Expect::Rcpt(0));
        }
    }

    fn on_rcpt(&mut self, i: usize, reply: Reply) {
        let pipelining = self.pipelining();
        let chunking = self.chunking();
        let Some(a) = &mut self.active else { return };
        if reply.is_positive() {
            a.accepted += 1;
        } else if reply.is_transient() {
            a.deferred = true;
        }
        let job = a.id;
        let count = a.message.recipients.len();
        let (mail_ok, accepted) = (a.mail_ok, a.accepted);
        let next = a.message.recipients.get(i + 1).cloned();
        self.events.push_back(ClientEvent::Recipient {
            job,
            index: i,
            reply,
        });
        if i + 1 == count
            && mail_ok
            && accepted == 0
            && let Some(a) = &mut self.active
        {
            let permanent = !a.deferred;
            a.failure
                .get_or_insert(Failure::NoRecipientAccepted { permanent });
        }
        if pipelining {
            return;
        }
        match next {
            Some(to) => self.send(&Command::Rcpt(to, Vec::new()), Expect::Rcpt(i + 1)),
            None if accepted == 0 => self.finish(true),
            None if chunking => {
                let body = self
                    .active
                    .as_ref()
                    .map(|a| a.message.body.clone())
                    .unwrap_or_default();
                self.send_bdat(&body);
            }
            None => self.send(&Command::Data, Expect::Data),
        }
    }

    fn on_data(&mut self, reply: Reply) {
        let Some(a) = &mut self.active else { return };
        if reply.code() == 354 {
            let mut wire = Vec::with_capacity(a.message.body.len() + a.message.body.len() / 50 + 5);
            let mut enc = DotEncoder::new();
            if a.failure.is_none() {
                enc.encode(&a.message.body, &mut wire);
            }
            // With nothing to send (every recipient refused in a pipelined batch, yet 354),
            // an empty body ends the data phase; the transaction is failed already.
            enc.finish(&mut wire);
            self.out.extend_from_slice(&wire);
            self.expect.push_back(Expect::End);
        } else {
            a.failure.get_or_insert(Failure::Refused(reply));
            self.finish(true);
        }
    }

    fn on_end(&mut self, reply: Reply) {
        let Some(a) = &mut self.active else { return };
        if a.failure.is_none() && !reply.is_positive() {
            a.failure = Some(Failure::Refused(reply.clone()));
        }
        if a.failure.is_none() {
            let job = a.id;
            self.active = None;
            self.events.push_back(ClientEvent::Delivered { job, reply });
        } else {
            // Most servers end the transaction with the data phase, but one that refused the
            // data for want of recipients may still hold it: RSET costs one line.
            self.finish(true);
        }
    }

    /// Reports the active message's failure, sending RSET if the server may still hold a
    /// transaction.
    fn finish(&mut self, rset: bool) {
        if let Some(a) = self.active.take() {
            self.events.push_back(ClientEvent::Failed {
                job: a.id,
                failure: a.failure.unwrap_or(Failure::Protocol("transaction failed")),
            });
        }
        if rset {
            self.send(&Command::Rset, Expect::Rset);
        }
    }

    fn send_bdat(&mut self, body: &[u8]) {
        Command::Bdat {
            size: body.len() as u64,
            last: true,
        }
        .write_to(&mut self.out);
        self.out.extend_from_slice(body);
        self.expect.push_back(Expect::End);
    }

    fn send(&mut self, cmd: &Command, expect: Expect) {
        cmd.write_to(&mut self.out);
        self.expect.push_back(expect);
        if self.expect.len() == 1 {
            // From idle to waiting (a `submit` or `quit` on an idle connection): the reply is
            // due from now on, or a silent server would hold the connection forever.
            self.arm_timer(self.clock);
        }
    }

    fn fail_all(&mut self, failure: Failure) {
        if let Some(a) = self.active.take() {
            self.events.push_back(ClientEvent::Failed {
                job: a.id,
                failure: failure.clone(),
            });
        }
        for (job, _) in std::mem::take(&mut self.queue) {
            self.events.push_back(ClientEvent::Failed {
                job,
                failure: failure.clone(),
            });
        }
    }

    fn abort(&mut self, failure: Failure, reason: CloseReason) {
        self.fail_all(failure);
        self.close(reason);
    }

    fn close(&mut self, reason: CloseReason) {
        self.fail_all(Failure::ConnectionLost);
        self.closed = true;
        self.deadline = None;
        self.expect.clear();
        self.events.push_back(ClientEvent::Closed(reason));
    }

    fn arm_timer(&mut self, now: Instant) {
        let t = &self.config.timeouts;
        self.deadline = self.expect.front().map(|e| match e {
            // RFC 5321 section 4.5.3.2.1.
            Expect::Greeting => Deadline::new(now + t.command, TimerKind::Greeting),
            // Sections 4.5.3.2.4 and 4.5.3.2.6.
            Expect::Data => Deadline::new(now + t.data_init, TimerKind::Reply),
            Expect::End => Deadline::new(now + t.data_end, TimerKind::Reply),
            _ => Deadline::new(now + t.command, TimerKind::Reply),
        });
    }
}

fn param(keyword: &str, value: Option<String>) -> Param {
    Param {
        keyword: keyword.to_owned(),
        value,
    }
}

impl session_api::Session for ClientSession {
    type Event = ClientEvent;

    fn handle_input(&mut self, input: &[u8], now: Instant) -> usize {
        ClientSession::handle_input(self, input, now)
    }

    fn handle_eof(&mut self, now: Instant) {
        ClientSession::handle_eof(self, now)
    }

    fn handle_timeout(&mut self, now: Instant) {
        ClientSession::handle_timeout(self, now)
    }

    fn handle_shutdown(&mut self, now: Instant) {
        ClientSession::handle_shutdown(self, now)
    }

    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        ClientSession::poll_transmit(self, out)
    }

    fn poll_event(&mut self) -> Option<ClientEvent> {
        ClientSession::poll_event(self)
    }

    fn poll_timeout(&self) -> Option<Deadline> {
        ClientSession::poll_timeout(self)
    }

    fn is_closed(&self) -> bool {
        self.closed
    }

    fn poll_upgrade(&mut self) -> Option<session_api::Upgrade> {
        std::mem::take(&mut self.upgrade).then_some(session_api::Upgrade::Tls)
    }

    fn handle_tls(&mut self, info: &session_api::TlsInfo, now: Instant) {
        ClientSession::handle_tls(self, info, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::{parse_forward_path, parse_reverse_path};

    #[test]
    fn a_message_submitted_on_an_idle_connection_starts_the_reply_timer() {
        // Any instant will do: the session only adds to it and compares.
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        let config = ClientConfig::new("client.example");
        let t = config.timeouts;
        let mut c = ClientSession::new(config, start);
        let ready = start + Duration::from_secs(1);
        let _ = c.handle_input(b"220 mx.example ESMTP\r\n", start);
        let _ = c.handle_input(b"250 mx.example\r\n", ready);
        assert!(c.is_idle());
        assert_eq!(
            c.poll_timeout(),
            None,
            "an idle connection is the server's to time out"
        );
        c.submit(Message::new(
            parse_reverse_path("<a@client.example>").unwrap().0,
            vec![parse_forward_path("<b@mx.example>").unwrap().0],
            b"hi\r\n".to_vec(),
        ));
        assert_eq!(
            c.poll_timeout(),
            Some(Deadline::new(ready + t.command, TimerKind::Reply))
        );
        // A silent server: the reply never comes, the message fails, nothing hangs.
        c.handle_timeout(ready + t.command);
        let events: Vec<_> = std::iter::from_fn(|| c.poll_event()).collect();
        assert!(
            events.contains(&ClientEvent::Closed(CloseReason::Timeout)),
            "{events:?}"
        );
    }

    #[test]
    fn the_timer_waits_for_the_greeting_then_for_each_reply() {
        // Any instant will do: the session only adds to it and compares.
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        let config = ClientConfig::new("client.example");
        let t = config.timeouts;
        let mut c = ClientSession::new(config, start);
        let timer = |c: &ClientSession| c.poll_timeout().map(|d| (d.at, d.kind));
        assert_eq!(timer(&c), Some((start + t.command, TimerKind::Greeting)));
        c.submit(Message::new(
            parse_reverse_path("<a@client.example>").unwrap().0,
            vec![parse_forward_path("<b@mx.example>").unwrap().0],
            b"Subject: hi\r\n\r\nhello\r\n".to_vec(),
        ));
        // Without PIPELINING, one command and one reply at a time.
        for (reply, now, wait) in [
            (&b"220 mx.example ESMTP\r\n"[..], at(1), t.command), // EHLO
            (b"250 mx.example\r\n", at(2), t.command),            // MAIL
            (b"250 ok\r\n", at(3), t.command),                    // RCPT
            (b"250 ok\r\n", at(4), t.data_init),                  // DATA
            (b"354 go\r\n", at(5), t.data_end),                   // the data
        ] {
            assert_eq!(c.handle_input(reply, now), reply.len());
            assert_eq!(timer(&c), Some((now + wait, TimerKind::Reply)));
        }
        // The same through the trait.
        let deadline = session_api::Session::poll_timeout(&c).expect("a reply is awaited");
        assert_eq!(
            deadline,
            Deadline::new(at(5) + t.data_end, TimerKind::Reply)
        );
        c.handle_timeout(deadline.at);
        assert!(c.is_closed());
        assert_eq!(timer(&c), None);
        assert!(
            std::iter::from_fn(|| c.poll_event())
                .any(|ev| ev == ClientEvent::Closed(CloseReason::Timeout))
        );
    }
}
