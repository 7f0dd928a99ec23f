//! SMTP replies: a three-digit code, an enhanced status code and text lines.
//!
//! Rendering follows RFC 5321 section 4.2.1 (every line but the last has a `-` after the code)
//! and RFC 2034 (the enhanced status code leads each line's text).

use std::borrow::Cow;
use std::fmt;

/// An enhanced mail system status code, `class.subject.detail` (RFC 3463).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnhancedCode(pub u8, pub u16, pub u16);

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// One SMTP reply, possibly spanning several lines.
///
/// ```
/// use line_protocol::{Reply, EnhancedCode};
/// let r = Reply::new(250, EnhancedCode(2, 1, 0), "Ok");
/// assert_eq!(r.to_bytes(), b"250 2.1.0 Ok\r\n");
/// let m = Reply::multiline(250, None, ["mx.example", "PIPELINING"]);
/// assert_eq!(m.to_bytes(), b"250-mx.example\r\n250 PIPELINING\r\n");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reply {
    code: u16,
    enhanced: Option<EnhancedCode>,
    lines: Vec<String>,
}

impl Reply {
    /// A one-line reply with an enhanced status code.
    ///
    /// # Panics
    /// If `code` is not in 100..=599 (a programming error, never peer input).
    pub fn new(code: u16, enhanced: EnhancedCode, text: impl Into<String>) -> Self {
        Self::multiline(code, Some(enhanced), [text.into()])
    }

    /// A reply of several lines; the enhanced code, if any, prefixes every line.
    ///
    /// # Panics
    /// If `code` is not in 100..=599 (a programming error, never peer input). SMTP uses
    /// 2xx to 5xx only (RFC 5321 section 4.2.1); NNTP also has 1xx (RFC 3977 section 3.2.1).
    pub fn multiline<I, S>(code: u16, enhanced: Option<EnhancedCode>, lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        assert!((100..600).contains(&code), "reply codes are 1xx..5xx");
        let mut lines: Vec<String> = lines.into_iter().map(Into::into).collect();
        if lines.is_empty() {
            lines.push(String::new());
        }
        // A CR or LF inside the text would end the reply early and let the rest be read as a
        // new reply: strip them so host-supplied text can never forge replies.
        for line in &mut lines {
            if line.contains(['\r', '\n']) {
                *line = line.replace(['\r', '\n'], " ");
            }
        }
        Reply {
            code,
            enhanced,
            lines,
        }
    }

    /// The three-digit reply code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The enhanced status code, if the reply carries one.
    pub fn enhanced(&self) -> Option<EnhancedCode> {
        self.enhanced
    }

    /// The text lines, without code or enhanced code.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// True for 2xx and 3xx replies.
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// True for 4xx replies: try again later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// True for 5xx replies: do not try again.
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// Appends the wire form to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let last = self.lines.len() - 1;
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            let mut head = format!("{}{}", self.code, sep);
            if let Some(e) = self.enhanced {
                head.push_str(&e.to_string());
                if !line.is_empty() {
                    head.push(' ');
                }
            }
            out.extend_from_slice(head.as_bytes());
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write_to(&mut v);
        v
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        f.write_str(text.trim_end())
    }
}

/// The result of trying to read one reply from the front of a buffer: complete, incomplete
/// or invalid, as parsers of this kind (httparse) answer. Deliberately exhaustive, so callers
/// handle all three.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A whole reply, and how many bytes it took.
    Complete(Reply, usize),
    /// More bytes are needed; nothing was consumed.
    Incomplete,
    /// Not an SMTP reply (RFC 5321 section 4.2): a bad code, a code that changes between lines,
    /// or a line over `max_line` octets.
    Invalid(&'static str),
}

