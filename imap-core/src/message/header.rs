//! Header fields as sent (RFC 5322 section 2.2): where a header ends, each field's raw lines,
//! unfolding. Lines end in CRLF or a bare LF; both are accepted everywhere.

/// The offset just past the blank line that ends the header at the start of `message`, or
/// `message.len()` when there is no blank line (then everything is header).
///
/// A message that starts with a blank line has an empty header; the blank line is its whole
/// header. This is what RFC822.HEADER and BODY\[HEADER\] return, and RFC822.TEXT and
/// BODY\[TEXT\] start here.
///
/// ```
/// use imap_core::message::header_end;
///
/// let m = b"Subject: hi\r\n\r\nbody\r\n";
/// assert_eq!(&m[..header_end(m)], b"Subject: hi\r\n\r\n");
/// assert_eq!(header_end(b"Subject: no body"), 16);
/// assert_eq!(header_end(b"From: a\n\nbare LF\n"), 9);
/// ```
pub fn header_end(message: &[u8]) -> usize {
    let mut pos = 0;
    while let Some(rest) = message.get(pos..) {
        if rest.starts_with(b"\r\n") {
            return pos + 2;
        }
        if rest.starts_with(b"\n") {
            return pos + 1;
        }
        match memchr::memchr(b'\n', rest) {
            Some(i) => pos += i + 1,
            None => break,
        }
    }
    message.len()
}

/// One header field with its continuation lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Field<'a> {
    /// The field name, as sent, without the colon and any whitespace before it (RFC 5322
    /// section 4.5.1 allows that whitespace). `None` for a line that is no field (no colon):
    /// it is kept so the lines still cover the header, but nothing matches it.
    pub(super) name: Option<&'a [u8]>,
    /// Everything after the colon, folds and the final line end included.
    pub(super) value: &'a [u8],
    /// The whole field as sent, continuation lines and final line end included.
    pub(super) raw: &'a [u8],
}

/// The fields of `header` in order, stopping at the blank line that ends it (if any).
pub(super) fn fields(header: &[u8]) -> Fields<'_> {
    Fields { rest: header }
}

/// Iterator returned by [`fields`].
pub(super) struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        let rest = self.rest;
        if rest.is_empty() || rest.starts_with(b"\n") || rest.starts_with(b"\r\n") {
            self.rest = &[];
            return None;
        }
        // RFC 5322 section 2.2.3: a line starting with WSP continues the field before it.
        let mut end = line_len(rest);
        while rest.get(end).is_some_and(|&b| b == b' ' || b == b'\t') {
            end += line_len(&rest[end..]);
        }
        let raw = &rest[..end];
        self.rest = &rest[end..];
        let (name, value) = match memchr::memchr(b':', raw) {
            // The colon must be on the field's first line; a colon further down means the
            // first line was no field.
            Some(i) if !raw[..i].contains(&b'\n') => (Some(trim_end(&raw[..i])), &raw[i + 1..]),
            _ => (None, raw),
        };
        Some(Field { name, value, raw })
    }
}

/// The length of the first line of `s`, its line end included.
fn line_len(s: &[u8]) -> usize {
    memchr::memchr(b'\n', s).map_or(s.len(), |i| i + 1)
}

/// The value of the first field named `name` (ASCII case-insensitive), unfolded and trimmed.
pub(super) fn first_value(header: &[u8], name: &str) -> Option<Vec<u8>> {
    fields(header)
        .find(|f| {
            f.name
                .is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes()))
        })
        .map(|f| unfold(f.value))
}

/// Unfolds a field value (RFC 5322 section 2.2.3: a fold is a line end followed by WSP, and
/// unfolding removes the line end) and trims the whitespace around it. A CR that ends no line
/// stays: it is part of the value as sent.
pub(super) fn unfold(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while let Some(&b) = value.get(i) {
        let line_end = b == b'\n' || (b == b'\r' && value.get(i + 1) == Some(&b'\n'));
        if !line_end {
            out.push(b);
        }
        i += 1;
    }
    trim(&out).to_vec()
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `s` without leading and trailing SP and HTAB.
pub(super) fn trim(s: &[u8]) -> &[u8] {
    trim_end(trim_start(s))
}

fn trim_start(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_wsp(b)).unwrap_or(s.len());
    &s[start..]
}

fn trim_end(s: &[u8]) -> &[u8] {
    let end = s.iter().rposition(|&b| !is_wsp(b)).map_or(0, |i| i + 1);
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_end_cases() {
        assert_eq!(header_end(b""), 0);
        assert_eq!(header_end(b"\r\nbody"), 2);
        assert_eq!(header_end(b"\nbody"), 1);
        assert_eq!(header_end(b"A: b\r\n\r\n"), 8);
        assert_eq!(header_end(b"A: b\r\n"), 6);
        assert_eq!(header_end(b"A: b\r\nC: d\n\nx"), 12);
        // A CR alone on a line is no blank line.
        assert_eq!(header_end(b"A: b\r\n\r\rx"), 9);
    }

    #[test]
    fn fields_keep_folds_and_stop_at_the_blank_line() {
        let h = b"Subject: a\r\n  b\r\nFrom : x\r\njunk\r\n\r\nNot: a field\r\n";
        let all: Vec<_> = fields(h).collect();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].name, Some(&b"Subject"[..]));
        assert_eq!(all[0].raw, b"Subject: a\r\n  b\r\n");
        assert_eq!(unfold(all[0].value), b"a  b");
        assert_eq!(all[1].name, Some(&b"From"[..]));
        assert_eq!(all[2].name, None);
        assert_eq!(first_value(h, "SUBJECT").as_deref(), Some(&b"a  b"[..]));
        assert_eq!(first_value(h, "Not"), None);
    }

    #[test]
    fn unfold_bare_lf_and_stray_cr() {
        assert_eq!(unfold(b" a\n\tb\n"), b"a\tb");
        assert_eq!(unfold(b" a\rb\r\n"), b"a\rb");
    }
}
