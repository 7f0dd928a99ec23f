//! The test protocol: `SUB topic` subscribes this connection to a topic, `PUB topic text`
//! sends `notice topic text` to every subscriber (answering how many it reached), `PING`
//! answers `pong`, `QUIT` answers `bye` and closes. `STARTTLS` answers `ready` and asks for
//! TLS, taking no input until it is up; `TLS?` answers `tls VERSION` or `tls none`. Unknown
//! lines answer `?`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use session_api::{ConnInfo, Handler, Notifier, Service, Session, Work};

/// Who is subscribed to what.
type Registry = Arc<Mutex<BTreeMap<String, Vec<Notifier<String>>>>>;

/// The service: one registry shared by every connection.
#[derive(Default)]
pub struct PubSub {
    registry: Registry,
}

impl Service for PubSub {
    type Handler = PubSubHandler;

    fn open(
        &self,
        _conn: &ConnInfo,
        notifier: Notifier<String>,
        _now: Instant,
    ) -> (Lines, PubSubHandler) {
        let handler = PubSubHandler {
            registry: Arc::clone(&self.registry),
            notifier,
        };
        (Lines::default(), handler)
    }
}

/// A line session: each complete line is an event for the handler, whose answer it writes.
#[derive(Default)]
pub struct Lines {
    out: Vec<u8>,
    events: Vec<String>,
    closed: bool,
    /// STARTTLS was answered; no input until TLS is up.
    awaiting_tls: bool,
    upgrade: bool,
    tls: Option<String>,
}

impl Lines {
    /// Queues a line to send.
    pub fn say(&mut self, line: &str) {
        self.out.extend_from_slice(line.as_bytes());
        self.out.push(b'\n');
    }

    /// Says `bye` and closes.
    pub fn quit(&mut self) {
        self.say("bye");
        self.closed = true;
    }
}

impl Session for Lines {
    type Event = String;

    fn handle_input(&mut self, input: &[u8], _now: Instant) -> usize {
        let mut used = 0;
        while !self.closed && !self.awaiting_tls {
            let Some(end) = input[used..].iter().position(|&b| b == b'\n') else {
                break;
            };
            let line = String::from_utf8_lossy(&input[used..used + end]);
            let line = line.trim_end_matches('\r').to_owned();
            used += end + 1;
            if line == "STARTTLS" {
                // The session's own business: answer, ask, and take nothing more.
                self.say("ready");
                self.awaiting_tls = true;
                self.upgrade = true;
            } else {
                self.events.push(line);
            }
        }
        used
    }

    fn handle_eof(&mut self, _now: Instant) {
        self.closed = true;
    }

    fn handle_timeout(&mut self, _now: Instant) {}

    fn handle_shutdown(&mut self, _now: Instant) {
        self.say("shutdown");
        self.closed = true;
    }

    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let n = self.out.len();
        out.append(&mut self.out);
        n
    }

    fn poll_event(&mut self) -> Option<String> {
        (!self.events.is_empty()).then(|| self.events.remove(0))
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn is_closed(&self) -> bool {
        self.closed
    }

    fn poll_upgrade(&mut self) -> Option<session_api::Upgrade> {
        std::mem::take(&mut self.upgrade).then_some(session_api::Upgrade::Tls)
    }

    fn handle_tls(&mut self, info: &session_api::TlsInfo, _now: Instant) {
        self.awaiting_tls = false;
        self.tls = Some(info.version.clone());
    }
}

/// Answers the lines; holds this connection's notifier for `SUB`.
pub struct PubSubHandler {
    registry: Registry,
    notifier: Notifier<String>,
}

impl Handler for PubSubHandler {
    type Session = Lines;
    type Notice = String;

    fn on_event(&mut self, session: &mut Lines, line: String, _now: Instant) -> Option<Work<Self>> {
        let mut registry = self.registry.lock().unwrap_or_else(PoisonError::into_inner);
        match line.split_once(' ') {
            Some(("SUB", topic)) => {
                registry
                    .entry(topic.to_owned())
                    .or_default()
                    .push(self.notifier.clone());
                session.say(&format!("subscribed {topic}"));
            }
            Some(("PUB", rest)) => {
                let (topic, text) = rest.split_once(' ').unwrap_or((rest, ""));
                let mut reached = 0;
                if let Some(subscribers) = registry.get_mut(topic) {
                    let notice = format!("{topic} {text}");
                    subscribers.retain(|n| n.notify(notice.clone()));
                    reached = subscribers.len();
                }
                session.say(&format!("published {reached}"));
            }
            _ if line == "PING" => session.say("pong"),
            _ if line == "TLS?" => {
                let tls = session.tls.clone().unwrap_or_else(|| "none".to_owned());
                session.say(&format!("tls {tls}"));
            }
            _ if line == "QUIT" => session.quit(),
            _ => session.say("?"),
        }
        None
    }

    fn on_notice(
        &mut self,
        session: &mut Lines,
        notice: String,
        _now: Instant,
    ) -> Option<Work<Self>> {
        session.say(&format!("notice {notice}"));
        None
    }
}
