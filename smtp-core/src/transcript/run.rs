//! Replaying a transcript against a [`ServerSession`] with a scripted host.

use std::sync::Arc;
use std::time::Instant;

use super::format::{Item, Transcript, escape};
use crate::policy::LocalDomains;
use crate::{Reply, ServerConfig, ServerEvent, ServerSession, Verdict};

/// How the client's writes are cut before they reach the session.
#[non_exhaustive]
pub enum Split<'a> {
    /// Each group of consecutive client lines is one write.
    Whole,
    /// One byte per write.
    Bytes,
    /// The function returns cut offsets (ascending, within the group) for a group of that length.
    Custom(&'a mut dyn FnMut(usize) -> Vec<usize>),
}

impl Split<'_> {
    /// The pieces `group` is cut into, in order; together they are `group`.
    pub(crate) fn pieces<'g>(&mut self, group: &'g [u8]) -> Vec<&'g [u8]> {
        let cuts = match self {
            Split::Whole => Vec::new(),
            Split::Bytes => (1..group.len()).collect(),
            Split::Custom(f) => f(group.len()),
        };
        let mut from = 0;
        let mut pieces = Vec::with_capacity(cuts.len() + 1);
        for cut in cuts.into_iter().chain([group.len()]) {
            let cut = cut.clamp(from, group.len());
            pieces.push(&group[from..cut]);
            from = cut;
        }
        pieces
    }
}

/// Which side's lines make a group.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Client,
    Server,
}

/// Joins the consecutive lines of `side` starting at `items[*i]` into one write.
pub(crate) fn take_group(items: &[Item], i: &mut usize, side: Side) -> Vec<u8> {
    let mut group = Vec::new();
    while let Some(item) = items.get(*i) {
        match (item, side) {
            (Item::Client(b), Side::Client) | (Item::Server(b), Side::Server) => {
                group.extend_from_slice(b);
                *i += 1;
            }
            _ => break,
        }
    }
    group
}

/// Records the first point where `actual` output differs from what was `expected` so far.
pub(crate) fn note_mismatch(
    mismatch: &mut Option<Mismatch>,
    item: usize,
    expected: &[u8],
    actual: &[u8],
) {
    if mismatch.is_none() && actual != expected {
        *mismatch = Some(Mismatch {
            item,
            expected: expected.to_vec(),
            actual: actual.to_vec(),
        });
    }
}

/// What a replay produced.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Outcome {
    /// Everything the session sent.
    pub output: Vec<u8>,
    /// Everything the transcript expected it to send.
    pub expected: Vec<u8>,
    /// The host's view: one line per event and decision; adjacent data events are merged, so the
    /// log does not depend on how input was split.
    pub events: Vec<String>,
    /// The first point where output and expectation parted, if any.
    pub mismatch: Option<Mismatch>,
}

/// Where a replay first differed from its transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Mismatch {
    /// Index of the transcript item being replayed when the difference showed.
    pub item: usize,
    /// The expected server bytes up to that point.
    pub expected: Vec<u8>,
    /// The actual server bytes up to that point.
    pub actual: Vec<u8>,
}

impl Outcome {
    /// True if the session said exactly what the transcript expects, in the same places.
    pub fn is_match(&self) -> bool {
        self.mismatch.is_none()
    }

    /// A readable account: the differing lines, expected against actual.
    pub fn report(&self) -> String {
        let Some(m) = &self.mismatch else {
            return "transcript matches".to_owned();
        };
        let exp = split_lines(&m.expected);
        let act = split_lines(&m.actual);
        let mut s = format!("mismatch before transcript item {}:\n", m.item + 1);
        for i in 0..exp.len().max(act.len()) {
            let (e, a) = (exp.get(i), act.get(i));
            if e == a {
                continue;
            }
            if let Some(e) = e {
                s.push_str(&format!("- S: {}\n", escape(e)));
            }
            if let Some(a) = a {
                s.push_str(&format!("+ S: {}\n", escape(a)));
            }
        }
        s
    }
}

fn split_lines(b: &[u8]) -> Vec<&[u8]> {
    b.split_inclusive(|&c| c == b'\n')
        .map(|l| l.strip_suffix(b"\r\n").unwrap_or(l))
        .collect()
}

