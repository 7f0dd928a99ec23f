//! A message's MIME structure as byte ranges of the original (RFC 2045, RFC 2046): what
//! BODYSTRUCTURE describes and BODY\[section\] addresses. Nothing is decoded or copied.

use std::ops::Range;

use super::content::{self, MediaType};
use super::header;

/// Parts nest no deeper than this. Deeper multiparts and messages are reported as text/plain
/// bodies, so a hostile message cannot exhaust the stack of the parser or of the renderers,
/// which recurse along this tree.
const MAX_DEPTH: usize = 32;

/// One MIME entity (the whole message is the root entity).
///
/// Invariant: `header.start <= header.end == body.start <= body.end <= message.len()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Part {
    /// The entity's header, the blank line after it included (when there is one).
    pub(super) header: Range<usize>,
    /// The entity's body.
    pub(super) body: Range<usize>,
    /// The Content-Type, or its default.
    pub(super) media: MediaType,
    /// What the body holds.
    pub(super) kind: Kind,
}

/// What an entity's body holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    /// A leaf.
    Single,
    /// A multipart's parts, at least one.
    Multipart(Vec<Part>),
    /// A message/rfc822's encapsulated message.
    Message(Box<Part>),
}

/// Parses `message` into its MIME tree. Never fails: what cannot be parsed becomes a leaf.
pub(super) fn parse(message: &[u8]) -> Part {
    entity(message, 0..message.len(), Default::Text, 0)
}

/// The Content-Type an entity without one has.
#[derive(Clone, Copy)]
enum Default {
    Text,
    Message,
}

/// Parses the entity occupying `range` of `message`: a header up to the first blank line, the
/// rest its body.
fn entity(message: &[u8], range: Range<usize>, default: Default, depth: usize) -> Part {
    let slice = message.get(range.clone()).unwrap_or_default();
    let header_end = range.start + header::header_end(slice);
    let header = range.start..header_end;
    let body = header_end..range.end.max(header_end);
    let header_bytes = message.get(header.clone()).unwrap_or_default();
    entity_with_body(message, header, body, header_bytes, default, depth)
}

fn entity_with_body(
    message: &[u8],
    header: Range<usize>,
    body: Range<usize>,
    header_bytes: &[u8],
    default: Default,
    depth: usize,
) -> Part {
    let media = match header::first_value(header_bytes, "content-type") {
        // RFC 2045 section 5.2: a syntactically invalid Content-Type is taken as the default
        // (text/plain), not as the context's default.
        Some(value) => content::media_type(&value).unwrap_or_else(MediaType::default_text),
        None => match default {
            Default::Text => MediaType::default_text(),
            Default::Message => MediaType::default_message(),
        },
    };
    let leaf = |media| Part {
        header: header.clone(),
        body: body.clone(),
        media,
        kind: Kind::Single,
    };
    if depth >= MAX_DEPTH && (media.is_main("multipart") || media.is("message", "rfc822")) {
        return leaf(MediaType::default_text());
    }
    if media.is_main("multipart") {
        let children = media
            .param("boundary")
            .filter(|b| !b.is_empty())
            .map(|boundary| split(message, body.clone(), boundary))
            .unwrap_or_default();
        if children.is_empty() {
            // A multipart without a usable boundary, or without one delimiter line, has no
            // parts; the grammar wants at least one (RFC 3501 section 9, body-type-mpart), so
            // it is reported as text/plain, as Dovecot does.
            return leaf(MediaType::default_text());
        }
        // RFC 2046 section 5.1.5: the parts of a digest are messages unless they say otherwise.
        let child_default = if media.sub.eq_ignore_ascii_case(b"digest") {
            Default::Message
        } else {
            Default::Text
        };
        let parts = children
            .into_iter()
            .map(|c| {
                let c_header = c.raw.start..c.header_end;
                let c_body = c.header_end..c.body_end;
                let c_header_bytes = message.get(c_header.clone()).unwrap_or_default();
                entity_with_body(
                    message,
                    c_header,
                    c_body,
                    c_header_bytes,
                    child_default,
                    depth + 1,
                )
            })
            .collect();
        return Part {
            header,
            body,
            media,
            kind: Kind::Multipart(parts),
        };
    }
    if media.is("message", "rfc822") {
        let inner = entity(message, body.clone(), Default::Text, depth + 1);
        return Part {
            header,
            body,
            media,
            kind: Kind::Message(Box::new(inner)),
        };
    }
    leaf(media)
}

/// A part of a multipart body, as found between delimiter lines.
struct Child {
    /// From just after the delimiter line to the start of the next one.
    raw: Range<usize>,
    /// Where the part's header ends inside `raw`.
    header_end: usize,
    /// Where the part's body ends: before the line end that precedes the next delimiter line,
    /// which belongs to the delimiter (RFC 2046 section 5.1.1).
    body_end: usize,
}

/// Splits the multipart body at `range` on `boundary`. Empty when no delimiter line is found.
fn split(message: &[u8], range: Range<usize>, boundary: &[u8]) -> Vec<Child> {
    let mut children = Vec::new();
    // The start of the current part, once the first delimiter line has been seen.
    let mut open: Option<usize> = None;
    let mut pos = range.start;
    while pos < range.end {
        let line_end = memchr::memchr(b'\n', message.get(pos..range.end).unwrap_or_default())
            .map_or(range.end, |i| pos + i + 1);
        let line = message.get(pos..line_end).unwrap_or_default();
        if let Some(close) = delimiter(line, boundary) {
            if let Some(start) = open {
                children.push(child(message, start, pos));
            }
            if close {
                return children;
            }
            open = Some(line_end);
        }
        pos = line_end;
    }
    // No close delimiter: the last part runs to the end of the body.
    if let Some(start) = open {
        let end = range.end.max(start);
        let header_end = start + header::header_end(message.get(start..end).unwrap_or_default());
        children.push(Child {
            raw: start..end,
            header_end,
            body_end: end.max(header_end),
        });
    }
    children
}

