//! The server session: one SMTP connection seen from the server.

mod auth;
mod chunking;
mod commands;
mod eightbitmime;
mod message;
mod replies;
mod size;
mod smtputf8;
mod starttls;

pub(crate) use replies::message_ok;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use crate::address::{ForwardPath, ReversePath};
use crate::event::{
    AbortReason, BodyType, ServerEvent, Ticket, TimerKind, UsageError, Verdict, Violation,
};
use crate::{Reply, ServerConfig};
use line_protocol::line::{LineReader, Next};

use message::Reception;

/// One SMTP connection, server side, with no I/O of its own.
///
/// # Driving it
/// 1. [`new`](Self::new) queues the 220 greeting.
/// 2. Give the peer's bytes to [`handle_input`](Self::handle_input); it returns how many it
///    consumed. Keep the rest and offer it again later.
/// 3. Drain [`poll_event`](Self::poll_event). [`ServerEvent::Recipient`] and
///    [`ServerEvent::MessageEnd`] carry a [`Ticket`]: nothing more is consumed until you call
///    [`decide`](Self::decide) with it. Then offer the kept input again.
/// 4. Send what [`poll_transmit`](Self::poll_transmit) gives. Because every command in the input
///    is answered before you poll, the replies to a pipelined group leave in one write
///    (RFC 2920 section 3.2).
/// 5. Call [`handle_timeout`](Self::handle_timeout) once [`poll_timeout`](Self::poll_timeout)
///    has passed, and [`handle_eof`](Self::handle_eof) when the peer closes.
/// 6. Once [`is_closed`](Self::is_closed) is true, send the remaining output and close.
///
/// ```
/// use std::{sync::Arc, time::Instant};
/// use smtp_core::{ServerConfig, ServerEvent, ServerSession, Verdict};
///
/// let now = Instant::now();
/// let mut s = ServerSession::new(Arc::new(ServerConfig::new("mx.example")), now);
/// let input = b"HELO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<u@mx.example>\r\n";
/// let used = s.handle_input(input, now);
/// assert_eq!(used, input.len());
/// while let Some(ev) = s.poll_event() {
///     if let ServerEvent::Recipient { ticket, .. } = ev {
///         s.decide(ticket, Verdict::Accept, now).unwrap();
///     }
/// }
/// let mut out = Vec::new();
/// s.poll_transmit(&mut out);
/// assert!(out.ends_with(b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"));
/// ```
#[derive(Debug)]
pub struct ServerSession {
    config: Arc<ServerConfig>,
    out: Vec<u8>,
    events: VecDeque<ServerEvent>,
    helo: Option<Helo>,
    txn: Option<Transaction>,
    reception: Option<Reception>,
    pending: Option<Pending>,
    next_ticket: u64,
    errors: u32,
    /// Command lines, with the configured limit.
    lines: LineReader,
    deadline: Option<(Instant, TimerKind)>,
    closed: bool,
    shutting_down: bool,
    /// The TLS session, once there is one.
    tls: Option<session_api::TlsInfo>,
    /// STARTTLS was accepted: no input until the handshake is done (see `starttls`).
    awaiting_tls: bool,
    /// STARTTLS was accepted and the driver has not been asked yet.
    upgrade_asked: bool,
    /// A SASL exchange in progress: the next line is a response, not a command.
    sasl: Option<line_protocol::sasl::Exchange>,
    /// Who the client logged in as.
    login: Option<crate::Login>,
}

#[derive(Debug, Clone)]
struct Helo {
    name: String,
    esmtp: bool,
}

#[derive(Debug)]
struct Transaction {
    from: ReversePath,
    recipients: Vec<ForwardPath>,
    smtputf8: bool,
    body: BodyType,
    /// Data has begun with BDAT; DATA is then out of sequence (RFC 3030 section 2).
    chunked: bool,
    /// Octets received so far by BDAT.
    bdat_size: u64,
    /// Message data has begun and has neither ended nor been aborted: the host holds a
    /// partial message that it must drop if the session ends now.
    receiving: bool,
}

