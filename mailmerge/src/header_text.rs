//! Writing header values that every reader decodes back to the same text.
//!
//! Two kinds of value are written here: display names (an RFC 5322 section
//! 3.2.5 `phrase`) and unstructured text such as `Subject`. Both come out as
//! one line of words separated by single spaces; mail-builder folds that line
//! at the spaces.
//!
//! The rules that make the text survive every decoder we know of:
//!
//! * An ASCII display name is written as it is where the grammar allows; one
//!   that holds a special (`,` `"` `(` `:` `@` ...) is written as one quoted
//!   string, backslash-escaping `"` and `\`. A name with encoded words has no
//!   quoted string: its ASCII words are atoms or encoded too.
//! * Only runs of words that need it become RFC 2047 encoded words: words
//!   with non-ASCII characters, words that look like an encoded word
//!   themselves (`=?`), and words too long to fold.
//! * Encoded words are split at spaces where possible, never inside a
//!   character (RFC 2047 section 5), and each is at most 75 characters
//!   (section 2). The space at a split is encoded inside the earlier word,
//!   because section 6.2 makes readers drop the whitespace *between*
//!   adjacent encoded words.
//! * Runs of ASCII words between encoded runs stay plain, so encoded words
//!   are adjacent only when a run of non-ASCII words is too long for one.
//!   That matters: Python's `email.policy.default` keeps the whitespace
//!   between adjacent encoded words of a display name (RFC 2047 says to drop
//!   it), so a name split there reads back with a doubled space in Python and
//!   right everywhere else. Names are split only when they must be.

/// RFC 2047 section 2: an encoded word is at most 75 characters.
const MAX_ENCODED_WORD: usize = 75;
/// `=?utf-8?q?` plus `?=`.
const OVERHEAD: usize = "=?utf-8?q?".len() + "?=".len();
/// What is left of an encoded word for its encoded text.
const MAX_PAYLOAD: usize = MAX_ENCODED_WORD - OVERHEAD;
/// An ASCII word longer than this could not be folded onto a line of 78
/// characters (RFC 5322 section 2.1.1), so it is encoded, which lets it split.
const MAX_PLAIN_WORD: usize = 76;

/// Writes a display name: atoms, one quoted string, or encoded words.
///
/// `name` must be one line; runs of whitespace are written as one space.
pub(crate) fn phrase(name: &str) -> String {
    let words: Vec<&str> = name.split_whitespace().collect();
    let too_long = |w: &str| w.len() > MAX_PLAIN_WORD;
    if !words.iter().any(|w| needs_encoding(w) || too_long(w)) {
        let text = words.join(" ");
        return if text.bytes().all(|b| b == b' ' || is_atext(b)) {
            text
        } else {
            quoted_string(&text)
        };
    }
    // With encoded words in the name, the other words are atoms or encoded
    // too: never a quoted string, which some decoders (mail-parser) join to
    // a neighbouring encoded word without its space.
    let plain = |w: &str| w.bytes().all(is_atext) && !needs_encoding(w) && !too_long(w);
    write_runs(&words, |w| !plain(w))
}

/// Writes unstructured text (RFC 5322 section 3.2.5), encoding only the runs
/// of words that need it.
///
/// `text` must be one line; runs of whitespace are written as one space.
pub(crate) fn unstructured(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    write_runs(&words, |w| needs_encoding(w) || w.len() > MAX_PLAIN_WORD)
}

/// Writes `words` with single spaces: each run of words that `encode` picks as encoded words,
/// the others as they are.
fn write_runs(words: &[&str], encode: impl Fn(&str) -> bool) -> String {
    let mut out = Vec::new();
    for run in runs(words, encode) {
        let text = run.words.join(" ");
        if run.encode {
            out.extend(encoded_words(&text));
        } else {
            out.push(text);
        }
    }
    out.join(" ")
}

/// Whether a word cannot be written as plain ASCII: it has non-ASCII
/// characters, or a decoder could take part of it for an encoded word (a CSV
/// value `=?utf-8?q?x?=` must reach the reader as written, not as `x`).
fn needs_encoding(word: &str) -> bool {
    !word.is_ascii() || word.contains("=?")
}

/// RFC 5322 section 3.2.3 `atext`.
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

