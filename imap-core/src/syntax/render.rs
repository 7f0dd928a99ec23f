//! Writing strings the way the grammar allows: atoms where possible, quoted strings otherwise,
//! literals for what a quoted string cannot carry (RFC 3501 section 4.3).

/// `astring` for `text`: the atom itself when every byte is an `ASTRING-CHAR`, else a quoted
/// string. Text with CR, LF or NUL cannot be quoted; mailbox names never hold them (we refuse
/// such names), so callers use [`write_string`] for arbitrary bytes.
pub(crate) fn astring(text: &str) -> String {
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| super::cursor::is_atom_char(b) || b == b']')
    {
        text.to_owned()
    } else {
        quoted(text)
    }
}

/// A quoted string, `"` and `\` escaped.
pub(crate) fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Writes `bytes` as a `string`: quoted when it is short 7-bit text without CR, LF or NUL,
/// a literal otherwise.
pub fn write_string(out: &mut Vec<u8>, bytes: &[u8]) {
    let quotable = bytes.len() <= 1024
        && bytes
            .iter()
            .all(|&b| b != 0 && b != b'\r' && b != b'\n' && b < 0x80);
    if quotable {
        out.push(b'"');
        for &b in bytes {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(format!("{{{}}}\r\n", bytes.len()).as_bytes());
        out.extend_from_slice(bytes);
    }
}

/// Writes `NIL` for `None`, else [`write_string`].
pub fn write_nstring(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => write_string(out, b),
        None => out.extend_from_slice(b"NIL"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atoms_quotes_and_literals() {
        assert_eq!(astring("INBOX"), "INBOX");
        assert_eq!(astring("Sent Items"), "\"Sent Items\"");
        assert_eq!(astring(""), "\"\"");
        assert_eq!(astring("a\"b"), "\"a\\\"b\"");
        let mut out = Vec::new();
        write_string(&mut out, "é".as_bytes());
        assert_eq!(out, b"{2}\r\n\xc3\xa9");
    }
}
