//! Which mailbox names a client may use (RFC 3501 section 5.1), before the host maps them to
//! folders: the hierarchy separator is `.`, as in Maildir++.

/// The hierarchy separator.
pub const SEPARATOR: char = '.';

/// The longest name accepted, in octets.
pub const MAX_NAME: usize = 255;

/// Why `name` cannot be a mailbox, or `None` if it can: the reason goes into the `NO`.
///
/// Refused: empty names and components (`a..b`, `.a`, `a.`), `/` and `\` (a path on disk),
/// control characters and NUL, the wildcards `*` and `%`, names over [`MAX_NAME`] octets,
/// and modified UTF-7 (RFC 3501 section 5.1.3) that is malformed or that hides characters
/// which must be written as themselves (`&AC4ALg-` for `..`, `&AC8-` for `/`).
///
/// ```
/// use imap_core::mailbox_name_problem;
/// assert_eq!(mailbox_name_problem("Archive.2024"), None);
/// assert_eq!(mailbox_name_problem("Entw&APw-rfe"), None); // "Entwürfe"
/// assert!(mailbox_name_problem("../bob").is_some());
/// assert!(mailbox_name_problem("&AC4ALg-").is_some());
/// ```
pub fn mailbox_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("the mailbox name is empty");
    }
    if name.len() > MAX_NAME {
        return Some("the mailbox name is too long");
    }
    if name.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Some("the mailbox name contains control characters");
    }
    if name.contains(['/', '\\']) {
        return Some("the mailbox name contains / or \\");
    }
    if name.contains(['*', '%']) {
        return Some("the mailbox name contains a wildcard");
    }
    if name.split(SEPARATOR).any(str::is_empty) {
        return Some("the mailbox name has an empty level (a leading, trailing or doubled \".\")");
    }
    if !name.is_ascii() {
        // Names are modified UTF-7 on the wire unless UTF8=ACCEPT was enabled, which we do not
        // offer: 8-bit names are a client bug, and would not match what others see.
        return Some("the mailbox name is not modified UTF-7 (RFC 3501 5.1.3)");
    }
    check_mutf7(name)
}

/// RFC 3501 5.1.3: `&` starts modified base64 of UTF-16, `-` ends it, `&-` is a literal `&`.
fn check_mutf7(name: &str) -> Option<&'static str> {
    let bad = Some("the mailbox name is not valid modified UTF-7 (RFC 3501 5.1.3)");
    let b = name.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'&' {
            i += 1;
            continue;
        }
        let Some(end) = b[i + 1..]
            .iter()
            .position(|&c| c == b'-')
            .map(|p| i + 1 + p)
        else {
            return bad;
        };
        let run = &b[i + 1..end];
        i = end + 1;
        if run.is_empty() {
            continue; // "&-"
        }
        let Some(units) = decode_modified_base64(run) else {
            return bad;
        };
        let Ok(text) = String::from_utf16(&units) else {
            return bad;
        };
        // Printable ASCII must be written as itself: an encoded one is a disguise.
        if text
            .chars()
            .any(|c| (' '..='~').contains(&c) || c.is_control())
        {
            return Some("the mailbox name hides plain characters in modified UTF-7");
        }
    }
    None
}

fn decode_modified_base64(run: &[u8]) -> Option<Vec<u16>> {
    let mut bits = 0u32;
    let mut n = 0;
    let mut bytes = Vec::new();
    for &c in run {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b',' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(v);
        n += 6;
        if n >= 8 {
            n -= 8;
            bytes.push((bits >> n) as u8);
        }
    }
    // Leftover bits must be zero padding of less than a byte.
    if n >= 6 || bits & ((1 << n) - 1) != 0 || bytes.len() % 2 != 0 {
        return None;
    }
    Some(
        bytes
            .chunks(2)
            .map(|p| u16::from_be_bytes([p[0], p[1]]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tricks_are_refused() {
        for bad in [
            "",
            ".",
            "a..b",
            ".hidden",
            "a.",
            "a/b",
            "/etc",
            "a\0b",
            "x\ty",
            "&",
            "&Jjo",
            "&AC8-",
            "&AGEAYgBj-",
            "a*",
        ] {
            assert!(mailbox_name_problem(bad).is_some(), "{bad:?}");
        }
        assert!(mailbox_name_problem(&"a".repeat(256)).is_some());
        for good in [
            "INBOX",
            "Sent",
            "A&-B",
            "&ZeVnLIqe-",
            "Archive.2024.Q1",
            "Sent Items",
        ] {
            assert_eq!(mailbox_name_problem(good), None, "{good:?}");
        }
    }
}