/// Replays `t` with each client group as one write. `start` is the clock's origin.
pub fn replay(t: &Transcript, start: Instant) -> Outcome {
    replay_split(t, start, Split::Whole)
}

/// Replays `t`, cutting client writes as `split` says.
pub fn replay_split(t: &Transcript, start: Instant, mut split: Split<'_>) -> Outcome {
    let config = Arc::new(t.server_config());
    let mut host = ScriptedHost::new(t);
    let mut now = start;
    let mut session = ServerSession::new(config, now);
    let mut output = Vec::new();
    let mut expected = Vec::new();
    let mut mismatch = None;
    let mut kept: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < t.items.len() {
        match &t.items[i] {
            Item::Server(b) => {
                expected.extend_from_slice(b);
                i += 1;
            }
            Item::Client(_) => {
                host.drive(&mut session, &mut kept, &[], now, &mut output);
                note_mismatch(&mut mismatch, i, &expected, &output);
                let group = take_group(&t.items, &mut i, Side::Client);
                for piece in split.pieces(&group) {
                    host.drive(&mut session, &mut kept, piece, now, &mut output);
                }
            }
            Item::Advance(d) => {
                host.drive(&mut session, &mut kept, &[], now, &mut output);
                now += *d;
                session.handle_timeout(now);
                host.drive(&mut session, &mut kept, &[], now, &mut output);
                i += 1;
            }
            Item::Tls => {
                host.drive(&mut session, &mut kept, &[], now, &mut output);
                use session_api::Session as _;
                match session.poll_upgrade() {
                    Some(session_api::Upgrade::Tls) => {
                        // What the driver does: drop the plaintext pipelined after STARTTLS.
                        if !kept.is_empty() {
                            host.note(format!("dropped {} octets before TLS", kept.len()));
                            kept.clear();
                        }
                        session.handle_tls(&test_tls_info(), now);
                        host.note("tls".to_owned());
                    }
                    _ => host.note("tls not asked for".to_owned()),
                }
                i += 1;
            }
            Item::Eof => {
                host.drive(&mut session, &mut kept, &[], now, &mut output);
                session.handle_eof(now);
                host.drive(&mut session, &mut kept, &[], now, &mut output);
                host.note("eof".to_owned());
                i += 1;
            }
        }
    }
    host.drive(&mut session, &mut kept, &[], now, &mut output);
    if session.is_closed() {
        host.note("closed".to_owned());
    }
    note_mismatch(&mut mismatch, t.items.len(), &expected, &output);
    Outcome {
        output,
        expected,
        events: host.log,
        mismatch,
    }
}

/// What a replayed `@ tls` tells the session; the same every time, so recordings compare.
pub fn test_tls_info() -> session_api::TlsInfo {
    session_api::TlsInfo::new("TLSv1.3", "TLS13_AES_128_GCM_SHA256", None)
}

impl Transcript {
    /// Builds the server configuration from `! config` lines; unknown keys are ignored so that
    /// newer transcripts still replay.
    pub fn server_config(&self) -> ServerConfig {
        let t = self;
        let mut c = ServerConfig::new(t.config_value("hostname").unwrap_or("mx.example.com"));
        let num = |k: &str| t.config_value(k).and_then(|v| v.parse::<u64>().ok());
        if let Some(v) = num("max_message") {
            c.limits.message_size = v;
        }
        if let Some(v) = num("max_recipients") {
            c.limits.recipients = v as usize;
        }
        if let Some(v) = num("max_errors") {
            c.limits.errors = v as u32;
        }
        if let Some(v) = num("command_line") {
            c.limits.command_line = v as usize;
        }
        if let Some(v) = num("text_line") {
            c.limits.text_line = v as usize;
        }
        if let Some(v) = num("command_timeout") {
            c.timeouts.command = std::time::Duration::from_secs(v);
        }
        if let Some(v) = num("data_timeout") {
            c.timeouts.data_block = std::time::Duration::from_secs(v);
        }
        if let Some(v) = t.config_value("starttls") {
            c.starttls = v == "true";
        }
        c
    }
}

