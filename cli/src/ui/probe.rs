//! The page's "Test connection": one connection to the server with the page's settings, which
//! reports each step (connect, greeting, TLS, login) and what the server offered, or the step
//! that failed and why.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use session_api::{Handler, Work};
use smtp_core::client::{ClientConfig, ClientEvent, ClientSession, CloseReason, Extensions};

use super::runner::{self, Options, Password};
use super::workspace::Settings;

/// What the connection saw.
#[derive(Default)]
struct Probe {
    greeting: Option<String>,
    ready: Option<(Extensions, bool)>,
    closed: Option<CloseReason>,
}

impl Handler for Probe {
    type Session = ClientSession;
    type Notice = ();

    fn on_event(
        &mut self,
        session: &mut ClientSession,
        event: ClientEvent,
        _now: Instant,
    ) -> Option<Work<Self>> {
        match event {
            ClientEvent::Greeting(r) => self.greeting = Some(one_line(&r)),
            ClientEvent::Ready(ext) => {
                self.ready = Some((ext, session.is_tls()));
                session.quit();
            }
            ClientEvent::Closed(reason) => self.closed = Some(reason),
            _ => {}
        }
        None
    }
}

fn one_line(r: &smtp_core::Reply) -> String {
    r.to_string().trim_end().replace("\r\n", " / ")
}

fn step(name: &str, ok: bool, detail: impl Into<String>) -> Value {
    json!({"step": name, "ok": ok, "detail": detail.into()})
}

/// The answer of `POST /api/server/test`.
/// What a failed TLS handshake means, and what to change: a certificate this machine does not
/// trust is the common case (a test server's own certificate); anything else on an implicit-TLS
/// port usually means the port speaks plain SMTP first.
fn tls_advice(e: &std::io::Error, implicit: bool) -> String {
    let text = e.to_string();
    if text.contains("certificate") {
        let why = if text.contains("UnknownIssuer") {
            "it is signed by no authority this machine trusts, as a test server's own certificate is"
        } else if text.contains("NotValidForName") {
            "it was issued for another name than the host given here"
        } else if text.contains("Expired") {
            "it has expired"
        } else {
            "it does not pass the check"
        };
        format!(
            "the TLS handshake failed: the server's certificate is not trusted: {why} ({text}). \
             For a provider's server, check the host name. For your own test server, tick \
             \"Skip the certificate check\", or start buzon ui with --ca-file and its certificate."
        )
    } else if implicit {
        format!(
            "the TLS handshake failed: {text}. This port does not seem to speak TLS from the \
             first byte: try STARTTLS (usually port 587)."
        )
    } else {
        format!("the TLS handshake failed: {text}")
    }
}

pub(crate) fn test_connection(
    settings: &Settings,
    password: &Password,
    options: &Options,
) -> Value {
    let mut steps = Vec::new();
    let plan = match runner::plan(settings, password, options, false) {
        Ok(p) => p,
        Err(why) => {
            steps.push(step("settings", false, why));
            return json!({"ok": false, "steps": steps, "offered": null});
        }
    };
    let stream = match TcpStream::connect_timeout(&plan.server, Duration::from_secs(10)) {
        Ok(s) => s,
        Err(e) => {
            steps.push(step(
                "connect",
                false,
                format!(
                    "cannot connect to {}: {e} (check the host and port, and that the server runs)",
                    plan.server_name
                ),
            ));
            return json!({"ok": false, "steps": steps, "offered": null});
        }
    };
    steps.push(step(
        "connect",
        true,
        format!("connected to {}", plan.server_name),
    ));
    let implicit = matches!(
        plan.security.tls,
        Some(conn_driver::TlsMode::ClientImplicit(..))
    );
    let mut config = ClientConfig::new(plan.helo.clone());
    config.starttls = plan.security.starttls;
    config.login = plan.security.login.clone();
    let login = config.login.is_some();
    let session = ClientSession::new(config, Instant::now());
    let opts = adapter_smol::Options {
        threads: Some(1),
        tls: plan.security.tls.clone(),
        ..Default::default()
    };
    let ended = adapter_smol::run_connections(
        vec![(stream, session, Probe::default())],
        adapter_smol::Shutdown::new(),
        opts,
    );
    let (probe, error) = match ended.map(|mut v| v.pop()) {
        Ok(Some(Ok(e))) => (e.handler, e.error),
        Ok(Some(Err(panic))) => (
            Probe::default(),
            Some(std::io::Error::other(panic.to_string())),
        ),
        Ok(None) => (Probe::default(), None),
        Err(e) => (Probe::default(), Some(e)),
    };

    let tls_failed = |e: &std::io::Error| tls_advice(e, implicit);
    if implicit && probe.greeting.is_none() {
        let detail = error.as_ref().map_or("no TLS".into(), tls_failed);
        steps.push(step("tls", false, detail));
        return json!({"ok": false, "steps": steps, "offered": null});
    }
    match &probe.greeting {
        Some(g) if g.starts_with('2') => steps.push(step("greeting", true, g.clone())),
        Some(g) => {
            steps.push(step(
                "greeting",
                false,
                format!("the server refuses service: {g}"),
            ));
            return json!({"ok": false, "steps": steps, "offered": null});
        }
        None => {
            let detail = match &error {
                Some(e) => format!("no greeting: {e}"),
                None => "the server closed the connection without a greeting".into(),
            };
            steps.push(step("greeting", false, detail));
            return json!({"ok": false, "steps": steps, "offered": null});
        }
    }
    let Some((ext, tls_in_use)) = probe.ready else {
        let detail = match (&probe.closed, &error) {
            (Some(CloseReason::StartTlsRefused(r)), _) => {
                ("tls", format!("STARTTLS was refused: {}", one_line(r)))
            }
            (Some(CloseReason::Insecure(why)), _) => ("tls", (*why).to_owned()),
            (Some(CloseReason::AuthFailed(r)), _) => (
                "login",
                format!(
                    "the login was refused: {} (check the user and password)",
                    one_line(r)
                ),
            ),
            (_, Some(e)) if e.kind() == std::io::ErrorKind::InvalidData => ("tls", tls_failed(e)),
            (Some(CloseReason::Refused(r)), _) => {
                ("ehlo", format!("the server refused EHLO: {}", one_line(r)))
            }
            (_, Some(e)) => ("ehlo", format!("the connection failed: {e}")),
            (reason, None) => ("ehlo", format!("the connection ended: {reason:?}")),
        };
        if detail.0 == "login" {
            steps.push(step("tls", true, "TLS in use"));
        }
        steps.push(step(detail.0, false, detail.1));
        return json!({"ok": false, "steps": steps, "offered": null});
    };
    steps.push(step(
        "tls",
        true,
        if tls_in_use {
            if implicit {
                "TLS from the first byte"
            } else {
                "STARTTLS: TLS in use"
            }
        } else {
            "none: the server offers no STARTTLS, so mail goes unencrypted"
        },
    ));
    steps.push(step(
        "login",
        true,
        if login {
            format!("logged in as {}", settings.server.user.trim())
        } else {
            "no user set: not logging in".to_owned()
        },
    ));
    json!({
        "ok": true,
        "steps": steps,
        "offered": {
            "starttls": ext.starttls || (tls_in_use && !implicit),
            "tls_in_use": tls_in_use,
            "auth": ext.auth,
            "size": ext.size,
            "pipelining": ext.pipelining,
            "smtputf8": ext.smtputf8,
        },
    })
}
