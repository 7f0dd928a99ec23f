//! The EHLO reply and the extensions it advertises (RFC 5321 section 4.1.1.1).
//!
//! Each keyword is implemented where its RFC's rules live:
//! - `PIPELINING` (RFC 2920): every command in the input is answered before the host polls for
//!   output, so a group's replies leave together; commands that need a host decision hold back
//!   the rest of the group without reordering replies.
//! - `SIZE` (RFC 1870): `server/size.rs` at MAIL, enforced as data arrives; [`crate::size`]
//!   parses the value.
//! - `8BITMIME` (RFC 6152): `server/eightbitmime.rs`; `BODY=8BITMIME` is recorded in the
//!   envelope and the bytes pass unchanged.
//! - `SMTPUTF8` (RFC 6531): `server/smtputf8.rs`; UTF-8 addresses only in a transaction whose
//!   MAIL carried `SMTPUTF8`; otherwise 553 5.6.7.
//! - `ENHANCEDSTATUSCODES` (RFC 2034): every reply but the greeting, the EHLO/HELO reply and 354
//!   carries one, as that RFC prescribes.
//! - `CHUNKING` (RFC 3030): `server/chunking.rs`; BDAT, counted octets without dot
//!   transparency.
//! - `STARTTLS` (RFC 3207): `crate::server::starttls`; offered only before TLS, where the
//!   configuration says a certificate is there.
//! - `AUTH` (RFC 4954): `crate::server::auth`; PLAIN and LOGIN, offered only over TLS unless
//!   the host allows plaintext for this connection.

use line_protocol::sasl::Mechanism;

use crate::Reply;
use crate::config::Limits;

/// The EHLO reply for a server named `host` with these limits.
pub(crate) fn reply(
    host: &str,
    client: &str,
    limits: &Limits,
    starttls: bool,
    auth: bool,
) -> Reply {
    let mut lines = vec![
        format!("{host} greets {client}"),
        "PIPELINING".into(),
        format!("SIZE {}", limits.message_size),
        "8BITMIME".into(),
        "SMTPUTF8".into(),
        "ENHANCEDSTATUSCODES".into(),
        "CHUNKING".into(),
    ];
    if starttls {
        lines.push("STARTTLS".into());
    }
    if auth {
        let names: Vec<&str> = Mechanism::ALL.iter().map(|m| m.name()).collect();
        lines.push(format!("AUTH {}", names.join(" ")));
    }
    lines.push("HELP".into());
    Reply::multiline(250, None, lines)
}