/// Why a MAIL parameter is refused.
#[derive(Debug)]
enum ParamError {
    /// `SIZE=` over the limit: 552 5.3.4.
    TooBig,
    /// The parameter's form is wrong: 501 5.5.4 with this detail.
    Syntax(&'static str),
    /// A known form this server does not offer: 504 5.5.4.
    NotImplemented(&'static str),
    /// Not a parameter we offer: 555 5.5.4.
    Unknown(String),
}

#[derive(Debug)]
enum Pending {
    Recipient { ticket: Ticket, to: ForwardPath },
    MessageEnd { ticket: Ticket },
    Auth { ticket: Ticket, user: String },
}

impl ServerSession {
    /// A new session; the 220 greeting is queued at once.
    pub fn new(config: Arc<ServerConfig>, now: Instant) -> Self {
        let greeting = Reply::multiline(220, None, [format!("{} ESMTP buzon", config.hostname)]);
        let mut s = Self::unstarted(config);
        s.reply(&greeting);
        s.arm_timer(now);
        s
    }

    /// A session that refuses the connection at once with `reply` (421 for "too busy",
    /// RFC 5321 section 3.1) and closes.
    pub fn refuse(config: Arc<ServerConfig>, reply: &Reply) -> Self {
        let mut s = Self::unstarted(config);
        s.reply(reply);
        s.closed = true;
        s
    }

    /// A session before its first reply.
    fn unstarted(config: Arc<ServerConfig>) -> Self {
        let limit = config.limits.command_line;
        ServerSession {
            config,
            out: Vec::new(),
            events: VecDeque::new(),
            helo: None,
            txn: None,
            reception: None,
            pending: None,
            next_ticket: 0,
            errors: 0,
            lines: LineReader::new(limit, line_cut_off(limit)),
            deadline: None,
            closed: false,
            shutting_down: false,
            tls: None,
            awaiting_tls: false,
            upgrade_asked: false,
            sasl: None,
            login: None,
        }
    }

    /// The configuration this session runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Offers bytes from the peer; returns how many were consumed.
    ///
    /// Everything is consumed except an incomplete command line, input after a command that
    /// awaits a host decision, and input after the session closed.
    pub fn handle_input(&mut self, input: &[u8], now: Instant) -> usize {
        let mut used = 0;
        while !self.closed && self.pending.is_none() && !self.awaiting_tls && used < input.len() {
            let rest = &input[used..];
            let n = if self.reception.is_some() {
                self.receive(rest)
            } else {
                match self.next_command_line(rest) {
                    Some(n) => n,
                    None => break,
                }
            };
            used += n;
        }
        if used > 0 {
            self.arm_timer(now);
        }
        used
    }

    /// Finds and runs the next command line in `rest`; `None` if it is incomplete.
    fn next_command_line(&mut self, rest: &[u8]) -> Option<usize> {
        match self.lines.next(rest) {
            Next::Line { line, consumed } => {
                if self.sasl.is_some() {
                    self.auth_response(line);
                } else {
                    self.command(line);
                }
                Some(consumed)
            }
            Next::Incomplete => None,
            Next::Skipping { consumed } => Some(consumed),
            Next::TooLong { consumed } => {
                // RFC 5321 section 4.5.3.1.4: the line is dropped and answered once.
                self.violation(Violation::LineTooLong);
                self.error_reply(&replies::line_too_long());
                Some(consumed)
            }
            Next::GiveUp { consumed } => {
                // Nothing that speaks SMTP sends this; stop reading it.
                self.violation(Violation::LineTooLong);
                self.reply(&replies::line_too_long());
                self.give_up();
                Some(consumed)
            }
        }
    }

    /// Ends a session whose peer is not speaking SMTP: 421 4.7.0, and close.
    pub(super) fn give_up(&mut self) {
        self.violation(Violation::TooManyErrors);
        let host = self.config.hostname.clone();
        self.reply(&replies::too_many_errors(&host));
        self.abort_message(AbortReason::Disconnected);
        self.close();
    }

    /// The peer closed its side: a message in progress is dropped.
    pub fn handle_eof(&mut self, _now: Instant) {
        if self.closed {
            return;
        }
        self.abort_message(AbortReason::Disconnected);
        self.pending = None;
        self.close();
    }

    /// Ends the session with 421 4.4.2 if its deadline has passed; early calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some((deadline, kind)) = self.deadline else {
            return;
        };
        // While the host decides, the peer waits for us: no timer runs (as `poll_timeout`
        // says), so a late call from a timer set earlier must not blame the peer.
        if now < deadline || self.closed || self.pending.is_some() {
            return;
        }
        self.abort_message(AbortReason::Timeout);
        self.violation(Violation::Timeout(kind));
        let host = self.config.hostname.clone();
        self.reply(&replies::timeout(&host));
        self.close();
    }

