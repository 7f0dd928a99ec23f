//! IMAP string rendering (RFC 3501 section 4.3 and the `string`/`nstring` rules of section 9),
//! shared by ENVELOPE, BODYSTRUCTURE and the rest of the core.

/// Quoted strings longer than this go out as literals: the grammar sets no limit, but a long
/// quoted string is where clients' line-length limits bite, and a literal costs a few octets.
const MAX_QUOTED: usize = 1024;

/// What a NUL becomes: no IMAP string may carry one (RFC 3501 section 9, `CHAR8` excludes
/// %x00), so it is replaced by U+FFFD, visibly and as valid UTF-8.
const NUL_REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

/// Appends `s` as an IMAP `string`: a quoted string when every octet is a 7-bit `TEXT-CHAR`
/// (no NUL, CR or LF) and it is short, otherwise a literal `{n}\r\n` followed by the octets.
///
/// 8-bit octets always go out as a literal: a quoted string is 7-bit (RFC 3501 section 9,
/// `QUOTED-CHAR`), and a client that did not `ENABLE UTF8=ACCEPT` expects nothing else. NUL,
/// which no IMAP string may carry, is replaced by U+FFFD.
///
/// ```
/// use imap_core::message::write_string;
///
/// let mut out = Vec::new();
/// write_string(&mut out, br#"say "hi""#);
/// assert_eq!(out, br#""say \"hi\"""#);
///
/// out.clear();
/// write_string(&mut out, "Grüße".as_bytes());
/// assert_eq!(out, "{7}\r\nGrüße".as_bytes());
/// ```
pub fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() <= MAX_QUOTED && s.iter().all(|&b| is_text_char(b)) {
        out.reserve(s.len() + 2);
        out.push(b'"');
        for &b in s {
            // RFC 3501 section 9: quoted-specials are escaped with a backslash.
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
        return;
    }
    let nuls = s.iter().filter(|&&b| b == 0).count();
    let len = s.len() + nuls * (NUL_REPLACEMENT.len() - 1);
    out.push(b'{');
    out.extend_from_slice(len.to_string().as_bytes());
    out.extend_from_slice(b"}\r\n");
    out.reserve(len);
    for chunk in s.split(|&b| b == 0).enumerate() {
        if chunk.0 > 0 {
            out.extend_from_slice(NUL_REPLACEMENT);
        }
        out.extend_from_slice(chunk.1);
    }
}

/// Appends an IMAP `nstring`: `NIL` for `None`, otherwise as [`write_string`] does.
///
/// ```
/// use imap_core::message::write_nstring;
///
/// let mut out = Vec::new();
/// write_nstring(&mut out, None);
/// out.push(b' ');
/// write_nstring(&mut out, Some(b""));
/// assert_eq!(out, b"NIL \"\"");
/// ```
pub fn write_nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => write_string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// RFC 3501 section 9: `TEXT-CHAR = <any CHAR except CR and LF>`, `CHAR = %x01-7F`.
fn is_text_char(b: u8) -> bool {
    matches!(b, 0x01..=0x7f) && b != b'\r' && b != b'\n'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_string(&mut out, s);
        out
    }

    #[test]
    fn plain_ascii_is_quoted() {
        assert_eq!(string(b"hello"), b"\"hello\"");
        assert_eq!(string(b""), b"\"\"");
        assert_eq!(string(b"a\\b"), b"\"a\\\\b\"");
    }

    #[test]
    fn line_ends_and_8bit_make_a_literal() {
        assert_eq!(string(b"a\r\nb"), b"{4}\r\na\r\nb");
        assert_eq!(string(b"\xff"), b"{1}\r\n\xff");
    }

    #[test]
    fn long_strings_are_literals() {
        let long = vec![b'x'; MAX_QUOTED + 1];
        assert!(string(&long).starts_with(b"{1025}\r\n"));
        assert_eq!(string(&long[..MAX_QUOTED])[0], b'"');
    }

    #[test]
    fn nul_is_replaced_and_counted() {
        let out = string(b"a\0b");
        assert_eq!(out, "{5}\r\na\u{FFFD}b".as_bytes());
    }
}