/// RFC 5322 section 3.2.4: a quoted string escapes `"` and `\`.
fn quoted_string(text: &str) -> String {
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

/// Consecutive words that are all encoded or all plain.
struct Run<'a> {
    words: Vec<&'a str>,
    encode: bool,
}

fn runs<'a>(words: &[&'a str], encode: impl Fn(&str) -> bool) -> Vec<Run<'a>> {
    let mut out: Vec<Run<'a>> = Vec::new();
    for &word in words {
        let wanted = encode(word);
        match out.last_mut() {
            Some(run) if run.encode == wanted => run.words.push(word),
            _ => out.push(Run {
                words: vec![word],
                encode: wanted,
            }),
        }
    }
    out
}

/// The two RFC 2047 encodings; each run uses the shorter one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// "Q", with the character set allowed in a phrase (section 5(3)), which
    /// is also valid in unstructured text.
    Q,
    /// "B": base64.
    B,
}

impl Encoding {
    fn payload_len(self, text: &str) -> usize {
        match self {
            Encoding::Q => text.bytes().map(q_len).sum(),
            Encoding::B => text.len().div_ceil(3) * 4,
        }
    }
}

/// RFC 2047 section 5(3): in a phrase only letters, digits and `!*+-/` may
/// stand for themselves; a space is `_`; every other octet is `=XX`.
fn q_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!*+-/".contains(&b)
}

fn q_len(b: u8) -> usize {
    if q_plain(b) || b == b' ' { 1 } else { 3 }
}

/// Encodes `text` as one or more encoded words.
fn encoded_words(text: &str) -> Vec<String> {
    let encoding = if Encoding::Q.payload_len(text) <= Encoding::B.payload_len(text) {
        Encoding::Q
    } else {
        Encoding::B
    };
    split(text, encoding)
        .into_iter()
        .map(|piece| encode_word(piece, encoding))
        .collect()
}

/// Cuts `text` into pieces that each fit one encoded word: after a space
/// where one fits, else between characters.
fn split(text: &str, encoding: Encoding) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut fits = 0;
        let mut after_space = None;
        for (i, c) in rest.char_indices() {
            let end = i + c.len_utf8();
            if encoding.payload_len(&rest[..end]) > MAX_PAYLOAD {
                break;
            }
            fits = end;
            if c == ' ' {
                after_space = Some(end);
            }
        }
        let cut = if fits == rest.len() {
            fits
        } else {
            after_space.unwrap_or(fits)
        };
        // A character encodes to at most 12 octets, far below the payload, so
        // every piece holds at least one and the loop ends.
        assert!(cut > 0, "one character always fits an encoded word");
        let (piece, tail) = rest.split_at(cut);
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

