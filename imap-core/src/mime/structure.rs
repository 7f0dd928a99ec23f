//! BODY and BODYSTRUCTURE (RFC 3501 sections 7.4.2 and 9, `body`): the MIME tree described,
//! sizes and line counts taken from the raw bytes.

use super::envelope::envelope;
use super::tree::{Part, field, parse, value_and_params};
use crate::syntax::{write_nstring, write_string};

/// BODY (`extensible: false`) or BODYSTRUCTURE (`true`) of a message.
///
/// ```
/// let b = imap_core::mime::body_structure(b"Subject: x\r\n\r\nhello\r\n", false);
/// assert_eq!(b, b"(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 7 1)");
/// ```
pub fn body_structure(message: &[u8], extensible: bool) -> Vec<u8> {
    let root = parse(message, 0..message.len(), false, 0);
    let mut out = Vec::new();
    write_part(message, &root, extensible, &mut out);
    out
}

fn write_params(params: &[(String, String)], out: &mut Vec<u8>) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        write_string(out, k.as_bytes());
        out.push(b' ');
        write_string(out, v.as_bytes());
    }
    out.push(b')');
}

fn lines(body: &[u8]) -> usize {
    let n = memchr::memchr_iter(b'\n', body).count();
    if !body.is_empty() && !body.ends_with(b"\n") {
        n + 1
    } else {
        n
    }
}

/// `body-ext-1part` / `body-ext-mpart` after the first field: disposition, language,
/// location.
fn write_extension_tail(header: &[u8], out: &mut Vec<u8>) {
    out.push(b' ');
    match field(header, "Content-Disposition") {
        Some(v) if !v.is_empty() => {
            let (value, params) = value_and_params(&v);
            out.push(b'(');
            write_string(out, value.as_bytes());
            out.push(b' ');
            write_params(&params, out);
            out.push(b')');
        }
        _ => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    match field(header, "Content-Language") {
        Some(v) if !v.is_empty() => {
            let text = String::from_utf8_lossy(&v).into_owned();
            let langs: Vec<&str> = text
                .split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            if langs.len() == 1 {
                write_string(out, langs[0].as_bytes());
            } else {
                out.push(b'(');
                for (i, l) in langs.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    write_string(out, l.as_bytes());
                }
                out.push(b')');
            }
        }
        _ => out.extend_from_slice(b"NIL"),
    }
    out.push(b' ');
    write_nstring(out, field(header, "Content-Location").as_deref());
}

fn write_part(m: &[u8], p: &Part, ext: bool, out: &mut Vec<u8>) {
    let header = &m[p.header.clone()];
    out.push(b'(');
    if p.is_multipart() {
        for child in &p.children {
            write_part(m, child, ext, out);
        }
        out.push(b' ');
        write_string(out, p.kind.1.as_bytes());
        if ext {
            out.push(b' ');
            write_params(&p.params, out);
            write_extension_tail(header, out);
        }
        out.push(b')');
        return;
    }
    let body = &m[p.body.clone()];
    write_string(out, p.kind.0.as_bytes());
    out.push(b' ');
    write_string(out, p.kind.1.as_bytes());
    out.push(b' ');
    write_params(&p.params, out);
    out.push(b' ');
    write_nstring(out, field(header, "Content-ID").as_deref());
    out.push(b' ');
    write_nstring(out, field(header, "Content-Description").as_deref());
    out.push(b' ');
    let encoding = field(header, "Content-Transfer-Encoding")
        .filter(|v| !v.is_empty())
        .map(|v| v.to_ascii_lowercase())
        .unwrap_or_else(|| b"7bit".to_vec());
    write_string(out, &encoding);
    out.extend_from_slice(format!(" {}", body.len()).as_bytes());
    if let Some(inner) = &p.message {
        // body-type-msg: the encapsulated message's envelope, body and lines.
        out.push(b' ');
        out.extend_from_slice(&envelope(&m[inner.header.start..inner.body.end]));
        out.push(b' ');
        write_part(m, inner, ext, out);
        out.extend_from_slice(format!(" {}", lines(body)).as_bytes());
    } else if p.kind.0 == "text" {
        out.extend_from_slice(format!(" {}", lines(body)).as_bytes());
    }
    if ext {
        out.push(b' ');
        write_nstring(out, field(header, "Content-MD5").as_deref());
        write_extension_tail(header, out);
    }
    out.push(b')');
}
