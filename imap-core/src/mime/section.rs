//! BODY[section] (RFC 3501 section 6.4.5): which bytes a section names.

use std::ops::Range;

use super::tree::{Part, fields, parse};

/// What of a part a section asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionPart {
    /// The whole part (its body; the whole message for an empty path).
    Full,
    /// HEADER: the header, blank line included.
    Header,
    /// HEADER.FIELDS / HEADER.FIELDS.NOT.
    HeaderFields {
        /// Field names.
        names: Vec<String>,
        /// .NOT.
        not: bool,
    },
    /// TEXT: the body.
    Text,
    /// MIME: the part's own MIME header.
    Mime,
}

/// A section: part numbers, then what of the part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// `1.2.3`; empty for the message itself.
    pub path: Vec<u32>,
    /// What of it.
    pub part: SectionPart,
}

/// The bytes of a section: a range of the message, or bytes built from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionData {
    /// These octets of the message.
    Range(Range<usize>),
    /// Built (HEADER.FIELDS).
    Bytes(Vec<u8>),
}

/// The section's data; a section that does not exist is empty (RFC 3501 6.4.5 allows that
/// rather than an error, and clients prefer it).
///
/// ```
/// use imap_core::mime::{section, Section, SectionData, SectionPart};
/// let m = b"Subject: x\r\nFrom: a@b\r\n\r\nhello";
/// let s = Section { path: vec![], part: SectionPart::HeaderFields { names: vec!["from".into()], not: false } };
/// assert_eq!(section(m, &s), SectionData::Bytes(b"From: a@b\r\n\r\n".to_vec()));
/// let s = Section { path: vec![1], part: SectionPart::Full };
/// assert_eq!(section(m, &s), SectionData::Range(25..30));
/// ```
pub fn section(message: &[u8], s: &Section) -> SectionData {
    let root = parse(message, 0..message.len(), false, 0);
    let empty = SectionData::Range(0..0);
    if s.path.is_empty() {
        return of_message(message, &root, &s.part, true);
    }
    let mut node = &root;
    let mut is_message = true;
    for &n in &s.path {
        match child(node, n, is_message) {
            Some(c) => {
                is_message = std::ptr::eq(c, node) && is_message;
                node = c;
            }
            None => return empty,
        }
    }
    match &s.part {
        SectionPart::Full => SectionData::Range(node.body.clone()),
        SectionPart::Mime => SectionData::Range(node.header.clone()),
        // HEADER and TEXT after a part number address an encapsulated message.
        other => match &node.message {
            Some(inner) => of_message(message, inner, other, false),
            None if is_message => of_message(message, node, other, false),
            None => empty,
        },
    }
}

/// Part `n` below `node`: a multipart's child, an encapsulated message's part, or, for a
/// message that is not multipart, its one part (1).
fn child(node: &Part, n: u32, is_message: bool) -> Option<&Part> {
    let i = n.checked_sub(1)? as usize;
    if node.is_multipart() {
        return node.children.get(i);
    }
    if let Some(inner) = &node.message {
        if inner.is_multipart() {
            return inner.children.get(i);
        }
        return (i == 0).then_some(&**inner);
    }
    (i == 0 && is_message).then_some(node)
}

fn of_message(m: &[u8], msg: &Part, part: &SectionPart, whole: bool) -> SectionData {
    match part {
        SectionPart::Full if whole => SectionData::Range(msg.header.start..msg.body.end),
        SectionPart::Full | SectionPart::Text => SectionData::Range(msg.body.clone()),
        SectionPart::Header | SectionPart::Mime => SectionData::Range(msg.header.clone()),
        SectionPart::HeaderFields { names, not } => {
            let mut out = Vec::new();
            for (name, raw, _) in fields(&m[msg.header.clone()]) {
                let listed = names
                    .iter()
                    .any(|n| n.as_bytes().eq_ignore_ascii_case(name));
                if listed != *not {
                    out.extend_from_slice(raw);
                    if !raw.ends_with(b"\n") {
                        out.extend_from_slice(b"\r\n");
                    }
                }
            }
            // RFC 3501 6.4.5: the blank line that ends a header is always included.
            out.extend_from_slice(b"\r\n");
            SectionData::Bytes(out)
        }
    }
}
