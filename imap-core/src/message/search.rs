//! What SEARCH (RFC 3501 section 6.4.4) asks of a message: HEADER, BODY, TEXT and the SENT*
//! dates. Matching is on decoded text: RFC 2047 encoded-words, transfer encodings and charsets
//! are undone (with mail-parser's decoders) before a case-insensitive substring test.

use std::borrow::Cow;

use mail_parser::HeaderValue;
use mail_parser::decoders::charsets::map::charset_decoder;
use mail_parser::decoders::html::html_to_text;
use mail_parser::parsers::MessageStream;

use super::content;
use super::header;
use super::tree::{self, Kind, Part};

/// Whether a header field named `field` (ASCII case-insensitive) contains `needle`, for
/// `SEARCH HEADER field needle`.
///
/// Each occurrence of the field is unfolded and its RFC 2047 encoded-words decoded to UTF-8
/// before a case-insensitive substring match. An empty needle matches any message that has
/// the field (RFC 3501 section 6.4.4). Only the message's own header is searched.
///
/// ```
/// use imap_core::message::header_matches;
///
/// let m = b"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= from\r\n K\xc3\xb6ln\r\n\r\nbody\r\n";
/// assert!(header_matches(m, "subject", "grüße FROM köln"));
/// assert!(header_matches(m, "Subject", ""));
/// assert!(!header_matches(m, "X-Missing", ""));
/// ```
pub fn header_matches(message: &[u8], field: &str, needle: &str) -> bool {
    let header = message
        .get(..header::header_end(message))
        .unwrap_or_default();
    let needle = needle.to_lowercase();
    header::fields(header)
        .filter(|f| {
            f.name
                .is_some_and(|n| n.eq_ignore_ascii_case(field.as_bytes()))
        })
        .any(|f| needle.is_empty() || decode_value(f.value).to_lowercase().contains(&needle))
}

/// Whether the message contains `needle`, case-insensitively, for `SEARCH BODY needle`
/// (`body_only`) or `SEARCH TEXT needle` (header and body).
///
/// The body is searched as text: each text part is decoded from its transfer encoding
/// (base64, quoted-printable) and charset to UTF-8 (HTML is searched as its text), and the
/// headers of encapsulated messages are part of the body; non-text parts are not searched.
/// Header fields are searched with their encoded-words decoded.
///
/// ```
/// use imap_core::message::text_matches;
///
/// let m = b"Subject: Lunch\r\nContent-Type: text/plain; charset=utf-8\r\n\
///           Content-Transfer-Encoding: quoted-printable\r\n\r\nCaf=C3=A9 at noon\r\n";
/// assert!(text_matches(m, "CAFÉ", true));
/// assert!(!text_matches(m, "lunch", true));
/// assert!(text_matches(m, "lunch", false));
/// ```
pub fn text_matches(message: &[u8], needle: &str, body_only: bool) -> bool {
    let needle = needle.to_lowercase();
    if needle.is_empty() {
        return true;
    }
    // The parts come from our own MIME tree, the one BODYSTRUCTURE describes, rather than
    // from mail-parser's message parser: that one trips debug assertions on broken input.
    let root = tree::parse(message);
    let header = message.get(root.header.clone()).unwrap_or_default();
    (!body_only && header_text_matches(header, &needle)) || body_matches(message, &root, &needle)
}

/// Whether any field of `header` (as `name: decoded value`) contains `needle`.
fn header_text_matches(header: &[u8], needle: &str) -> bool {
    header::fields(header).any(|f| {
        let name = String::from_utf8_lossy(f.name.unwrap_or_default());
        format!("{name}: {}", decode_value(f.value))
            .to_lowercase()
            .contains(needle)
    })
}

/// Whether the body of `part` contains `needle`: its text parts, decoded, and the headers of
/// the messages it encapsulates.
fn body_matches(message: &[u8], part: &Part, needle: &str) -> bool {
    match &part.kind {
        Kind::Multipart(parts) => parts.iter().any(|p| body_matches(message, p, needle)),
        Kind::Message(inner) => {
            header_text_matches(
                message.get(inner.header.clone()).unwrap_or_default(),
                needle,
            ) || body_matches(message, inner, needle)
        }
        Kind::Single if part.media.is_main("text") => {
            decoded_text(message, part).to_lowercase().contains(needle)
        }
        Kind::Single => false,
    }
}

/// The text of a text part: transfer encoding undone (RFC 2045 section 6), charset converted
/// to UTF-8 (unknown charsets read as UTF-8, invalid sequences replaced), HTML reduced to text.
fn decoded_text(message: &[u8], part: &Part) -> String {
    let header = message.get(part.header.clone()).unwrap_or_default();
    let raw = message.get(part.body.clone()).unwrap_or_default();
    let encoding = header::first_value(header, "content-transfer-encoding")
        .and_then(|v| content::encoding(&v))
        .unwrap_or_default();
    let bytes: Cow<'_, [u8]> = if encoding.eq_ignore_ascii_case(b"base64") {
        Cow::Owned(base64(raw))
    } else if encoding.eq_ignore_ascii_case(b"quoted-printable") {
        Cow::Owned(quoted_printable(raw))
    } else {
        Cow::Borrowed(raw)
    };
    let text = match part.media.param("charset").and_then(charset_decoder) {
        Some(decode) => decode(&bytes),
        None => String::from_utf8_lossy(&bytes).into_owned(),
    };
    if part.media.sub.eq_ignore_ascii_case(b"html") {
        html_to_text(&text)
    } else {
        text
    }
}

