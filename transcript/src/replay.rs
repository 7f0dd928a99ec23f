//! Replaying a transcript against a sans-IO session, and the report of where they parted.

use std::time::Instant;

use session_api::{Session, TlsInfo, Upgrade};

use crate::escape::escape;
use crate::format::Item;
use crate::log::EventLog;

/// Which side of the conversation the session under test plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// The session is the server: `C:` lines are its input, `S:` lines what it must send.
    Server,
    /// The session is the client: `S:` lines are its input, `C:` lines what it must send.
    Client,
}

/// How the peer's writes are cut before they reach the session.
#[non_exhaustive]
pub enum Split<'a> {
    /// Each group of consecutive lines is one write.
    Whole,
    /// One byte per write.
    Bytes,
    /// The function returns cut offsets (ascending, within the group) for a group of that length.
    Custom(&'a mut dyn FnMut(usize) -> Vec<usize>),
}

impl Split<'_> {
    /// The pieces `group` is cut into, in order; together they are `group`.
    fn pieces<'g>(&mut self, group: &'g [u8]) -> Vec<&'g [u8]> {
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

/// The host of a replay: answers what the session asks, as the transcript scripts it.
pub trait Host<S: Session> {
    /// Takes every event `session` has for its host, logs each (and any decision) in `log`,
    /// and answers those that need an answer. Returns true if an answer may let the session
    /// consume more input.
    fn answer(&mut self, session: &mut S, now: Instant, log: &mut EventLog) -> bool;

    /// Does what an `@ host ACTION` line says (another session's change, a delivery) and tells
    /// `session` as the real host would. A host that knows no actions logs that it did nothing,
    /// so the transcript's expectations fail visibly.
    fn act(&mut self, action: &str, session: &mut S, now: Instant, log: &mut EventLog) {
        let _ = (session, now);
        log.note(format!("host action not understood: {action}"));
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
    /// The host's view: see [`EventLog`].
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
    /// The side whose lines differ: `'S'` when the session is the server, else `'C'`.
    pub side: char,
    /// The expected bytes up to that point.
    pub expected: Vec<u8>,
    /// The actual bytes up to that point.
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
                s.push_str(&format!("- {}: {}\n", m.side, escape(e)));
            }
            if let Some(a) = a {
                s.push_str(&format!("+ {}: {}\n", m.side, escape(a)));
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

/// What a replayed `@ tls` tells the session; the same every time, so recordings compare.
pub fn test_tls_info() -> TlsInfo {
    TlsInfo::new("TLSv1.3", "TLS13_AES_128_GCM_SHA256", None)
}

/// Plays `items` against `session`, which plays `role`; `host` answers its events. The clock
/// starts at `start`; the peer's writes are cut as `split` says.
///
/// The loop is the driver's, without sockets: input the session did not consume is kept and
/// offered again after each answer; `@ tls` drops what the peer pipelined before the switch
/// (as `conn_driver` does, RFC 3207 section 4.2) and calls `handle_tls` (as the first item it
/// stands for an implicit-TLS connection: `handle_tls` before anything else); `@ eof` is delivered
/// only after everything before it was offered. Before each write of the peer, the session
/// must have sent exactly the lines above it.
pub fn replay<S: Session, H: Host<S>>(
    items: &[Item],
    role: Role,
    session: &mut S,
    host: &mut H,
    start: Instant,
    mut split: Split<'_>,
) -> Outcome {
    let mut r = Replay {
        session,
        host,
        now: start,
        kept: Vec::new(),
        output: Vec::new(),
        log: EventLog::default(),
    };
    let mut expected = Vec::new();
    let mut mismatch = None;
    let side = match role {
        Role::Server => 'S',
        Role::Client => 'C',
    };
    let mut note_mismatch = |item: usize, expected: &[u8], actual: &[u8]| {
        if mismatch.is_none() && actual != expected {
            mismatch = Some(Mismatch {
                item,
                side,
                expected: expected.to_vec(),
                actual: actual.to_vec(),
            });
        }
    };
    let mut i = 0;
    while i < items.len() {
        match (&items[i], role) {
            (Item::Server(b), Role::Server) | (Item::Client(b), Role::Client) => {
                expected.extend_from_slice(b);
                i += 1;
            }
            (Item::Client(_), Role::Server) | (Item::Server(_), Role::Client) => {
                r.drive(&[]);
                note_mismatch(i, &expected, &r.output);
                for piece in split.pieces(&take_group(items, &mut i)) {
                    r.drive(piece);
                }
            }
            (Item::Advance(d), _) => {
                r.drive(&[]);
                r.now += *d;
                r.session.handle_timeout(r.now);
                r.drive(&[]);
                i += 1;
            }
            (Item::Tls, _) => {
                if i == 0 {
                    // Before anything else: TLS from the first byte (an implicit-TLS port).
                    r.session.handle_tls(&test_tls_info(), r.now);
                    r.log.note("tls (implicit)");
                } else {
                    r.drive(&[]);
                    r.upgrade();
                }
                i += 1;
            }
            (Item::Host(action), _) => {
                r.drive(&[]);
                r.log.note(format!("host: {action}"));
                r.host.act(action, r.session, r.now, &mut r.log);
                r.drive(&[]);
                i += 1;
            }
            (Item::Eof, _) => {
                r.drive(&[]);
                r.log.note("eof");
                r.session.handle_eof(r.now);
                r.drive(&[]);
                i += 1;
            }
        }
    }
    r.drive(&[]);
    if r.session.is_closed() {
        r.log.note("closed");
    }
    note_mismatch(items.len(), &expected, &r.output);
    Outcome {
        output: r.output,
        expected,
        events: r.log.into_lines(),
        mismatch,
    }
}

/// Joins the consecutive lines of the side of `items[*i]` into one write.
fn take_group(items: &[Item], i: &mut usize) -> Vec<u8> {
    let mut group = Vec::new();
    let first = std::mem::discriminant(&items[*i]);
    while let Some(item @ (Item::Client(b) | Item::Server(b))) = items.get(*i) {
        if std::mem::discriminant(item) != first {
            break;
        }
        group.extend_from_slice(b);
        *i += 1;
    }
    group
}

/// One replay in progress.
struct Replay<'a, S, H> {
    session: &'a mut S,
    host: &'a mut H,
    now: Instant,
    kept: Vec<u8>,
    output: Vec<u8>,
    log: EventLog,
}

impl<S: Session, H: Host<S>> Replay<'_, S, H> {
    /// Offers `input` (after what is kept), answers events, collects output; repeats while an
    /// answer lets the session consume more.
    fn drive(&mut self, input: &[u8]) {
        self.kept.extend_from_slice(input);
        loop {
            let used = self.session.handle_input(&self.kept, self.now);
            self.kept.drain(..used.min(self.kept.len()));
            let answered = self.host.answer(self.session, self.now, &mut self.log);
            if !answered || self.kept.is_empty() {
                break;
            }
        }
        self.session.poll_transmit(&mut self.output);
    }

