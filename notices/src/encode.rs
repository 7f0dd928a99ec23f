//! Header text made safe to send: control characters removed, length bounded, and anything
//! that is not plain ASCII written as RFC 2047 encoded words.

/// `text` with every control character (a line break, a tab, an escape) turned into a space
/// and runs of blanks collapsed, cut to at most `max` characters (with an ellipsis).
///
/// ```
/// assert_eq!(notices::clean_text("a\r\n\tb  c\u{1b}", 80), "a b c");
/// assert_eq!(notices::clean_text("abcdef", 4), "abc…");
/// ```
pub fn clean_text(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.trim().chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if !(c == ' ' && out.ends_with(' ')) {
            out.push(c);
        }
    }
    out.truncate(out.trim_end().len());
    if out.chars().count() > max {
        out = out.chars().take(max.saturating_sub(1)).collect();
        out.truncate(out.trim_end().len());
        out.push('…');
    }
    out
}

/// Unstructured header text (a `Subject`, a display name) as it may appear in a header:
/// as is when it is printable ASCII without `=?`, else as UTF-8 `B` encoded words of at
/// most 75 octets each (RFC 2047 section 2), folded onto continuation lines.
///
/// ```
/// assert_eq!(notices::encode_words("Lunch at noon"), "Lunch at noon");
/// assert_eq!(notices::encode_words("Caf\u{e9}"), "=?UTF-8?B?Q2Fmw6k=?=");
/// ```
pub fn encode_words(text: &str) -> String {
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) && !text.contains("=?") {
        return text.to_owned();
    }
    // 45 octets of UTF-8 make 60 of base64: with "=?UTF-8?B?" and "?=", 72 in all.
    const CHUNK: usize = 45;
    let mut words = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + CHUNK).min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        words.push(format!(
            "=?UTF-8?B?{}?=",
            line_protocol::base64::encode(&text.as_bytes()[start..end])
        ));
        start = end;
    }
    words.join("\r\n ")
}

/// A display name for a `From` field: as an atom phrase when it is plain, quoted when it has
/// specials (RFC 5322 section 3.2.5), encoded when it is not ASCII.
pub(crate) fn display_name(name: &str) -> String {
    let ascii = name.bytes().all(|b| (0x20..0x7f).contains(&b)) && !name.contains("=?");
    if !ascii {
        return encode_words(name);
    }
    let plain = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || " !#$%&'*+-/=?^_`{|}~".contains(c));
    if plain {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_words_stay_short_and_split_on_characters() {
        let text = "é".repeat(100);
        let encoded = encode_words(&text);
        for line in encoded.split("\r\n ") {
            assert!(line.len() <= 75, "{line}");
            let inner = &line["=?UTF-8?B?".len()..line.len() - 2];
            let bytes = line_protocol::base64::decode(inner.as_bytes()).unwrap();
            assert!(std::str::from_utf8(&bytes).is_ok());
        }
        assert_eq!(encode_words("a =?x?= b"), "=?UTF-8?B?YSA9P3g/PSBi?=");
    }

    #[test]
    fn display_names_are_quoted_when_they_must_be() {
        assert_eq!(display_name("Bob Smith"), "Bob Smith");
        assert_eq!(display_name("Smith, Bob"), "\"Smith, Bob\"");
        assert_eq!(display_name("a \"b\""), "\"a \\\"b\\\"\"");
        assert_eq!(display_name("José"), "=?UTF-8?B?Sm9zw6k=?=");
    }
}
