//! ENVELOPE (RFC 3501 section 7.4.2): ten header fields as sent, unfolded, undecoded.

use super::address::{Address, parse_list};
use super::tree::{field, header_end};
use crate::syntax::{write_nstring, write_string};

/// The ENVELOPE of a message (only its header is read).
///
/// ```
/// let env = imap_core::mime::envelope(b"From: Ann <ann@example.org>\r\nSubject: hi\r\n\r\nbody");
/// assert_eq!(
///     String::from_utf8(env).unwrap(),
///     "(NIL \"hi\" ((\"Ann\" NIL \"ann\" \"example.org\")) ((\"Ann\" NIL \"ann\" \"example.org\")) \
///      ((\"Ann\" NIL \"ann\" \"example.org\")) NIL NIL NIL NIL NIL)"
/// );
/// ```
pub fn envelope(message: &[u8]) -> Vec<u8> {
    let header = &message[..header_end(message)];
    let mut out = b"(".to_vec();
    let text = |name: &str, out: &mut Vec<u8>| {
        write_nstring(
            out,
            field(header, name).filter(|v| !v.is_empty()).as_deref(),
        );
    };
    text("Date", &mut out);
    out.push(b' ');
    text("Subject", &mut out);
    let from = addresses(header, "From");
    for (name, default) in [
        ("From", None),
        ("Sender", Some(&from)),
        ("Reply-To", Some(&from)),
        ("To", None),
        ("Cc", None),
        ("Bcc", None),
    ] {
        out.push(b' ');
        let list = addresses(header, name);
        // RFC 3501 7.4.2: an absent or empty Sender or Reply-To is the From.
        let list = match (list.is_empty(), default) {
            (true, Some(d)) => d.clone(),
            _ => list,
        };
        write_addresses(&list, &mut out);
    }
    out.push(b' ');
    text("In-Reply-To", &mut out);
    out.push(b' ');
    text("Message-ID", &mut out);
    out.push(b')');
    out
}

fn addresses(header: &[u8], name: &str) -> Vec<Address> {
    field(header, name)
        .map(|v| parse_list(&v))
        .unwrap_or_default()
}

fn write_addresses(list: &[Address], out: &mut Vec<u8>) {
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for a in list {
        match a {
            Address::Mailbox { name, local, host } => {
                out.push(b'(');
                write_nstring(out, name.as_deref());
                out.extend_from_slice(b" NIL ");
                write_string(out, local);
                out.push(b' ');
                write_nstring(out, host.as_deref());
                out.push(b')');
            }
            // RFC 3501 7.4.2: a group starts with (NIL NIL "name" NIL), ends with all NIL.
            Address::GroupStart(name) => {
                out.extend_from_slice(b"(NIL NIL ");
                write_string(out, name);
                out.extend_from_slice(b" NIL)");
            }
            Address::GroupEnd => out.extend_from_slice(b"(NIL NIL NIL NIL)"),
        }
    }
    out.push(b')');
}