    /// `@ tls`: what the driver does when the session asks for TLS.
    fn upgrade(&mut self) {
        match self.session.poll_upgrade() {
            Some(Upgrade::Tls) => {
                if !self.kept.is_empty() {
                    self.log
                        .note(format!("dropped {} octets before TLS", self.kept.len()));
                    self.kept.clear();
                }
                self.session.handle_tls(&test_tls_info(), self.now);
                self.log.note("tls");
            }
            _ => self.log.note("tls not asked for"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_cover_the_group_in_order() {
        let g = b"abcdef";
        assert_eq!(Split::Whole.pieces(g), [&g[..]]);
        assert_eq!(Split::Bytes.pieces(g).concat(), g);
        assert_eq!(Split::Bytes.pieces(g).len(), 6);
        let mut cuts = |_len: usize| vec![4, 2, 9];
        let pieces = Split::Custom(&mut cuts).pieces(g);
        assert_eq!(pieces.concat(), g);
        assert_eq!(pieces, [&b"abcd"[..], b"", b"ef", b""]);
    }

    #[test]
    fn groups_stop_at_the_other_side() {
        let items = [
            Item::Client(b"a".to_vec()),
            Item::Client(b"b".to_vec()),
            Item::Server(b"c".to_vec()),
            Item::Eof,
        ];
        let mut i = 0;
        assert_eq!(take_group(&items, &mut i), b"ab");
        assert_eq!(i, 2);
        assert_eq!(take_group(&items, &mut i), b"c");
        assert_eq!(i, 3);
    }
}