    /// The server is stopping. An idle session says 421 4.3.2 and closes now; one receiving
    /// or storing a message finishes it first (its reply is followed by the 421).
    pub fn handle_shutdown(&mut self, _now: Instant) {
        if self.closed {
            return;
        }
        self.shutting_down = true;
        if self.reception.is_none() && self.pending.is_none() {
            self.say_goodbye();
        }
    }

    fn say_goodbye(&mut self) {
        self.abort_message(AbortReason::Shutdown);
        let host = self.config.hostname.clone();
        self.reply(&replies::shutting_down(&host));
        self.close();
    }

    /// Answers the pending [`ServerEvent::Recipient`] or [`ServerEvent::MessageEnd`].
    ///
    /// After this, offer the kept input again: the session can consume more now.
    pub fn decide(
        &mut self,
        ticket: Ticket,
        verdict: Verdict,
        now: Instant,
    ) -> Result<(), UsageError> {
        let pending_ticket = match &self.pending {
            Some(
                Pending::Recipient { ticket, .. }
                | Pending::MessageEnd { ticket }
                | Pending::Auth { ticket, .. },
            ) => *ticket,
            None => return Err(UsageError::UnknownTicket(ticket)),
        };
        if pending_ticket != ticket {
            return Err(UsageError::UnknownTicket(ticket));
        }
        if let Verdict::Refuse(r) = &verdict
            && r.is_positive()
        {
            return Err(UsageError::NotARefusal(r.code()));
        }
        if matches!(verdict, Verdict::Login(_))
            && !matches!(self.pending, Some(Pending::Auth { .. }))
        {
            return Err(UsageError::LoginOutsideAuth);
        }
        match self.pending.take() {
            Some(Pending::Recipient { to, .. }) => {
                let reply = match verdict {
                    Verdict::Accept | Verdict::AcceptAs(_) | Verdict::Login(_) => {
                        if let Some(txn) = &mut self.txn {
                            txn.recipients.push(to);
                        }
                        replies::recipient_ok()
                    }
                    Verdict::Refuse(r) => r,
                };
                self.reply(&reply);
            }
            Some(Pending::MessageEnd { .. }) => {
                let reply = match verdict {
                    Verdict::Accept | Verdict::Login(_) => replies::message_ok(None),
                    Verdict::AcceptAs(id) => replies::message_ok(Some(&id)),
                    Verdict::Refuse(r) => r,
                };
                self.reply(&reply);
                self.txn = None;
                if self.shutting_down {
                    self.say_goodbye();
                }
            }
            Some(Pending::Auth { user, .. }) => match verdict {
                Verdict::Refuse(r) => self.auth_refused(&r),
                Verdict::Login(login) => self.logged_in(login),
                Verdict::Accept | Verdict::AcceptAs(_) => {
                    // Without a list from the host the login owns only its own name.
                    self.logged_in(crate::Login::new(user.clone(), [user]));
                }
            },
            None => unreachable!("checked above that a decision is pending"),
        }
        self.arm_timer(now);
        Ok(())
    }

