//! The transcript file format: parsing and writing back.

use std::fmt;
use std::time::Duration;

use crate::escape::{escape, unescape};

/// One line of a transcript's conversation, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Item {
    /// Bytes the client sends.
    Client(Vec<u8>),
    /// Bytes the server sends.
    Server(Vec<u8>),
    /// Move the clock forward, then fire due timers.
    Advance(Duration),
    /// The client closes its side.
    Eof,
    /// The transport becomes TLS here (after the server's yes to STARTTLS): what the client
    /// pipelined after STARTTLS is dropped, as the driver does, and the session hears
    /// `handle_tls`. The lines that follow are the plaintext inside TLS. As the first item: a
    /// connection that is TLS from the first byte.
    Tls,
    /// `@ host ACTION`: something happens on the host's side at this point (another session
    /// changes the mailbox, mail is delivered); the protocol's host says what ACTION means.
    Host(String),
}

/// A protocol's own `!` lines: what its host decides, what its client is asked to do.
///
/// `! config key=value` lines are common to every protocol and kept in
/// [`Transcript::config`]; every other `!` line is offered to the protocol's directives.
pub trait Directives: Default {
    /// Reads one `!` line, given without its `! `. Returns `Ok(false)` if the line is not one
    /// of this protocol's, and `Err` with the reason if it is but cannot be read.
    fn parse_line(&mut self, line: &str) -> Result<bool, String>;

    /// Writes the directives back as `! ...` lines, each ending in a newline, so that
    /// [`parse_line`](Directives::parse_line) reads the same directives from them.
    fn write_lines(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

/// No directives: a transcript of a protocol whose host decides nothing.
impl Directives for () {
    fn parse_line(&mut self, _line: &str) -> Result<bool, String> {
        Ok(false)
    }

    fn write_lines(&self, _f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ok(())
    }
}

/// A parsed transcript: settings, the protocol's directives and the conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transcript<D = ()> {
    /// `! config key=value` lines, in order.
    pub config: Vec<(String, String)>,
    /// The protocol's own `!` lines.
    pub directives: D,
    /// The conversation.
    pub items: Vec<Item>,
}

/// A transcript line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("transcript line {line}: {reason}")]
#[non_exhaustive]
pub struct TranscriptError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl<D: Directives> Transcript<D> {
    /// Parses the text form.
    ///
    /// ```
    /// use transcript::{Item, Transcript};
    /// let t: Transcript = Transcript::parse("! config a=1\nC: NOOP\n@ eof\n").unwrap();
    /// assert_eq!(t.config_value("a"), Some("1"));
    /// assert_eq!(t.items, [Item::Client(b"NOOP\r\n".to_vec()), Item::Eof]);
    /// let e = Transcript::<()>::parse("C: NOOP\n! decide data = 250 ok\n").unwrap_err();
    /// assert_eq!(e.to_string(), "transcript line 2: unknown directive `! decide`");
    /// ```
    pub fn parse(text: &str) -> Result<Self, TranscriptError> {
        let mut t = Transcript::<D>::default();
        for (i, raw) in text.lines().enumerate() {
            let err = |reason: String| TranscriptError {
                line: i + 1,
                reason,
            };
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(rest) = line.strip_prefix("C:") {
                t.items.push(Item::Client(with_crlf(rest)));
            } else if let Some(rest) = line.strip_prefix("S:") {
                t.items.push(Item::Server(with_crlf(rest)));
            } else if let Some(rest) = line.strip_prefix("C~") {
                t.items.push(Item::Client(unescape(strip_one_space(rest))));
            } else if let Some(rest) = line.strip_prefix("S~") {
                t.items.push(Item::Server(unescape(strip_one_space(rest))));
            } else if let Some(rest) = line.strip_prefix("@ ") {
                t.items.push(parse_at(rest.trim()).ok_or_else(|| {
                    err("expected `@ +Ns`, `@ eof`, `@ tls` or `@ host ACTION`".to_owned())
                })?);
            } else if let Some(rest) = line.strip_prefix("! config ") {
                let (k, v) = rest
                    .split_once('=')
                    .ok_or_else(|| err("expected `! config key=value`".to_owned()))?;
                t.config.push((k.trim().to_owned(), v.trim().to_owned()));
            } else if let Some(rest) = line.strip_prefix("! ") {
                if !t.directives.parse_line(rest).map_err(err)? {
                    let word = rest.split_whitespace().next().unwrap_or_default();
                    return Err(err(format!("unknown directive `! {word}`")));
                }
            } else {
                return Err(err(
                    "unknown line; expected C:, S:, C~, S~, @, ! or #".to_owned()
                ));
            }
        }
        Ok(t)
    }
}

impl<D> Transcript<D> {
    /// The value of the last `! config key=...` line.
    pub fn config_value(&self, key: &str) -> Option<&str> {
        self.config
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// True if the transcript moves the clock (such transcripts cannot run in real time).
    pub fn uses_clock(&self) -> bool {
        self.items.iter().any(|i| matches!(i, Item::Advance(_)))
    }

    /// True if the transcript starts TLS (`@ tls`); a plain socket cannot play it.
    pub fn uses_tls(&self) -> bool {
        self.items.iter().any(|i| matches!(i, Item::Tls))
    }
}

/// `+Ns`, `eof` or `tls`.
fn parse_at(s: &str) -> Option<Item> {
    match s {
        "eof" => Some(Item::Eof),
        "tls" => Some(Item::Tls),
        _ if s.starts_with("host ") => Some(Item::Host(s["host ".len()..].trim().to_owned())),
        _ => {
            let secs = s.strip_prefix('+')?.strip_suffix('s')?.parse().ok()?;
            Some(Item::Advance(Duration::from_secs(secs)))
        }
    }
}

fn strip_one_space(s: &str) -> &str {
    s.strip_prefix(' ').unwrap_or(s)
}

fn with_crlf(rest: &str) -> Vec<u8> {
    let mut v = unescape(strip_one_space(rest));
    v.extend_from_slice(b"\r\n");
    v
}

impl<D: Directives> fmt::Display for Transcript<D> {
    /// The text form; parsing it gives the same transcript back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, v) in &self.config {
            writeln!(f, "! config {k}={v}")?;
        }
        self.directives.write_lines(f)?;
        for item in &self.items {
            match item {
                Item::Client(b) => write_bytes(f, 'C', b)?,
                Item::Server(b) => write_bytes(f, 'S', b)?,
                Item::Advance(d) => writeln!(f, "@ +{}s", d.as_secs())?,
                Item::Eof => writeln!(f, "@ eof")?,
                Item::Tls => writeln!(f, "@ tls")?,
                Item::Host(action) => writeln!(f, "@ host {action}")?,
            }
        }
        Ok(())
    }
}

