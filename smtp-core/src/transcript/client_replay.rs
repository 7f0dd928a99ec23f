//! Replaying a client transcript: `S:` lines are the server's input, `C:` lines what the
//! client must send.

use std::time::Instant;

use transcript::{EventLog, Host, Outcome, Role, Split, escape};

use super::Transcript;
use crate::Reply;
use crate::client::{
    ClientConfig, ClientEvent, ClientLogin, ClientSession, CloseReason, Failure, StartTls,
};

/// Replays `t` from the client's side: the messages of its `! submit` lines are queued at the
/// start (then `! quit` if present); each group of `S:` lines is fed as one read; before each,
/// the client must have sent exactly the `C:` lines above it.
///
/// ```
/// use std::time::Instant;
/// use smtp_core::transcript::{Transcript, replay_client};
/// let t = Transcript::parse("\
/// ! config helo=client.example
/// ! quit
/// S: 220 mx ESMTP
/// C: EHLO client.example
/// S: 250 mx
/// C: QUIT
/// S: 221 bye
/// ").unwrap();
/// let outcome = replay_client(&t, Instant::now());
/// assert!(outcome.is_match(), "{}", outcome.report());
/// ```
pub fn replay_client(t: &Transcript, start: Instant) -> Outcome {
    replay_client_split(t, start, Split::Whole)
}

/// Like [`replay_client`], with the server's writes cut as `split` says.
pub fn replay_client_split(t: &Transcript, start: Instant, split: Split<'_>) -> Outcome {
    let mut config = ClientConfig::new(t.config_value("helo").unwrap_or("client.example"));
    config.pipelining = t.config_value("pipelining") != Some("false");
    config.chunking = t.config_value("chunking") != Some("false");
    config.starttls = match t.config_value("starttls") {
        Some("never") => StartTls::Never,
        Some("required") => StartTls::Required,
        _ => StartTls::IfOffered,
    };
    config.login = t
        .config_value("login")
        .and_then(|l| l.split_once(':'))
        .map(|(user, password)| ClientLogin::new(user, password));
    let mut c = ClientSession::new(config, start);
    for m in &t.directives.messages {
        c.submit(m.clone());
    }
    if t.directives.quit {
        c.quit();
    }
    transcript::replay(
        &t.items,
        Role::Client,
        &mut c,
        &mut EventLogger,
        start,
        split,
    )
}

/// A client's host in a replay: it decides nothing, and logs what the client reports.
struct EventLogger;

impl Host<ClientSession> for EventLogger {
    fn answer(&mut self, c: &mut ClientSession, _now: Instant, log: &mut EventLog) -> bool {
        while let Some(e) = c.poll_event() {
            log.note(describe_client_event(&e));
        }
        false
    }
}

/// One line describing a client event, for logs and snapshots.
pub fn describe_client_event(e: &ClientEvent) -> String {
    match e {
        ClientEvent::Greeting(r) => format!("greeting {}", one_line(r)),
        ClientEvent::Ready(ext) => format!("ready [{ext}]"),
        ClientEvent::Recipient { job, index, reply } => {
            format!("rcpt job={} #{index} {}", job.0, one_line(reply))
        }
        ClientEvent::Delivered { job, reply } => {
            format!("delivered job={} {}", job.0, one_line(reply))
        }
        ClientEvent::Failed { job, failure } => {
            let permanent = if failure.is_permanent() {
                "permanent"
            } else {
                "transient"
            };
            let what = match failure {
                Failure::Refused(r) => format!("refused {}", one_line(r)),
                other => format!("{other:?}"),
            };
            format!(
                "failed job={} {permanent} {}",
                job.0,
                escape(what.as_bytes())
            )
        }
        ClientEvent::Idle => "idle".to_owned(),
        ClientEvent::Closed(CloseReason::Refused(r)) => format!("closed refused {}", one_line(r)),
        ClientEvent::Closed(CloseReason::AuthFailed(r)) => {
            format!("closed auth failed {}", one_line(r))
        }
        ClientEvent::Closed(CloseReason::StartTlsRefused(r)) => {
            format!("closed starttls refused {}", one_line(r))
        }
        ClientEvent::Closed(r) => format!("closed {r:?}"),
    }
}

/// A reply on one line: multi-line texts joined with ` | `.
fn one_line(r: &Reply) -> String {
    let text = r.lines().join(" | ");
    match r.enhanced() {
        Some(e) => format!("{} {e} {text}", r.code()),
        None => format!("{} {text}", r.code()),
    }
}
