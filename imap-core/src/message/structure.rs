//! BODY and BODYSTRUCTURE (RFC 3501 section 7.4.2; `body` and what it contains in section 9).

use super::content::{self, MediaType, Param};
use super::envelope::envelope;
use super::header;
use super::render::{write_nstring, write_string};
use super::tree::{self, Kind, Part};

/// The BODY (`extensible == false`) or BODYSTRUCTURE (`true`) of `message`.
///
/// Types, subtypes, parameters and encodings are as sent (a part without Content-Type is
/// `"text" "plain" ("charset" "us-ascii")`, one without Content-Transfer-Encoding `"7bit"`).
/// Sizes are the octets of each body as it is in the message and line counts its lines, so
/// both agree with what BODY\[section\] returns. message/rfc822 parts carry the envelope,
/// structure and line count of the encapsulated message. A multipart without a usable
/// boundary is reported as text/plain. Never fails, whatever the input.
///
/// ```
/// use imap_core::message::body_structure;
///
/// let m = b"Content-Type: multipart/alternative; boundary=xyz\r\n\r\n\
///           --xyz\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello\r\n\
///           --xyz\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\nPGI+SGk8L2I+\r\n\
///           --xyz--\r\n";
/// assert_eq!(
///     body_structure(m, false),
///     &b"((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 5 1)\
///         (\"text\" \"html\" NIL NIL NIL \"base64\" 12 1) \"alternative\")"[..]
/// );
/// assert_eq!(
///     body_structure(m, true),
///     &b"((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 5 1 NIL NIL NIL NIL)\
///         (\"text\" \"html\" NIL NIL NIL \"base64\" 12 1 NIL NIL NIL NIL) \"alternative\" \
///         (\"boundary\" \"xyz\") NIL NIL NIL)"[..]
/// );
/// ```
pub fn body_structure(message: &[u8], extensible: bool) -> Vec<u8> {
    let root = tree::parse(message);
    let mut out = Vec::with_capacity(256);
    write_body(&mut out, message, &root, extensible);
    out
}

/// `body = "(" (body-type-1part / body-type-mpart) ")"`.
fn write_body(out: &mut Vec<u8>, message: &[u8], part: &Part, extensible: bool) {
    let header = message.get(part.header.clone()).unwrap_or_default();
    let body = message.get(part.body.clone()).unwrap_or_default();
    out.push(b'(');
    match &part.kind {
        // body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]: the parts follow each
        // other without a space.
        Kind::Multipart(children) => {
            for child in children {
                write_body(out, message, child, extensible);
            }
            out.push(b' ');
            write_string(out, &part.media.sub);
            if extensible {
                // body-ext-mpart = body-fld-param [SP body-fld-dsp [SP body-fld-lang
                // [SP body-fld-loc]]]
                out.push(b' ');
                write_params(out, &part.media.params);
                write_ext_tail(out, header);
            }
        }
        kind => {
            write_media_and_fields(out, &part.media, header, body);
            match kind {
                // body-type-msg: ... SP envelope SP body SP body-fld-lines
                Kind::Message(inner) => {
                    out.push(b' ');
                    let inner_header = message.get(inner.header.clone()).unwrap_or_default();
                    out.extend_from_slice(&envelope(inner_header));
                    out.push(b' ');
                    write_body(out, message, inner, extensible);
                    out.push(b' ');
                    write_number(out, lines(body));
                }
                // body-type-text: ... SP body-fld-lines
                _ if part.media.is_main("text") => {
                    out.push(b' ');
                    write_number(out, lines(body));
                }
                _ => {}
            }
            if extensible {
                // body-ext-1part = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang
                // [SP body-fld-loc]]]
                out.push(b' ');
                write_nstring(out, header::first_value(header, "content-md5").as_deref());
                write_ext_tail(out, header);
            }
        }
    }
    out.push(b')');
}

/// `media-type SP body-fields`, where body-fields = body-fld-param SP body-fld-id SP
/// body-fld-desc SP body-fld-enc SP body-fld-octets.
fn write_media_and_fields(out: &mut Vec<u8>, media: &MediaType, header: &[u8], body: &[u8]) {
    write_string(out, &media.main);
    out.push(b' ');
    write_string(out, &media.sub);
    out.push(b' ');
    write_params(out, &media.params);
    out.push(b' ');
    write_nstring(out, header::first_value(header, "content-id").as_deref());
    out.push(b' ');
    write_nstring(
        out,
        header::first_value(header, "content-description").as_deref(),
    );
    out.push(b' ');
    // RFC 2045 section 6.1: no Content-Transfer-Encoding means 7bit.
    let encoding = header::first_value(header, "content-transfer-encoding")
        .and_then(|v| content::encoding(&v))
        .unwrap_or_else(|| b"7bit".to_vec());
    write_string(out, &encoding);
    out.push(b' ');
    write_number(out, body.len());
}

