//! A message's MIME structure as byte ranges of the original (RFC 2045, 2046): what
//! BODYSTRUCTURE describes and BODY[section] addresses. Nothing is decoded or copied, so the
//! caller can stream any part from the file.

use std::ops::Range;

/// Parts nest no deeper than this; deeper ones are treated as opaque bodies (a hostile
/// message cannot exhaust the stack).
const MAX_DEPTH: usize = 24;

/// `type/subtype`, lower-cased.
pub(crate) type MediaType = (String, String);

/// Parameters, names lower-cased, values as sent.
pub(crate) type Params = Vec<(String, String)>;

/// One part (the whole message is the root part).
#[derive(Debug, Clone)]
pub(crate) struct Part {
    /// The part's header, the blank line after it included.
    pub(crate) header: Range<usize>,
    /// The part's body.
    pub(crate) body: Range<usize>,
    /// Content-Type, lower-cased type and subtype, parameters as sent.
    pub(crate) kind: (String, String),
    pub(crate) params: Vec<(String, String)>,
    /// A multipart's parts.
    pub(crate) children: Vec<Part>,
    /// A message/rfc822's message.
    pub(crate) message: Option<Box<Part>>,
}

impl Part {
    pub(crate) fn is_multipart(&self) -> bool {
        self.kind.0 == "multipart"
    }
}

/// Where the header ends: just past the blank line, or the end if there is none.
pub fn header_end(m: &[u8]) -> usize {
    let mut i = 0;
    // A message that starts with the blank line has an empty header.
    if m.starts_with(b"\r\n") {
        return 2;
    }
    if m.starts_with(b"\n") {
        return 1;
    }
    while let Some(p) = memchr::memchr(b'\n', &m[i..]) {
        let nl = i + p;
        let rest = &m[nl + 1..];
        if rest.starts_with(b"\r\n") {
            return nl + 3;
        }
        if rest.starts_with(b"\n") {
            return nl + 2;
        }
        i = nl + 1;
    }
    m.len()
}

/// The header's fields in order: (name, whole field with its line ends, unfolded value).
pub(crate) fn fields(header: &[u8]) -> Vec<(&[u8], &[u8], Vec<u8>)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < header.len() {
        let start = i;
        // The field runs until a line that does not start with white space.
        loop {
            match memchr::memchr(b'\n', &header[i..]) {
                Some(p) => i += p + 1,
                None => i = header.len(),
            }
            if i >= header.len() || !matches!(header[i], b' ' | b'\t') {
                break;
            }
        }
        let raw = &header[start..i];
        if raw == b"\r\n" || raw == b"\n" {
            break;
        }
        let Some(colon) = memchr::memchr(b':', raw) else {
            continue;
        };
        let name = trim(&raw[..colon]);
        let mut value = Vec::with_capacity(raw.len());
        for &b in &raw[colon + 1..] {
            if b != b'\r' && b != b'\n' {
                value.push(b);
            }
        }
        out.push((name, raw, trim(&value).to_vec()));
    }
    out
}

/// The first field called `name` (any case), unfolded and trimmed.
pub(crate) fn field(header: &[u8], name: &str) -> Option<Vec<u8>> {
    fields(header)
        .into_iter()
        .find(|(n, _, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, _, v)| v)
}

pub(crate) fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end]
}

/// Parses `type/subtype; a=b; c="d"` (RFC 2045 section 5.1); `None` if malformed.
pub(crate) fn content_type(v: &[u8]) -> Option<(MediaType, Params)> {
    let text = String::from_utf8_lossy(v);
    let mut parts = split_params(&text);
    let first = parts.remove(0);
    let (t, s) = first.split_once('/')?;
    let (t, s) = (t.trim().to_ascii_lowercase(), s.trim().to_ascii_lowercase());
    if t.is_empty()
        || s.is_empty()
        || t.contains(char::is_whitespace)
        || s.contains(char::is_whitespace)
    {
        return None;
    }
    Some(((t, s), params(parts)))
}

/// `value; a=b` as in Content-Disposition: the value and its parameters.
pub(crate) fn value_and_params(v: &[u8]) -> (String, Vec<(String, String)>) {
    let text = String::from_utf8_lossy(v);
    let mut parts = split_params(&text);
    let first = parts.remove(0).trim().to_owned();
    (first, params(parts))
}

fn params(parts: Vec<String>) -> Vec<(String, String)> {
    parts
        .into_iter()
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim();
            let v = match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                Some(q) => q.replace("\\\"", "\"").replace("\\\\", "\\"),
                None => v.to_owned(),
            };
            (!k.is_empty()).then_some((k, v))
        })
        .collect()
}

/// Splits at `;` outside quoted strings; always at least one element.
fn split_params(s: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' && quoted {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == ';' && !quoted {
            out.push(String::new());
            continue;
        }
        if let Some(last) = out.last_mut() {
            last.push(c);
        }
    }
    out
}

