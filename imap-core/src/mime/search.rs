//! What SEARCH's text keys compare (RFC 3501 section 6.4.4): header fields with RFC 2047
//! encoded-words decoded, body text decoded from its transfer encoding and charset (by
//! `mail-parser`), both case-insensitively; and the Date field's day.

use super::tree::{fields, header_end, trim};

/// Whether a field `name` of the header contains `needle` (case-insensitive, decoded); an
/// empty needle matches any message that has the field.
///
/// ```
/// let m = b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= aus Wien\r\n\r\n";
/// assert!(imap_core::mime::header_matches(m, "subject", "GRÜße AUS"));
/// assert!(!imap_core::mime::header_matches(m, "subject", "=?utf-8"));
/// ```
pub fn header_matches(message: &[u8], name: &str, needle: &str) -> bool {
    let header = &message[..header_end(message)];
    let needle = needle.to_lowercase();
    fields(header)
        .into_iter()
        .filter(|(n, _, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .any(|(_, _, v)| needle.is_empty() || decode_words(&v).to_lowercase().contains(&needle))
}

/// Whether the message's text contains `needle`: the body only (`body_only`, SEARCH BODY) or
/// the header too (SEARCH TEXT).
pub fn text_matches(message: &[u8], needle: &str, body_only: bool) -> bool {
    let needle = needle.to_lowercase();
    if needle.is_empty() {
        return true;
    }
    if !body_only {
        let header = &message[..header_end(message)];
        if fields(header)
            .iter()
            .any(|(_, _, v)| decode_words(v).to_lowercase().contains(&needle))
        {
            return true;
        }
    }
    match mail_parser::MessageParser::default().parse(message) {
        Some(parsed) => parsed.parts.iter().any(|p| match &p.body {
            mail_parser::PartType::Text(t) | mail_parser::PartType::Html(t) => {
                t.to_lowercase().contains(&needle)
            }
            _ => false,
        }),
        None => String::from_utf8_lossy(&message[header_end(message)..])
            .to_lowercase()
            .contains(&needle),
    }
}

/// The day of the Date field in its own zone (SENTBEFORE, SENTON, SENTSINCE): year, month,
/// day; `None` without a readable Date.
///
/// ```
/// let m = b"Date: Tue, 1 Dec 2026 23:30:00 -0800\r\n\r\n";
/// assert_eq!(imap_core::mime::sent_date(m), Some((2026, 12, 1)));
/// ```
pub fn sent_date(message: &[u8]) -> Option<(i32, u32, u32)> {
    let header = &message[..header_end(message)];
    let v = fields(header)
        .into_iter()
        .find(|(n, _, _)| n.eq_ignore_ascii_case(b"Date"))?
        .2;
    let text = String::from_utf8_lossy(&v);
    let text = text.split_once(',').map_or(&*text, |(_, rest)| rest);
    let mut words = text.split_whitespace();
    let day: u32 = words.next()?.parse().ok()?;
    let month = words.next()?.to_ascii_lowercase();
    let month = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ]
    .iter()
    .position(|m| month.starts_with(m))? as u32
        + 1;
    let year: i32 = words.next()?.parse().ok()?;
    // RFC 5322 4.3: two-digit years are 19xx from 50, 20xx below.
    let year = match year {
        0..=49 => year + 2000,
        50..=999 => year + 1900,
        y => y,
    };
    (1..=31).contains(&day).then_some((year, month, day))
}

/// Decodes RFC 2047 encoded-words (`=?charset?B|Q?text?=`); undecodable ones stay as sent.
pub(crate) fn decode_words(v: &[u8]) -> String {
    let text = String::from_utf8_lossy(trim(v)).into_owned();
    let mut out = String::new();
    let mut rest = text.as_str();
    let mut last_was_word = false;
    while let Some(start) = rest.find("=?") {
        let before = &rest[..start];
        // White space between two encoded-words is not text (RFC 2047 section 6.2).
        if !(last_was_word && before.trim().is_empty()) {
            out.push_str(before);
        }
        let after = &rest[start + 2..];
        let decoded = after.split_once('?').and_then(|(charset, r)| {
            let (enc, r) = r.split_once('?')?;
            let (payload, tail) = r.split_once("?=")?;
            let bytes = match enc {
                "B" | "b" => line_protocol::base64::decode(payload.as_bytes())?,
                "Q" | "q" => q_decode(payload),
                _ => return None,
            };
            Some((charset_decode(charset, &bytes), tail))
        });
        match decoded {
            Some((s, tail)) => {
                out.push_str(&s);
                rest = tail;
                last_was_word = true;
            }
            None => {
                out.push_str("=?");
                rest = after;
                last_was_word = false;
            }
        }
    }
    out.push_str(rest);
    out
}

fn q_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'_' => out.push(b' '),
            b'=' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(h) => {
                        out.push(h);
                        i += 2;
                    }
                    None => out.push(b'='),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

fn charset_decode(charset: &str, bytes: &[u8]) -> String {
    let cs = charset
        .split('*')
        .next()
        .unwrap_or(charset)
        .to_ascii_lowercase();
    match cs.as_str() {
        // ISO-8859-1 and its Windows superset map bytes 0xA0-0xFF to the same code points.
        "iso-8859-1" | "latin1" | "windows-1252" | "cp1252" => {
            bytes.iter().map(|&b| b as char).collect()
        }
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_words() {
        assert_eq!(decode_words(b"=?UTF-8?B?w6lsw6h2ZQ==?= ok"), "élève ok");
        assert_eq!(
            decode_words(b"=?iso-8859-1?q?caf=E9?= =?utf-8?q?_bar?="),
            "café bar"
        );
        assert_eq!(decode_words(b"plain =?broken"), "plain =?broken");
    }

    #[test]
    fn body_search_decodes() {
        let m = b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\nw6lsw6h2ZQ==\r\n";
        assert!(text_matches(m, "ÉLÈVE", true));
        assert!(!text_matches(m, "base64", true));
        assert!(text_matches(m, "base64", false));
    }
}
