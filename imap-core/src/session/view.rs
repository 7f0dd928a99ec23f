//! The selected mailbox as this session has shown it to its client: message sequence numbers,
//! UIDs, flags and mod-sequences, and the changes not yet announced.
//!
//! RFC 3501 section 7 decides when announcements may go out: EXISTS, RECENT and FETCH
//! whenever a command is in progress; EXPUNGE (and QRESYNC's VANISHED) never while a FETCH,
//! STORE or SEARCH is answered (section 7.4.1), since the client's sequence numbers would
//! shift under it. Until an expunge is announced, the message keeps its sequence number.

use std::collections::BTreeSet;

use crate::event::{Changes, MessageInfo, SelectedMailbox};

/// The selected mailbox.
#[derive(Debug)]
pub(crate) struct View {
    pub(crate) name: String,
    pub(crate) read_only: bool,
    pub(crate) uid_validity: u32,
    pub(crate) uid_next: u32,
    pub(crate) highest_modseq: u64,
    /// Ascending by UID; the sequence number is the index plus one.
    pub(crate) messages: Vec<MessageInfo>,
    pub(crate) recent: BTreeSet<u32>,
    pub(crate) keywords: Vec<String>,
    /// The mod-sequence up to which the host's changes have been taken in.
    pub(crate) synced_modseq: u64,
    /// Expunged but not yet announced (still holding their sequence numbers).
    pending_expunge: BTreeSet<u32>,
    /// Arrived but not yet announced with EXISTS.
    pending_new: Vec<MessageInfo>,
    /// Flags changed but not yet announced.
    pending_flags: BTreeSet<u32>,
    /// A RECENT count to announce.
    recent_changed: bool,
    /// The result of the last `SEARCH RETURN (SAVE)` (RFC 5182), as UIDs.
    pub(crate) saved: Vec<u32>,
}

/// How the announcements are written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Announce {
    pub(crate) expunge_allowed: bool,
    pub(crate) condstore: bool,
    pub(crate) qresync: bool,
}

