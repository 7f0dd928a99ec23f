//! Flags in Maildir file names: the info part `:2,<letters>` (<https://cr.yp.to/proto/maildir.html>)
//! with the system flags as capitals in ASCII order and keywords as the letters `a`–`z` that a
//! `dovecot-keywords` file maps to names (Dovecot's convention, so both read the same files).

use std::fmt::Write as _;
use std::path::Path;

/// A message's flags: IMAP's five system flags and its keywords.
///
/// ```
/// use mailstore::Flags;
/// let f = Flags { seen: true, keywords: vec!["$Forwarded".into()], ..Flags::default() };
/// assert!(f.seen && !f.deleted);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Flags {
    /// `\Seen`: `S`.
    pub seen: bool,
    /// `\Answered`: `R` (replied).
    pub answered: bool,
    /// `\Flagged`: `F`.
    pub flagged: bool,
    /// `\Deleted`: `T` (trashed).
    pub deleted: bool,
    /// `\Draft`: `D`.
    pub draft: bool,
    /// Keywords, sorted, without repeats.
    pub keywords: Vec<String>,
}

/// At most 26 keywords per folder: the letters `a` to `z`.
pub(crate) const MAX_KEYWORDS: usize = 26;

/// The part of a file name before its info (`:2,...`): what the UID list records.
pub(crate) fn base_name(file: &str) -> &str {
    file.split_once(':').map_or(file, |(b, _)| b)
}

/// The info letters of a file name in `cur/` (empty for none).
pub(crate) fn info_letters(file: &str) -> &str {
    match file.split_once(":2,") {
        Some((_, letters)) => letters,
        None => "",
    }
}

/// Reads info letters; keyword letters past the folder's `keywords` are ignored.
pub(crate) fn parse(letters: &str, keywords: &[String]) -> Flags {
    let mut f = Flags::default();
    for c in letters.chars() {
        match c {
            'S' => f.seen = true,
            'R' => f.answered = true,
            'F' => f.flagged = true,
            'T' => f.deleted = true,
            'D' => f.draft = true,
            'a'..='z' => {
                if let Some(k) = keywords.get((c as u8 - b'a') as usize)
                    && !f.keywords.contains(k)
                {
                    f.keywords.push(k.clone());
                }
            }
            // P (passed) and others have no IMAP flag; they are kept in the name as they are
            // by `render`'s caller only through `extra_letters`.
            _ => {}
        }
    }
    f.keywords.sort();
    f
}

/// Letters in a name that no IMAP flag stands for (`P`, unknown capitals), kept on rename.
pub(crate) fn extra_letters(letters: &str) -> String {
    letters
        .chars()
        .filter(|c| c.is_ascii_uppercase() && !"SRFTD".contains(*c))
        .collect()
}

/// Writes info letters in ASCII order, as the spec asks. `keywords` must already hold every
/// keyword of `f` (see `keyword_letters`); `extra` are letters to keep.
pub(crate) fn render(f: &Flags, keywords: &[String], extra: &str) -> String {
    let mut letters: Vec<char> = extra.chars().collect();
    for (on, c) in [
        (f.draft, 'D'),
        (f.flagged, 'F'),
        (f.answered, 'R'),
        (f.seen, 'S'),
        (f.deleted, 'T'),
    ] {
        if on {
            letters.push(c);
        }
    }
    for k in &f.keywords {
        if let Some(i) = keywords.iter().position(|x| x == k) {
            letters.push((b'a' + i as u8) as char);
        }
    }
    letters.sort_unstable();
    letters.dedup();
    letters.into_iter().collect()
}

/// Reads a `dovecot-keywords` file: lines `<index> <name>`.
pub(crate) fn read_keywords(path: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut v: Vec<String> = Vec::new();
    for line in text.lines() {
        let Some((i, name)) = line.split_once(' ') else {
            continue;
        };
        let Ok(i) = i.parse::<usize>() else { continue };
        if i < MAX_KEYWORDS && !name.is_empty() {
            if v.len() <= i {
                v.resize(i + 1, String::new());
            }
            v[i] = name.to_owned();
        }
    }
    v
}

/// The `dovecot-keywords` text for `keywords`.
pub(crate) fn keywords_text(keywords: &[String]) -> String {
    let mut s = String::new();
    for (i, k) in keywords.iter().enumerate() {
        if !k.is_empty() {
            let _ = writeln!(s, "{i} {k}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_round_trip_in_ascii_order() {
        let kw = vec!["$Forwarded".to_string(), "NonJunk".to_string()];
        let f = Flags {
            seen: true,
            deleted: true,
            draft: true,
            keywords: vec!["NonJunk".into()],
            ..Flags::default()
        };
        let letters = render(&f, &kw, "P");
        assert_eq!(letters, "DPSTb");
        assert_eq!(parse(&letters, &kw), f);
        assert_eq!(extra_letters(&letters), "P");
        assert_eq!(
            base_name("123.M1P2Q3.host,S=10:2,S"),
            "123.M1P2Q3.host,S=10"
        );
        assert_eq!(info_letters("x:2,FS"), "FS");
    }
}
