//! SMTP's own transcript lines: the host's decisions and the client's messages.

use std::fmt;

use transcript::{Directives, escape, unescape};

use crate::Reply;
use crate::address::{parse_forward_path, parse_reverse_path};
use crate::client::Message;

/// SMTP's `!` lines:
///
/// ```text
/// ! decide rcpt <nobody@example.com> = 550 5.1.1 no such user
/// ! decide data = 451 4.3.0 storage failed
/// ! submit from=<a@example.org> to=<b@example.com> <c@example.com> body=Subject: hi\r\n\r\nhi\r\n
/// ! quit
/// ```
///
/// `decide` lines script a server's host; `submit` and `quit` tell a client what to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SmtpDirectives {
    /// `! decide rcpt <path> = reply` lines: the host's answer for that recipient.
    pub rcpt_decisions: Vec<(String, Reply)>,
    /// `! decide data = reply` lines: the host's answers to successive message ends.
    pub data_decisions: Vec<Reply>,
    /// `! decide auth = reply` lines: the host's answers to successive AUTH exchanges
    /// (`235 ...` accepts, anything else refuses).
    pub auth_decisions: Vec<Reply>,
    /// `! submit from=<a> to=<b> <c> body=...` lines: messages a client transcript sends.
    pub messages: Vec<Message>,
    /// `! quit`: the client says QUIT once its messages are sent.
    pub quit: bool,
}

impl Directives for SmtpDirectives {
    fn parse_line(&mut self, line: &str) -> Result<bool, String> {
        if let Some(rest) = line.strip_prefix("submit ") {
            let m = parse_submit(rest)
                .ok_or("expected `! submit from=<a> to=<b> [<c>...] body=...`")?;
            self.messages.push(m);
        } else if line.trim_end() == "quit" {
            self.quit = true;
        } else if let Some(rest) = line.strip_prefix("decide ") {
            let (what, reply) = rest
                .split_once(" = ")
                .ok_or("expected `! decide ... = CODE text`")?;
            let reply = parse_reply_line(reply).ok_or("bad reply")?;
            match what.trim() {
                "data" => self.data_decisions.push(reply),
                "auth" => self.auth_decisions.push(reply),
                w => match w.strip_prefix("rcpt ") {
                    Some(path) => self.rcpt_decisions.push((path.trim().to_owned(), reply)),
                    None => {
                        return Err("expected `! decide rcpt <path>`, `data` or `auth`".into());
                    }
                },
            }
        } else {
            return Ok(false);
        }
        Ok(true)
    }

    fn write_lines(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (path, reply) in &self.rcpt_decisions {
            writeln!(f, "! decide rcpt {path} = {reply}")?;
        }
        for reply in &self.data_decisions {
            writeln!(f, "! decide data = {reply}")?;
        }
        for reply in &self.auth_decisions {
            writeln!(f, "! decide auth = {reply}")?;
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
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::super::Transcript;

    #[test]
    fn smtp_lines_read_back_the_same() {
        let text = "! config hostname=mx.example\n\
                    ! decide rcpt <nobody@example.com> = 550 5.1.1 no such user\n\
                    ! decide data = 451 4.3.0 storage failed\n\
                    ! decide auth = 535 5.7.8 Authentication credentials invalid\n\
                    ! submit from=<a@example.org> to=<b@example.com> <c@example.com> body=hi\\r\\n\n\
                    ! quit\n\
                    C: QUIT\n";
        let t = Transcript::parse(text).unwrap();
        assert_eq!(t.directives.rcpt_decisions.len(), 1);
        assert_eq!(t.directives.data_decisions[0].code(), 451);
        assert_eq!(t.directives.messages[0].recipients.len(), 2);
        assert_eq!(t.directives.messages[0].body, b"hi\r\n");
        assert!(t.directives.quit);
        assert_eq!(t.to_string(), text);
    }

    #[test]
    fn bad_smtp_lines_say_what_was_expected() {
        let e = Transcript::parse("! decide data = 99 no\n").unwrap_err();
        assert_eq!((e.line, e.reason.as_str()), (1, "bad reply"));
        let e = Transcript::parse("C: x\n! decide helo = 250 ok\n").unwrap_err();
        assert_eq!(
            e.reason,
            "expected `! decide rcpt <path>`, `data` or `auth`"
        );
        let e = Transcript::parse("! submit to=<b@example.com>\n").unwrap_err();
        assert_eq!(
            e.reason,
            "expected `! submit from=<a> to=<b> [<c>...] body=...`"
        );
        let e = Transcript::parse("! frobnicate\n").unwrap_err();
        assert_eq!(e.reason, "unknown directive `! frobnicate`");
    }
}
