//! BODY\[section\] (RFC 3501 section 6.4.5): which bytes of a message a section names.

use std::ops::Range;

use super::header;
use super::tree::{self, Kind, Part};

/// What of the addressed part a section names (the `section-text`/`section-msgtext` of RFC
/// 3501 section 9, or nothing after the part number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionPart {
    /// The whole part: `BODY[]`, `BODY[1.2]`.
    Full,
    /// The header of the message or of an encapsulated message/rfc822: `BODY[HEADER]`.
    Header,
    /// Some header fields: `BODY[HEADER.FIELDS (From Subject)]`, or with `not` all but those.
    HeaderFields {
        /// The field names, matched ASCII case-insensitively.
        names: Vec<String>,
        /// `HEADER.FIELDS.NOT`: the fields not named.
        not: bool,
    },
    /// The text (body) of the message or of an encapsulated message/rfc822: `BODY[TEXT]`.
    Text,
    /// The MIME header of a part: `BODY[1.MIME]`.
    Mime,
}

/// A section specification: a part path and what of that part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The part numbers, `[1, 2]` for `1.2`; empty for the message itself.
    pub path: Vec<u32>,
    /// What of the part.
    pub part: SectionPart,
}

/// The data a section names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionData {
    /// A byte range of the message, to be sent (or streamed from a file) as it is. Empty for a
    /// section that does not exist: RFC 3501 section 6.4.5 wants an empty string then.
    Range(Range<usize>),
    /// Bytes built from the message (HEADER.FIELDS and HEADER.FIELDS.NOT).
    Bytes(Vec<u8>),
}

impl SectionData {
    /// The number of octets, as a literal's length.
    pub fn len(&self) -> usize {
        match self {
            SectionData::Range(r) => r.len(),
            SectionData::Bytes(b) => b.len(),
        }
    }

    /// Whether there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The octets, given the message the range points into. A range that does not fit
    /// `message` (the caller passed another message) gives nothing rather than a panic.
    pub fn bytes<'a>(&'a self, message: &'a [u8]) -> &'a [u8] {
        match self {
            SectionData::Range(r) => message.get(r.clone()).unwrap_or_default(),
            SectionData::Bytes(b) => b,
        }
    }
}

/// The data `section` names in `message`, following RFC 3501 section 6.4.5:
///
/// - part numbers address MIME parts; a message that is not multipart has only part 1, its
///   body, and a message/rfc822 part's numbers continue into the encapsulated message;
/// - `HEADER`, `TEXT` and `HEADER.FIELDS` name the message's header and text, and after a part
///   number those of the encapsulated message, so only on a message/rfc822 part;
/// - `MIME` names a part's own MIME header (so it needs a part number);
/// - a section that does not exist is empty.
///
/// Headers include the blank line that ends them. `HEADER.FIELDS` gives the matching fields
/// as sent, in message order, continuation lines included, then the blank line (unless the
/// header had none: RFC 3501's one exception).
///
/// ```
/// use imap_core::message::{Section, SectionData, SectionPart, section};
///
/// let m = b"From: a@example.com\r\nSubject: hi\r\nTo: b@example.com\r\n\r\nHello\r\n";
/// let text = Section { path: vec![], part: SectionPart::Text };
/// assert_eq!(section(m, &text), SectionData::Range(55..62));
/// let one = Section { path: vec![1], part: SectionPart::Full };
/// assert_eq!(section(m, &one).bytes(m), b"Hello\r\n");
/// let fields = Section {
///     path: vec![],
///     part: SectionPart::HeaderFields { names: vec!["subject".into()], not: false },
/// };
/// assert_eq!(section(m, &fields).bytes(m), b"Subject: hi\r\n\r\n");
/// let missing = Section { path: vec![2], part: SectionPart::Full };
/// assert!(section(m, &missing).is_empty());
/// ```
pub fn section(message: &[u8], section: &Section) -> SectionData {
    const NONE: SectionData = SectionData::Range(0..0);
    if section.path.is_empty() {
        let header = header::header_end(message);
        return match &section.part {
            SectionPart::Full => SectionData::Range(0..message.len()),
            SectionPart::Header => SectionData::Range(0..header),
            SectionPart::Text => SectionData::Range(header..message.len()),
            SectionPart::HeaderFields { names, not } => SectionData::Bytes(header_fields(
                message.get(..header).unwrap_or_default(),
                names,
                *not,
            )),
            // The grammar only allows MIME after a part number (RFC 3501 section 9).
            SectionPart::Mime => NONE,
        };
    }
    let root = tree::parse(message);
    let Some(part) = resolve(&root, &section.path) else {
        return NONE;
    };
    // HEADER, TEXT and HEADER.FIELDS after a part number need a message/rfc822 part.
    let encapsulated = match &part.kind {
        Kind::Message(inner) => Some(inner.as_ref()),
        _ => None,
    };
    match (&section.part, encapsulated) {
        (SectionPart::Full, _) => SectionData::Range(part.body.clone()),
        (SectionPart::Mime, _) => SectionData::Range(part.header.clone()),
        (SectionPart::Header, Some(inner)) => SectionData::Range(inner.header.clone()),
        (SectionPart::Text, Some(inner)) => SectionData::Range(inner.body.clone()),
        (SectionPart::HeaderFields { names, not }, Some(inner)) => {
            SectionData::Bytes(header_fields(
                message.get(inner.header.clone()).unwrap_or_default(),
                names,
                *not,
            ))
        }
        _ => NONE,
    }
}

