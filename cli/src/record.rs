//! `buzon serve --record DIR`: each session written as a transcript that `buzon replay` (or
//! any test suite using `smtp_core::transcript`) can replay.
//!
//! [`Recorded`] wraps the server session and notes exactly the bytes it consumed and produced,
//! plus the host's refusals, so the transcript replays to the same replies.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use session_api::Session;
use smtp_core::transcript::Recorder;
use smtp_core::{Reply, ServerEvent, ServerSession, Ticket, Verdict};

/// A server session that can record itself.
pub(crate) struct Recorded {
    inner: ServerSession,
    recorder: Option<(Recorder, PathBuf)>,
    /// Recipient events seen, so that a refusal can name its path.
    last_recipient: Option<(Ticket, smtp_core::address::ForwardPath)>,
    /// The ticket of the AUTH event seen last.
    last_auth: Option<Ticket>,
}

impl Recorded {
    pub(crate) fn new(inner: ServerSession, recorder: Option<(Recorder, PathBuf)>) -> Self {
        Recorded {
            inner,
            recorder,
            last_recipient: None,
            last_auth: None,
        }
    }

    /// Answers a pending decision, noting refusals and message verdicts in the recording.
    ///
    /// A decision for a session that has meanwhile closed (the peer left while its message was
    /// being stored) is dropped: there is nobody left to tell.
    pub(crate) fn decide(&mut self, ticket: Ticket, verdict: Verdict, now: Instant) {
        if let Some((rec, _)) = &mut self.recorder {
            match &self.last_recipient {
                Some((t, to)) if *t == ticket => {
                    if let Verdict::Refuse(r) = &verdict {
                        rec.refused_recipient(to, r);
                    }
                }
                _ if self.last_auth == Some(ticket) => rec.auth_decision(&match &verdict {
                    Verdict::Refuse(r) => r.clone(),
                    _ => Reply::new(
                        235,
                        smtp_core::EnhancedCode(2, 7, 0),
                        "Authentication successful",
                    ),
                }),
                _ => rec.message_decision(&verdict_reply(&verdict)),
            }
        }
        if let Err(e) = self.inner.decide(ticket, verdict, now) {
            tracing::debug!(error = %e, "decision for a closed session dropped");
        }
    }
}

fn memchr_lf(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// The reply a message verdict produces, as the recording needs it.
fn verdict_reply(v: &Verdict) -> Reply {
    v.message_reply()
}

impl Session for Recorded {
    type Event = ServerEvent;

    fn handle_input(&mut self, input: &[u8], now: Instant) -> usize {
        let Some((rec, _)) = &mut self.recorder else {
            return self.inner.handle_input(input, now);
        };
        // Around AUTH the input is offered a line at a time, so that the response lines that
        // carry a password are known and recorded redacted.
        let mut used = 0;
        while used < input.len() {
            let rest = &input[used..];
            let secret = self.inner.auth_response_is_secret();
            let line_by_line = secret
                || self.inner.in_auth_exchange()
                || rest
                    .get(..5)
                    .is_some_and(|w| w.eq_ignore_ascii_case(b"AUTH "));
            let piece = match memchr_lf(rest) {
                Some(end) if line_by_line => &rest[..=end],
                _ => rest,
            };
            let n = self.inner.handle_input(piece, now);
            if n == 0 {
                break;
            }
            if secret {
                rec.sasl_response(&piece[..n], now);
            } else {
                rec.client(&piece[..n], now);
            }
            used += n;
            if n < piece.len() {
                break;
            }
        }
        used
    }

    fn handle_eof(&mut self, now: Instant) {
        if let Some((rec, _)) = &mut self.recorder {
            rec.eof(now);
        }
        self.inner.handle_eof(now)
    }

    fn handle_timeout(&mut self, now: Instant) {
        if let Some((rec, _)) = &mut self.recorder {
            rec.timeout(now);
        }
        self.inner.handle_timeout(now)
    }

    fn handle_shutdown(&mut self, now: Instant) {
        self.inner.handle_shutdown(now)
    }

    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let start = out.len();
        let n = self.inner.poll_transmit(out);
        if let Some((rec, _)) = &mut self.recorder
            && n > 0
        {
            // `now` only matters for gaps, which the client side already marks.
            let now = Instant::now();
            rec.server(&out[start..], now);
        }
        n
    }

    fn poll_event(&mut self) -> Option<ServerEvent> {
        let ev = self.inner.poll_event();
        match &ev {
            Some(ServerEvent::Recipient { ticket, to }) => {
                self.last_recipient = Some((*ticket, to.clone()));
            }
            Some(ServerEvent::Auth { ticket, .. }) => self.last_auth = Some(*ticket),
            _ => {}
        }
        ev
    }

    fn poll_timeout(&self) -> Option<session_api::Deadline> {
        Session::poll_timeout(&self.inner)
    }

    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    fn poll_upgrade(&mut self) -> Option<session_api::Upgrade> {
        self.inner.poll_upgrade()
    }

    fn handle_tls(&mut self, info: &session_api::TlsInfo, now: Instant) {
        if let Some((rec, _)) = &mut self.recorder {
            rec.tls(now);
        }
        self.inner.handle_tls(info, now)
    }
}

impl Drop for Recorded {
    /// Writes the transcript when the connection is done with the session.
    fn drop(&mut self) {
        let Some((rec, dir)) = self.recorder.take() else {
            return;
        };
        // Connections that never said anything (port probes, health checks) are not worth a file.
        if rec.is_silent() {
            return;
        }
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let name = format!(
            "{secs}-{}-{}.txt",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let text = format!(
            "# recorded by buzon serve --record; replay with `buzon replay FILE`\n{}",
            rec.finish()
        );
        if let Err(e) = std::fs::write(dir.join(&name), text) {
            tracing::warn!(error = %e, dir = %dir.display(), "cannot write transcript");
        }
    }
}
