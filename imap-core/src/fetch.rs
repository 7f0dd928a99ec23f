//! FETCH responses, rendered off the event loop and in pieces.
//!
//! The session builds a [`FetchJob`] (which messages, with the flags and mod-sequences it
//! knows, and which items) and hands it to the host in a [`Request::Fetch`]. The host runs
//! [`FetchJob::fill`] on a worker thread with a [`MessageSource`] that reads its files, and
//! gives the output and the job back to the session. A body goes out as a literal read in
//! chunks, so a 50 MiB message costs a chunk of memory, not 50 MiB; the session asks for the
//! next piece only once the connection's output has drained.
//!
//! [`Request::Fetch`]: crate::Request::Fetch

use std::collections::VecDeque;
use std::io;
use std::ops::Range;

use crate::event::MessageInfo;
use crate::message;
use crate::syntax::{FetchItem, SectionSpec, SectionText, format_date_time};

/// Reads messages for a [`FetchJob`] or a [`SearchJob`](crate::SearchJob): the host's files.
pub trait MessageSource {
    /// Reads bytes of message `uid` from `offset` into `buf`; 0 at the end of the message.
    /// An error of kind `NotFound` means the message is gone (expunged meanwhile).
    fn read_at(&mut self, uid: u32, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
}

/// A header larger than this is cut here for ENVELOPE and HEADER.FIELDS (no real header comes
/// close; the limit only bounds memory against a hostile message).
const MAX_HEADER: usize = 1024 * 1024;

/// One message to fetch.
#[derive(Debug, Clone)]
struct Target {
    seq: u32,
    info: MessageInfo,
    recent: bool,
    /// `\Seen` was set by this fetch: say FLAGS even if not asked (RFC 3501 section 6.4.5).
    flags_changed: bool,
}

/// Part of one message's response.
#[derive(Debug)]
enum Piece {
    Bytes(Vec<u8>),
    /// Octets of the message file to copy, as the body of a literal already announced.
    Stream {
        uid: u32,
        range: Range<u64>,
    },
}

/// A FETCH command's work: see the [module docs](self).
#[derive(Debug)]
pub struct FetchJob {
    targets: Vec<Target>,
    items: Vec<FetchItem>,
    with_uid: bool,
    with_modseq: bool,
    mark_seen: bool,
    next: usize,
    current: VecDeque<Piece>,
    vanished_since: Option<u64>,
    vanished: Vec<u32>,
    missing: bool,
}

impl FetchJob {
    pub(crate) fn new(
        items: Vec<FetchItem>,
        with_uid: bool,
        with_modseq: bool,
        mark_seen: bool,
    ) -> Self {
        FetchJob {
            targets: Vec::new(),
            items,
            with_uid,
            with_modseq,
            mark_seen,
            next: 0,
            current: VecDeque::new(),
            vanished_since: None,
            vanished: Vec::new(),
            missing: false,
        }
    }

    pub(crate) fn push(&mut self, seq: u32, info: MessageInfo, recent: bool) {
        self.targets.push(Target {
            seq,
            info,
            recent,
            flags_changed: false,
        });
    }

    pub(crate) fn set_vanished_since(&mut self, since: u64) {
        self.vanished_since = Some(since);
    }

    /// The UIDs to mark `\Seen` before rendering (a body fetched without PEEK on a read-write
    /// mailbox); store the flag, then report each message's new state with
    /// [`update_flags`](FetchJob::update_flags).
    pub fn uids_to_mark_seen(&self) -> Vec<u32> {
        if !self.mark_seen {
            return Vec::new();
        }
        self.targets
            .iter()
            .filter(|t| !t.info.flags.seen)
            .map(|t| t.info.uid)
            .collect()
    }

    /// A message's flags and mod-sequence after the host changed them for this fetch.
    pub fn update_flags(&mut self, info: &MessageInfo) {
        if let Some(t) = self.targets.iter_mut().find(|t| t.info.uid == info.uid) {
            t.flags_changed |= t.info.flags != info.flags;
            t.info.flags = info.flags.clone();
            t.info.modseq = info.modseq;
        }
    }

