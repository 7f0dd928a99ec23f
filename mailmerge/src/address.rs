//! Mailbox checks and address-list parsing.
//!
//! Recipients come from user-edited CSV files and rendered template headers,
//! so every address is checked before it reaches an envelope: one `@`, a
//! dot-string local part and a domain of sane labels (RFC 5321 section 4.1.2),
//! within the length limits of RFC 5321 section 4.5.3.1. UTF-8 is allowed in
//! both halves (RFC 6531); quoted local parts are not, because a merge tool
//! has no business sending to them and they would need quoting in headers.

use crate::MergeError;

/// RFC 5321 section 4.5.3.1.1: the local part is at most 64 octets.
const MAX_LOCAL: usize = 64;
/// RFC 5321 section 4.5.3.1.2: a domain is at most 255 octets.
const MAX_DOMAIN: usize = 255;
/// RFC 5321 section 4.5.3.1.3: a path is at most 256 octets including the
/// angle brackets, which leaves 254 for the address.
const MAX_ADDRESS: usize = 254;
/// RFC 1035 section 2.3.4: a label is at most 63 octets.
const MAX_LABEL: usize = 63;

/// Checks that `addr` is a plain mailbox (`local@domain`) a message can be
/// sent to, and says what is wrong with it otherwise.
///
/// ```
/// use mailmerge::check_mailbox;
/// assert!(check_mailbox("ana@example.org").is_ok());
/// assert!(check_mailbox("josé@correo.example").is_ok());
/// assert_eq!(check_mailbox("ana@@example.org"), Err("more than one @"));
/// assert!(check_mailbox("ana smith@example.org").is_err());
/// assert!(check_mailbox("ana@-example.org").is_err());
/// ```
pub fn check_mailbox(addr: &str) -> Result<(), &'static str> {
    if addr.is_empty() {
        return Err("empty address");
    }
    if addr.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("address contains a space or control character");
    }
    if addr.len() > MAX_ADDRESS {
        return Err("address longer than 254 octets");
    }
    let (local, domain) = match addr.split_once('@') {
        None => return Err("no @ in address"),
        Some((_, domain)) if domain.contains('@') => return Err("more than one @"),
        Some(parts) => parts,
    };
    check_local(local)?;
    check_domain(domain)
}

fn check_local(local: &str) -> Result<(), &'static str> {
    if local.is_empty() {
        return Err("empty local part");
    }
    if local.len() > MAX_LOCAL {
        return Err("local part longer than 64 octets");
    }
    // Specials of RFC 5322 section 3.2.3 cannot appear in a dot-atom; they
    // would need a quoted local part.
    if local.chars().any(|c| "\"(),:;<>[\\]".contains(c)) {
        return Err("local part contains a special character");
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err("local part has a misplaced dot");
    }
    Ok(())
}

fn check_domain(domain: &str) -> Result<(), &'static str> {
    if domain.is_empty() {
        return Err("empty domain");
    }
    if domain.len() > MAX_DOMAIN {
        return Err("domain longer than 255 octets");
    }
    // RFC 5321 section 4.1.3 address literal, e.g. `[192.0.2.1]`.
    if let Some(inner) = domain.strip_prefix('[') {
        return match inner.strip_suffix(']') {
            Some(lit) if !lit.is_empty() && !lit.contains(['[', ']', '\\']) => Ok(()),
            _ => Err("malformed address literal"),
        };
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err("domain has an empty label");
        }
        if label.len() > MAX_LABEL {
            return Err("domain label longer than 63 octets");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("domain label starts or ends with a hyphen");
        }
        if !label.chars().all(|c| c == '-' || c.is_alphanumeric()) {
            return Err("domain label contains an invalid character");
        }
    }
    Ok(())
}

/// Makes a rendered value safe to place in one header field: CR and LF
/// become spaces, so no value (a CSV cell, say) can end the field and start
/// a header of its own (RFC 5322 section 2.2: a field ends at CRLF).
pub(crate) fn one_line(value: &str) -> String {
    value.replace(['\r', '\n'], " ").trim().to_owned()
}

