//! Our own per-folder file, `buzon-index`, beside `dovecot-uidlist`: what IMAP's CONDSTORE and
//! QRESYNC (RFC 7162) and `\Recent` (RFC 3501 section 2.3.2) need and Dovecot keeps in its own
//! index files: each message's mod-sequence and the flags it had then, the UIDs expunged with
//! the mod-sequence at which they went, the highest mod-sequence, and the first UID no session
//! has yet seen as `\Recent`.
//!
//! It is a log: a change appends a line or a few in one `write`, under the folder lock, so a
//! STORE costs one small write instead of a rewrite of the whole file. When the log holds many
//! more lines than the folder has messages it is rewritten (to a temporary file, renamed over).
//!
//! ```text
//! buzon-index 2 V1700000000
//! m 3 40 FS        message 3 got mod-sequence 40 with the info letters FS
//! x 5 41           UID 5 expunged at mod-sequence 41
//! R 17             UIDs from 17 up are \Recent for the next session that claims them
//! h 41             the highest mod-sequence is at least 41
//! t 12             expunge records before mod-sequence 12 were dropped
//! c 1065           ceiling: no mod-sequence above 1065 was handed out (written durably)
//! s                everything above this line is durable
//! ```
//!
//! Durability without an fsync per change: a client must never see HIGHESTMODSEQ go back (it
//! would keep stale flags forever), yet records appended without an fsync may be lost in a
//! crash. So before any mod-sequence above the last ceiling is given out, a new ceiling line
//! (the highest plus [`CEILING_STEP`]) is written and fsynced with the records before it. After
//! a crash the last ceiling is on disk; a log whose last `c` is not followed by an `s` may have
//! lost records, so whoever loads it continues from that ceiling. Changes whose records were lost
//! are still right: their files' flags no longer match the log, so they get new mod-sequences
//! above the ceiling and clients fetch them again. `s` is written once the log was fsynced (when
//! the last handle on the folder closes, and before a rewrite), so a folder reopened after a
//! clean stop does not jump.
//!
//! A line torn by a crash (no newline, or not parseable) ends what is read; the next writer,
//! holding the lock, cuts the file there before appending.

use std::collections::BTreeMap;

/// Expunge records kept; beyond this the oldest go, and a client asking about changes before
/// them is told every UID that is not in the folder (RFC 7162 3.2.5.1 allows that).
pub(crate) const MAX_EXPUNGED: usize = 100_000;

/// How far above the highest mod-sequence a new ceiling is put: one fsync per this many
/// changes, and the jump a folder makes after a crash.
pub(crate) const CEILING_STEP: u64 = 1024;

const MAGIC: &str = "buzon-index 2 V";

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    Message {
        uid: u32,
        modseq: u64,
        letters: String,
    },
    Expunged {
        uid: u32,
        modseq: u64,
    },
    Unclaimed(u32),
    Highest(u64),
    Trimmed(u64),
    Ceiling(u64),
    Synced,
}

impl Record {
    fn parse(line: &str) -> Option<Record> {
        let mut f = line.split(' ');
        let kind = f.next()?;
        let mut num = || f.next()?.parse::<u64>().ok();
        let rec = match kind {
            "m" => {
                let uid = u32::try_from(num()?).ok()?;
                let modseq = num()?;
                let letters = f.next().unwrap_or("");
                if !letters.bytes().all(|b| b.is_ascii_graphic()) {
                    return None;
                }
                Record::Message {
                    uid,
                    modseq,
                    letters: letters.to_owned(),
                }
            }
            "x" => Record::Expunged {
                uid: u32::try_from(num()?).ok()?,
                modseq: num()?,
            },
            "R" => Record::Unclaimed(u32::try_from(num()?).ok()?),
            "h" => Record::Highest(num()?),
            "t" => Record::Trimmed(num()?),
            "c" => Record::Ceiling(num()?),
            "s" => Record::Synced,
            _ => return None,
        };
        f.next().is_none().then_some(rec)
    }

    fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = match self {
            Record::Message {
                uid,
                modseq,
                letters,
            } if letters.is_empty() => writeln!(out, "m {uid} {modseq}"),
            Record::Message {
                uid,
                modseq,
                letters,
            } => writeln!(out, "m {uid} {modseq} {letters}"),
            Record::Expunged { uid, modseq } => writeln!(out, "x {uid} {modseq}"),
            Record::Unclaimed(u) => writeln!(out, "R {u}"),
            Record::Highest(m) => writeln!(out, "h {m}"),
            Record::Trimmed(m) => writeln!(out, "t {m}"),
            Record::Ceiling(m) => writeln!(out, "c {m}"),
            Record::Synced => writeln!(out, "s"),
        };
    }
}