    /// Appends pending reply bytes to `out`; returns how many.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let n = self.out.len();
        if out.is_empty() {
            std::mem::swap(out, &mut self.out);
        } else {
            out.append(&mut self.out);
        }
        n
    }

    /// The next event for the host.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout), and which timer that is, in
    /// RFC 5321's terms: [`TimerKind::Command`] between commands, [`TimerKind::DataBlock`]
    /// inside DATA or a BDAT chunk. `None` while the host decides: the peer waits for us then.
    ///
    /// [`Session::poll_timeout`](session_api::Session::poll_timeout) gives the same deadline
    /// with the kind in the words common to every core (`Idle`, `Transfer`).
    pub fn poll_timeout(&self) -> Option<(Instant, TimerKind)> {
        if self.closed || self.pending.is_some() {
            return None;
        }
        self.deadline
    }

    /// True once the session consumes no more input; flush the output and close.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// True while the session waits for [`decide`](Self::decide).
    pub fn is_waiting(&self) -> bool {
        self.pending.is_some()
    }

    fn arm_timer(&mut self, now: Instant) {
        let t = &self.config.timeouts;
        self.deadline = Some(if self.reception.is_some() {
            (now + t.data_block, TimerKind::DataBlock)
        } else {
            (now + t.command, TimerKind::Command)
        });
    }

    fn reply(&mut self, reply: &Reply) {
        reply.write_to(&mut self.out);
    }

    /// Replies to a peer error and counts it; too many end the session (421 4.7.0).
    fn error_reply(&mut self, reply: &Reply) {
        self.reply(reply);
        self.errors += 1;
        if self.errors >= self.config.limits.errors {
            self.give_up();
        }
    }

    fn violation(&mut self, v: Violation) {
        self.events.push_back(ServerEvent::Violation(v));
    }

    fn ticket(&mut self) -> Ticket {
        self.next_ticket += 1;
        Ticket(self.next_ticket)
    }

    fn close(&mut self) {
        self.closed = true;
        self.deadline = None;
        self.reception = None;
    }
}

/// How much of one over-long command line is read and dropped before the session gives up.
fn line_cut_off(limit: usize) -> usize {
    16 * limit
}

impl session_api::Session for ServerSession {
    type Event = ServerEvent;

    fn handle_input(&mut self, input: &[u8], now: Instant) -> usize {
        ServerSession::handle_input(self, input, now)
    }

    fn handle_eof(&mut self, now: Instant) {
        ServerSession::handle_eof(self, now)
    }

    fn handle_timeout(&mut self, now: Instant) {
        ServerSession::handle_timeout(self, now)
    }