/// `SP body-fld-dsp SP body-fld-lang SP body-fld-loc`, shared by both extension forms.
fn write_ext_tail(out: &mut Vec<u8>, header: &[u8]) {
    // body-fld-dsp = "(" string SP body-fld-param ")" / nil (RFC 2183 for the field).
    out.push(b' ');
    match header::first_value(header, "content-disposition").and_then(|v| content::disposition(&v))
    {
        Some((kind, params)) => {
            out.push(b'(');
            write_string(out, &kind);
            out.push(b' ');
            write_params(out, &params);
            out.push(b')');
        }
        None => out.extend_from_slice(b"NIL"),
    }
    // body-fld-lang = nstring / "(" string *(SP string) ")" (RFC 3282 for the field).
    out.push(b' ');
    let languages = header::first_value(header, "content-language")
        .map(|v| content::languages(&v))
        .unwrap_or_default();
    match languages.as_slice() {
        [] => out.extend_from_slice(b"NIL"),
        [one] => write_string(out, one),
        many => {
            out.push(b'(');
            for (i, tag) in many.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_string(out, tag);
            }
            out.push(b')');
        }
    }
    // body-fld-loc = nstring (RFC 2557 for the field).
    out.push(b' ');
    write_nstring(
        out,
        header::first_value(header, "content-location").as_deref(),
    );
}

/// `body-fld-param = "(" string SP string *(SP string SP string) ")" / nil`.
fn write_params(out: &mut Vec<u8>, params: &[Param]) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        write_string(out, name);
        out.push(b' ');
        write_string(out, value);
    }
    out.push(b')');
}

/// A `number` (RFC 3501 section 9: 32 bits). Larger values are clamped, which only a body
/// over 4 GiB could need.
fn write_number(out: &mut Vec<u8>, n: usize) {
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    out.extend_from_slice(n.to_string().as_bytes());
}

/// The number of lines in `body`: its line ends, plus one for a last line without one.
fn lines(body: &[u8]) -> usize {
    let ends = memchr::memchr_iter(b'\n', body).count();
    ends + usize::from(!body.is_empty() && !body.ends_with(b"\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bs(m: &[u8], ext: bool) -> String {
        String::from_utf8_lossy(&body_structure(m, ext)).into_owned()
    }

    #[test]
    fn line_counts() {
        assert_eq!(lines(b""), 0);
        assert_eq!(lines(b"a"), 1);
        assert_eq!(lines(b"a\r\n"), 1);
        assert_eq!(lines(b"a\nb"), 2);
        assert_eq!(lines(b"\n\n"), 2);
    }

    #[test]
    fn missing_content_type_is_text_plain_us_ascii() {
        assert_eq!(
            bs(b"Subject: x\r\n\r\nHello\r\nWorld\r\n", true),
            "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 14 2 NIL NIL NIL NIL)"
        );
        assert_eq!(
            bs(b"", false),
            "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)"
        );
    }

    #[test]
    fn basic_part_has_no_line_count_and_fields_are_reported() {
        let m = b"Content-Type: application/pdf; name=\"a.pdf\"\r\n\
                  Content-ID: <id@x>\r\nContent-Description: the file\r\n\
                  Content-Transfer-Encoding: BASE64\r\n\
                  Content-Disposition: attachment; filename=a.pdf\r\n\
                  Content-Language: en, de\r\nContent-Location: http://x/a.pdf\r\n\
                  Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n\r\nAAAA\r\n";
        assert_eq!(
            bs(m, true),
            "(\"application\" \"pdf\" (\"name\" \"a.pdf\") \"<id@x>\" \"the file\" \"BASE64\" 6 \
             \"Q2hlY2sgSW50ZWdyaXR5IQ==\" (\"attachment\" (\"filename\" \"a.pdf\")) (\"en\" \"de\") \
             \"http://x/a.pdf\")"
        );
        assert_eq!(
            bs(m, false),
            "(\"application\" \"pdf\" (\"name\" \"a.pdf\") \"<id@x>\" \"the file\" \"BASE64\" 6)"
        );
    }

    #[test]
    fn broken_boundary_is_text() {
        let m = b"Content-Type: multipart/mixed\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n";
        assert_eq!(
            bs(m, false),
            "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 17 4)"
        );
    }
}
