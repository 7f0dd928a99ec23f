//! Writing strings the way the grammar allows: atoms where possible, quoted strings otherwise,
//! literals for what a quoted string cannot carry (RFC 3501 section 4.3).

/// `astring` for `text`: the atom itself when every byte is an `ASTRING-CHAR`, else a quoted
/// string. Text with CR, LF or NUL cannot be quoted; mailbox names never hold them (we refuse
/// such names), so callers use [`crate::message::write_string`] for arbitrary bytes.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atoms_quotes_and_literals() {
        assert_eq!(astring("INBOX"), "INBOX");
        assert_eq!(astring("Sent Items"), "\"Sent Items\"");
        assert_eq!(astring(""), "\"\"");
        assert_eq!(astring("a\"b"), "\"a\\\"b\"");
    }
}
