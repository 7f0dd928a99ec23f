//! SMTP commands: parsing a command line (RFC 5321 section 4.1.1) and rendering one.

use std::fmt;

use crate::address::{
    self, AddressError, ForwardPath, ReversePath, parse_forward_path, parse_reverse_path,
};

/// An ESMTP parameter `KEYWORD[=value]` after MAIL or RCPT (RFC 5321 section 4.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
    /// `AUTH mechanism [initial-response]` (RFC 4954); the arguments may hold credentials.
    Auth(Secret),
}

/// Why a command line is not a valid command. Each variant carries what was wrong;
/// [`detail`](CommandError::detail) says it in the words of the 501 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// The verb is not an SMTP command (500).
    Unrecognized {
        /// The verb as sent (at most 16 octets of it, lossily decoded).
        verb: String,
    },
    /// A verb of RFC 5321 or its extensions that this implementation does not offer (502).
    NotImplemented {
        /// The verb, upper-cased.
        verb: String,
    },
    /// A CR or LF inside the command line (RFC 5321 section 2.3.8).
    LineBreak,
    /// The arguments are not UTF-8.
    InvalidUtf8,
    /// A command that takes no arguments got some.
    UnexpectedArgument {
        /// The command.
        verb: &'static str,
    },
    /// A command that needs an argument got none.
    MissingArgument {
        /// The command.
        verb: &'static str,
    },
    /// `MAIL` or `RCPT` without its `FROM:` or `TO:`.
    PathSyntax {
        /// The command.
        verb: &'static str,
    },
    /// `BDAT` without a chunk size, or with something else than `LAST` after it.
    BdatSyntax {
        /// The arguments as sent.
        arguments: String,
    },
    /// An ESMTP parameter that is not `KEYWORD[=value]` (RFC 5321 section 4.1.2).
    MalformedParameter {
        /// The parameter as sent.
        parameter: String,
    },
    /// An argument holds a NUL, a terminal escape or another control character (501 5.5.2).
    /// Such bytes would otherwise reach the stored mail (the EHLO name is written into
    /// `Received:`) and the logs.
    ControlCharacter,
    /// The MAIL path is malformed (501 5.1.7).
    BadSender(AddressError),
    /// The RCPT path is malformed (501 5.1.3).
    BadRecipient(AddressError),
}

impl CommandError {
    /// What is wrong, in the words of the `501 5.5.4 Syntax error: ...` reply (for the
    /// variants answered that way).
    ///
    /// ```
    /// use smtp_core::command::{Command, CommandError};
    /// let e = Command::parse(b"RSET now").unwrap_err();
    /// assert_eq!(e, CommandError::UnexpectedArgument { verb: "RSET" });
    /// assert_eq!(e.detail(), "no parameters allowed");
    /// ```
    pub fn detail(&self) -> String {
        match self {
            CommandError::Unrecognized { .. } => "command not recognized".to_owned(),
            CommandError::NotImplemented { .. } => "command not implemented".to_owned(),
            CommandError::LineBreak => "bare CR or LF in the command line".to_owned(),
            CommandError::InvalidUtf8 => "invalid UTF-8".to_owned(),
            CommandError::UnexpectedArgument { .. } => "no parameters allowed".to_owned(),
            CommandError::MissingArgument {
                verb: "EHLO" | "HELO",
            } => "domain name required".to_owned(),
            CommandError::MissingArgument { .. } => "argument required".to_owned(),
            CommandError::PathSyntax { verb: "MAIL" } => {
                "syntax is MAIL FROM:<address> [parameters]".to_owned()
            }
            CommandError::PathSyntax { .. } => {
                "syntax is RCPT TO:<address> [parameters]".to_owned()
            }
            CommandError::BdatSyntax { .. } => "syntax is BDAT <size> [LAST]".to_owned(),
            CommandError::MalformedParameter { .. } => "malformed parameter".to_owned(),
            CommandError::ControlCharacter => "control character in the argument".to_owned(),
            CommandError::BadSender(_) => "bad sender address".to_owned(),
            CommandError::BadRecipient(_) => "bad recipient address".to_owned(),
        }
    }
}