/// The host's decisions as a transcript scripts them: recipients by `! decide rcpt` lines, else
/// by the configured `domains`, else accepted; message ends by successive `! decide data` lines,
/// else accepted. Usable by any host that wants to act out a transcript (the socket tests do).
#[derive(Debug, Clone)]
pub struct Script {
    rcpt: Vec<(String, Reply)>,
    policy: Option<LocalDomains>,
    data: std::collections::VecDeque<Reply>,
}

impl Script {
    /// The decisions of `t`.
    pub fn new(t: &Transcript) -> Self {
        Script {
            rcpt: t.rcpt_decisions.clone(),
            policy: t
                .config_value("domains")
                .map(|d| LocalDomains::new(d.split(',').map(str::trim))),
            data: t.data_decisions.iter().cloned().collect(),
        }
    }

    /// The verdict for a recipient.
    pub fn recipient(&self, to: &crate::address::ForwardPath) -> Verdict {
        let shown = to.to_string();
        if let Some((_, reply)) = self.rcpt.iter().find(|(p, _)| *p == shown) {
            return to_verdict(reply);
        }
        match &self.policy {
            Some(p) => match p.check(to) {
                Ok(_) => Verdict::Accept,
                Err(r) => Verdict::Refuse(r),
            },
            None => Verdict::Accept,
        }
    }

    /// The verdict for the next message end.
    pub fn message(&mut self) -> Verdict {
        self.data
            .pop_front()
            .as_ref()
            .map_or(Verdict::Accept, to_verdict)
    }
}

/// The host of a replay: acts out the [`Script`] and logs every event and decision.
struct ScriptedHost {
    script: Script,
    log: Vec<String>,
    /// While the last log line is merged message data: its last octets when they start a UTF-8
    /// character without finishing it (escaped provisionally, as the next data may finish it).
    data_tail: Option<Vec<u8>>,
}

impl ScriptedHost {
    fn new(t: &Transcript) -> Self {
        ScriptedHost {
            script: Script::new(t),
            log: Vec::new(),
            data_tail: None,
        }
    }

    /// Logs `ev`. Adjacent data events become one line that reads as if the data had come in
    /// one event, even when a UTF-8 character was cut between two reads.
    fn log_event(&mut self, ev: &ServerEvent) {
        let ServerEvent::MessageData(d) = ev else {
            return self.note(describe_event(ev));
        };
        let mut octets = match self.data_tail.take() {
            Some(tail) => {
                let line = self.log.last_mut().expect("the data line was logged");
                line.truncate(line.len() - escape(&tail).len() - "\"".len());
                [&tail[..], d].concat()
            }
            None => {
                self.log.push("data \"".to_owned());
                d.clone()
            }
        };
        let tail = octets.split_off(octets.len() - incomplete_utf8_suffix(&octets));
        let line = self.log.last_mut().expect("the data line was logged");
        line.push_str(&escape(&octets));
        line.push_str(&escape(&tail));
        line.push('"');
        self.data_tail = Some(tail);
    }

    /// Logs a line that is not message data.
    fn note(&mut self, line: String) {
        self.data_tail = None;
        self.log.push(line);
    }

    /// Offers `input` (after what is kept), answers events, collects output; repeats while a
    /// decision lets the session consume more.
    fn drive(
        &mut self,
        s: &mut ServerSession,
        kept: &mut Vec<u8>,
        input: &[u8],
        now: Instant,
        output: &mut Vec<u8>,
    ) {
        kept.extend_from_slice(input);
        loop {
            let used = s.handle_input(kept, now);
            kept.drain(..used);
            let decided = self.answer_events(s, now);
            if !decided || kept.is_empty() {
                break;
            }
        }
        s.poll_transmit(output);
    }

    fn answer_events(&mut self, s: &mut ServerSession, now: Instant) -> bool {
        let mut decided = false;
        while let Some(ev) = s.poll_event() {
            // Data events are merged so the log is the same however input was cut.
            self.log_event(&ev);
            let (ticket, verdict) = match ev {
                ServerEvent::Recipient { ticket, to } => (ticket, self.script.recipient(&to)),
                ServerEvent::MessageEnd { ticket, .. } => (ticket, self.script.message()),
                _ => continue,
            };
            self.note(match &verdict {
                Verdict::Accept => "decide accept".to_owned(),
                Verdict::AcceptAs(id) => format!("decide accept as {id}"),
                Verdict::Refuse(r) => format!("decide {r}"),
            });
            s.decide(ticket, verdict, now)
                .expect("the ticket comes from the event just polled");
            decided = true;
        }
        decided
    }
}

