//! Trace headers a delivering server prepends (RFC 5321 section 4.4).

use crate::Envelope;
use crate::address::ReversePath;

/// What a `Received:` header records about one message.
#[derive(Debug, Clone, Copy)]
pub struct ReceivedInfo<'a> {
    /// The transaction.
    pub envelope: &'a Envelope,
    /// The peer's IP address, as text.
    pub peer_ip: &'a str,
    /// Our host name.
    pub by: &'a str,
    /// Our id for the message.
    pub id: &'a str,
    /// The date in RFC 5322 form (`Fri, 27 Nov 2026 02:22:23 +0000`); the host reads the clock.
    pub date: &'a str,
}

/// `Return-Path: <sender>` (RFC 5321 section 4.4: added at final delivery).
///
/// ```
/// use smtp_core::address::ReversePath;
/// assert_eq!(smtp_core::trace::return_path(&ReversePath::Null), "Return-Path: <>\r\n");
/// ```
pub fn return_path(from: &ReversePath) -> String {
    format!("Return-Path: {from}\r\n")
}

/// A `Received:` header with its CRLF, folded so no line nears the 1000-octet limit.
///
/// The `with` clause names the protocol as RFC 3848 and RFC 6531 register it: SMTP, ESMTP or
/// UTF8SMTP. A `for` clause names the recipient when there is exactly one; with several it is
/// left out so that recipients cannot learn of each other (RFC 5321 section 7.2).
pub fn received(info: &ReceivedInfo<'_>) -> String {
    let env = info.envelope;
    let with = match (env.esmtp, env.smtputf8) {
        (false, _) => "SMTP",
        (true, false) => "ESMTP",
        (true, true) => "UTF8SMTP",
    };
    let mut h = format!(
        "Received: from {} ([{}])\r\n\tby {} (buzon) with {} id {}",
        env.helo, info.peer_ip, info.by, with, info.id
    );
    if let [only] = env.recipients.as_slice() {
        h.push_str(&format!("\r\n\tfor {only}"));
    }
    h.push_str(&format!(";\r\n\t{}\r\n", info.date));
    h
}
