//! STARTTLS (RFC 3207) and AUTH (RFC 4954) from the client's side: between the EHLO reply and
//! the first message, the session makes the connection as secure as it is configured to be,
//! or gives up before any message is sent.
//!
//! - STARTTLS is sent when the server offers it (or required: without it nothing is sent).
//!   After the server's 220 the session reads nothing more until the driver has switched to
//!   TLS ([`poll_upgrade`](session_api::Session::poll_upgrade)), then says EHLO again and
//!   forgets what the server offered before (section 4.2).
//! - With a login configured, AUTH PLAIN (with the initial response, RFC 4959) is used when
//!   offered, else LOGIN. The password is never sent over a connection that is not TLS.
//! - A failure here fails no message permanently: queued messages come back as
//!   [`Failure::NotSent`], and the session closes with the reason
//!   ([`CloseReason::Insecure`], [`CloseReason::StartTlsRefused`],
//!   [`CloseReason::AuthFailed`]), after QUIT.

use std::fmt;
use std::time::Instant;

use line_protocol::sasl::encode;

use super::{ClientSession, CloseReason, Expect, Extensions, Failure};
use crate::Reply;
use crate::command::{Command, Secret};

/// When the client asks for TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartTls {
    /// Never (the connection is TLS from the start, or the operator said so).
    Never,
    /// When the server offers it; plain otherwise.
    IfOffered,
    /// Always: a server that does not offer it, or refuses it, gets no message.
    Required,
}

/// A login for AUTH: the user name and its password.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientLogin {
    /// The user name (authcid).
    pub user: String,
    /// The password.
    pub password: Secret,
}

impl ClientLogin {
    /// A login for `user` with `password`.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        ClientLogin {
            user: user.into(),
            password: Secret::new(password),
        }
    }
}

impl fmt::Debug for ClientLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientLogin")
            .field("user", &self.user)
            .field("password", &self.password)
            .finish()
    }
}

impl ClientSession {
    /// After EHLO (or HELO): STARTTLS, then AUTH, as configured; then ready.
    pub(super) fn secure(&mut self, ext: Extensions) {
        if !self.tls && self.config.starttls != StartTls::Never && ext.starttls {
            self.pending_ext = Some(ext);
            return self.send(&Command::StartTls, Expect::StartTls);
        }
        if !self.tls && self.config.starttls == StartTls::Required {
            return self.give_up(CloseReason::Insecure("the server does not offer STARTTLS"));
        }
        let Some(login) = self.config.login.clone().filter(|_| !self.logged_in) else {
            return self.ready(ext);
        };
        if !self.tls {
            return self.give_up(CloseReason::Insecure(
                "the connection is not TLS: a password is never sent in the clear",
            ));
        }
        let offered = |m: &str| ext.auth.iter().any(|a| a == m);
        if offered("PLAIN") {
            let response = plain_response(&login);
            self.send(
                &Command::Auth(Secret::new(format!("PLAIN {response}"))),
                Expect::AuthDone,
            );
        } else if offered("LOGIN") {
            self.send(&Command::Auth(Secret::new("LOGIN")), Expect::AuthUser);
        } else {
            return self.give_up(CloseReason::Insecure(
                "the server offers no AUTH mechanism buzon speaks (PLAIN, LOGIN)",
            ));
        }
        self.pending_ext = Some(ext);
    }

    /// The answer to STARTTLS.
    pub(super) fn on_starttls(&mut self, reply: Reply) {
        if reply.code() == 220 {
            self.awaiting_tls = true;
            self.upgrade = true;
            return;
        }
        let ext = self.pending_ext.take().unwrap_or_default();
        if self.config.starttls == StartTls::Required {
            return self.give_up(CloseReason::StartTlsRefused(reply));
        }
        // Offered but refused: go on in plain, as if it had not been offered.
        let ext = Extensions {
            starttls: false,
            ..ext
        };
        self.secure(ext);
    }

    /// An answer during AUTH.
    pub(super) fn on_auth(&mut self, expect: Expect, reply: Reply) {
        let Some(login) = self.config.login.clone() else {
            return;
        };
        match (expect, reply.code()) {
            (Expect::AuthDone, 235) => {
                self.logged_in = true;
                let ext = self.pending_ext.take().unwrap_or_default();
                self.ready(ext);
            }
            // A server that wants PLAIN's response after an empty challenge.
            (Expect::AuthDone, 334) => self.send_line(&plain_response(&login), Expect::AuthDone),
            (Expect::AuthUser, 334) => {
                self.send_line(&encode(login.user.as_bytes()), Expect::AuthPassword)
            }
            (Expect::AuthPassword, 334) => self.send_line(
                &encode(login.password.expose().as_bytes()),
                Expect::AuthDone,
            ),
            _ => self.give_up(CloseReason::AuthFailed(reply)),
        }
    }

    /// The driver switched to TLS: after STARTTLS, EHLO again (RFC 3207 section 4.2); on an
    /// implicit-TLS connection, before the greeting, nothing changes but the knowledge.
    pub fn handle_tls(&mut self, _info: &session_api::TlsInfo, now: Instant) {
        self.tls = true;
        if self.awaiting_tls {
            self.awaiting_tls = false;
            self.ext = None;
            self.pending_ext = None;
            self.send(&Command::Ehlo(self.config.helo.clone()), Expect::Ehlo);
            self.arm_timer(now);
        }
    }

    /// True once the connection is TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Set up failed: no message goes out on this connection; say QUIT and close with `why`.
    fn give_up(&mut self, why: CloseReason) {
        self.pending_ext = None;
        self.fail_all(Failure::NotSent);
        self.setup_failed = Some(why);
        self.send(&Command::Quit, Expect::Quit);
    }

    /// A line that is not a command (a SASL response).
    fn send_line(&mut self, line: &str, expect: Expect) {
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
        self.expect.push_back(expect);
    }
}

/// PLAIN's response: `NUL user NUL password`, base64 (RFC 4616 section 2).
fn plain_response(login: &ClientLogin) -> String {
    let mut message = Vec::with_capacity(login.user.len() + login.password.expose().len() + 2);
    message.push(0);
    message.extend_from_slice(login.user.as_bytes());
    message.push(0);
    message.extend_from_slice(login.password.expose().as_bytes());
    encode(&message)
}
