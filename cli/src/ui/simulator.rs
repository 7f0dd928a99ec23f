//! Test mode's server: a real SMTP server (our own core, on a loopback port of its own) that
//! stores nothing and answers by the recipient's local part, so a user sees what a deferral, a
//! refusal and a slow server look like in the report before sending for real.
//!
//! - `tempfail...@` is deferred: `451 4.3.0` (a 4xx: the sender retries, then reports it);
//! - `permfail...@` is refused: `550 5.1.1` (a 5xx: never retried);
//! - a message to `slow...@` is accepted after [`SLOW`];
//! - anything else is accepted and thrown away.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use session_api::{Completion, ConnInfo, Handler, Notifier, Service, Work};
use smtp_core::address::ForwardPath;
use smtp_core::{EnhancedCode, Reply, ServerConfig, ServerEvent, ServerSession, Verdict};

/// How long a message to `slow@...` waits for its 250.
pub(crate) const SLOW: Duration = Duration::from_secs(5);

/// The address of the simulated server, started on first use and kept for the process's life.
pub(crate) fn address() -> std::io::Result<SocketAddr> {
    static STARTED: OnceLock<Result<SocketAddr, String>> = OnceLock::new();
    STARTED
        .get_or_init(|| start().map_err(|e| e.to_string()))
        .clone()
        .map_err(std::io::Error::other)
}

fn start() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let service = Arc::new(Simulator {
        config: Arc::new(ServerConfig::new("test-mode.buzon.invalid")),
    });
    std::thread::Builder::new()
        .name("test-mode-smtp".into())
        .spawn(move || {
            let opts = adapter_smol::Options {
                threads: Some(1),
                ..Default::default()
            };
            if let Err(e) =
                adapter_smol::run(listener, service, adapter_smol::Shutdown::new(), opts)
            {
                tracing::error!(error = %e, "test-mode server stopped");
            }
        })?;
    Ok(addr)
}

struct Simulator {
    config: Arc<ServerConfig>,
}

impl Service for Simulator {
    type Handler = Simulated;

    fn open(&self, _: &ConnInfo, _: Notifier<()>, now: Instant) -> (ServerSession, Simulated) {
        (
            ServerSession::new(self.config.clone(), now),
            Simulated { slow: false },
        )
    }
}

/// One connection: whether the message being received goes to a `slow@` recipient.
struct Simulated {
    slow: bool,
}

/// What the simulated server does with a recipient.
fn behaviour(to: &ForwardPath) -> Option<Reply> {
    let ForwardPath::Mailbox(m) = to else {
        return None;
    };
    let local = m.local().to_ascii_lowercase();
    if local.starts_with("tempfail") {
        Some(Reply::new(
            451,
            EnhancedCode(4, 3, 0),
            "test mode: a temporary failure, as a busy or greylisting server gives",
        ))
    } else if local.starts_with("permfail") {
        Some(Reply::new(
            550,
            EnhancedCode(5, 1, 1),
            "test mode: no such user here, as a server says of a mistyped address",
        ))
    } else {
        None
    }
}

impl Handler for Simulated {
    type Session = ServerSession;
    type Notice = ();

    fn on_event(
        &mut self,
        session: &mut ServerSession,
        event: ServerEvent,
        now: Instant,
    ) -> Option<Work<Self>> {
        match event {
            ServerEvent::Recipient { ticket, to } => {
                if let ForwardPath::Mailbox(m) = &to
                    && m.local().to_ascii_lowercase().starts_with("slow")
                {
                    self.slow = true;
                }
                let verdict = behaviour(&to).map_or(Verdict::Accept, Verdict::Refuse);
                let _ = session.decide(ticket, verdict, now);
                None
            }
            ServerEvent::MailFrom(_) => {
                self.slow = false;
                None
            }
            ServerEvent::MessageEnd { ticket, .. } if std::mem::take(&mut self.slow) => {
                Some(Work::new(move || {
                    std::thread::sleep(SLOW);
                    Completion::new(move |_: &mut Simulated, s: &mut ServerSession, now| {
                        let _ = s.decide(ticket, Verdict::AcceptAs("test-mode".into()), now);
                    })
                }))
            }
            ServerEvent::MessageEnd { ticket, .. } => {
                let _ = session.decide(ticket, Verdict::AcceptAs("test-mode".into()), now);
                None
            }
            _ => None,
        }
    }
}
