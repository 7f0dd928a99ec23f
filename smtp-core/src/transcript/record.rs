//! Recording a live session as a transcript, for `buzon serve --record`.

use std::time::Instant;

use line_protocol::sasl::redact_response;

use super::{SmtpDirectives, Transcript};
use crate::address::ForwardPath;
use crate::{Reply, ServerConfig};

/// Builds a [`Transcript`] from what a live SMTP session saw: the bytes each side sent, the
/// host's decisions and the time between events, with credentials left out. Pure: the caller
/// writes the result where it likes.
///
/// ```
/// use std::time::Instant;
/// use smtp_core::{ServerConfig, transcript::Recorder};
///
/// let now = Instant::now();
/// let mut r = Recorder::new(&ServerConfig::new("mx.example"), &["mx.example".into()], now);
/// r.server(b"220 mx.example ESMTP buzon\r\n", now);
/// r.client(b"QUIT\r\n", now);
/// let text = r.finish().to_string();
/// assert!(text.ends_with("S: 220 mx.example ESMTP buzon\nC: QUIT\n"));
/// ```
#[derive(Debug, Clone)]
pub struct Recorder(transcript::Recorder<SmtpDirectives>);

impl Recorder {
    /// Starts a recording of a session run with `config` for `domains`, opened at `now`.
    pub fn new(config: &ServerConfig, domains: &[String], now: Instant) -> Self {
        let l = &config.limits;
        let mut t = Transcript::default();
        for (k, v) in [
            ("hostname", config.hostname.clone()),
            ("domains", domains.join(",")),
            ("max_message", l.message_size.to_string()),
            ("max_recipients", l.recipients.to_string()),
            ("max_errors", l.errors.to_string()),
            ("command_line", l.command_line.to_string()),
            ("text_line", l.text_line.to_string()),
            (
                "command_timeout",
                config.timeouts.command.as_secs().to_string(),
            ),
            (
                "data_timeout",
                config.timeouts.data_block.as_secs().to_string(),
            ),
            ("starttls", config.starttls.to_string()),
            ("auth", config.auth.offered.to_string()),
            ("auth_plaintext", config.auth.plaintext.to_string()),
            ("auth_required", config.auth.required.to_string()),
        ] {
            t.config.push((k.to_owned(), v));
        }
        Recorder(transcript::Recorder::new(t, now))
    }

    /// Bytes the client sent. Credentials never reach a recording: the password in an `AUTH`
    /// line's initial response is written as `[redacted]` (responses after a `334` go
    /// through [`sasl_response`](Recorder::sasl_response)).
    pub fn client(&mut self, bytes: &[u8], now: Instant) {
        self.0.client(&redact_auth(bytes), now);
    }

    /// Bytes the server sent.
    pub fn server(&mut self, bytes: &[u8], now: Instant) {
        self.0.server(bytes, now);
    }

    /// A timer fired at `now`.
    pub fn timeout(&mut self, now: Instant) {
        self.0.timeout(now);
    }

    /// The transport became TLS.
    pub fn tls(&mut self, now: Instant) {
        self.0.tls(now);
    }

    /// The client closed its side.
    pub fn eof(&mut self, now: Instant) {
        self.0.eof(now);
    }

    /// A response line of a SASL exchange that carries a password (see
    /// `ServerSession::auth_response_is_secret`): recorded with the password redacted.
    pub fn sasl_response(&mut self, line: &[u8], now: Instant) {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        let mut redacted = redact_response(body);
        redacted.extend_from_slice(&line[body.len()..]);
        self.0.client(&redacted, now);
    }

    /// The host answered an AUTH with `reply` (235 or a refusal).
    pub fn auth_decision(&mut self, reply: &Reply) {
        let decisions = &mut self.0.transcript_mut().directives.auth_decisions;
        decisions.push(reply.clone());
    }

    /// The host refused a recipient with `reply`.
    pub fn refused_recipient(&mut self, to: &ForwardPath, reply: &Reply) {
        let path = to.to_string();
        let decisions = &mut self.0.transcript_mut().directives.rcpt_decisions;
        if !decisions.iter().any(|(p, _)| *p == path) {
            decisions.push((path, reply.clone()));
        }
    }

    /// The host answered a message end with `reply`.
    pub fn message_decision(&mut self, reply: &Reply) {
        let decisions = &mut self.0.transcript_mut().directives.data_decisions;
        decisions.push(reply.clone());
    }

    /// True if the client has sent nothing yet (a port probe, a health check).
    pub fn is_silent(&self) -> bool {
        self.0.is_silent()
    }

    /// The transcript so far.
    pub fn finish(self) -> Transcript {
        self.0.finish()
    }
}

/// `bytes` with the credentials of every `AUTH` line replaced: the password inside a PLAIN
/// initial response becomes `[redacted]` (see [`redact_response`]); a LOGIN initial response
/// is a user name and stays.
fn redact_auth(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let is_auth = |line: &[u8]| line.len() > 5 && line[..5].eq_ignore_ascii_case(b"AUTH ");
    if !bytes.split(|&b| b == b'\n').any(is_auth) {
        return std::borrow::Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if !is_auth(line) {
            out.extend_from_slice(line);
            continue;
        }
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        let ending = &line[body.len()..];
        let mut words = body[5..].split(|&b| b == b' ').filter(|w| !w.is_empty());
        out.extend_from_slice(&body[..5]);
        let mechanism = words.next().unwrap_or_default();
        out.extend_from_slice(mechanism);
        let rest: Vec<&[u8]> = words.collect();
        match rest[..] {
            [] => {}
            [initial] if mechanism.eq_ignore_ascii_case(b"LOGIN") => {
                out.push(b' ');
                out.extend_from_slice(initial);
            }
            [initial] => {
                out.push(b' ');
                out.extend_from_slice(&redact_response(initial));
            }
            // Not AUTH's syntax; whatever it holds stays out.
            _ => out.extend_from_slice(b" [redacted]"),
        }
        out.extend_from_slice(ending);
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::redact_auth;

    #[test]
    fn credentials_never_reach_a_recording() {
        assert_eq!(
            &*redact_auth(b"EHLO x\r\nauth PLAIN AGFsaWNlAHNlY3JldA==\r\nNOOP\r\n"),
            b"EHLO x\r\nauth PLAIN AGFsaWNlAFtyZWRhY3RlZF0=\r\nNOOP\r\n"
        );
        assert_eq!(
            &*redact_auth(b"AUTH LOGIN YWxpY2U=\r\n"),
            b"AUTH LOGIN YWxpY2U=\r\n"
        );
        assert_eq!(
            &*redact_auth(b"AUTH PLAIN secret words\r\n"),
            b"AUTH PLAIN [redacted]\r\n"
        );
        assert_eq!(&*redact_auth(b"AUTH LOGIN\r\n"), b"AUTH LOGIN\r\n");
        assert_eq!(
            &*redact_auth(b"MAIL FROM:<a@b>\r\n"),
            b"MAIL FROM:<a@b>\r\n"
        );
    }
}
