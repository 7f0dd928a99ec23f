//! Replaying a transcript against a [`ServerSession`] with a scripted host.

use std::sync::Arc;
use std::time::Instant;

use transcript::{EventLog, Host, Outcome, Role, Split, escape};

use super::Transcript;
use crate::policy::LocalDomains;
use crate::{Reply, ServerConfig, ServerEvent, ServerSession, Verdict};

/// Replays `t` with each client group as one write. `start` is the clock's origin.
pub fn replay(t: &Transcript, start: Instant) -> Outcome {
    replay_split(t, start, Split::Whole)
}

/// Replays `t`, cutting client writes as `split` says.
pub fn replay_split(t: &Transcript, start: Instant, split: Split<'_>) -> Outcome {
    let mut session = ServerSession::new(Arc::new(server_config(t)), start);
    let mut host = ScriptedHost {
        script: Script::new(t),
    };
    transcript::replay(
        &t.items,
        Role::Server,
        &mut session,
        &mut host,
        start,
        split,
    )
}

/// Builds the server configuration from `! config` lines; unknown keys are ignored so that
/// newer transcripts still replay.
pub fn server_config(t: &Transcript) -> ServerConfig {
    let mut c = ServerConfig::new(t.config_value("hostname").unwrap_or("mx.example.com"));
    let num = |k: &str| t.config_value(k).and_then(|v| v.parse::<u64>().ok());
    if let Some(v) = num("max_message") {
        c.limits.message_size = v;
    }
    if let Some(v) = num("max_recipients") {
        c.limits.recipients = v as usize;
    }
    if let Some(v) = num("max_errors") {
        c.limits.errors = v as u32;
    }
    if let Some(v) = num("command_line") {
        c.limits.command_line = v as usize;
    }
    if let Some(v) = num("text_line") {
        c.limits.text_line = v as usize;
    }
    if let Some(v) = num("command_timeout") {
        c.timeouts.command = std::time::Duration::from_secs(v);
    }
    if let Some(v) = num("data_timeout") {
        c.timeouts.data_block = std::time::Duration::from_secs(v);
    }
    if let Some(v) = t.config_value("starttls") {
        c.starttls = v == "true";
    }
    let flag = |k: &str| t.config_value(k) == Some("true");
    c.auth.offered = flag("auth");
    c.auth.plaintext = flag("auth_plaintext");
    c.auth.required = flag("auth_required");
    c
}

/// The host's decisions as a transcript scripts them: recipients by `! decide rcpt` lines, else
/// by the configured `domains`, else accepted; message ends by successive `! decide data` lines,
/// else accepted. Usable by any host that wants to act out a transcript (the socket tests do).
#[derive(Debug, Clone)]
pub struct Script {
    rcpt: Vec<(String, Reply)>,
    policy: Option<LocalDomains>,
    data: std::collections::VecDeque<Reply>,
    auth: std::collections::VecDeque<Reply>,
}

impl Script {
    /// The decisions of `t`.
    pub fn new(t: &Transcript) -> Self {
        Script {
            rcpt: t.directives.rcpt_decisions.clone(),
            policy: t
                .config_value("domains")
                .map(|d| LocalDomains::new(d.split(',').map(str::trim))),
            data: t.directives.data_decisions.iter().cloned().collect(),
            auth: t.directives.auth_decisions.iter().cloned().collect(),
        }
    }

    /// The verdict for a recipient.
    pub fn recipient(&self, to: &crate::address::ForwardPath) -> Verdict {
        let shown = to.to_string();
        if let Some((_, reply)) = self.rcpt.iter().find(|(p, _)| *p == shown) {
            return to_verdict(reply);
        }
        match &self.policy {
            Some(p) => match p.check(to) {
                Ok(_) => Verdict::Accept,
                Err(r) => Verdict::Refuse(r),
            },
            None => Verdict::Accept,
        }
    }

    /// The verdict for the next AUTH: accepted unless a `! decide auth` line refuses it.
    pub fn login(&mut self) -> Verdict {
        self.auth
            .pop_front()
            .as_ref()
            .map_or(Verdict::Accept, to_verdict)
    }

    /// The verdict for the next message end.
    pub fn message(&mut self) -> Verdict {
        self.data
            .pop_front()
            .as_ref()
            .map_or(Verdict::Accept, to_verdict)
    }
}

