//! `AUTH` (RFC 4954): SMTP's carriage of SASL, server side, with the PLAIN and LOGIN
//! mechanisms of [`line_protocol::sasl`].
//!
//! The session runs the exchange (`334` challenges, `*` to cancel) and hands the credentials
//! to its host as [`ServerEvent::Auth`]; the host checks them off the loop and answers with a
//! [`Login`](crate::Login) or a refusal. The rules that need no host:
//!
//! - AUTH is offered and accepted only where [`AuthPolicy`](crate::AuthPolicy) says: over TLS,
//!   or over plaintext only if the host allows it for this connection. Elsewhere a server that
//!   offers AUTH answers `538 5.7.11` (section 6), so a client never learns to send a password
//!   in the clear; one that does not offer it answers `502` as for any unknown command.
//! - Only after EHLO, once per session, and not inside a mail transaction (section 4: `503`).
//! - A cancelled or unreadable response is `501` (section 4), refused credentials `535 5.7.8`;
//!   both count as errors, so a guesser is cut off after the error limit (`421`).
//! - After STARTTLS the login is forgotten with everything else (RFC 3207 section 4.2).
//! - With AUTH required (submission, RFC 6409 section 4.3), MAIL before a login is
//!   `530 5.7.0`, and MAIL from an address the login does not own is `553 5.7.1` (RFC 6409
//!   section 8.1 lets a submission server refuse it).

use line_protocol::sasl::{Exchange, Mechanism, SaslError, Step, encode};

use super::{Pending, ServerSession, replies};
use crate::event::{ServerEvent, Violation};
use crate::{EnhancedCode, Reply};

impl ServerSession {
    /// True if EHLO advertises AUTH on this connection now.
    pub(super) fn auth_offered(&self) -> bool {
        let auth = &self.config.auth;
        auth.offered && (self.tls.is_some() || auth.plaintext)
    }

    /// `AUTH mechanism [initial-response]`.
    pub(super) fn auth(&mut self, args: &str) {
        if !self.auth_offered() {
            self.violation(Violation::AuthWithoutTls);
            return self.error_reply(&Reply::new(
                538,
                EnhancedCode(5, 7, 11),
                "Encryption required for requested authentication mechanism",
            ));
        }
        if !self.helo.as_ref().is_some_and(|h| h.esmtp) {
            return self.sequence_error(replies::auth_needs_ehlo());
        }
        if self.login.is_some() {
            return self.sequence_error(Reply::new(
                503,
                EnhancedCode(5, 5, 1),
                "Already authenticated",
            ));
        }
        if self.txn.is_some() {
            return self.sequence_error(Reply::new(
                503,
                EnhancedCode(5, 5, 1),
                "AUTH not permitted during a mail transaction",
            ));
        }
        let mut words = args.split(' ').filter(|w| !w.is_empty());
        let name = words.next().unwrap_or_default();
        let initial = words.next();
        if words.next().is_some() {
            self.violation(Violation::Syntax);
            return self.error_reply(&replies::syntax("expected AUTH mechanism [response]"));
        }
        let Some(mechanism) = Mechanism::parse(name) else {
            self.violation(Violation::Syntax);
            return self.error_reply(&Reply::new(
                504,
                EnhancedCode(5, 5, 4),
                "Unrecognized authentication type",
            ));
        };
        let (exchange, step) = Exchange::start(mechanism, initial.map(str::as_bytes));
        self.sasl = Some(exchange);
        self.sasl_step(step);
    }

    /// A line while an exchange is in progress: the client's response.
    pub(super) fn auth_response(&mut self, line: &[u8]) {
        let Some(exchange) = self.sasl.as_mut() else {
            return;
        };
        let step = exchange.respond(line);
        self.sasl_step(step);
    }

    fn sasl_step(&mut self, step: Step) {
        match step {
            Step::Challenge(c) => self.reply(&Reply::multiline(334, None, [encode(&c)])),
            Step::Done(credentials) => {
                self.sasl = None;
                let ticket = self.ticket();
                let user = credentials.user.clone();
                self.events.push_back(ServerEvent::Auth {
                    ticket,
                    credentials,
                });
                self.pending = Some(Pending::Auth { ticket, user });
            }
            Step::Failed(e) => {
                self.sasl = None;
                self.violation(Violation::AuthAborted);
                self.error_reply(&match e {
                    SaslError::Cancelled => {
                        Reply::new(501, EnhancedCode(5, 0, 0), "Authentication cancelled")
                    }
                    SaslError::BadBase64 => {
                        Reply::new(501, EnhancedCode(5, 5, 2), "Cannot decode response")
                    }
                    SaslError::Malformed(what) => {
                        Reply::new(501, EnhancedCode(5, 5, 2), format!("Bad response: {what}"))
                    }
                    _ => Reply::new(501, EnhancedCode(5, 5, 2), "Bad response"),
                });
            }
        }
    }

    /// The host accepted the credentials.
    pub(super) fn logged_in(&mut self, login: crate::Login) {
        self.reply(&Reply::new(
            235,
            EnhancedCode(2, 7, 0),
            "Authentication successful",
        ));
        self.login = Some(login);
    }

    /// The host refused the credentials with `reply` (a 535 normally): counted as an error.
    pub(super) fn auth_refused(&mut self, reply: &Reply) {
        self.violation(Violation::AuthFailed);
        self.error_reply(reply);
    }

    /// MAIL FROM with the sender `from`: is it allowed by the login policy? Replies and
    /// returns false if not.
    pub(super) fn may_send_as(&mut self, from: &crate::address::ReversePath) -> bool {
        match &self.login {
            None if self.config.auth.required => {
                self.violation(Violation::NotAuthorized);
                self.error_reply(&Reply::new(
                    530,
                    EnhancedCode(5, 7, 0),
                    "Authentication required",
                ));
                false
            }
            None => true,
            Some(login) => {
                let owned = match from {
                    crate::address::ReversePath::Mailbox(m) => login.may_send_as(&m.to_string()),
                    crate::address::ReversePath::Null => false,
                };
                if !owned {
                    let text = format!("Sender address not owned by {}", login.user);
                    self.violation(Violation::NotAuthorized);
                    self.error_reply(&Reply::new(553, EnhancedCode(5, 7, 1), text));
                }
                owned
            }
        }
    }

    /// True while a SASL exchange is in progress: the next line the client sends is a
    /// response (a credential), not a command. A recorder keeps it out of transcripts.
    pub fn in_auth_exchange(&self) -> bool {
        self.sasl.is_some()
    }

    /// True while the next line the client sends carries a password (see
    /// [`line_protocol::sasl::redact_response`]).
    pub fn auth_response_is_secret(&self) -> bool {
        self.sasl.as_ref().is_some_and(|x| x.expects_password())
    }

    /// The login of this session, once AUTH succeeded.
    pub fn login(&self) -> Option<&crate::Login> {
        self.login.as_ref()
    }
}