    /// With `VANISHED` (RFC 7162 section 3.2.6): report the UIDs expunged after this
    /// mod-sequence with [`set_vanished`](FetchJob::set_vanished) before the first `fill`.
    pub fn vanished_since(&self) -> Option<u64> {
        self.vanished_since
    }

    /// The expunged UIDs for `VANISHED (EARLIER)`; those outside the fetched set are dropped.
    pub fn set_vanished(&mut self, uids: Vec<u32>) {
        self.vanished = uids;
    }

    /// The UIDs this fetch names (for the host's own bookkeeping).
    pub fn uids(&self) -> impl Iterator<Item = u32> + '_ {
        self.targets.iter().map(|t| t.info.uid)
    }

    pub(crate) fn take_vanished(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.vanished)
    }

    /// The messages whose flags this fetch changed, for the session's view.
    pub(crate) fn changed_flags(&self) -> impl Iterator<Item = &MessageInfo> {
        self.targets
            .iter()
            .filter(|t| t.flags_changed)
            .map(|t| &t.info)
    }

    /// Whether some message could not be read (it was expunged meanwhile).
    pub(crate) fn had_missing(&self) -> bool {
        self.missing
    }

    /// True once every response has been written.
    pub fn is_done(&self) -> bool {
        self.next >= self.targets.len() && self.current.is_empty()
    }

    /// Renders responses into `out` until about `budget` octets were added or the job is
    /// done; returns [`is_done`](FetchJob::is_done). Run it on a worker thread.
    ///
    /// A message that cannot be read is left out (the tagged answer then says some messages
    /// were expunged); other read errors end the job the same way.
    pub fn fill(
        &mut self,
        source: &mut dyn MessageSource,
        out: &mut Vec<u8>,
        budget: usize,
    ) -> bool {
        let start = out.len();
        while out.len() - start < budget {
            if let Some(piece) = self.current.pop_front() {
                match piece {
                    Piece::Bytes(b) => out.extend_from_slice(&b),
                    Piece::Stream { uid, range } => {
                        let room = (budget - (out.len() - start)).max(16 * 1024);
                        let want = ((range.end - range.start) as usize).min(room);
                        let at = out.len();
                        out.resize(at + want, 0);
                        let got = read_fully(source, uid, range.start, &mut out[at..]);
                        match got {
                            Ok(n) if n == want => {
                                let rest = range.start + n as u64..range.end;
                                if !rest.is_empty() {
                                    self.current.push_front(Piece::Stream { uid, range: rest });
                                }
                            }
                            // The file shrank or vanished under an announced literal: the
                            // literal's length is promised, so pad with spaces (the only way to
                            // stay in step) and say so in the tagged answer.
                            Ok(n) => {
                                for b in &mut out[at + n..] {
                                    *b = b' ';
                                }
                                self.missing = true;
                                let rest = range.start + want as u64..range.end;
                                if !rest.is_empty() {
                                    self.current.push_front(Piece::Stream { uid, range: rest });
                                }
                            }
                            Err(_) => {
                                for b in &mut out[at..] {
                                    *b = b' ';
                                }
                                self.missing = true;
                                let rest = range.start + want as u64..range.end;
                                if !rest.is_empty() {
                                    self.current.push_front(Piece::Stream { uid, range: rest });
                                }
                            }
                        }
                    }
                }
                continue;
            }
            let Some(target) = self.targets.get(self.next).cloned() else {
                break;
            };
            self.next += 1;
            match self.render(&target, source) {
                Ok(pieces) => self.current = pieces,
                Err(_) => self.missing = true,
            }
        }
        self.is_done()
    }

    /// Builds one message's response; reads what the items need before writing anything, so
    /// a message that cannot be read is left out whole.
    fn render(&self, t: &Target, source: &mut dyn MessageSource) -> io::Result<VecDeque<Piece>> {
        let uid = t.info.uid;
        let size = t.info.size;
        let needs_full = self.items.iter().any(|i| match i {
            FetchItem::Body | FetchItem::BodyStructure => true,
            FetchItem::Section { section, .. } => !section.path.is_empty(),
            _ => false,
        });
        let needs_header = self.items.iter().any(|i| {
            matches!(
                i,
                FetchItem::Envelope
                    | FetchItem::Rfc822Header
                    | FetchItem::Rfc822Text
                    | FetchItem::Section { .. }
            )
        });
        let full = if needs_full {
            Some(read_all(source, uid, size)?)
        } else {
            None
        };
        let header = match (&full, needs_header) {
            (Some(f), _) => Some(f[..message::header_end(f)].to_vec()),
            (None, true) => Some(read_header(source, uid, size)?),
            (None, false) => None,
        };
        let header_len = header.as_ref().map_or(0, |h| h.len() as u64);

        let mut pieces = VecDeque::new();
        let mut buf = format!("* {} FETCH (", t.seq).into_bytes();
        let mut first = true;
        let mut sep = |buf: &mut Vec<u8>| {
            if !first {
                buf.push(b' ');
            }
            first = false;
        };
        if self.with_uid && !self.items.contains(&FetchItem::Uid) {
            sep(&mut buf);
            buf.extend_from_slice(format!("UID {uid}").as_bytes());
        }
        for item in &self.items {
            sep(&mut buf);
            match item {
                FetchItem::Uid => buf.extend_from_slice(format!("UID {uid}").as_bytes()),
                FetchItem::Flags => {
                    buf.extend_from_slice(b"FLAGS ");
                    t.info.flags.write(t.recent, &mut buf);
                }
                FetchItem::ModSeq => {
                    buf.extend_from_slice(format!("MODSEQ ({})", t.info.modseq).as_bytes())
                }
                FetchItem::InternalDate => {
                    buf.extend_from_slice(b"INTERNALDATE ");
                    buf.extend_from_slice(format_date_time(t.info.internal_date).as_bytes());
                }
                FetchItem::Rfc822Size => {
                    buf.extend_from_slice(format!("RFC822.SIZE {size}").as_bytes())
                }
                FetchItem::Envelope => {
                    buf.extend_from_slice(b"ENVELOPE ");
                    buf.extend_from_slice(&message::envelope(
                        header.as_deref().unwrap_or_default(),
                    ));
                }
                FetchItem::Body | FetchItem::BodyStructure => {
                    let ext = *item == FetchItem::BodyStructure;
                    buf.extend_from_slice(if ext { b"BODYSTRUCTURE " } else { b"BODY " });
                    buf.extend_from_slice(&message::body_structure(
                        full.as_deref().unwrap_or_default(),
                        ext,
                    ));
                }
                FetchItem::Rfc822 | FetchItem::Rfc822Peek => {
                    buf.extend_from_slice(b"RFC822 ");
                    stream(&mut buf, &mut pieces, uid, 0..size);
                }
                FetchItem::Rfc822Header => {
                    buf.extend_from_slice(b"RFC822.HEADER ");
                    stream(&mut buf, &mut pieces, uid, 0..header_len);
                }
                FetchItem::Rfc822Text => {
                    buf.extend_from_slice(b"RFC822.TEXT ");
                    stream(&mut buf, &mut pieces, uid, header_len.min(size)..size);
                }
                FetchItem::Section {
                    section, partial, ..
                } => {
                    buf.extend_from_slice(format!("BODY[{}]", section.to_wire()).as_bytes());
                    if let Some((origin, _)) = partial {
                        buf.extend_from_slice(format!("<{origin}>").as_bytes());
                    }
                    buf.push(b' ');
                    let data = section_data(section, size, header.as_deref(), full.as_deref());
                    match data {
                        Data::Range(r) => {
                            let r = clip(r, *partial);
                            stream(&mut buf, &mut pieces, uid, r);
                        }
                        Data::Bytes(b) => {
                            let r = clip(0..b.len() as u64, *partial);
                            let slice = &b[r.start as usize..r.end as usize];
                            buf.extend_from_slice(format!("{{{}}}\r\n", slice.len()).as_bytes());
                            buf.extend_from_slice(slice);
                        }
                    }
                }
            }
        }
        if t.flags_changed && !self.items.contains(&FetchItem::Flags) {
            sep(&mut buf);
            buf.extend_from_slice(b"FLAGS ");
            t.info.flags.write(t.recent, &mut buf);
        }
        if self.with_modseq && !self.items.contains(&FetchItem::ModSeq) {
            sep(&mut buf);
            buf.extend_from_slice(format!("MODSEQ ({})", t.info.modseq).as_bytes());
        }
        buf.extend_from_slice(b")\r\n");
        pieces.push_back(Piece::Bytes(buf));
        Ok(pieces)
    }
}