fn encode_word(text: &str, encoding: Encoding) -> String {
    let mut out = String::with_capacity(MAX_ENCODED_WORD);
    match encoding {
        Encoding::Q => {
            out.push_str("=?utf-8?q?");
            for b in text.bytes() {
                if q_plain(b) {
                    out.push(char::from(b));
                } else if b == b' ' {
                    out.push('_');
                } else {
                    out.push_str(&format!("={b:02X}"));
                }
            }
        }
        Encoding::B => {
            out.push_str("=?utf-8?b?");
            out.push_str(&line_protocol::base64::encode(text.as_bytes()));
        }
    }
    out.push_str("?=");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small RFC 2047 decoder that follows section 6.2 (whitespace between
    /// adjacent encoded words is dropped), for checking what was written.
    fn decode(value: &str) -> String {
        let mut out = String::new();
        let mut last_encoded = false;
        for (i, token) in value.split(' ').enumerate() {
            match decode_word(token) {
                Some(text) => {
                    if i > 0 && !last_encoded {
                        out.push(' ');
                    }
                    out.push_str(&text);
                    last_encoded = true;
                }
                None => {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(token);
                    last_encoded = false;
                }
            }
        }
        out
    }

    /// The text of one encoded word, which must hold whole characters.
    fn decode_word(token: &str) -> Option<String> {
        let word = token.strip_prefix("=?utf-8?")?.strip_suffix("?=")?;
        let bytes = match word.split_at(2) {
            ("q?", text) => decode_q(text),
            ("b?", text) => decode_b(text),
            _ => panic!("unknown encoding in {token}"),
        };
        Some(String::from_utf8(bytes).expect("an encoded word holds whole characters"))
    }

    fn decode_q(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'_' => out.push(b' '),
                b'=' => {
                    out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                    i += 2;
                }
                b => {
                    assert!(q_plain(b), "{} must be encoded", char::from(b));
                    out.push(b);
                }
            }
            i += 1;
        }
        out
    }

    fn decode_b(s: &str) -> Vec<u8> {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut bits = 0u32;
        let mut count = 0;
        let mut out = Vec::new();
        for c in s.bytes().filter(|&c| c != b'=') {
            bits = bits << 6 | alphabet.iter().position(|&a| a == c).unwrap() as u32;
            count += 6;
            if count >= 8 {
                count -= 8;
                out.push((bits >> count) as u8);
            }
        }
        out
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(
                line_protocol::base64::encode(input.as_bytes()),
                want,
                "{input}"
            );
        }
    }

    #[test]
    fn plain_names_stay_plain_and_specials_are_quoted() {
        assert_eq!(phrase("Ana Silva"), "Ana Silva");
        assert_eq!(phrase("O'Brien"), "O'Brien");
        assert_eq!(phrase("Smith, John"), "\"Smith, John\"");
        assert_eq!(phrase("Ada (the first)"), "\"Ada (the first)\"");
        assert_eq!(phrase(r#"Say "hi" \o/"#), r#""Say \"hi\" \\o/""#);
        assert_eq!(phrase("Re: Bob"), "\"Re: Bob\"");
        assert_eq!(phrase("Dr. J. Doe"), "\"Dr. J. Doe\"");
        assert_eq!(phrase("  two   spaces "), "two spaces");
    }

    #[test]
    fn non_ascii_words_are_encoded_and_ascii_runs_stay_plain() {
        assert_eq!(phrase("Zoë"), "=?utf-8?q?Zo=C3=AB?=");
        assert_eq!(
            phrase("Zoë \"Zed\" O'Brien"),
            "=?utf-8?b?Wm/DqyAiWmVkIg==?= O'Brien"
        );
        let out = unstructured("Hola José, qué tal");
        assert_eq!(out, "Hola =?utf-8?b?Sm9zw6ksIHF1w6k=?= tal");
        assert_eq!(decode(&out), "Hola José, qué tal");
        // Mostly non-ASCII text is shorter in base64.
        assert_eq!(phrase("李小龍"), "=?utf-8?b?5p2O5bCP6b6N?=");
        assert_eq!(decode(&phrase("李小龍")), "李小龍");
    }

    #[test]
    fn text_that_looks_encoded_is_encoded() {
        let out = unstructured("see =?utf-8?q?x?= here");
        assert_eq!(decode(&out), "see =?utf-8?q?x?= here");
        assert!(!out.contains(" =?utf-8?q?x?= "), "{out}");
    }

    #[test]
    fn long_names_split_at_spaces_with_the_space_inside() {
        let name = "Ünïcödé Ñame with a very long display name that goes on and on Ünïcödé Ñämé Ğüñëş Çàřø Ŵëłłš Þørñ";
        for out in [phrase(name), unstructured(name)] {
            assert_eq!(decode(&out), name, "{out}");
            let tokens: Vec<&str> = out.split(' ').collect();
            for pair in tokens.windows(2) {
                assert!(pair[0].len() <= MAX_ENCODED_WORD, "{}", pair[0]);
                // Where one encoded word follows another, the split came after
                // a space of the name, and that space is inside the first.
                if let (Some(first), Some(_)) = (decode_word(pair[0]), decode_word(pair[1])) {
                    assert!(first.ends_with(' '), "{first:?} in {out}");
                }
            }
        }
    }

    #[test]
    fn a_word_longer_than_an_encoded_word_splits_between_characters() {
        let word = "日本語".repeat(20);
        let out = unstructured(&word);
        assert!(out.split(' ').count() > 1);
        for token in out.split(' ') {
            assert!(token.len() <= MAX_ENCODED_WORD, "{token}");
        }
        assert_eq!(decode(&out), word);
        let long_ascii = "x".repeat(200);
        let out = unstructured(&long_ascii);
        assert!(out.split(' ').all(|t| t.len() <= MAX_ENCODED_WORD));
        assert_eq!(decode(&out), long_ascii);
    }
}
