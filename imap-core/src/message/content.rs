//! The structured MIME header values BODYSTRUCTURE reports: Content-Type (RFC 2045 section
//! 5.1), Content-Disposition (RFC 2183), Content-Transfer-Encoding (RFC 2045 section 6.1) and
//! Content-Language (RFC 3282). Lenient: what cannot be parsed is skipped, never an error.

/// A parameter: name and value as sent (a quoted value unquoted). RFC 2231 continuations and
/// charsets are passed through as separate raw parameters, as RFC 3501 leaves them.
pub(super) type Param = (Vec<u8>, Vec<u8>);

/// A Content-Type: type and subtype as sent, and the parameters in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MediaType {
    pub(super) main: Vec<u8>,
    pub(super) sub: Vec<u8>,
    pub(super) params: Vec<Param>,
}

impl MediaType {
    /// RFC 2045 section 5.2: no Content-Type (or a broken one) means
    /// `text/plain; charset=us-ascii`.
    pub(super) fn default_text() -> MediaType {
        MediaType {
            main: b"text".to_vec(),
            sub: b"plain".to_vec(),
            params: vec![(b"charset".to_vec(), b"us-ascii".to_vec())],
        }
    }

    /// RFC 2046 section 5.1.5: inside multipart/digest the default is message/rfc822.
    pub(super) fn default_message() -> MediaType {
        MediaType {
            main: b"message".to_vec(),
            sub: b"rfc822".to_vec(),
            params: Vec::new(),
        }
    }

    /// Whether this is `main/sub`, ASCII case-insensitively (RFC 2045 section 5.1).
    pub(super) fn is(&self, main: &str, sub: &str) -> bool {
        self.main.eq_ignore_ascii_case(main.as_bytes())
            && self.sub.eq_ignore_ascii_case(sub.as_bytes())
    }

    /// Whether the type is `main`, ASCII case-insensitively.
    pub(super) fn is_main(&self, main: &str) -> bool {
        self.main.eq_ignore_ascii_case(main.as_bytes())
    }

    /// The first parameter named `name`, ASCII case-insensitively.
    pub(super) fn param(&self, name: &str) -> Option<&[u8]> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice())
    }
}

/// Parses an unfolded Content-Type value; `None` when it has no `type/subtype`.
pub(super) fn media_type(value: &[u8]) -> Option<MediaType> {
    let mut c = Cursor { s: value, pos: 0 };
    c.skip_cfws();
    let main = c.token()?.to_vec();
    c.skip_cfws();
    if !c.eat(b'/') {
        return None;
    }
    c.skip_cfws();
    let sub = c.token()?.to_vec();
    let params = c.params();
    Some(MediaType { main, sub, params })
}

/// Parses an unfolded Content-Disposition value into its type and parameters.
pub(super) fn disposition(value: &[u8]) -> Option<(Vec<u8>, Vec<Param>)> {
    let mut c = Cursor { s: value, pos: 0 };
    c.skip_cfws();
    let kind = c.token()?.to_vec();
    Some((kind, c.params()))
}

/// The mechanism of an unfolded Content-Transfer-Encoding value, as sent.
pub(super) fn encoding(value: &[u8]) -> Option<Vec<u8>> {
    let mut c = Cursor { s: value, pos: 0 };
    c.skip_cfws();
    c.token().map(<[u8]>::to_vec)
}

/// The language tags of an unfolded Content-Language value (RFC 3282: a comma list).
pub(super) fn languages(value: &[u8]) -> Vec<Vec<u8>> {
    let mut c = Cursor { s: value, pos: 0 };
    let mut out = Vec::new();
    loop {
        c.skip_cfws();
        if c.at_end() {
            return out;
        }
        match c.token() {
            Some(tag) => out.push(tag.to_vec()),
            None => c.skip_past(b','),
        }
        c.skip_cfws();
        // Anything but a comma here is junk up to the next comma.
        if !c.eat(b',') {
            c.skip_past(b',');
        }
    }
}

