//! SEARCH (RFC 3501 section 6.4.4) evaluated over the session's view of a mailbox, reading
//! messages only for the keys that need their text.

use crate::event::MessageInfo;
use crate::fetch::{MessageSource, read_all, read_header};
use crate::message;
use crate::syntax::{Date, SearchKey};

/// One message to test.
#[derive(Debug, Clone)]
struct Candidate {
    seq: u32,
    info: MessageInfo,
    recent: bool,
}

/// A search to run: see [`SearchJob::run`].
#[derive(Debug)]
pub struct SearchJob {
    key: SearchKey,
    candidates: Vec<Candidate>,
    last_seq: u32,
    last_uid: u32,
    saved: Vec<u32>,
    saved_seqs: Vec<u32>,
}

/// What a key needs of a message beyond what the session knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Needs {
    Nothing,
    Header,
    Everything,
}

fn needs(key: &SearchKey) -> Needs {
    match key {
        SearchKey::And(keys) => keys.iter().map(needs).max().unwrap_or(Needs::Nothing),
        SearchKey::Or(a, b) => needs(a).max(needs(b)),
        SearchKey::Not(k) => needs(k),
        SearchKey::Header(..)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_) => Needs::Header,
        SearchKey::Body(_) | SearchKey::Text(_) => Needs::Everything,
        _ => Needs::Nothing,
    }
}

impl SearchJob {
    pub(crate) fn new(
        key: SearchKey,
        last_seq: u32,
        last_uid: u32,
        saved: Vec<u32>,
        saved_seqs: Vec<u32>,
    ) -> Self {
        SearchJob {
            key,
            candidates: Vec::new(),
            last_seq,
            last_uid,
            saved,
            saved_seqs,
        }
    }

    pub(crate) fn push(&mut self, seq: u32, info: MessageInfo, recent: bool) {
        self.candidates.push(Candidate { seq, info, recent });
    }

    /// Whether running needs message text (then run it off the event loop).
    pub fn reads_messages(&self) -> bool {
        needs(&self.key) != Needs::Nothing
    }

    /// The UIDs of the matching messages, ascending. A message that cannot be read does not
    /// match.
    pub fn run(&self, source: &mut dyn MessageSource) -> Vec<u32> {
        let need = needs(&self.key);
        let mut out = Vec::new();
        for c in &self.candidates {
            let text = match need {
                Needs::Nothing => None,
                Needs::Header => match read_header(source, c.info.uid, c.info.size) {
                    Ok(h) => Some(h),
                    Err(_) => continue,
                },
                Needs::Everything => match read_all(source, c.info.uid, c.info.size) {
                    Ok(m) => Some(m),
                    Err(_) => continue,
                },
            };
            if self.matches(&self.key, c, text.as_deref().unwrap_or_default()) {
                out.push(c.info.uid);
            }
        }
        out
    }

    fn matches(&self, key: &SearchKey, c: &Candidate, text: &[u8]) -> bool {
        let internal = || Date::of(c.info.internal_date, 0);
        let sent = || message::sent_date(text).map(|(year, month, day)| Date { year, month, day });
        match key {
            SearchKey::All => true,
            SearchKey::And(keys) => keys.iter().all(|k| self.matches(k, c, text)),
            SearchKey::Or(a, b) => self.matches(a, c, text) || self.matches(b, c, text),
            SearchKey::Not(k) => !self.matches(k, c, text),
            SearchKey::Sequence(set) => set.contains(c.seq, self.last_seq, &self.saved_seqs),
            SearchKey::Uid(set) => set.contains(c.info.uid, self.last_uid, &self.saved),
            SearchKey::Flag(flag, on) => c.info.flags.has(flag) == *on,
            SearchKey::New => c.recent && !c.info.flags.seen,
            SearchKey::Old => !c.recent,
            SearchKey::Recent => c.recent,
            SearchKey::Larger(n) => c.info.size > *n,
            SearchKey::Smaller(n) => c.info.size < *n,
            SearchKey::Before(d) => internal() < *d,
            SearchKey::On(d) => internal() == *d,
            SearchKey::Since(d) => internal() >= *d,
            SearchKey::SentBefore(d) => sent().is_some_and(|s| s < *d),
            SearchKey::SentOn(d) => sent().is_some_and(|s| s == *d),
            SearchKey::SentSince(d) => sent().is_some_and(|s| s >= *d),
            SearchKey::Header(field, needle) => message::header_matches(text, field, needle),
            SearchKey::Body(needle) => message::text_matches(text, needle, true),
            SearchKey::Text(needle) => message::text_matches(text, needle, false),
            SearchKey::ModSeq(m) => c.info.modseq >= *m,
        }
    }

    /// The highest mod-sequence among `uids`, for `(MODSEQ n)` after a MODSEQ search.
    pub(crate) fn highest_modseq(&self, uids: &[u32]) -> u64 {
        self.candidates
            .iter()
            .filter(|c| uids.binary_search(&c.info.uid).is_ok())
            .map(|c| c.info.modseq)
            .max()
            .unwrap_or(0)
    }

    /// Whether the criteria mention MODSEQ (RFC 7162 3.1.5 then adds `(MODSEQ n)`).
    pub(crate) fn uses_modseq(&self) -> bool {
        fn walk(k: &SearchKey) -> bool {
            match k {
                SearchKey::ModSeq(_) => true,
                SearchKey::And(keys) => keys.iter().any(walk),
                SearchKey::Or(a, b) => walk(a) || walk(b),
                SearchKey::Not(k) => walk(k),
                _ => false,
            }
        }
        walk(&self.key)
    }
}

/// A source for searches that read nothing.
pub(crate) struct NoSource;

impl MessageSource for NoSource {
    fn read_at(&mut self, _uid: u32, _offset: u64, _buf: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::ErrorKind::NotFound.into())
    }
}