/// Ends the bytes so far with a literal's announcement and queues its body to stream.
fn stream(buf: &mut Vec<u8>, pieces: &mut VecDeque<Piece>, uid: u32, range: Range<u64>) {
    let len = range.end.saturating_sub(range.start);
    buf.extend_from_slice(format!("{{{len}}}\r\n").as_bytes());
    pieces.push_back(Piece::Bytes(std::mem::take(buf)));
    if len > 0 {
        pieces.push_back(Piece::Stream { uid, range });
    }
}

/// `<origin.length>` applied to a section (RFC 3501 section 6.4.5: an origin past the end
/// gives an empty string).
fn clip(r: Range<u64>, partial: Option<(u32, u32)>) -> Range<u64> {
    match partial {
        None => r,
        Some((origin, length)) => {
            let start = (r.start + u64::from(origin)).min(r.end);
            let end = (start + u64::from(length)).min(r.end);
            start..end
        }
    }
}

enum Data {
    Range(Range<u64>),
    Bytes(Vec<u8>),
}

fn section_data(
    section: &SectionSpec,
    size: u64,
    header: Option<&[u8]>,
    full: Option<&[u8]>,
) -> Data {
    let header_len = header.map_or(0, |h| h.len() as u64);
    if section.path.is_empty() {
        match &section.text {
            SectionText::Full => return Data::Range(0..size),
            SectionText::Header => return Data::Range(0..header_len),
            SectionText::Text => return Data::Range(header_len.min(size)..size),
            SectionText::HeaderFields { .. } | SectionText::Mime => {}
        }
    }
    let bytes = full.or(header).unwrap_or_default();
    match message::section(bytes, &to_message_section(section)) {
        message::SectionData::Range(r) => Data::Range(r.start as u64..r.end as u64),
        message::SectionData::Bytes(b) => Data::Bytes(b),
    }
}

