//! SMTP commands: parsing a command line (RFC 5321 section 4.1.1) and rendering one.

use std::fmt;

use crate::address::{
    self, AddressError, ForwardPath, ReversePath, parse_forward_path, parse_reverse_path,
};

/// An ESMTP parameter `KEYWORD[=value]` after MAIL or RCPT (RFC 5321 section 4.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The keyword, upper-cased.
    pub keyword: String,
    /// The value, if any.
    pub value: Option<String>,
}

/// One SMTP command.
///
/// ```
/// use smtp_core::command::Command;
/// let cmd = Command::parse(b"mail from:<a@example.org> SIZE=100").unwrap();
/// assert_eq!(cmd.to_string(), "MAIL FROM:<a@example.org> SIZE=100");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// `EHLO domain`.
    Ehlo(String),
    /// `HELO domain`.
    Helo(String),
    /// `MAIL FROM:<path> params`.
    Mail(ReversePath, Vec<Param>),
    /// `RCPT TO:<path> params`.
    Rcpt(ForwardPath, Vec<Param>),
    /// `DATA`.
    Data,
    /// `BDAT size [LAST]` (RFC 3030).
    Bdat {
        /// Octets that follow the command line.
        size: u64,
        /// True for the final chunk.
        last: bool,
    },
    /// `RSET`.
    Rset,
    /// `NOOP [string]`.
    Noop,
    /// `QUIT`.
    Quit,
    /// `VRFY string`.
    Vrfy(String),
    /// `EXPN string`.
    Expn(String),
    /// `HELP [topic]`.
    Help(Option<String>),
    /// `STARTTLS` (RFC 3207).
    StartTls,
    /// `AUTH mechanism ...` (RFC 4954).
    Auth(String),
}

/// Why a command line is not a valid command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// The verb is not an SMTP command (500).
    Unrecognized,
    /// A verb of RFC 5321 or its extensions that this implementation does not offer (502).
    NotImplemented,
    /// The arguments are wrong (501); the text says how.
    Syntax(&'static str),
    /// An argument holds a NUL, a terminal escape or another control character (501 5.5.2).
    /// Such bytes would otherwise reach the stored mail (the EHLO name is written into
    /// `Received:`) and the logs.
    ControlCharacter,
    /// The MAIL path is malformed (501 5.1.7).
    BadSender(AddressError),
    /// The RCPT path is malformed (501 5.1.3).
    BadRecipient(AddressError),
}

impl Command {
    /// Parses one command line, without its CRLF.
    pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
        let verb_end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
        let verb = &line[..verb_end];
        let arg_bytes = line.get(verb_end + 1..).unwrap_or_default();
        if !verb.iter().all(u8::is_ascii_alphabetic) || verb.is_empty() {
            return Err(ParseError::Unrecognized);
        }
        let verb = verb.to_ascii_uppercase();
        if arg_bytes.iter().any(|&b| b == b'\r' || b == b'\n') {
            // A CR or LF inside a command line is never part of a command (RFC 5321 section
            // 2.3.8); passing it on would let a name like "a\rb" reach the host's logs.
            return Err(ParseError::Syntax("bare CR or LF in the command line"));
        }
        let arg =
            std::str::from_utf8(arg_bytes).map_err(|_| ParseError::Syntax("invalid UTF-8"))?;
        let trimmed = arg.trim_matches(' ');
        let no_args = |cmd: Command| {
            if trimmed.is_empty() {
                Ok(cmd)
            } else {
                Err(ParseError::Syntax("no parameters allowed"))
            }
        };
        match &verb[..] {
            b"EHLO" | b"HELO" => {
                // RFC 5321 4.1.1.1: the argument is a domain or an address literal; accepting
                // any single word keeps broken clients working while refusing nothing useful.
                if trimmed.is_empty() {
                    return Err(ParseError::Syntax("domain name required"));
                }
                if trimmed.chars().any(char::is_control) {
                    return Err(ParseError::ControlCharacter);
                }
                let name = trimmed.split(' ').next().unwrap_or(trimmed).to_owned();
                Ok(if verb == b"EHLO" {
                    Command::Ehlo(name)
                } else {
                    Command::Helo(name)
                })
            }
            b"MAIL" => {
                let rest = strip_prefix_ci(arg, "FROM:").ok_or(ParseError::Syntax(
                    "syntax is MAIL FROM:<address> [parameters]",
                ))?;
                let (path, params) = parse_reverse_path(rest).map_err(ParseError::BadSender)?;
                Ok(Command::Mail(path, parse_params(params)?))
            }
            b"RCPT" => {
                let rest = strip_prefix_ci(arg, "TO:").ok_or(ParseError::Syntax(
                    "syntax is RCPT TO:<address> [parameters]",
                ))?;
                let (path, params) = parse_forward_path(rest).map_err(ParseError::BadRecipient)?;
                Ok(Command::Rcpt(path, parse_params(params)?))
            }
            b"DATA" => no_args(Command::Data),
            b"BDAT" => parse_bdat(trimmed),
            b"RSET" => no_args(Command::Rset),
            b"NOOP" => Ok(Command::Noop),
            b"QUIT" => no_args(Command::Quit),
            b"VRFY" | b"EXPN" => {
                if trimmed.is_empty() {
                    return Err(ParseError::Syntax("argument required"));
                }
                Ok(if verb == b"VRFY" {
                    Command::Vrfy(trimmed.to_owned())
                } else {
                    Command::Expn(trimmed.to_owned())
                })
            }
            b"HELP" => Ok(Command::Help(
                (!trimmed.is_empty()).then(|| trimmed.to_owned()),
            )),
            b"STARTTLS" => no_args(Command::StartTls),
            b"AUTH" => Ok(Command::Auth(trimmed.to_owned())),
            // RFC 5321 commands and old extensions nobody should use any more.
            b"TURN" | b"ETRN" | b"ATRN" | b"SEND" | b"SOML" | b"SAML" => {
                Err(ParseError::NotImplemented)
            }
            _ => Err(ParseError::Unrecognized),
        }
    }

    /// Appends the wire form with CRLF to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params = |f: &mut fmt::Formatter<'_>, params: &[Param]| -> fmt::Result {
            for p in params {
                match &p.value {
                    Some(v) => write!(f, " {}={}", p.keyword, v)?,
                    None => write!(f, " {}", p.keyword)?,
                }
            }
            Ok(())
        };
        match self {
            Command::Ehlo(d) => write!(f, "EHLO {d}"),
            Command::Helo(d) => write!(f, "HELO {d}"),
            Command::Mail(p, ps) => {
                write!(f, "MAIL FROM:{p}")?;
                params(f, ps)
            }
            Command::Rcpt(p, ps) => {
                write!(f, "RCPT TO:{p}")?;
                params(f, ps)
            }
            Command::Data => f.write_str("DATA"),
            Command::Bdat { size, last: true } => write!(f, "BDAT {size} LAST"),
            Command::Bdat { size, last: false } => write!(f, "BDAT {size}"),
            Command::Rset => f.write_str("RSET"),
            Command::Noop => f.write_str("NOOP"),
            Command::Quit => f.write_str("QUIT"),
            Command::Vrfy(s) => write!(f, "VRFY {s}"),
            Command::Expn(s) => write!(f, "EXPN {s}"),
            Command::Help(None) => f.write_str("HELP"),
            Command::Help(Some(t)) => write!(f, "HELP {t}"),
            Command::StartTls => f.write_str("STARTTLS"),
            Command::Auth(a) => write!(f, "AUTH {a}"),
        }
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// `bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ]` (RFC 3030 section 2).
fn parse_bdat(arg: &str) -> Result<Command, ParseError> {
    let mut words = arg.split(' ').filter(|w| !w.is_empty());
    let size = words
        .next()
        .filter(|w| w.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|w| w.parse::<u64>().ok())
        .ok_or(ParseError::Syntax("syntax is BDAT <size> [LAST]"))?;
    let last = match words.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(ParseError::Syntax("syntax is BDAT <size> [LAST]")),
    };
    if words.next().is_some() {
        return Err(ParseError::Syntax("syntax is BDAT <size> [LAST]"));
    }
    Ok(Command::Bdat { size, last })
}