/// Parses a rendered address-list header value (`Name <a@b>, c@d,
/// "Quoted, Name" <e@f>`, groups such as `Team: a@b, c@d;`) into display
/// names and addresses, checking every address.
///
/// `value` must already be one line (see [`one_line`]). `header` names the
/// field for error messages.
///
/// The parser is strict on purpose. A lenient one (mail-parser's, say) reads
/// `b@x.org  Bcc: evil@y.org`, which is what a CSV cell holding CRLF becomes,
/// as a *group* named `b@x.org Bcc` holding `evil@y.org`: it silently drops
/// one recipient and adds another. Here anything that is not a clean
/// RFC 5322 section 3.4 address list is an error. Comments are skipped;
/// encoded words in display names are kept as written.
pub(crate) fn parse_address_list(
    header: &str,
    value: &str,
) -> Result<Vec<(Option<String>, String)>, MergeError> {
    let bad = |reason: &str| MergeError::BadAddress {
        header: header.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let list = Cursor { s: value, pos: 0 }.address_list().map_err(bad)?;
    if list.is_empty() {
        return Err(bad("no address"));
    }
    Ok(list)
}

/// RFC 5322 section 3.2.3 specials, plus the space that separates words.
fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !c.is_control() && !"()<>[]:;@\\,\"".contains(c)
}

