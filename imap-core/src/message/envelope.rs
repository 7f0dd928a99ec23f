//! ENVELOPE (RFC 3501 section 7.4.2; `envelope` in section 9), from the raw header.

use super::address::{self, Item};
use super::header;
use super::render::{write_nstring, write_string};

/// The ENVELOPE of `message` (its header is enough; a body after it is ignored):
/// `(date subject from sender reply-to to cc bcc in-reply-to message-id)`.
///
/// Values are as sent, unfolded but not decoded: encoded-words stay encoded (RFC 3501
/// section 7.4.2 leaves decoding to the client). A field that is absent is NIL; one that is
/// present but empty is `""`. Each field comes from its first occurrence. Address lists are
/// `((name adl mailbox host) ...)` with RFC 3501's group markers, or NIL when they hold no
/// address; Sender and Reply-To default to From. An address without a domain gets the host
/// `""`: NIL would read as a group marker. Anything 8-bit or with line ends is a literal.
///
/// ```
/// use imap_core::message::envelope;
///
/// let m = b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n\
///           From: Fred Foobar <foobar@Blurdybloop.example>\r\n\
///           Subject: afternoon meeting\r\n\
///           To: mooch@owatagu.example\r\n\
///           Message-Id: <B27397-0100000@Blurdybloop.example>\r\n\r\nHello\r\n";
/// assert_eq!(
///     envelope(m),
///     b"(\"Mon, 7 Feb 1994 21:52:25 -0800\" \"afternoon meeting\" \
///       ((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) \
///       ((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) \
///       ((\"Fred Foobar\" NIL \"foobar\" \"Blurdybloop.example\")) \
///       ((NIL NIL \"mooch\" \"owatagu.example\")) NIL NIL NIL \
///       \"<B27397-0100000@Blurdybloop.example>\")"
/// );
/// ```
pub fn envelope(message: &[u8]) -> Vec<u8> {
    let header = message
        .get(..header::header_end(message))
        .unwrap_or_default();
    let text = |name| header::first_value(header, name);
    let addresses = |name| text(name).map(|v| address::parse(&v)).unwrap_or_default();

    let from = addresses("from");
    let mut sender = addresses("sender");
    let mut reply_to = addresses("reply-to");
    // RFC 3501 section 7.4.2: absent or empty Sender and Reply-To are set to From.
    if sender.is_empty() {
        sender = from.clone();
    }
    if reply_to.is_empty() {
        reply_to = from.clone();
    }

    let mut out = Vec::with_capacity(256);
    out.push(b'(');
    write_nstring(&mut out, text("date").as_deref());
    out.push(b' ');
    write_nstring(&mut out, text("subject").as_deref());
    for list in [
        &from,
        &sender,
        &reply_to,
        &addresses("to"),
        &addresses("cc"),
        &addresses("bcc"),
    ] {
        out.push(b' ');
        write_address_list(&mut out, list);
    }
    out.push(b' ');
    write_nstring(&mut out, text("in-reply-to").as_deref());
    out.push(b' ');
    write_nstring(&mut out, text("message-id").as_deref());
    out.push(b')');
    out
}

/// `"(" 1*address ")" / nil` (RFC 3501 section 9, env-from and the others).
fn write_address_list(out: &mut Vec<u8>, items: &[Item]) {
    if items.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for item in items {
        out.push(b'(');
        match item {
            Item::Mailbox {
                name,
                adl,
                mailbox,
                host,
            } => {
                write_nstring(out, name.as_deref());
                out.push(b' ');
                write_nstring(out, adl.as_deref());
                out.push(b' ');
                write_string(out, mailbox);
                out.push(b' ');
                write_string(out, host);
            }
            // RFC 3501 section 7.4.2: a group starts with a NIL host and the group name as
            // mailbox, and ends with NIL mailbox and host.
            Item::GroupStart(name) => {
                out.extend_from_slice(b"NIL NIL ");
                write_string(out, name);
                out.extend_from_slice(b" NIL");
            }
            Item::GroupEnd => out.extend_from_slice(b"NIL NIL NIL NIL"),
        }
        out.push(b')');
    }
    out.push(b')');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(m: &[u8]) -> String {
        String::from_utf8_lossy(&envelope(m)).into_owned()
    }

    #[test]
    fn empty_header_is_all_nil() {
        assert_eq!(env(b""), "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
        assert_eq!(
            env(b"\r\nFrom: body@x\r\n"),
            "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"
        );
    }

    #[test]
    fn present_but_empty_is_the_empty_string() {
        assert_eq!(
            env(b"Subject:\r\nDate: \r\n\r\n"),
            "(\"\" \"\" NIL NIL NIL NIL NIL NIL NIL NIL)"
        );
    }

    #[test]
    fn sender_and_reply_to_kept_when_given() {
        let e = env(b"From: a@b\r\nSender: s@b\r\nReply-To: r@b\r\nCc: c@d\r\nBcc: e@f\r\nIn-Reply-To: <x@y>\r\n\r\n");
        assert_eq!(
            e,
            "(NIL NIL ((NIL NIL \"a\" \"b\")) ((NIL NIL \"s\" \"b\")) ((NIL NIL \"r\" \"b\")) NIL \
             ((NIL NIL \"c\" \"d\")) ((NIL NIL \"e\" \"f\")) \"<x@y>\" NIL)"
        );
    }

    #[test]
    fn groups_and_encoded_words() {
        let e = env(b"Subject: =?utf-8?q?caf=C3=A9?=\r\nTo: undisclosed-recipients:;\r\n\r\n");
        assert_eq!(
            e,
            "(NIL \"=?utf-8?q?caf=C3=A9?=\" NIL NIL NIL \
             ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL NIL)"
        );
    }

    #[test]
    fn folded_and_8bit_subject() {
        let e = envelope("Subject: Grüße\r\n aus Köln\n\n".as_bytes());
        let subject = "Grüße aus Köln";
        let expect = format!(
            "(NIL {{{}}}\r\n{subject} NIL NIL NIL NIL NIL NIL NIL NIL)",
            subject.len()
        );
        assert_eq!(e, expect.as_bytes());
    }
}