/// The host of a replay: acts out the [`Script`] and logs every event and decision.
struct ScriptedHost {
    script: Script,
}

impl Host<ServerSession> for ScriptedHost {
    fn answer(&mut self, s: &mut ServerSession, now: Instant, log: &mut EventLog) -> bool {
        let mut decided = false;
        while let Some(ev) = s.poll_event() {
            match &ev {
                // Merged, so the log is the same however the input was cut.
                ServerEvent::MessageData(d) => log.data(d),
                other => log.note(describe_event(other)),
            }
            let (ticket, verdict) = match ev {
                ServerEvent::Recipient { ticket, to } => (ticket, self.script.recipient(&to)),
                ServerEvent::MessageEnd { ticket, .. } => (ticket, self.script.message()),
                ServerEvent::Auth { ticket, .. } => (ticket, self.script.login()),
                _ => continue,
            };
            log.note(match &verdict {
                Verdict::Accept => "decide accept".to_owned(),
                Verdict::AcceptAs(id) => format!("decide accept as {id}"),
                Verdict::Refuse(r) => format!("decide {r}"),
                Verdict::Login(l) => format!("decide login {}", l.user),
            });
            s.decide(ticket, verdict, now)
                .expect("the ticket comes from the event just polled");
            decided = true;
        }
        decided
    }
}

/// A scripted reply as a verdict: 2xx accepts (keeping a `queued as` id), others refuse.
fn to_verdict(r: &Reply) -> Verdict {
    if !r.is_positive() {
        return Verdict::Refuse(r.clone());
    }
    let text = r.lines().last().map(String::as_str).unwrap_or_default();
    match text.strip_prefix("Ok: queued as ") {
        Some(id) => Verdict::AcceptAs(id.to_owned()),
        None => Verdict::Accept,
    }
}

/// One line describing an event, for logs and snapshots.
pub fn describe_event(ev: &ServerEvent) -> String {
    match ev {
        ServerEvent::Helo { name, esmtp } => {
            format!("{} {name}", if *esmtp { "ehlo" } else { "helo" })
        }
        ServerEvent::MailFrom(p) => format!("mail {p}"),
        ServerEvent::Recipient { to, .. } => format!("rcpt {to}"),
        ServerEvent::MessageStart(e) => {
            let rcpts: Vec<String> = e.recipients.iter().map(ToString::to_string).collect();
            format!(
                "start from={} to={} body={:?} smtputf8={} chunked={}",
                e.from,
                rcpts.join(","),
                e.body,
                e.smtputf8,
                e.chunked
            )
        }
        ServerEvent::MessageData(d) => format!("data \"{}\"", escape(d)),
        ServerEvent::MessageEnd { size, .. } => format!("end size={size}"),
        ServerEvent::MessageAborted(r) => format!("aborted {r:?}"),
        ServerEvent::Violation(v) => format!("violation {v:?}"),
        // Never the password.
        ServerEvent::Auth { credentials, .. } => {
            let c = credentials;
            match &c.authzid {
                Some(z) => format!("auth {} {} as {z}", c.mechanism.name(), c.user),
                None => format!("auth {} {}", c.mechanism.name(), c.user),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_log_does_not_depend_on_where_a_character_is_cut() {
        let t = Transcript::parse(
            "C: EHLO c\nC: MAIL FROM:<a@b.example>\nC: RCPT TO:<u@example.com>\nC: DATA\n\
             C: Grüße \\xe2\\x82\\xac \\xff\\xe2\\x82\nC: .\n",
        )
        .unwrap();
        // Any instant will do: the session only adds to it and compares.
        #[allow(clippy::disallowed_methods)]
        let start = Instant::now();
        let whole = replay_split(&t, start, Split::Whole);
        assert!(
            whole
                .events
                .contains(&r#"data "Grüße € \xff\xe2\x82\r\n""#.to_owned()),
            "{:?}",
            whole.events
        );
        assert_eq!(replay_split(&t, start, Split::Bytes).events, whole.events);
        for at in 1..40 {
            let mut cut = |len: usize| if at < len { vec![at] } else { Vec::new() };
            assert_eq!(
                replay_split(&t, start, Split::Custom(&mut cut)).events,
                whole.events
            );
        }
    }
}