/// A credential (a SASL response, a password): kept out of `Debug` output and logs.
///
/// ```
/// let s = smtp_core::command::Secret::new("PLAIN AGFsaWNlAHNlY3JldA==");
/// assert_eq!(format!("{s:?}"), "Secret(..)");
/// assert_eq!(s.expose(), "PLAIN AGFsaWNlAHNlY3JldA==");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The credential itself, for the code that checks it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Command {
    /// Parses one command line, without its CRLF.
    pub fn parse(line: &[u8]) -> Result<Command, CommandError> {
        let verb_end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
        let verb = &line[..verb_end];
        let arg_bytes = line.get(verb_end + 1..).unwrap_or_default();
        if !verb.iter().all(u8::is_ascii_alphabetic) || verb.is_empty() {
            return Err(CommandError::Unrecognized {
                verb: String::from_utf8_lossy(&verb[..verb.len().min(16)]).into_owned(),
            });
        }
        let verb = verb.to_ascii_uppercase();
        if arg_bytes.iter().any(|&b| b == b'\r' || b == b'\n') {
            // A CR or LF inside a command line is never part of a command (RFC 5321 section
            // 2.3.8); passing it on would let a name like "a\rb" reach the host's logs.
            return Err(CommandError::LineBreak);
        }
        let arg = std::str::from_utf8(arg_bytes).map_err(|_| CommandError::InvalidUtf8)?;
        let trimmed = arg.trim_matches(' ');
        let no_args = |verb: &'static str, cmd: Command| {
            if trimmed.is_empty() {
                Ok(cmd)
            } else {
                Err(CommandError::UnexpectedArgument { verb })
            }
        };
        match &verb[..] {
            b"EHLO" | b"HELO" => {
                let name = if verb == b"EHLO" { "EHLO" } else { "HELO" };
                // RFC 5321 4.1.1.1: the argument is a domain or an address literal; accepting
                // any single word keeps broken clients working while refusing nothing useful.
                if trimmed.is_empty() {
                    return Err(CommandError::MissingArgument { verb: name });
                }
                if trimmed.chars().any(char::is_control) {
                    return Err(CommandError::ControlCharacter);
                }
                let domain = trimmed.split(' ').next().unwrap_or(trimmed).to_owned();
                Ok(if verb == b"EHLO" {
                    Command::Ehlo(domain)
                } else {
                    Command::Helo(domain)
                })
            }
            b"MAIL" => {
                let rest = strip_prefix_ci(arg, "FROM:")
                    .ok_or(CommandError::PathSyntax { verb: "MAIL" })?;
                let (path, params) = parse_reverse_path(rest).map_err(CommandError::BadSender)?;
                Ok(Command::Mail(path, parse_params(params)?))
            }
            b"RCPT" => {
                let rest =
                    strip_prefix_ci(arg, "TO:").ok_or(CommandError::PathSyntax { verb: "RCPT" })?;
                let (path, params) =
                    parse_forward_path(rest).map_err(CommandError::BadRecipient)?;
                Ok(Command::Rcpt(path, parse_params(params)?))
            }
            b"DATA" => no_args("DATA", Command::Data),
            b"BDAT" => parse_bdat(trimmed),
            b"RSET" => no_args("RSET", Command::Rset),
            b"NOOP" => Ok(Command::Noop),
            b"QUIT" => no_args("QUIT", Command::Quit),
            b"VRFY" | b"EXPN" => {
                if trimmed.is_empty() {
                    let name = if verb == b"VRFY" { "VRFY" } else { "EXPN" };
                    return Err(CommandError::MissingArgument { verb: name });
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
            b"STARTTLS" => no_args("STARTTLS", Command::StartTls),
            b"AUTH" => Ok(Command::Auth(Secret::new(trimmed))),
            // RFC 5321 commands and old extensions nobody should use any more.
            b"TURN" | b"ETRN" | b"ATRN" | b"SEND" | b"SOML" | b"SAML" => {
                Err(CommandError::NotImplemented {
                    verb: String::from_utf8_lossy(&verb).into_owned(),
                })
            }
            _ => Err(CommandError::Unrecognized {
                verb: String::from_utf8_lossy(&verb[..verb.len().min(16)]).into_owned(),
            }),
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
            Command::Auth(a) => write!(f, "AUTH {}", a.expose()),
        }
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// `bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ]` (RFC 3030 section 2).
fn parse_bdat(arg: &str) -> Result<Command, CommandError> {
    let bad = || CommandError::BdatSyntax {
        arguments: arg.to_owned(),
    };
    let mut words = arg.split(' ').filter(|w| !w.is_empty());
    let size = words
        .next()
        .filter(|w| w.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|w| w.parse::<u64>().ok())
        .ok_or_else(bad)?;
    let last = match words.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(bad()),
    };
    if words.next().is_some() {
        return Err(bad());
    }
    Ok(Command::Bdat { size, last })
}

/// `esmtp-param = esmtp-keyword ["=" esmtp-value]`, separated by single spaces.
fn parse_params(s: &str) -> Result<Vec<Param>, CommandError> {
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
            return Err(CommandError::MalformedParameter {
                parameter: word.to_owned(),
            });
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
        for (line, verb) in [(&b"FOO"[..], "FOO"), (b"", ""), (b"MA1L", "MA1L")] {
            assert_eq!(
                Command::parse(line),
                Err(CommandError::Unrecognized { verb: verb.into() })
            );
        }
        assert_eq!(
            Command::parse(b"TURN"),
            Err(CommandError::NotImplemented {
                verb: "TURN".into()
            })
        );
        let err = |line: &[u8]| Command::parse(line).unwrap_err();
        assert_eq!(err(b"EHLO"), CommandError::MissingArgument { verb: "EHLO" });
        assert_eq!(
            err(b"DATA x"),
            CommandError::UnexpectedArgument { verb: "DATA" }
        );
        assert_eq!(
            err(b"BDAT x"),
            CommandError::BdatSyntax {
                arguments: "x".into()
            }
        );
        assert_eq!(
            err(b"BDAT 1 FIRST"),
            CommandError::BdatSyntax {
                arguments: "1 FIRST".into()
            }
        );
        assert_eq!(
            err(b"MAIL TO:<a@b>"),
            CommandError::PathSyntax { verb: "MAIL" }
        );
        assert!(matches!(
            Command::parse(b"MAIL FROM:a@b"),
            Err(CommandError::BadSender(_))
        ));
        assert!(matches!(
            Command::parse(b"RCPT TO:<>"),
            Err(CommandError::BadRecipient(_))
        ));
        assert_eq!(
            err(b"MAIL FROM:<a@b> SIZE="),
            CommandError::MalformedParameter {
                parameter: "SIZE=".into()
            }
        );
        assert_eq!(err(b"EHLO a\rb"), CommandError::LineBreak);
        assert_eq!(err(b"VRFY a\nb"), CommandError::LineBreak);
        assert_eq!(err(b"RSET \xff"), CommandError::InvalidUtf8);
        assert_eq!(err(b"EHLO a\x1bb"), CommandError::ControlCharacter);
        // Credentials stay out of Debug output.
        let auth = Command::parse(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==").unwrap();
        assert_eq!(format!("{auth:?}"), "Auth(Secret(..))");
    }
}
