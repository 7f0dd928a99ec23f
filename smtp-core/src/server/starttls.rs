//! `STARTTLS` (RFC 3207): the server side.
//!
//! The session answers `220 2.0.0 Ready to start TLS`, consumes input exactly through the
//! STARTTLS line and asks its driver for the upgrade
//! ([`poll_upgrade`](session_api::Session::poll_upgrade)); it takes no input until
//! [`handle_tls`](ServerSession::handle_tls). The driver throws away whatever the client
//! pipelined after the command (section 4.2; CVE-2011-0411 was a server that executed it over
//! TLS). Once TLS is up the session starts over as after the greeting: the EHLO name and any
//! transaction are forgotten, EHLO is needed again, and STARTTLS is no longer offered.

use std::time::Instant;

use super::{ServerSession, replies};
use crate::{EnhancedCode, Reply};

impl ServerSession {
    /// The client sent STARTTLS (and the configuration offers it).
    pub(super) fn starttls(&mut self) {
        if self.tls.is_some() {
            // Section 4.2 lets only one TLS session per connection.
            return self.sequence_error(Reply::new(
                503,
                EnhancedCode(5, 5, 1),
                "TLS is already active",
            ));
        }
        match &self.helo {
            Some(helo) if helo.esmtp => {}
            _ => return self.sequence_error(replies::starttls_needs_ehlo()),
        }
        if self.txn.is_some() {
            // Starting TLS would silently drop the transaction; say so instead.
            return self.sequence_error(Reply::new(
                503,
                EnhancedCode(5, 5, 1),
                "MAIL transaction in progress; RSET first",
            ));
        }
        self.reply(&Reply::new(
            220,
            EnhancedCode(2, 0, 0),
            "Ready to start TLS",
        ));
        self.awaiting_tls = true;
        self.upgrade_asked = true;
    }

    /// The transport is TLS now: after STARTTLS, or from the start of an implicit-TLS
    /// connection. The session is back at its initial state (section 4.2): the client must
    /// send EHLO again; nothing it said before counts.
    pub fn handle_tls(&mut self, info: &session_api::TlsInfo, now: Instant) {
        self.tls = Some(info.clone());
        self.awaiting_tls = false;
        self.upgrade_asked = false;
        self.helo = None;
        self.txn = None;
        self.sasl = None;
        self.login = None;
        self.arm_timer(now);
    }

    /// The TLS session this connection runs over, if any.
    pub fn tls(&self) -> Option<&session_api::TlsInfo> {
        self.tls.as_ref()
    }
}