/// The part from `start` up to the delimiter line starting at `delimiter`.
fn child(message: &[u8], start: usize, delimiter: usize) -> Child {
    let end = delimiter.max(start);
    let raw = message.get(start..end).unwrap_or_default();
    let header_end = start + header::header_end(raw);
    let line_end_len = if raw.ends_with(b"\r\n") {
        2
    } else if raw.ends_with(b"\n") {
        1
    } else {
        0
    };
    let body_end = (end - line_end_len).max(header_end);
    Child {
        raw: start..end,
        header_end,
        body_end,
    }
}

/// Whether `line` is a delimiter line for `boundary` (RFC 2046 section 5.1.1: `--boundary`,
/// optional `--` for the close delimiter, optional transport padding), and if so whether it
/// closes. The match is exact: a longer boundary that starts with this one (a nested
/// multipart's) is no delimiter.
fn delimiter(line: &[u8], boundary: &[u8]) -> Option<bool> {
    let rest = line.strip_prefix(b"--")?.strip_prefix(boundary)?;
    let (close, rest) = match rest.strip_prefix(b"--") {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    rest.iter()
        .all(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .then_some(close)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_part() {
        let m = b"Subject: x\r\n\r\nhello\r\n";
        let p = parse(m);
        assert_eq!(p.header, 0..14);
        assert_eq!(p.body, 14..21);
        assert!(p.media.is("text", "plain"));
        assert_eq!(p.kind, Kind::Single);
    }

    #[test]
    fn multipart_ranges_exclude_the_line_end_before_the_delimiter() {
        let m = b"Content-Type: multipart/mixed; boundary=b\r\n\r\npre\r\n--b\r\n\r\none\r\n--b\r\nContent-Type: text/html\r\n\r\ntwo\r\n--b--\r\nepilogue\r\n";
        let p = parse(m);
        let Kind::Multipart(parts) = &p.kind else {
            panic!("not multipart: {p:?}")
        };
        assert_eq!(parts.len(), 2);
        assert_eq!(&m[parts[0].header.clone()], b"\r\n");
        assert_eq!(&m[parts[0].body.clone()], b"one");
        assert_eq!(
            &m[parts[1].header.clone()],
            b"Content-Type: text/html\r\n\r\n"
        );
        assert_eq!(&m[parts[1].body.clone()], b"two");
        assert!(parts[1].media.is("text", "html"));
    }

    #[test]
    fn a_longer_boundary_is_not_a_delimiter() {
        assert_eq!(delimiter(b"--abc\r\n", b"abc"), Some(false));
        assert_eq!(delimiter(b"--abc--  \n", b"abc"), Some(true));
        assert_eq!(delimiter(b"--abcdef\r\n", b"abc"), None);
        assert_eq!(delimiter(b"--ab", b"abc"), None);
    }

    #[test]
    fn missing_or_unused_boundary_is_text() {
        for m in [
            &b"Content-Type: multipart/mixed\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n"[..],
            b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n",
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b--\r\n",
        ] {
            let p = parse(m);
            assert_eq!(p.kind, Kind::Single, "{}", String::from_utf8_lossy(m));
            assert_eq!(p.media, MediaType::default_text());
        }
    }

    #[test]
    fn unterminated_multipart_runs_to_the_end() {
        let m = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--b\n\ny\n";
        let Kind::Multipart(parts) = parse(m).kind else {
            panic!()
        };
        assert_eq!(parts.len(), 2);
        assert_eq!(&m[parts[0].body.clone()], b"x");
        assert_eq!(&m[parts[1].body.clone()], b"y\n");
    }

    #[test]
    fn part_without_body_keeps_its_blank_line_in_the_header() {
        let m = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n--b--\r\n";
        let Kind::Multipart(parts) = parse(m).kind else {
            panic!()
        };
        assert_eq!(
            &m[parts[0].header.clone()],
            b"Content-Type: text/plain\r\n\r\n"
        );
        assert!(parts[0].body.is_empty());
    }

    #[test]
    fn digest_parts_default_to_messages() {
        let m = b"Content-Type: multipart/digest; boundary=b\r\n\r\n--b\r\n\r\nSubject: in\r\n\r\nbody\r\n--b--\r\n";
        let Kind::Multipart(parts) = parse(m).kind else {
            panic!()
        };
        let Kind::Message(inner) = &parts[0].kind else {
            panic!()
        };
        assert_eq!(&m[inner.header.clone()], b"Subject: in\r\n\r\n");
        assert_eq!(&m[inner.body.clone()], b"body");
    }

    #[test]
    fn nesting_is_bounded() {
        let mut m = Vec::new();
        for _ in 0..(MAX_DEPTH + 10) {
            m.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        m.extend_from_slice(b"\r\nend\r\n");
        let mut p = parse(&m);
        let mut depth = 0;
        while let Kind::Message(inner) = p.kind {
            p = *inner;
            depth += 1;
        }
        assert_eq!(depth, MAX_DEPTH);
        assert!(p.media.is("text", "plain"));
    }
}