/// A position in a structured header value.
struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        if hit {
            self.pos += 1;
        }
        hit
    }

    /// Skips whitespace and (nested) comments (RFC 5322 section 3.2.2, CFWS).
    fn skip_cfws(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => self.pos += 1,
                b'(' => self.skip_comment(),
                _ => return,
            }
        }
    }

    /// Skips a comment starting at `(`; an unterminated one runs to the end.
    fn skip_comment(&mut self) {
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                // An escape at the very end escapes nothing; `pos` never passes the end.
                b'\\' => self.pos = (self.pos + 1).min(self.s.len()),
                b'(' => depth += 1,
                b')' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
    }

    /// An RFC 2045 token. 8-bit octets are let through: some senders use them and a reader is
    /// better off seeing them than losing the whole field.
    fn token(&mut self) -> Option<&'a [u8]> {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b <= b' ' || b == 0x7f || b"()<>@,;:\\\"/[]?=".contains(&b) {
                break;
            }
            self.pos += 1;
        }
        (self.pos > start).then(|| &self.s[start..self.pos])
    }

    /// A quoted string starting at `"`, unquoted; an unterminated one runs to the end.
    fn quoted(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.pos += 1;
        while let Some(b) = self.peek() {
            self.pos += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(next) = self.peek() {
                        out.push(next);
                        self.pos += 1;
                    }
                }
                _ => out.push(b),
            }
        }
        out
    }

    /// Moves past the next `stop` outside quoted strings and comments, or to the end.
    fn skip_past(&mut self, stop: u8) {
        while let Some(b) = self.peek() {
            match b {
                b'"' => {
                    self.quoted();
                }
                b'(' => self.skip_comment(),
                _ => {
                    self.pos += 1;
                    if b == stop {
                        return;
                    }
                }
            }
        }
    }

    /// `*(";" attribute "=" value)` (RFC 2045 section 5.1). A parameter without `=` is dropped.
    fn params(&mut self) -> Vec<Param> {
        let mut out = Vec::new();
        loop {
            self.skip_cfws();
            if self.at_end() {
                return out;
            }
            if !self.eat(b';') {
                self.skip_past(b';');
            }
            self.skip_cfws();
            let Some(name) = self.token() else {
                continue;
            };
            self.skip_cfws();
            if !self.eat(b'=') {
                continue;
            }
            self.skip_cfws();
            let value = if self.peek() == Some(b'"') {
                self.quoted()
            } else {
                // Lenient: unquoted values with tspecials (`boundary=----=_Part_0`) are common,
                // so a value runs to `;`, whitespace or a comment.
                let start = self.pos;
                while let Some(b) = self.peek() {
                    if matches!(b, b';' | b' ' | b'\t' | b'\r' | b'\n' | b'(') {
                        break;
                    }
                    self.pos += 1;
                }
                self.s[start..self.pos].to_vec()
            };
            out.push((name.to_vec(), value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_with_params_and_comments() {
        let t = media_type(b"Text/Plain (comment); charset=\"utf-8\" ; format=flowed (x)").unwrap();
        assert_eq!(t.main, b"Text");
        assert_eq!(t.sub, b"Plain");
        assert!(t.is("text", "plain"));
        assert_eq!(
            t.params,
            vec![
                (b"charset".to_vec(), b"utf-8".to_vec()),
                (b"format".to_vec(), b"flowed".to_vec()),
            ]
        );
    }

    #[test]
    fn unquoted_boundary_with_tspecials() {
        let t = media_type(b"multipart/mixed; boundary=----=_Part_0_1.2").unwrap();
        assert_eq!(t.param("BOUNDARY"), Some(&b"----=_Part_0_1.2"[..]));
    }

    #[test]
    fn broken_values() {
        assert_eq!(media_type(b"text"), None);
        assert_eq!(media_type(b""), None);
        assert_eq!(media_type(b"/plain"), None);
        let t = media_type(b"text/plain; ; junk; a=\"unterminated").unwrap();
        assert_eq!(t.params, vec![(b"a".to_vec(), b"unterminated".to_vec())]);
    }

    #[test]
    fn disposition_encoding_language() {
        let (kind, params) = disposition(b"attachment; filename=\"a b.pdf\"").unwrap();
        assert_eq!(kind, b"attachment");
        assert_eq!(params, vec![(b"filename".to_vec(), b"a b.pdf".to_vec())]);
        assert_eq!(encoding(b" (c) Base64"), Some(b"Base64".to_vec()));
        assert_eq!(
            languages(b"en, de-CH (Swiss)"),
            vec![b"en".to_vec(), b"de-CH".to_vec()]
        );
        assert!(languages(b" , ").is_empty());
    }
}