/// What the log says, replayed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct State {
    pub(crate) uid_validity: u32,
    pub(crate) highest_modseq: u64,
    pub(crate) first_unclaimed: u32,
    /// Expunge records older than this were dropped.
    pub(crate) trimmed_before: u64,
    /// The last durable ceiling.
    pub(crate) ceiling: u64,
    /// Whether records may follow the last ceiling that were never fsynced.
    pub(crate) dirty: bool,
    /// UID to (modseq, letters).
    pub(crate) messages: BTreeMap<u32, (u64, String)>,
    /// (UID, modseq), in the order they went.
    pub(crate) expunged: Vec<(u32, u64)>,
}

impl State {
    pub(crate) fn new(uid_validity: u32, highest_modseq: u64) -> State {
        State {
            uid_validity,
            highest_modseq,
            first_unclaimed: 1,
            ..State::default()
        }
    }

    pub(crate) fn apply(&mut self, rec: &Record) {
        match rec {
            Record::Message {
                uid,
                modseq,
                letters,
            } => {
                self.highest_modseq = self.highest_modseq.max(*modseq);
                self.messages.insert(*uid, (*modseq, letters.clone()));
            }
            Record::Expunged { uid, modseq } => {
                self.highest_modseq = self.highest_modseq.max(*modseq);
                self.messages.remove(uid);
                self.expunged.push((*uid, *modseq));
                if self.expunged.len() > MAX_EXPUNGED + MAX_EXPUNGED / 4 {
                    self.trim();
                }
            }
            Record::Unclaimed(u) => self.first_unclaimed = self.first_unclaimed.max(*u),
            Record::Highest(m) => self.highest_modseq = self.highest_modseq.max(*m),
            Record::Trimmed(m) => self.trimmed_before = self.trimmed_before.max(*m),
            Record::Ceiling(m) => {
                self.ceiling = self.ceiling.max(*m);
                self.dirty = true;
            }
            // Durable up to here: a change after it needs a new ceiling before it is shown.
            Record::Synced => {
                self.ceiling = self.highest_modseq;
                self.dirty = false;
            }
        }
    }

    /// Drops the oldest expunge records beyond [`MAX_EXPUNGED`].
    pub(crate) fn trim(&mut self) {
        if self.expunged.len() > MAX_EXPUNGED {
            let cut = self.expunged.len() - MAX_EXPUNGED;
            self.trimmed_before = self.trimmed_before.max(self.expunged[cut - 1].1 + 1);
            self.expunged.drain(..cut);
        }
    }

    /// The lines of a fresh log holding exactly this state, durable once written.
    pub(crate) fn render(&self) -> String {
        let mut out = format!("{MAGIC}{}\n", self.uid_validity);
        for (uid, (modseq, letters)) in &self.messages {
            Record::Message {
                uid: *uid,
                modseq: *modseq,
                letters: letters.clone(),
            }
            .render(&mut out);
        }
        for (uid, modseq) in &self.expunged {
            Record::Expunged {
                uid: *uid,
                modseq: *modseq,
            }
            .render(&mut out);
        }
        for rec in [
            Record::Unclaimed(self.first_unclaimed),
            Record::Highest(self.highest_modseq),
            Record::Trimmed(self.trimmed_before),
            Record::Ceiling(self.highest_modseq),
            Record::Synced,
        ] {
            rec.render(&mut out);
        }
        out
    }
}

/// Renders records to append.
pub(crate) fn render_records(records: &[Record]) -> String {
    let mut out = String::new();
    for r in records {
        r.render(&mut out);
    }
    out
}

/// Reads a whole log: the state, the bytes and lines taken, and whether it is of the current
/// version (a version 1 file, rewritten whole on every change by earlier buzon releases, is
/// read and then replaced).
pub(crate) fn parse(bytes: &[u8]) -> Option<(State, usize, usize, bool)> {
    if let Some((uid_validity, start)) = parse_header(bytes) {
        let mut state = State::new(uid_validity, 0);
        state.first_unclaimed = 0;
        let (taken, lines) = replay(&mut state, &bytes[start..]);
        state.first_unclaimed = state.first_unclaimed.max(1);
        return Some((state, start + taken, lines + 1, true));
    }
    // Version 1: "buzon-index 1", then "V <uidvalidity> M <highest> R <unclaimed> T <trimmed>",
    // then `m` and `x` lines as in version 2.
    let rest = bytes.strip_prefix(b"buzon-index 1\n")?;
    let end = memchr::memchr(b'\n', rest)?;
    let head = std::str::from_utf8(&rest[..end]).ok()?;
    let mut state = State::default();
    let fields: Vec<&str> = head.split(' ').collect();
    for pair in fields.chunks(2) {
        let [key, value] = pair else { continue };
        let n: u64 = value.parse().ok()?;
        match *key {
            "V" => state.uid_validity = u32::try_from(n).ok()?,
            "M" => state.highest_modseq = n,
            "R" => state.first_unclaimed = u32::try_from(n).ok()?,
            "T" => state.trimmed_before = n,
            _ => {}
        }
    }
    let (taken, lines) = replay(&mut state, &rest[end + 1..]);
    state.first_unclaimed = state.first_unclaimed.max(1);
    // Version 1 was fsynced on every change: what it says is durable.
    state.ceiling = state.highest_modseq;
    state.dirty = false;
    Some((state, 14 + end + 1 + taken, lines + 2, false))
}