/// Reads one possibly multi-line reply from the front of `input` (RFC 5321 section 4.2.1).
///
/// Each line is `code` followed by `-` (more lines follow), a space or nothing (the last line).
/// An enhanced status code (RFC 2034) leading every line's text is split off when present.
/// Lines may end in CRLF or, tolerantly, in a bare LF.
///
/// ```
/// use line_protocol::reply::{parse, Parsed};
/// let Parsed::Complete(r, used) = parse(b"250-mx\r\n250 2.0.0 SIZE\r\nrest", 512) else { panic!() };
/// assert_eq!((r.code(), used), (250, 24));
/// assert_eq!(r.lines(), ["mx", "2.0.0 SIZE"]);
/// let Parsed::Complete(r, _) = parse(b"550 5.1.1 no such user\r\n", 512) else { panic!() };
/// assert_eq!(r.enhanced().map(|e| e.to_string()).as_deref(), Some("5.1.1"));
/// assert_eq!(parse(b"250-mx\r\n25", 512), Parsed::Incomplete);
/// ```
pub fn parse(input: &[u8], max_line: usize) -> Parsed {
    let mut pos = 0;
    let mut code: Option<u16> = None;
    let mut texts: Vec<Cow<'_, str>> = Vec::new();
    loop {
        let rest = &input[pos..];
        let Some(lf) = memchr::memchr(b'\n', rest) else {
            return if rest.len() > max_line {
                Parsed::Invalid("reply line too long")
            } else {
                Parsed::Incomplete
            };
        };
        if lf + 1 > max_line {
            return Parsed::Invalid("reply line too long");
        }
        let line = &rest[..lf];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos += lf + 1;
        if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) {
            return Parsed::Invalid("reply line does not start with a code");
        }
        let this: u16 =
            (line[0] - b'0') as u16 * 100 + (line[1] - b'0') as u16 * 10 + (line[2] - b'0') as u16;
        if !(200..600).contains(&this) {
            return Parsed::Invalid("reply code out of range");
        }
        if code.is_some_and(|c| c != this) {
            return Parsed::Invalid("reply code changes between lines");
        }
        code = Some(this);
        let (more, text) = match line.get(3) {
            None => (false, &b""[..]),
            Some(b' ') => (false, &line[4..]),
            Some(b'-') => (true, &line[4..]),
            Some(_) => return Parsed::Invalid("bad separator after reply code"),
        };
        let Ok(text) = std::str::from_utf8(text) else {
            return Parsed::Invalid("reply text is not UTF-8");
        };
        // A stray CR inside the text becomes a space here, before the enhanced code is looked
        // for, as `Reply::multiline` would do later: otherwise "550 5.1.1<CR>" would read as
        // text "5.1.1 " without a code, and render as a reply that parses differently.
        texts.push(if text.contains('\r') {
            Cow::Owned(text.replace('\r', " "))
        } else {
            Cow::Borrowed(text)
        });
        if !more {
            break;
        }
    }
    let code = code.expect("at least one line was read");
    // The enhanced code counts only if it leads every line and matches the reply's class.
    let enhanced = texts
        .first()
        .and_then(|t| t.split(' ').next())
        .and_then(parse_enhanced)
        .filter(|e| u16::from(e.0) == code / 100)
        .filter(|e| {
            texts
                .iter()
                .all(|t| t.split(' ').next().and_then(parse_enhanced) == Some(*e))
        });
    let lines: Vec<String> = match enhanced {
        Some(_) => texts
            .iter()
            .map(|t| t.split_once(' ').map_or("", |(_, rest)| rest).to_owned())
            .collect(),
        None => texts.into_iter().map(Cow::into_owned).collect(),
    };
    Parsed::Complete(Reply::multiline(code, enhanced, lines), pos)
}

/// `class.subject.detail` with the classes RFC 3463 defines: `[245] "." 1*3digit "." 1*3digit`,
/// without leading zeros so that parsing and rendering give the same text back.
///
/// ```
/// use line_protocol::reply::{EnhancedCode, parse_enhanced};
/// assert_eq!(parse_enhanced("5.1.1"), Some(EnhancedCode(5, 1, 1)));
/// assert_eq!(parse_enhanced("5.01.1"), None);
/// ```
pub fn parse_enhanced(s: &str) -> Option<EnhancedCode> {
    fn number(part: &str, max_digits: usize) -> Option<u16> {
        let ok = !part.is_empty()
            && part.len() <= max_digits
            && part.bytes().all(|b| b.is_ascii_digit())
            && !(part.len() > 1 && part.starts_with('0'));
        ok.then(|| part.parse().ok()).flatten()
    }
    let mut it = s.split('.');
    let class = number(it.next()?, 1)?;
    let subject = number(it.next()?, 3)?;
    let detail = number(it.next()?, 3)?;
    (it.next().is_none() && matches!(class, 2 | 4 | 5)).then_some(EnhancedCode(
        class as u8,
        subject,
        detail,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stray_cr_is_read_as_a_space_before_the_enhanced_code() {
        // Found by the codecs fuzz target: "5.1.1<CR>" used to stay text, then rendered as
        // "550 5.1.1 ", which parses with a code: parse and render disagreed.
        let Parsed::Complete(r, used) = parse(b"550 5.1.1\r\r\n", 512) else {
            panic!("complete reply expected");
        };
        assert_eq!(used, 12);
        assert_eq!(r.enhanced(), Some(EnhancedCode(5, 1, 1)));
        assert_eq!(r.lines(), [""]);
        assert_eq!(r.to_bytes(), b"550 5.1.1\r\n");
        let Parsed::Complete(r, _) = parse(b"250 2.0.0 a\rb\r\n", 512) else {
            panic!("complete reply expected");
        };
        assert_eq!(r.lines(), ["a b"]);
    }

    #[test]
    fn enhanced_codes_follow_rfc_3463_strictly() {
        assert_eq!(parse_enhanced("5.1.1"), Some(EnhancedCode(5, 1, 1)));
        assert_eq!(parse_enhanced("4.7.100"), Some(EnhancedCode(4, 7, 100)));
        for bad in [
            "02.0.02", "2.01.0", "+2.0.0", "2.0.1000", "3.0.0", "2.0", "2.0.0.0", "2..0",
        ] {
            assert_eq!(parse_enhanced(bad), None, "{bad}");
        }
        let Parsed::Complete(r, _) = parse(b"298 02.0.02\r\n", 512) else {
            panic!()
        };
        assert_eq!(r.to_bytes(), b"298 02.0.02\r\n");
    }
}