/// One word of a phrase: an atom, or a quoted string (unquoted here).
struct Word {
    text: String,
    quoted: bool,
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

type Parsed<T> = Result<T, &'static str>;

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Skips folding whitespace and comments (RFC 5322 section 3.2.2 CFWS).
    fn skip_cfws(&mut self) -> Parsed<()> {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('(') => self.comment()?,
                _ => return Ok(()),
            }
        }
    }

    fn comment(&mut self) -> Parsed<()> {
        let mut depth = 0usize;
        loop {
            match self.bump() {
                Some('(') => depth += 1,
                Some(')') => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                Some('\\') => {
                    self.bump();
                }
                Some(_) => {}
                None => return Err("unterminated comment"),
            }
        }
    }

    fn quoted_string(&mut self) -> Parsed<String> {
        self.bump(); // the opening quote
        let mut out = String::new();
        loop {
            match self.bump() {
                Some('"') => return Ok(out),
                Some('\\') => out.push(self.bump().ok_or("unterminated quoted string")?),
                Some(c) => out.push(c),
                None => return Err("unterminated quoted string"),
            }
        }
    }

    fn atom(&mut self) -> String {
        let start = self.pos;
        while self.peek().is_some_and(is_word_char) {
            self.bump();
        }
        self.s[start..self.pos].to_owned()
    }

    /// Reads the words before a `<`, `@`, `:`, `,`, `;` or the end.
    fn words(&mut self) -> Parsed<Vec<Word>> {
        let mut words = Vec::new();
        loop {
            self.skip_cfws()?;
            match self.peek() {
                Some('"') => words.push(Word {
                    text: self.quoted_string()?,
                    quoted: true,
                }),
                Some(c) if is_word_char(c) => words.push(Word {
                    text: self.atom(),
                    quoted: false,
                }),
                _ => return Ok(words),
            }
        }
    }

    fn address_list(&mut self) -> Parsed<Vec<(Option<String>, String)>> {
        let mut out = Vec::new();
        loop {
            self.address(&mut out, false)?;
            self.skip_cfws()?;
            match self.bump() {
                None => return Ok(out),
                Some(',') => {}
                Some(_) => return Err("expected a comma between addresses"),
            }
        }
    }

    /// Parses one address (a mailbox or, outside a group, a group) into
    /// `out`. An empty list element (`a@b, , c@d`) adds nothing, as
    /// RFC 5322 section 4.4 allows.
    fn address(&mut self, out: &mut Vec<(Option<String>, String)>, in_group: bool) -> Parsed<()> {
        let words = self.words()?;
        let display = || -> Option<String> {
            let name = words
                .iter()
                .map(|w| w.text.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            let name = name.trim();
            (!name.is_empty()).then(|| name.to_owned())
        };
        match self.peek() {
            Some('<') => {
                self.bump();
                let end = self.s[self.pos..].find('>').ok_or("missing >")?;
                let addr = self.s[self.pos..self.pos + end].trim();
                self.pos += end + 1;
                check_mailbox(addr)?;
                out.push((display(), addr.to_owned()));
            }
            Some('@') => {
                // A bare addr-spec: exactly one atom before the @.
                let [
                    Word {
                        text: local,
                        quoted: false,
                    },
                ] = words.as_slice()
                else {
                    return Err("an address with a space or quotes in its local part");
                };
                self.bump();
                let start = self.pos;
                while self
                    .peek()
                    .is_some_and(|c| is_word_char(c) || c == '[' || c == ']' || c == '@')
                {
                    self.bump();
                }
                let addr = format!("{local}@{}", &self.s[start..self.pos]);
                check_mailbox(&addr)?;
                out.push((None, addr));
            }
            Some(':') if !in_group => {
                if display().is_none() {
                    return Err("a group without a name");
                }
                self.bump();
                loop {
                    self.address(out, true)?;
                    self.skip_cfws()?;
                    match self.bump() {
                        Some(';') => return Ok(()),
                        Some(',') => {}
                        _ => return Err("a group without its closing ;"),
                    }
                }
            }
            Some(',' | ';') | None if words.is_empty() => {}
            Some(',' | ';') | None => return Err("a name without an address"),
            Some(_) => return Err("unexpected character"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_and_utf8_mailboxes() {
        for ok in [
            "a@b.c",
            "first.last+tag@sub.example.org",
            "用户@例子.广告",
            "x@[192.0.2.1]",
            "o'brien@example.ie",
        ] {
            assert_eq!(check_mailbox(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_broken_mailboxes() {
        for bad in [
            "",
            "plain",
            "@example.org",
            "ana@",
            "a@b@c",
            "ana smith@example.org",
            "ana@exa mple.org",
            "ana\t@example.org",
            "ana@example..org",
            "ana@.example.org",
            "ana@example.org.",
            "ana@-example.org",
            "ana@exam_ple.org",
            ".ana@example.org",
            "an..a@example.org",
            "a<b@example.org",
            "\"ana\"@example.org",
            "ana@[1.2.3.4",
        ] {
            assert!(check_mailbox(bad).is_err(), "{bad:?} accepted");
        }
        let long_local = format!("{}@example.org", "a".repeat(65));
        assert!(check_mailbox(&long_local).is_err());
        let long_label = format!("a@{}.org", "b".repeat(64));
        assert!(check_mailbox(&long_label).is_err());
    }

    #[test]
    fn one_line_removes_line_breaks() {
        assert_eq!(one_line(" Eve\r\nBcc: x@evil \n"), "Eve  Bcc: x@evil");
        assert_eq!(one_line("a\rb"), "a b");
    }

    #[test]
    fn parses_lists_with_names_quotes_and_groups() {
        let got = parse_address_list(
            "To",
            r#"Ana <ana@x.org>, bo@y.org, "Quoted, Name" <q@z.org>, Team: t1@t.org, t2@t.org;"#,
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                (Some("Ana".to_owned()), "ana@x.org".to_owned()),
                (None, "bo@y.org".to_owned()),
                (Some("Quoted, Name".to_owned()), "q@z.org".to_owned()),
                (None, "t1@t.org".to_owned()),
                (None, "t2@t.org".to_owned()),
            ]
        );
    }

    #[test]
    fn parses_comments_escapes_empty_groups_and_empty_elements() {
        let got = parse_address_list(
            "To",
            r#"(boss) "Say \"hi\"" <a@b.org> (x), , undisclosed-recipients:;, c.d@e.org (Cee)"#,
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                (Some("Say \"hi\"".to_owned()), "a@b.org".to_owned()),
                (None, "c.d@e.org".to_owned()),
            ]
        );
        let got = parse_address_list("To", "Dr. J. R. Doe <jr@x.org>").unwrap();
        assert_eq!(got[0].0.as_deref(), Some("Dr. J. R. Doe"));
    }

    #[test]
    fn parses_non_ascii_display_names() {
        let got = parse_address_list("To", "Zoë Ærø <zoe@x.org>").unwrap();
        assert_eq!(
            got,
            vec![(Some("Zoë Ærø".to_owned()), "zoe@x.org".to_owned())]
        );
    }

    #[test]
    fn rejects_lists_without_valid_addresses() {
        for bad in [
            "",
            " , ",
            "Ana",
            "Ana <not an address>",
            "a@b.org, broken@",
            "a@b.org c@d.org",
            "b@example.org  Bcc: x@evil.example",
            "Ana <a@b.org",
            "\"Ana <a@b.org>",
            "Ana (comment <a@b.org>",
            "john doe@x.org",
            "\"john doe\"@x.org",
            "Team: a@b.org",
            "Outer: Inner: a@b.org;;",
            ": a@b.org;",
            "a@b.org; c@d.org",
        ] {
            let err = parse_address_list("Cc", bad).unwrap_err();
            assert!(
                matches!(err, MergeError::BadAddress { ref header, .. } if header == "Cc"),
                "{bad:?}: {err}"
            );
        }
    }
}