/// One `X:` line per CRLF-terminated line, and a `X~` line for a tail without CRLF.
fn write_bytes(f: &mut fmt::Formatter<'_>, side: char, bytes: &[u8]) -> fmt::Result {
    let mut rest = bytes;
    while !rest.is_empty() {
        match rest.windows(2).position(|w| w == b"\r\n") {
            Some(i) if !rest[..i].contains(&b'\n') => {
                writeln!(f, "{side}: {}", escape(&rest[..i]))?;
                rest = &rest[i + 2..];
            }
            _ => {
                writeln!(f, "{side}~ {}", escape(rest))?;
                break;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_reads_back_the_same() {
        let text = "! config k=v\nC: EHLO a\\x00b\nC~ tail\\r\nS: 250 ok\n@ +5s\n@ tls\n@ host expunge INBOX 2\n@ eof\n";
        let t: Transcript = Transcript::parse(text).unwrap();
        assert_eq!(t.to_string(), text);
        assert_eq!(Transcript::<()>::parse(&t.to_string()).unwrap(), t);
    }

    #[test]
    fn bad_lines_name_their_number() {
        let e = Transcript::<()>::parse("C: a\n@ soon\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(
            e.reason,
            "expected `@ +Ns`, `@ eof`, `@ tls` or `@ host ACTION`"
        );
        let e = Transcript::<()>::parse("\n\nX: a\n").unwrap_err();
        assert_eq!(e.line, 3);
    }
}