impl View {
    pub(crate) fn new(name: String, read_only: bool, m: SelectedMailbox) -> View {
        View {
            name,
            read_only: read_only || !m.writable,
            uid_validity: m.uid_validity,
            uid_next: m.uid_next,
            highest_modseq: m.highest_modseq,
            synced_modseq: m.highest_modseq,
            recent: m.recent.into_iter().collect(),
            keywords: m.keywords,
            messages: m.messages,
            pending_expunge: BTreeSet::new(),
            pending_new: Vec::new(),
            pending_flags: BTreeSet::new(),
            recent_changed: false,
            saved: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> u32 {
        self.messages.len() as u32
    }

    pub(crate) fn last_uid(&self) -> u32 {
        self.messages.last().map_or(0, |m| m.uid)
    }

    /// The sequence number of `uid`, if the client knows it.
    pub(crate) fn seq_of(&self, uid: u32) -> Option<u32> {
        self.messages
            .binary_search_by_key(&uid, |m| m.uid)
            .ok()
            .map(|i| i as u32 + 1)
    }

    pub(crate) fn get(&self, seq: u32) -> Option<&MessageInfo> {
        self.messages.get(seq.checked_sub(1)? as usize)
    }

    pub(crate) fn is_recent(&self, uid: u32) -> bool {
        self.recent.contains(&uid)
    }

    pub(crate) fn is_expunged(&self, uid: u32) -> bool {
        self.pending_expunge.contains(&uid)
    }

    fn known_uid(&self, uid: u32) -> bool {
        self.seq_of(uid).is_some() || self.pending_new.iter().any(|m| m.uid == uid)
    }

    /// Takes in what the host reports. Changes older than what the session already shows
    /// (its own STORE, reported back) are ignored by mod-sequence.
    pub(crate) fn absorb(&mut self, changes: Changes) {
        for uid in &changes.vanished {
            if self.seq_of(*uid).is_some() {
                self.pending_expunge.insert(*uid);
                self.pending_flags.remove(uid);
            }
            self.pending_new.retain(|m| m.uid != *uid);
        }
        let vanished: BTreeSet<u32> = changes.vanished.iter().copied().collect();
        for info in changes.changed {
            if vanished.contains(&info.uid) || self.pending_expunge.contains(&info.uid) {
                continue;
            }
            if let Some(seq) = self.seq_of(info.uid) {
                let m = &mut self.messages[seq as usize - 1];
                if info.modseq > m.modseq {
                    if m.flags != info.flags {
                        self.pending_flags.insert(info.uid);
                    }
                    m.flags = info.flags;
                    m.modseq = info.modseq;
                }
            } else if let Some(m) = self.pending_new.iter_mut().find(|m| m.uid == info.uid) {
                if info.modseq > m.modseq {
                    *m = info;
                }
            } else if info.uid > self.last_uid() && !self.known_uid(info.uid) {
                self.pending_new.push(info);
            }
        }
        self.pending_new.sort_by_key(|m| m.uid);
        for uid in changes.recent {
            if self.recent.insert(uid) {
                self.recent_changed = true;
            }
        }
        self.uid_next = self.uid_next.max(changes.uid_next);
        self.highest_modseq = self.highest_modseq.max(changes.highest_modseq);
        self.synced_modseq = self.synced_modseq.max(changes.highest_modseq);
    }

    /// This session's own STORE (or the `\Seen` of its FETCH) changed these: the view shows
    /// them at once, and the FETCH it answers says so.
    pub(crate) fn set_flags(&mut self, info: &MessageInfo) {
        if let Some(seq) = self.seq_of(info.uid) {
            let m = &mut self.messages[seq as usize - 1];
            if info.modseq >= m.modseq {
                m.flags = info.flags.clone();
                m.modseq = info.modseq;
            }
            self.pending_flags.remove(&info.uid);
            self.highest_modseq = self.highest_modseq.max(info.modseq);
        }
    }

    /// This session's own EXPUNGE, MOVE or CLOSE removed these.
    pub(crate) fn expunged(&mut self, uids: &[u32]) {
        for uid in uids {
            if self.seq_of(*uid).is_some() {
                self.pending_expunge.insert(*uid);
            }
            self.pending_new.retain(|m| m.uid != *uid);
        }
    }

    /// Writes what may be announced now and updates the view to match.
    pub(crate) fn announce(&mut self, a: Announce, out: &mut Vec<u8>) {
        if a.expunge_allowed && !self.pending_expunge.is_empty() {
            let gone: Vec<u32> = std::mem::take(&mut self.pending_expunge)
                .into_iter()
                .collect();
            if a.qresync {
                // RFC 7162 3.2.10: with QRESYNC enabled, VANISHED replaces EXPUNGE.
                out.extend_from_slice(
                    format!("* VANISHED {}\r\n", crate::syntax::compact_set(&gone)).as_bytes(),
                );
                self.messages
                    .retain(|m| gone.binary_search(&m.uid).is_err());
            } else {
                // Highest first, so each number is still the one the client knows.
                for uid in gone.iter().rev() {
                    if let Some(seq) = self.seq_of(*uid) {
                        out.extend_from_slice(format!("* {seq} EXPUNGE\r\n").as_bytes());
                        self.messages.remove(seq as usize - 1);
                    }
                }
            }
            for uid in &gone {
                self.recent.remove(uid);
                self.pending_flags.remove(uid);
            }
            self.saved.retain(|u| gone.binary_search(u).is_err());
        }
        if !self.pending_new.is_empty() {
            self.messages.append(&mut self.pending_new);
            out.extend_from_slice(format!("* {} EXISTS\r\n", self.messages.len()).as_bytes());
            self.recent_changed = true;
        }
        if self.recent_changed {
            self.recent_changed = false;
            let n = self
                .messages
                .iter()
                .filter(|m| self.recent.contains(&m.uid))
                .count();
            out.extend_from_slice(format!("* {n} RECENT\r\n").as_bytes());
        }
        for uid in std::mem::take(&mut self.pending_flags) {
            if let Some(seq) = self.seq_of(uid) {
                let m = &self.messages[seq as usize - 1];
                write_flags_fetch(
                    seq,
                    m,
                    self.recent.contains(&uid),
                    a.condstore || a.qresync,
                    a.qresync,
                    out,
                );
            }
        }
    }
}

/// `* seq FETCH (FLAGS (...) [UID n] [MODSEQ (m)])`: RFC 7162 section 3.2.4 wants the UID
/// whenever QRESYNC is on.
pub(crate) fn write_flags_fetch(
    seq: u32,
    m: &MessageInfo,
    recent: bool,
    modseq: bool,
    uid: bool,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(format!("* {seq} FETCH (").as_bytes());
    if uid {
        out.extend_from_slice(format!("UID {} ", m.uid).as_bytes());
    }
    out.extend_from_slice(b"FLAGS ");
    m.flags.write(recent, out);
    if modseq {
        out.extend_from_slice(format!(" MODSEQ ({})", m.modseq).as_bytes());
    }
    out.extend_from_slice(b")\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Flags;

    fn msg(uid: u32, modseq: u64) -> MessageInfo {
        MessageInfo {
            uid,
            modseq,
            flags: Flags::default(),
            size: 10,
            internal_date: 0,
        }
    }

    fn view(uids: &[u32]) -> View {
        View::new(
            "INBOX".into(),
            false,
            SelectedMailbox {
                uid_validity: 7,
                uid_next: 100,
                highest_modseq: 5,
                messages: uids.iter().map(|&u| msg(u, 1)).collect(),
                recent: vec![],
                keywords: vec![],
                writable: true,
                vanished: vec![],
            },
        )
    }

    const NO_EXPUNGE: Announce = Announce {
        expunge_allowed: false,
        condstore: false,
        qresync: false,
    };
    const ALL: Announce = Announce {
        expunge_allowed: true,
        condstore: false,
        qresync: false,
    };

    #[test]
    fn expunges_wait_for_an_allowed_moment() {
        let mut v = view(&[1, 2, 3, 4]);
        v.absorb(Changes {
            vanished: vec![2, 4],
            changed: vec![msg(9, 6)],
            uid_next: 10,
            highest_modseq: 6,
            ..Changes::default()
        });
        let mut out = Vec::new();
        v.announce(NO_EXPUNGE, &mut out);
        // New mail is announced, sequence numbers stay: 4 old + 1 new.
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "* 5 EXISTS\r\n* 0 RECENT\r\n"
        );
        assert_eq!(v.seq_of(9), Some(5));
        let mut out = Vec::new();
        v.announce(ALL, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "* 4 EXPUNGE\r\n* 2 EXPUNGE\r\n"
        );
        assert_eq!(v.seq_of(9), Some(3));
    }

    #[test]
    fn own_changes_reported_back_are_not_announced_twice() {
        let mut v = view(&[1, 2]);
        let mut m = msg(2, 8);
        m.flags.seen = true;
        v.set_flags(&m);
        v.absorb(Changes {
            changed: vec![m],
            uid_next: 100,
            highest_modseq: 8,
            ..Changes::default()
        });
        let mut out = Vec::new();
        v.announce(ALL, &mut out);
        assert!(out.is_empty());
        assert_eq!(v.synced_modseq, 8);
    }

    #[test]
    fn qresync_announces_vanished() {
        let mut v = view(&[1, 2, 3]);
        v.absorb(Changes {
            vanished: vec![1, 2],
            uid_next: 100,
            highest_modseq: 9,
            ..Changes::default()
        });
        let mut out = Vec::new();
        v.announce(
            Announce {
                expunge_allowed: true,
                condstore: true,
                qresync: true,
            },
            &mut out,
        );
        assert_eq!(String::from_utf8(out).unwrap(), "* VANISHED 1:2\r\n");
        assert_eq!(v.len(), 1);
    }
}