    fn handle_shutdown(&mut self, now: Instant) {
        ServerSession::handle_shutdown(self, now)
    }

    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        ServerSession::poll_transmit(self, out)
    }

    fn poll_event(&mut self) -> Option<ServerEvent> {
        ServerSession::poll_event(self)
    }

    fn poll_timeout(&self) -> Option<session_api::Deadline> {
        ServerSession::poll_timeout(self)
            .map(|(at, kind)| session_api::Deadline::new(at, kind.into()))
    }

    fn is_closed(&self) -> bool {
        self.closed
    }

    fn wants_input(&self) -> bool {
        !self.closed && self.pending.is_none() && !self.awaiting_tls
    }

    fn poll_upgrade(&mut self) -> Option<session_api::Upgrade> {
        std::mem::take(&mut self.upgrade_asked).then_some(session_api::Upgrade::Tls)
    }

    fn handle_tls(&mut self, info: &session_api::TlsInfo, now: Instant) {
        ServerSession::handle_tls(self, info, now)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Feeds `input` in the pieces `cuts` make, accepting every decision; returns the output
    /// and the events (adjacent data merged).
    fn run(
        input: &[u8],
        cuts: &[usize],
        limits: impl Fn(&mut ServerConfig),
    ) -> (String, Vec<ServerEvent>) {
        let mut config = ServerConfig::new("mx.example");
        limits(&mut config);
        // Any instant will do: the session only adds to it and compares.
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let mut s = ServerSession::new(Arc::new(config), now);
        let (mut kept, mut out, mut events) = (Vec::new(), Vec::new(), Vec::<ServerEvent>::new());
        let mut from = 0;
        for cut in cuts.iter().copied().chain([input.len()]) {
            kept.extend_from_slice(&input[from..cut]);
            from = cut;
            loop {
                let used = s.handle_input(&kept, now);
                kept.drain(..used);
                let mut decided = false;
                while let Some(ev) = s.poll_event() {
                    if let ServerEvent::Recipient { ticket, .. }
                    | ServerEvent::MessageEnd { ticket, .. } = ev
                    {
                        s.decide(ticket, Verdict::Accept, now).unwrap();
                        decided = true;
                    }
                    match (events.last_mut(), ev) {
                        (Some(ServerEvent::MessageData(a)), ServerEvent::MessageData(b)) => {
                            a.extend_from_slice(&b)
                        }
                        (_, ev) => events.push(ev),
                    }
                }
                if !decided || kept.is_empty() {
                    break;
                }
            }
        }
        s.poll_transmit(&mut out);
        (String::from_utf8(out).unwrap(), events)
    }

    const TRANSACTION: &[u8] = b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.com>\r\n";

    #[test]
    fn quit_or_ehlo_between_chunks_drops_the_partial_message() {
        for (cmd, reason) in [
            (&b"QUIT\r\n"[..], AbortReason::Disconnected),
            (b"EHLO c\r\n", AbortReason::Reset),
            (b"HELO c\r\n", AbortReason::Reset),
        ] {
            let input = [TRANSACTION, b"BDAT 5\r\nhello", cmd].concat();
            let (_, events) = run(&input, &[], |_| {});
            assert!(
                events.contains(&ServerEvent::MessageAborted(reason)),
                "{events:?}"
            );
        }
    }

    #[test]
    fn the_first_rule_a_body_breaks_decides_however_it_is_cut() {
        // A bare LF early, then more than the size limit (33 octets, but not so far over that
        // the session gives up): 554 for the bare LF, not 552.
        let mut input = [TRANSACTION, b"DATA\r\nab\ncd\r\n"].concat();
        input.extend_from_slice(&[b'x'; 24]);
        input.extend_from_slice(b"\r\n.\r\n");
        let limit = |c: &mut ServerConfig| c.limits.message_size = 32;
        let whole = run(&input, &[], limit);
        assert!(
            whole.0.ends_with(
                "554 5.6.0 Message refused: bare CR or LF in data (RFC 5321 section 2.3.8)\r\n"
            ),
            "{}",
            whole.0
        );
        assert!(whole.1.contains(&ServerEvent::MessageData(b"ab".to_vec())));
        let bytes: Vec<usize> = (1..input.len()).collect();
        assert_eq!(run(&input, &bytes, limit), whole);
        for at in 1..input.len() {
            assert_eq!(run(&input, &[at], limit), whole, "cut at {at}");
        }
    }

    #[test]
    fn size_needs_a_value_and_smtputf8_takes_none() {
        for (params, detail) in [
            ("SIZE", "bad SIZE value"),
            ("SMTPUTF8=yes", "SMTPUTF8 takes no value"),
        ] {
            let input = format!("EHLO c\r\nMAIL FROM:<a@b.example> {params}\r\n");
            let (out, _) = run(input.as_bytes(), &[], |_| {});
            let reply = format!("\r\n501 5.5.4 Syntax error: {detail}\r\n");
            assert!(out.ends_with(&reply), "{out}");
        }
    }

    #[test]
    fn no_timeout_while_the_host_decides() {
        // Any instant will do: the session only adds to it and compares.
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        let mut s = ServerSession::new(Arc::new(ServerConfig::new("mx.example")), start);
        let input = [TRANSACTION, b"DATA\r\nhi\r\n.\r\n"].concat();
        let mut ticket = None;
        let mut used = 0;
        while used < input.len() {
            used += s.handle_input(&input[used..], start);
            while let Some(ev) = s.poll_event() {
                match ev {
                    ServerEvent::Recipient { ticket, .. } => {
                        s.decide(ticket, Verdict::Accept, start).unwrap()
                    }
                    ServerEvent::MessageEnd { ticket: t, .. } => ticket = Some(t),
                    _ => {}
                }
            }
        }
        assert_eq!(s.poll_timeout(), None);
        let later = start + Duration::from_secs(3000);
        s.handle_timeout(later);
        assert!(!s.is_closed());
        s.decide(ticket.expect("the message ended"), Verdict::Accept, later)
            .unwrap();
        let mut out = Vec::new();
        s.poll_transmit(&mut out);
        assert!(out.ends_with(b"354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued\r\n"));
    }

    #[test]
    fn the_timer_is_idle_between_commands_and_transfer_inside_a_message() {
        use session_api::{Session, TimerKind as Kind};

        /// The deadline through the trait: what the driver sees.
        fn timer(s: &ServerSession) -> Option<(Instant, Kind)> {
            Session::poll_timeout(s).map(|d| (d.at, d.kind))
        }
        /// Feeds `input` at `now`, accepting recipients; returns the ticket of a message end.
        fn feed(s: &mut ServerSession, input: &[u8], now: Instant) -> Option<Ticket> {
            assert_eq!(s.handle_input(input, now), input.len());
            let mut end = None;
            while let Some(ev) = s.poll_event() {
                match ev {
                    ServerEvent::Recipient { ticket, .. } => {
                        s.decide(ticket, Verdict::Accept, now).unwrap()
                    }
                    ServerEvent::MessageEnd { ticket, .. } => end = Some(ticket),
                    _ => {}
                }
            }
            end
        }

        // Any instant will do: the session only adds to it and compares.
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        let config = ServerConfig::new("mx.example");
        let (command, block) = (config.timeouts.command, config.timeouts.data_block);
        let mut s = ServerSession::new(Arc::new(config), start);
        let at = |secs| start + Duration::from_secs(secs);
        // After the greeting and between commands, mid-transaction too.
        assert_eq!(timer(&s), Some((start + command, Kind::Idle)));
        feed(&mut s, TRANSACTION, at(1));
        assert_eq!(timer(&s), Some((at(1) + command, Kind::Idle)));
        // Inside DATA, from the 354 on: the data block timer.
        feed(&mut s, b"DATA\r\n", at(2));
        assert_eq!(timer(&s), Some((at(2) + block, Kind::Transfer)));
        feed(&mut s, b"Subject: hi\r\n\r\nhello\r\n", at(3));
        assert_eq!(timer(&s), Some((at(3) + block, Kind::Transfer)));
        // The inherent method says the same in RFC 5321's words.
        assert_eq!(
            s.poll_timeout(),
            Some((at(3) + block, TimerKind::DataBlock))
        );
        // While the host stores the message, none; after its verdict, idle again.
        let ticket = feed(&mut s, b".\r\n", at(4)).expect("the message ended");
        assert_eq!(timer(&s), None);
        s.decide(ticket, Verdict::Accept, at(5)).unwrap();
        assert_eq!(timer(&s), Some((at(5) + command, Kind::Idle)));
        // BDAT: transfer inside a chunk, idle between chunks (the next BDAT is a command).
        feed(
            &mut s,
            b"MAIL FROM:<a@b.example>\r\nRCPT TO:<u@example.com>\r\n",
            at(6),
        );
        feed(&mut s, b"BDAT 10\r\nhello", at(7));
        assert_eq!(timer(&s), Some((at(7) + block, Kind::Transfer)));
        feed(&mut s, b"world", at(8));
        assert_eq!(timer(&s), Some((at(8) + command, Kind::Idle)));
        // The idle timer fires: 421, and the violation names the timer.
        s.handle_timeout(at(8) + command);
        assert!(s.is_closed());
        assert_eq!(timer(&s), None);
        assert!(
            std::iter::from_fn(|| s.poll_event())
                .any(|ev| ev == ServerEvent::Violation(Violation::Timeout(TimerKind::Command)))
        );
    }

    #[test]
    fn data_without_recipients_is_a_violation() {
        let (out, events) = run(
            b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nDATA\r\n",
            &[],
            |_| {},
        );
        assert!(out.ends_with("554 5.5.1 No valid recipients\r\n"), "{out}");
        assert_eq!(
            events.last(),
            Some(&ServerEvent::Violation(Violation::OutOfSequence))
        );
    }
}