/// The part `path` names, with `root` the message.
fn resolve<'a>(root: &'a Part, path: &[u32]) -> Option<&'a Part> {
    let mut cur = root;
    for (i, &n) in path.iter().enumerate() {
        // The parts numbered next are those of a message: the root first, then the message a
        // message/rfc822 part encapsulates. Inside a multipart the numbers go to its parts.
        let container = if i == 0 {
            cur
        } else {
            match &cur.kind {
                Kind::Message(inner) => inner.as_ref(),
                Kind::Multipart(_) => cur,
                Kind::Single => return None,
            }
        };
        cur = match &container.kind {
            Kind::Multipart(parts) => parts.get(usize::try_from(n.checked_sub(1)?).ok()?)?,
            // A message that is not multipart has exactly one part, its body.
            _ if n == 1 => container,
            _ => return None,
        };
    }
    Some(cur)
}

/// The fields of `header` named (or with `not`, not named) in `names`, as sent, then the
/// blank line (RFC 3501 section 6.4.5).
fn header_fields(header: &[u8], names: &[String], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for field in header::fields(header) {
        // A line that is no field is no field "with a non-matching field-name" either.
        let Some(name) = field.name else { continue };
        let named = names
            .iter()
            .any(|n| n.as_bytes().eq_ignore_ascii_case(name));
        if named != not {
            out.extend_from_slice(field.raw);
            if !field.raw.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    // "the blank line is included in all header fetches, except in the case of a message
    // which has no body and no blank line" (RFC 3501 section 6.4.5).
    if header.ends_with(b"\n\n")
        || header.ends_with(b"\n\r\n")
        || header == b"\r\n"
        || header == b"\n"
    {
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(names: &[&str], not: bool) -> SectionPart {
        SectionPart::HeaderFields {
            names: names.iter().map(|n| n.to_string()).collect(),
            not,
        }
    }

    fn get(m: &[u8], path: &[u32], part: SectionPart) -> Vec<u8> {
        section(
            m,
            &Section {
                path: path.to_vec(),
                part,
            },
        )
        .bytes(m)
        .to_vec()
    }

    #[test]
    fn header_fields_keep_folds_and_order() {
        let m = b"Subject: a\r\n b\r\nX: 1\r\nfrom: f@x\r\n\r\nbody";
        assert_eq!(
            get(m, &[], fields(&["From", "Subject"], false)),
            b"Subject: a\r\n b\r\nfrom: f@x\r\n\r\n"
        );
        assert_eq!(
            get(m, &[], fields(&["From", "Subject"], true)),
            b"X: 1\r\n\r\n"
        );
        assert_eq!(get(m, &[], fields(&["None"], false)), b"\r\n");
        // No blank line, no body: no blank line in the answer either.
        assert_eq!(get(b"X: 1", &[], fields(&["x"], false)), b"X: 1\r\n");
    }

    #[test]
    fn single_part_message() {
        let m = b"Subject: s\r\n\r\nbody\r\n";
        assert_eq!(get(m, &[1], SectionPart::Full), b"body\r\n");
        assert_eq!(get(m, &[1], SectionPart::Mime), b"Subject: s\r\n\r\n");
        assert_eq!(get(m, &[1], SectionPart::Header), b"");
        assert_eq!(get(m, &[2], SectionPart::Full), b"");
        assert_eq!(get(m, &[1, 1], SectionPart::Full), b"");
        assert_eq!(get(m, &[0], SectionPart::Full), b"");
        assert_eq!(get(m, &[], SectionPart::Mime), b"");
        assert_eq!(get(m, &[], SectionPart::Header), b"Subject: s\r\n\r\n");
    }
}