/// `esmtp-param = esmtp-keyword ["=" esmtp-value]`, separated by single spaces.
fn parse_params(s: &str) -> Result<Vec<Param>, ParseError> {
    let mut out = Vec::new();
    for word in s.split(' ').filter(|w| !w.is_empty()) {
        let (keyword, value) = match word.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (word, None),
        };
        let keyword_ok = keyword
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
            && keyword
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        // esmtp-value = 1*(%d33-60 / %d62-126), widened to UTF-8 by RFC 6531.
        let value_ok = value
            .is_none_or(|v| !v.is_empty() && v.chars().all(|c| c > ' ' && c != '=' && c != '\x7f'));
        if !keyword_ok || !value_ok {
            return Err(ParseError::Syntax("malformed parameter"));
        }
        out.push(Param {
            keyword: keyword.to_ascii_uppercase(),
            value: value.map(str::to_owned),
        });
    }
    Ok(out)
}

/// True if `s` is acceptable as the EHLO/HELO argument by the strict grammar.
pub fn is_valid_helo(s: &str) -> bool {
    address::is_domain_or_literal(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_are_case_insensitive_and_render_canonically() {
        for (input, rendered) in [
            ("ehlo client.example", "EHLO client.example"),
            ("MAIL FROM:<>", "MAIL FROM:<>"),
            (
                "Mail From: <a@b.c> body=8bitmime",
                "MAIL FROM:<a@b.c> BODY=8bitmime",
            ),
            ("rcpt to:<Postmaster>", "RCPT TO:<postmaster>"),
            ("bdat 10 last", "BDAT 10 LAST"),
            ("BDAT 0", "BDAT 0"),
            ("noop anything at all", "NOOP"),
            ("help mail", "HELP mail"),
        ] {
            assert_eq!(
                Command::parse(input.as_bytes()).unwrap().to_string(),
                rendered
            );
        }
    }

    #[test]
    fn errors_are_classified() {
        assert_eq!(Command::parse(b"FOO"), Err(ParseError::Unrecognized));
        assert_eq!(Command::parse(b""), Err(ParseError::Unrecognized));
        assert_eq!(Command::parse(b"MA1L"), Err(ParseError::Unrecognized));
        assert_eq!(Command::parse(b"TURN"), Err(ParseError::NotImplemented));
        assert!(matches!(
            Command::parse(b"EHLO"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            Command::parse(b"DATA x"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            Command::parse(b"BDAT x"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            Command::parse(b"BDAT 1 FIRST"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            Command::parse(b"MAIL TO:<a@b>"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            Command::parse(b"MAIL FROM:a@b"),
            Err(ParseError::BadSender(_))
        ));
        assert!(matches!(
            Command::parse(b"RCPT TO:<>"),
            Err(ParseError::BadRecipient(_))
        ));
        assert!(matches!(
            Command::parse(b"MAIL FROM:<a@b> SIZE="),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            Command::parse(b"EHLO a\rb"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            Command::parse(b"VRFY a\nb"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(
            Command::parse(b"RSET \xff"),
            Err(ParseError::Syntax(_))
        ));
    }
}