/// The UIDVALIDITY a log's first line names, and where its records start.
pub(crate) fn parse_header(bytes: &[u8]) -> Option<(u32, usize)> {
    let end = memchr::memchr(b'\n', bytes)?;
    let line = std::str::from_utf8(&bytes[..end]).ok()?;
    let v = line.strip_prefix(MAGIC)?.parse().ok()?;
    Some((v, end + 1))
}

/// Replays the complete, well-formed lines of `bytes` into `state`; returns how many bytes
/// were taken and how many lines. A torn or unreadable line ends the replay.
pub(crate) fn replay(state: &mut State, bytes: &[u8]) -> (usize, usize) {
    let mut pos = 0;
    let mut lines = 0;
    while let Some(n) = memchr::memchr(b'\n', &bytes[pos..]) {
        let Some(rec) = std::str::from_utf8(&bytes[pos..pos + n])
            .ok()
            .and_then(Record::parse)
        else {
            break;
        };
        state.apply(&rec);
        pos += n + 1;
        lines += 1;
    }
    (pos, lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(uid: u32, modseq: u64, letters: &str) -> Record {
        Record::Message {
            uid,
            modseq,
            letters: letters.into(),
        }
    }

    #[test]
    fn a_rewritten_log_replays_to_the_same_state() {
        let mut s = State::new(7, 1);
        for r in [
            m(1, 4, "FS"),
            m(2, 5, ""),
            m(3, 6, "a"),
            Record::Expunged { uid: 3, modseq: 9 },
            Record::Unclaimed(3),
        ] {
            s.apply(&r);
        }
        let text = s.render();
        let (v, start) = parse_header(text.as_bytes()).unwrap();
        assert_eq!(v, 7);
        let mut back = State::new(v, 0);
        let (taken, _) = replay(&mut back, &text.as_bytes()[start..]);
        assert_eq!(taken, text.len() - start);
        back.ceiling = s.ceiling;
        assert_eq!(back.messages, s.messages);
        assert_eq!(back.expunged, [(3, 9)]);
        assert_eq!((back.highest_modseq, back.first_unclaimed), (9, 3));
        assert!(!back.dirty, "a rewritten log ends synced");
    }

    #[test]
    fn a_torn_tail_is_not_taken() {
        let mut s = State::new(1, 0);
        let text = b"m 1 2 S\nm 2 3\nm 3 4 F";
        assert_eq!(replay(&mut s, text), (14, 2));
        assert_eq!(s.highest_modseq, 3);
        let mut s = State::new(1, 0);
        assert_eq!(replay(&mut s, b"m 1 2\n\0\0\0\0\nm 2 3\n"), (6, 1));
        assert_eq!(replay(&mut State::default(), b"m 1 2 S extra\n"), (0, 0));
        assert_eq!(replay(&mut State::default(), b"m 99999999999 2\n"), (0, 0));
    }

    #[test]
    fn a_ceiling_without_a_sync_after_it_marks_the_log_dirty() {
        let mut s = State::new(1, 0);
        replay(&mut s, b"c 1024\nm 1 5\n");
        assert!(s.dirty);
        assert_eq!((s.ceiling, s.highest_modseq), (1024, 5));
        replay(&mut s, b"s\n");
        assert!(!s.dirty);
        assert_eq!(
            s.ceiling, 5,
            "the next change must write a new ceiling first"
        );
    }

    #[test]
    fn a_version_1_file_is_read() {
        let text = b"buzon-index 1\nV 42 M 9 R 3 T 0\nm 1 4 FS\nx 2 9\n";
        let (s, taken, lines, current) = parse(text).unwrap();
        assert!(!current);
        assert_eq!((taken, lines), (text.len(), 4));
        assert_eq!(
            (s.uid_validity, s.highest_modseq, s.first_unclaimed),
            (42, 9, 3)
        );
        assert_eq!(s.messages[&1], (4, "FS".to_string()));
        assert_eq!(s.expunged, [(2, 9)]);
        assert!(!s.dirty);
        let (s, _, _, current) = parse(s.render().as_bytes()).unwrap();
        assert!(current);
        assert_eq!(s.messages[&1], (4, "FS".to_string()));
    }

    #[test]
    fn headers_of_other_versions_are_refused() {
        assert_eq!(parse_header(b"buzon-index 2 V42\nm 1 1\n"), Some((42, 18)));
        assert_eq!(parse_header(b"buzon-index 1\nV 42 M 1\n"), None);
        assert_eq!(parse_header(b"buzon-index 2 V42"), None);
    }
}
