//! SMTP replies: a three-digit code, an enhanced status code and text lines.
//!
//! Rendering follows RFC 5321 section 4.2.1 (every line but the last has a `-` after the code)
//! and RFC 2034 (the enhanced status code leads each line's text).

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
/// use smtp_core::{Reply, EnhancedCode};
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
    /// If `code` is not in 200..=599 (a programming error, never peer input).
    pub fn new(code: u16, enhanced: EnhancedCode, text: impl Into<String>) -> Self {
        Self::multiline(code, Some(enhanced), [text.into()])
    }

    /// A reply of several lines; the enhanced code, if any, prefixes every line.
    ///
    /// # Panics
    /// If `code` is not in 200..=599 (a programming error, never peer input).
    pub fn multiline<I, S>(code: u16, enhanced: Option<EnhancedCode>, lines: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        assert!((200..600).contains(&code), "reply codes are 2xx..5xx");
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
