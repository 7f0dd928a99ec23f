//! Our own per-folder file, `buzon-index`, beside `dovecot-uidlist`: what IMAP's CONDSTORE and
//! QRESYNC (RFC 7162) and `\Recent` (RFC 3501 section 2.3.2) need and Dovecot keeps in its own
//! index files: each message's mod-sequence and the flags it had then, the UIDs expunged with
//! the mod-sequence at which they went, the highest mod-sequence, and the first UID no session
//! has yet seen as `\Recent`.
//!
//! ```text
//! buzon-index 1
//! V 1700000000 M 42 R 17
//! m 3 40 FS
//! x 5 41
//! ```
//!
//! A file whose `V` is not the UID list's belongs to an older UIDVALIDITY and is ignored.

use std::collections::BTreeMap;

/// Expunge records kept; beyond this the oldest go, and a client asking about changes before
/// them is told every UID that is not in the folder (RFC 7162 3.2.5.1 allows that).
pub(crate) const MAX_EXPUNGED: usize = 100_000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct State {
    pub(crate) uid_validity: u32,
    pub(crate) highest_modseq: u64,
    pub(crate) first_unclaimed: u32,
    /// Records older than this were dropped.
    pub(crate) trimmed_before: u64,
    /// UID to (modseq, letters).
    pub(crate) messages: BTreeMap<u32, (u64, String)>,
    pub(crate) expunged: Vec<(u32, u64)>,
}

impl State {
    pub(crate) fn parse(text: &str) -> Option<State> {
        let mut lines = text.lines();
        if lines.next()? != "buzon-index 1" {
            return None;
        }
        let mut s = State::default();
        let head: Vec<&str> = lines.next()?.split(' ').collect();
        for pair in head.chunks(2) {
            match pair {
                ["V", v] => s.uid_validity = v.parse().ok()?,
                ["M", v] => s.highest_modseq = v.parse().ok()?,
                ["R", v] => s.first_unclaimed = v.parse().ok()?,
                ["T", v] => s.trimmed_before = v.parse().ok()?,
                _ => {}
            }
        }
        for line in lines {
            let f: Vec<&str> = line.split(' ').collect();
            match f.as_slice() {
                ["m", uid, modseq, letters @ ..] => {
                    let letters = letters.first().copied().unwrap_or("");
                    s.messages.insert(
                        uid.parse().ok()?,
                        (modseq.parse().ok()?, letters.to_owned()),
                    );
                }
                ["x", uid, modseq] => s.expunged.push((uid.parse().ok()?, modseq.parse().ok()?)),
                _ => {}
            }
        }
        Some(s)
    }

    pub(crate) fn render(&self) -> String {
        let mut out = format!(
            "buzon-index 1\nV {} M {} R {} T {}\n",
            self.uid_validity, self.highest_modseq, self.first_unclaimed, self.trimmed_before
        );
        for (uid, (modseq, letters)) in &self.messages {
            out.push_str(&format!("m {uid} {modseq} {letters}\n"));
        }
        for (uid, modseq) in &self.expunged {
            out.push_str(&format!("x {uid} {modseq}\n"));
        }
        out
    }

    pub(crate) fn trim(&mut self) {
        if self.expunged.len() > MAX_EXPUNGED {
            let cut = self.expunged.len() - MAX_EXPUNGED;
            self.trimmed_before = self.expunged[cut - 1].1 + 1;
            self.expunged.drain(..cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut s = State {
            uid_validity: 7,
            highest_modseq: 9,
            first_unclaimed: 3,
            ..State::default()
        };
        s.messages.insert(1, (4, "FS".into()));
        s.messages.insert(2, (5, String::new()));
        s.expunged.push((3, 9));
        assert_eq!(State::parse(&s.render()), Some(s));
        assert_eq!(State::parse("garbage"), None);
    }
}