/// How many octets at the end of `b` begin a UTF-8 character without completing it (0 to 3).
fn incomplete_utf8_suffix(b: &[u8]) -> usize {
    let continuations = b
        .iter()
        .rev()
        .take(3)
        .take_while(|&&c| (0x80..0xc0).contains(&c))
        .count();
    let Some(&lead) = b.len().checked_sub(continuations + 1).map(|i| &b[i]) else {
        return 0;
    };
    let len = match lead {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => return 0,
    };
    if continuations + 1 < len {
        continuations + 1
    } else {
        0
    }
}

/// A scripted reply as a verdict: 2xx accepts (keeping a `queued as` id), others refuse.
fn to_verdict(r: &Reply) -> Verdict {
    if !r.is_positive() {
        return Verdict::Refuse(r.clone());
    }
    let text = r.lines().last().map(String::as_str).unwrap_or_default();
    match text.strip_prefix("Ok: queued as ") {
        Some(id) => Verdict::AcceptAs(id.to_owned()),
        None => Verdict::Accept,
    }
}

/// One line describing an event, for logs and snapshots.
pub fn describe_event(ev: &ServerEvent) -> String {
    match ev {
        ServerEvent::Helo { name, esmtp } => {
            format!("{} {name}", if *esmtp { "ehlo" } else { "helo" })
        }
        ServerEvent::MailFrom(p) => format!("mail {p}"),
        ServerEvent::Recipient { to, .. } => format!("rcpt {to}"),
        ServerEvent::MessageStart(e) => {
            let rcpts: Vec<String> = e.recipients.iter().map(ToString::to_string).collect();
            format!(
                "start from={} to={} body={:?} smtputf8={} chunked={}",
                e.from,
                rcpts.join(","),
                e.body,
                e.smtputf8,
                e.chunked
            )
        }
        ServerEvent::MessageData(d) => format!("data \"{}\"", escape(d)),
        ServerEvent::MessageEnd { size, .. } => format!("end size={size}"),
        ServerEvent::MessageAborted(r) => format!("aborted {r:?}"),
        ServerEvent::Violation(v) => format!("violation {v:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_log_does_not_depend_on_where_a_character_is_cut() {
        let t = Transcript::parse(
            "C: EHLO c\nC: MAIL FROM:<a@b.example>\nC: RCPT TO:<u@example.com>\nC: DATA\n\
             C: Grüße \\xe2\\x82\\xac \\xff\\xe2\\x82\nC: .\n",
        )
        .unwrap();
        // Any instant will do: the session only adds to it and compares.
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        let whole = replay_split(&t, start, Split::Whole);
        assert!(
            whole
                .events
                .contains(&r#"data "Grüße € \xff\xe2\x82\r\n""#.to_owned()),
            "{:?}",
            whole.events
        );
        assert_eq!(replay_split(&t, start, Split::Bytes).events, whole.events);
        for at in 1..40 {
            let mut cut = |len: usize| if at < len { vec![at] } else { Vec::new() };
            assert_eq!(
                replay_split(&t, start, Split::Custom(&mut cut)).events,
                whole.events
            );
        }
    }

    #[test]
    fn incomplete_utf8_suffixes() {
        assert_eq!(incomplete_utf8_suffix(b""), 0);
        assert_eq!(incomplete_utf8_suffix(b"a"), 0);
        assert_eq!(incomplete_utf8_suffix(b"a\xc3"), 1);
        assert_eq!(incomplete_utf8_suffix(b"a\xc3\xbc"), 0);
        assert_eq!(incomplete_utf8_suffix(b"\xe2\x82"), 2);
        assert_eq!(incomplete_utf8_suffix(b"\xf0\x9f\x98"), 3);
        assert_eq!(incomplete_utf8_suffix(b"\xf0\x9f\x98\x80"), 0);
        assert_eq!(incomplete_utf8_suffix(b"a\x82"), 0);
        assert_eq!(incomplete_utf8_suffix(b"\xff"), 0);
    }
}