fn to_message_section(s: &SectionSpec) -> message::Section {
    message::Section {
        path: s.path.clone(),
        part: match &s.text {
            SectionText::Full => message::SectionPart::Full,
            SectionText::Header => message::SectionPart::Header,
            SectionText::Text => message::SectionPart::Text,
            SectionText::Mime => message::SectionPart::Mime,
            SectionText::HeaderFields { names, not } => message::SectionPart::HeaderFields {
                names: names.clone(),
                not: *not,
            },
        },
    }
}

fn read_fully(
    source: &mut dyn MessageSource,
    uid: u32,
    offset: u64,
    buf: &mut [u8],
) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match source.read_at(uid, offset + done as u64, &mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

pub(crate) fn read_all(source: &mut dyn MessageSource, uid: u32, size: u64) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; size as usize];
    let n = read_fully(source, uid, 0, &mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// Reads from the start until the blank line that ends the header (or the end).
pub(crate) fn read_header(
    source: &mut dyn MessageSource,
    uid: u32,
    size: u64,
) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = 4096;
    loop {
        let at = buf.len();
        let want = chunk.min((size as usize).saturating_sub(at)).max(1);
        buf.resize(at + want, 0);
        let n = read_fully(source, uid, at as u64, &mut buf[at..])?;
        buf.truncate(at + n);
        let end = message::header_end(&buf);
        if end < buf.len() || n < want || buf.len() >= MAX_HEADER {
            buf.truncate(end);
            return Ok(buf);
        }
        chunk *= 2;
    }
}
