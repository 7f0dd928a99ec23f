//! An article as the host stores it, and the views of it the reader commands give: head,
//! body, one header field, the overview line (RFC 3977 sections 6.2 and 8).

use crate::overview::Overview;

/// One stored article: its number in its group and its text (header, empty line, body, lines
/// ending in CRLF, not dot-stuffed).
///
/// ```
/// use nntp_core::Article;
/// let a = Article::new(4, b"Subject: hi\r\nMessage-ID: <4@x>\r\n\r\nbody\r\n".to_vec());
/// assert_eq!(a.message_id(), Some("<4@x>".to_owned()));
/// assert_eq!(a.header("subject").as_deref(), Some("hi"));
/// assert_eq!(a.body(), b"body\r\n");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Article {
    /// Its number in its group.
    pub number: u64,
    text: Vec<u8>,
    /// Where the body starts (after the empty line).
    body_at: usize,
    /// Where the header ends (before the empty line).
    head_end: usize,
}

impl Article {
    /// Wraps an article's text.
    pub fn new(number: u64, text: Vec<u8>) -> Self {
        let (head_end, body_at) = split(&text);
        Article {
            number,
            text,
            body_at,
            head_end,
        }
    }

    /// The whole article.
    pub fn text(&self) -> &[u8] {
        &self.text
    }

    /// The header, each line ending in CRLF, without the empty line after it.
    pub fn head(&self) -> &[u8] {
        &self.text[..self.head_end]
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.text[self.body_at..]
    }

    /// The first field called `name` (any case), unfolded (RFC 5322 section 2.2.3), or `None`.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = String::from_utf8_lossy(self.head());
        let mut found: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(value) = found.as_mut() {
                if line.starts_with([' ', '\t']) {
                    value.push_str(line);
                    continue;
                }
                break;
            }
            if let Some((field, value)) = line.split_once(':')
                && field.eq_ignore_ascii_case(name)
            {
                found = Some(value.trim_start().to_owned());
            }
        }
        found.map(|v| v.trim_end().to_owned())
    }

    /// Its `Message-ID`.
    pub fn message_id(&self) -> Option<String> {
        self.header("Message-ID")
    }

    /// What HDR gives for `field`: the field's value, or the `:bytes` and `:lines` metadata
    /// (RFC 3977 section 8.1); empty when the article has no such field.
    pub fn hdr(&self, field: &str) -> String {
        if field.eq_ignore_ascii_case(":bytes") {
            self.text.len().to_string()
        } else if field.eq_ignore_ascii_case(":lines") {
            self.lines().to_string()
        } else {
            self.header(field)
                .unwrap_or_default()
                .replace(['\t', '\r', '\n'], " ")
        }
    }

    /// The body's lines.
    pub fn lines(&self) -> u64 {
        let body = self.body();
        let breaks = memchr::memchr_iter(b'\n', body).count() as u64;
        breaks + u64::from(!body.is_empty() && !body.ends_with(b"\n"))
    }

    /// Its overview fields.
    pub fn overview(&self) -> Overview {
        Overview {
            subject: self.header("Subject").unwrap_or_default(),
            from: self.header("From").unwrap_or_default(),
            date: self.header("Date").unwrap_or_default(),
            message_id: self.message_id().unwrap_or_default(),
            references: self.header("References").unwrap_or_default(),
            bytes: self.text.len() as u64,
            lines: self.lines(),
        }
    }
}

/// The end of the header and the start of the body: at the first empty line, or the whole
/// text is header.
fn split(text: &[u8]) -> (usize, usize) {
    if text.starts_with(b"\r\n") {
        return (0, 2);
    }
    match memchr::memmem::find(text, b"\r\n\r\n") {
        Some(i) => (i + 2, i + 4),
        None => (text.len(), text.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_fields_unfold_and_metadata_counts() {
        let a = Article::new(
            1,
            b"Subject: one\r\n two\r\nX-A: b\r\n\r\nl1\r\nl2\r\nl3".to_vec(),
        );
        assert_eq!(a.header("SUBJECT").as_deref(), Some("one two"));
        assert_eq!(a.hdr("x-a"), "b");
        assert_eq!(a.hdr("missing"), "");
        assert_eq!(a.hdr(":lines"), "3");
        assert_eq!(a.hdr(":bytes"), a.text().len().to_string());
        assert_eq!(a.head(), b"Subject: one\r\n two\r\nX-A: b\r\n");
    }

    #[test]
    fn no_body_and_no_header() {
        let a = Article::new(1, b"Subject: x\r\n".to_vec());
        assert_eq!(a.body(), b"");
        assert_eq!(a.lines(), 0);
        let b = Article::new(2, b"\r\nbody\r\n".to_vec());
        assert_eq!(b.head(), b"");
        assert_eq!(b.body(), b"body\r\n");
    }
}
