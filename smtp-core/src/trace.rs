//! Trace headers a delivering server prepends (RFC 5321 section 4.4).

use crate::Envelope;
use crate::address::ReversePath;

/// What a `Received:` header records about one message.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
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

impl<'a> ReceivedInfo<'a> {
    /// What the header records: the transaction, the peer's IP address as text, our host name,
    /// our id for the message and the date in RFC 5322 form.
    pub fn new(
        envelope: &'a Envelope,
        peer_ip: &'a str,
        by: &'a str,
        id: &'a str,
        date: &'a str,
    ) -> Self {
        ReceivedInfo {
            envelope,
            peer_ip,
            by,
            id,
            date,
        }
    }
}

/// What a client sent, as header text: a control character (which the parser refuses, so this
/// is a second line of defence) becomes `?`, as Postfix writes it.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
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
/// UTF8SMTP, with S after TLS and A after AUTH (ESMTPSA). The login itself is not written:
/// the recipients of a message need not learn the sender's account name. A `for` clause names the recipient when there is exactly one; with several it is
/// left out so that recipients cannot learn of each other (RFC 5321 section 7.2).
pub fn received(info: &ReceivedInfo<'_>) -> String {
    let env = info.envelope;
    // RFC 3848 adds the S for TLS and the A for AUTH; RFC 6531 section 4.3 the UTF8 prefix.
    let with = if env.esmtp {
        let base = if env.smtputf8 { "UTF8SMTP" } else { "ESMTP" };
        let tls = if env.tls.is_some() { "S" } else { "" };
        let auth = if env.login.is_some() { "A" } else { "" };
        format!("{base}{tls}{auth}")
    } else {
        "SMTP".to_owned()
    };
    let mut h = format!(
        "Received: from {} ([{}])\r\n\tby {} (buzon) with {} id {}",
        printable(&env.helo),
        info.peer_ip,
        info.by,
        with,
        info.id
    );
    if let Some(tls) = &env.tls {
        // As Postfix writes it, so readers that parse Received: lines find it.
        h.push_str(&format!(
            "\r\n\t(using {} with cipher {})",
            printable(&tls.version),
            printable(&tls.cipher)
        ));
    }
    if let [only] = env.recipients.as_slice() {
        h.push_str(&format!("\r\n\tfor {}", printable(&only.to_string())));
    }
    h.push_str(&format!(";\r\n\t{}\r\n", info.date));
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BodyType;

    #[test]
    fn control_characters_never_reach_the_received_header() {
        let envelope = Envelope {
            helo: "a\0b\u{1b}[31m".to_owned(),
            esmtp: true,
            from: ReversePath::Null,
            recipients: Vec::new(),
            smtputf8: false,
            body: BodyType::SevenBit,
            chunked: false,
            tls: None,
            login: None,
        };
        let h = received(&ReceivedInfo {
            envelope: &envelope,
            peer_ip: "192.0.2.1",
            by: "mx.example.com",
            id: "m1",
            date: "Tue, 1 Dec 2026 00:00:00 +0000",
        });
        assert_eq!(
            h,
            "Received: from a?b?[31m ([192.0.2.1])\r\n\tby mx.example.com (buzon) with ESMTP id m1;\r\n\tTue, 1 Dec 2026 00:00:00 +0000\r\n"
        );
    }
}