/// Parses the part at `range` of `m`; `digest` says its default type is message/rfc822
/// (inside multipart/digest, RFC 2046 5.1.5).
pub(crate) fn parse(m: &[u8], range: Range<usize>, digest: bool, depth: usize) -> Part {
    let bytes = &m[range.clone()];
    let hend = header_end(bytes);
    let header = range.start..range.start + hend;
    let body = range.start + hend..range.end;
    let default = if digest {
        (("message".to_owned(), "rfc822".to_owned()), Vec::new())
    } else {
        (
            ("text".to_owned(), "plain".to_owned()),
            vec![("charset".to_owned(), "us-ascii".to_owned())],
        )
    };
    let (kind, params) = field(&m[header.clone()], "Content-Type")
        .and_then(|v| content_type(&v))
        .unwrap_or(default);
    let mut part = Part {
        header,
        body: body.clone(),
        kind,
        params,
        children: Vec::new(),
        message: None,
    };
    if depth >= MAX_DEPTH {
        part.kind = ("text".into(), "plain".into());
        return part;
    }
    if part.is_multipart() {
        let boundary = part
            .params
            .iter()
            .find(|(k, _)| k == "boundary")
            .map(|(_, v)| v.clone());
        let children = boundary
            .filter(|b| !b.is_empty() && b.len() <= 200)
            .map(|b| split_multipart(m, body.clone(), b.as_bytes()))
            .unwrap_or_default();
        if children.is_empty() {
            // No usable boundary, or no part found: describe it as text, as Dovecot does,
            // rather than fail the whole FETCH.
            part.kind = ("text".into(), "plain".into());
            part.params = vec![("charset".into(), "us-ascii".into())];
        } else {
            let digest = part.kind.1 == "digest";
            part.children = children
                .into_iter()
                .map(|r| parse(m, r, digest, depth + 1))
                .collect();
        }
    } else if part.kind == ("message".into(), "rfc822".into())
        || part.kind == ("message".into(), "global".into())
    {
        part.message = Some(Box::new(parse(m, body, false, depth + 1)));
    }
    part
}

/// The ranges of a multipart body's parts (RFC 2046 section 5.1.1): between delimiter lines
/// `--boundary`, the line end before a delimiter belonging to it; the preamble and epilogue
/// are not parts.
fn split_multipart(m: &[u8], body: Range<usize>, boundary: &[u8]) -> Vec<Range<usize>> {
    let mut delimiters = Vec::new(); // (start of the line end before, end of the delimiter line, closing)
    let mut line_start = body.start;
    while line_start < body.end {
        let line_end = memchr::memchr(b'\n', &m[line_start..body.end])
            .map_or(body.end, |p| line_start + p + 1);
        let line = &m[line_start..line_end];
        if line.len() >= 2 + boundary.len()
            && line.starts_with(b"--")
            && &line[2..2 + boundary.len()] == boundary
        {
            let rest = &line[2 + boundary.len()..];
            let closing = rest.starts_with(b"--");
            let tail = if closing { &rest[2..] } else { rest };
            if tail.iter().all(|b| b.is_ascii_whitespace()) {
                // The CRLF (or LF) before the delimiter is part of it.
                let before =
                    if line_start >= body.start + 2 && &m[line_start - 2..line_start] == b"\r\n" {
                        line_start - 2
                    } else if line_start > body.start && m[line_start - 1] == b'\n' {
                        line_start - 1
                    } else {
                        line_start
                    };
                delimiters.push((before, line_end, closing));
                if closing {
                    break;
                }
            }
        }
        line_start = line_end;
    }
    let mut parts = Vec::new();
    for w in delimiters.windows(2) {
        let (_, start, closing) = w[0];
        if closing {
            break;
        }
        parts.push(start..w[1].0.max(start));
    }
    if let Some(&(_, start, false)) = delimiters.last() {
        // No closing delimiter: the last part runs to the end.
        if start < body.end {
            parts.push(start..body.end);
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_end_finds_the_blank_line() {
        assert_eq!(header_end(b"A: b\r\n\r\nbody"), 8);
        assert_eq!(header_end(b"A: b\n\nbody"), 6);
        assert_eq!(header_end(b"A: b\r\n"), 6);
        assert_eq!(header_end(b"\r\nbody"), 2);
    }

    #[test]
    fn folded_fields_unfold() {
        let h = b"Subject: one\r\n two\r\nFrom: a@b\r\n\r\n";
        let f = fields(h);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].2, b"one two");
        assert_eq!(f[0].1, b"Subject: one\r\n two\r\n");
    }

    #[test]
    fn multipart_ranges() {
        let m = b"Content-Type: multipart/mixed; boundary=\"xx\"\r\n\r\npre\r\n--xx\r\nA: 1\r\n\r\none\r\n--xx\r\n\r\ntwo\r\n--xx--\r\nepilogue";
        let p = parse(m, 0..m.len(), false, 0);
        assert_eq!(p.children.len(), 2);
        assert_eq!(&m[p.children[0].body.clone()], b"one");
        assert_eq!(&m[p.children[1].body.clone()], b"two");
        assert_eq!(&m[p.children[1].header.clone()], b"\r\n");
    }
}
