//! The transcript file format: parsing and byte escapes.

use std::fmt;
use std::time::Duration;

use crate::Reply;
use crate::address::{parse_forward_path, parse_reverse_path};
use crate::client::Message;

/// One line of a transcript, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Item {
    /// Bytes the client sends.
    Client(Vec<u8>),
    /// Bytes the server is expected to send.
    Server(Vec<u8>),
    /// Move the clock forward, then fire due timers.
    Advance(Duration),
    /// The client closes its side.
    Eof,
    /// The transport becomes TLS here (after `220` to STARTTLS): what the client pipelined
    /// after STARTTLS is dropped, as the driver does, and the session hears `handle_tls`. The
    /// lines that follow are the plaintext inside TLS.
    Tls,
}

/// A parsed transcript: settings, host decisions and the conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transcript {
    /// `! config key=value` lines, in order.
    pub config: Vec<(String, String)>,
    /// `! decide rcpt <path> = reply` lines: the host's answer for that recipient.
    pub rcpt_decisions: Vec<(String, Reply)>,
    /// `! decide data = reply` lines: the host's answers to successive message ends.
    pub data_decisions: Vec<Reply>,
    /// `! submit from=<a> to=<b> <c> body=...` lines: messages a client transcript sends.
    pub messages: Vec<Message>,
    /// `! quit`: the client says QUIT once its messages are sent.
    pub quit: bool,
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