/// Decodes base64 (RFC 2045 section 6.8) leniently: octets outside the alphabet (line ends,
/// junk) are skipped, as that section says a decoder must, and `=` ends the data.
fn base64(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for &b in raw {
        let value = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => continue,
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Decodes quoted-printable (RFC 2045 section 6.7) leniently: soft line breaks (`=` before a
/// line end, transport padding allowed) vanish, `=XX` becomes its octet, and an `=` that
/// starts neither stays as it is.
fn quoted_printable(raw: &[u8]) -> Vec<u8> {
    let hex = |b: Option<&u8>| b.and_then(|&b| char::from(b).to_digit(16));
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        if b == b'=' {
            let rest = raw.get(i + 1..).unwrap_or_default();
            let padding = rest
                .iter()
                .take_while(|&&c| c == b' ' || c == b'\t')
                .count();
            let after = rest.get(padding..).unwrap_or_default();
            if after.starts_with(b"\r\n") {
                i += 1 + padding + 2;
                continue;
            }
            if after.starts_with(b"\n") {
                i += 1 + padding + 1;
                continue;
            }
            if let (Some(high), Some(low)) = (hex(rest.first()), hex(rest.get(1))) {
                out.push((high * 16 + low) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

/// A raw field value (after the colon, folds included) unfolded, with its RFC 2047
/// encoded-words decoded and other bytes read as UTF-8 (invalid sequences replaced).
fn decode_value(raw: &[u8]) -> String {
    let mut value = header::unfold(raw);
    // mail-parser's unstructured parser reads up to a line end that is not a fold.
    value.push(b'\n');
    match MessageStream::new(&value).parse_unstructured() {
        HeaderValue::Text(text) => text.into_owned(),
        _ => String::new(),
    }
}

/// The date of the message's Date: field, in the time zone it was written in, as (year,
/// month, day): what SENTBEFORE, SENTON and SENTSINCE compare (RFC 3501 section 6.4.4).
/// `None` when there is no Date: field or it cannot be read as an RFC 5322 date.
///
/// ```
/// use imap_core::message::sent_date;
///
/// let m = b"Date: Tue, 1 Jul 2003 23:30:00 -0700\r\n\r\n";
/// assert_eq!(sent_date(m), Some((2003, 7, 1)));
/// assert_eq!(sent_date(b"Date: soon\r\n\r\n"), None);
/// ```
pub fn sent_date(message: &[u8]) -> Option<(i32, u32, u32)> {
    let header = message
        .get(..header::header_end(message))
        .unwrap_or_default();
    let mut value = header::first_value(header, "date")?;
    value.push(b'\n');
    let date = MessageStream::new(&value).parse_date().into_datetime()?;
    let valid = (1..=12).contains(&date.month) && (1..=31).contains(&date.day) && date.year > 0;
    valid.then(|| {
        (
            i32::from(date.year),
            u32::from(date.month),
            u32::from(date.day),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_match_on_repeated_fields_and_case() {
        let m = b"Received: from a\r\nReceived: from B.example\r\n\r\n";
        assert!(header_matches(m, "RECEIVED", "b.EXAMPLE"));
        assert!(!header_matches(m, "received", "c.example"));
        assert!(!header_matches(
            b"\r\nReceived: in body\r\n",
            "received",
            ""
        ));
    }

    #[test]
    fn body_search_decodes_base64_and_charsets_and_skips_the_header() {
        let m = b"Subject: nothing\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
                  Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: base64\r\n\r\n\
                  U2No9m5lIEdy/N9l\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: Inner\r\n\r\ninner text\r\n--b--\r\n";
        assert!(text_matches(m, "SCHÖNE grüße", true));
        assert!(text_matches(m, "inner TEXT", true));
        assert!(text_matches(m, "subject: inner", true));
        assert!(!text_matches(m, "nothing", true));
        assert!(text_matches(m, "nothing", false));
        assert!(!text_matches(m, "absent", false));
    }

    #[test]
    fn lenient_decoders() {
        assert_eq!(base64(b"aGVs\r\nbG8=\r\n"), b"hello");
        assert_eq!(base64(b"!!aGVsbG8"), b"hello");
        assert_eq!(quoted_printable(b"a=3Db=\r\nc= \nd=zz=4"), b"a=bcd=zz=4");
    }

    #[test]
    fn sent_dates() {
        assert_eq!(
            sent_date(b"Date: 31 Dec 2021 23:59:59 +1400\r\n\r\n"),
            Some((2021, 12, 31))
        );
        assert_eq!(sent_date(b"Subject: none\r\n\r\n"), None);
        assert_eq!(
            sent_date(b"Date: Fri, 21 Nov 1997 09:55:06\r\n -0600\r\n\r\n"),
            Some((1997, 11, 21))
        );
    }
}