impl Transcript {
    /// Parses the text form.
    pub fn parse(text: &str) -> Result<Transcript, TranscriptError> {
        let mut t = Transcript::default();
        for (i, raw) in text.lines().enumerate() {
            let err = |reason: &str| TranscriptError {
                line: i + 1,
                reason: reason.to_owned(),
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
                let rest = rest.trim();
                if rest == "eof" {
                    t.items.push(Item::Eof);
                } else if rest == "tls" {
                    t.items.push(Item::Tls);
                } else {
                    let secs = rest
                        .strip_prefix('+')
                        .and_then(|r| r.strip_suffix('s'))
                        .and_then(|n| n.parse::<u64>().ok())
                        .ok_or_else(|| err("expected `@ +Ns`, `@ eof` or `@ tls`"))?;
                    t.items.push(Item::Advance(Duration::from_secs(secs)));
                }
            } else if let Some(rest) = line.strip_prefix("! config ") {
                let (k, v) = rest
                    .split_once('=')
                    .ok_or_else(|| err("expected `! config key=value`"))?;
                t.config.push((k.trim().to_owned(), v.trim().to_owned()));
            } else if let Some(rest) = line.strip_prefix("! submit ") {
                t.messages.push(
                    parse_submit(rest).ok_or_else(|| {
                        err("expected `! submit from=<a> to=<b> [<c>...] body=...`")
                    })?,
                );
            } else if line.trim_end() == "! quit" {
                t.quit = true;
            } else if let Some(rest) = line.strip_prefix("! decide ") {
                let (what, reply) = rest
                    .split_once(" = ")
                    .ok_or_else(|| err("expected `! decide ... = CODE text`"))?;
                let reply = parse_reply_line(reply).ok_or_else(|| err("bad reply"))?;
                match what.trim() {
                    "data" => t.data_decisions.push(reply),
                    w => match w.strip_prefix("rcpt ") {
                        Some(path) => t.rcpt_decisions.push((path.trim().to_owned(), reply)),
                        None => return Err(err("expected `! decide rcpt <path>` or `data`")),
                    },
                }
            } else {
                return Err(err("unknown line; expected C:, S:, C~, S~, @, ! or #"));
            }
        }
        Ok(t)
    }

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

/// `from=<a> to=<b> <c> body=escaped text to the end of the line`.
fn parse_submit(s: &str) -> Option<Message> {
    let rest = s.trim_start().strip_prefix("from=")?;
    let (from, rest) = parse_reverse_path(rest).ok()?;
    let mut rest = rest.strip_prefix("to=")?;
    let mut recipients = Vec::new();
    while rest.starts_with('<') {
        let (to, after) = parse_forward_path(rest).ok()?;
        recipients.push(to);
        rest = after;
    }
    let body = unescape(rest.strip_prefix("body=")?);
    Some(Message {
        from,
        recipients,
        body,
    })
}

fn strip_one_space(s: &str) -> &str {
    s.strip_prefix(' ').unwrap_or(s)
}

fn with_crlf(rest: &str) -> Vec<u8> {
    let mut v = unescape(strip_one_space(rest));
    v.extend_from_slice(b"\r\n");
    v
}

/// Parses `550 5.1.1 text` into a reply (the enhanced code is optional).
fn parse_reply_line(s: &str) -> Option<Reply> {
    let s = s.trim();
    let (code, rest) = s.split_at_checked(3)?;
    let code: u16 = code.parse().ok()?;
    if !(200..600).contains(&code) {
        return None;
    }
    let rest = rest.trim_start();
    let mut parts = rest.splitn(2, ' ');
    let first = parts.next().unwrap_or("");
    let enhanced = crate::reply::parse_enhanced(first);
    Some(match enhanced {
        Some(e) => Reply::new(code, e, parts.next().unwrap_or("")),
        None => Reply::multiline(code, None, [rest]),
    })
}

/// Turns the escapes `\r \n \t \\ \xHH` into bytes; other backslashes stay literal.
///
/// ```
/// assert_eq!(smtp_core::transcript::unescape(r"a\r\n\x00\q"), b"a\r\n\0\\q");
/// ```
pub fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let decoded = match b[i + 1] {
                b'r' => Some((b'\r', 2)),
                b'n' => Some((b'\n', 2)),
                b't' => Some((b'\t', 2)),
                b'\\' => Some((b'\\', 2)),
                b'x' => s
                    .get(i + 2..i + 4)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .map(|v| (v, 4)),
                _ => None,
            };
            if let Some((byte, len)) = decoded {
                out.push(byte);
                i += len;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Writes bytes so that [`unescape`] gives them back: printable ASCII and UTF-8 as is, a
/// backslash doubled, everything else as an escape.
///
/// ```
/// use smtp_core::transcript::{escape, unescape};
/// let bytes = b"caf\xc3\xa9 \\ \r\n\x7f";
/// assert_eq!(escape(bytes), r"café \\ \r\n\x7f");
/// assert_eq!(unescape(&escape(bytes)), bytes);
/// ```
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\r' => out.push_str(r"\r"),
                '\n' => out.push_str(r"\n"),
                '\t' => out.push_str(r"\t"),
                '\\' => out.push_str(r"\\"),
                c if c.is_control() => {
                    for b in c.to_string().bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

impl fmt::Display for Transcript {
    /// The text form; parsing it gives the same transcript back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, v) in &self.config {
            writeln!(f, "! config {k}={v}")?;
        }
        for (path, reply) in &self.rcpt_decisions {
            writeln!(f, "! decide rcpt {path} = {reply}")?;
        }
        for reply in &self.data_decisions {
            writeln!(f, "! decide data = {reply}")?;
        }
        for m in &self.messages {
            let to: Vec<String> = m.recipients.iter().map(ToString::to_string).collect();
            writeln!(
                f,
                "! submit from={} to={} body={}",
                m.from,
                to.join(" "),
                escape(&m.body)
            )?;
        }
        if self.quit {
            writeln!(f, "! quit")?;
        }
        for item in &self.items {
            match item {
                Item::Client(b) => write_bytes(f, 'C', b)?,
                Item::Server(b) => write_bytes(f, 'S', b)?,
                Item::Advance(d) => writeln!(f, "@ +{}s", d.as_secs())?,
                Item::Eof => writeln!(f, "@ eof")?,
                Item::Tls => writeln!(f, "@ tls")?,
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
