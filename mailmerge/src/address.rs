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

/// Marks the start of a substituted value in a rendered address header.
///
/// The template's formatter wraps every `{{ value }}` of an address header
/// in [`DATA_START`] and [`DATA_END`], so the parser knows which text came
/// from the row (data) and which from the template (syntax). Control
/// characters never survive in a value or in the template's header text
/// (both become spaces), so the markers cannot be forged.
pub(crate) const DATA_START: char = '\u{1}';
/// Marks the end of a substituted value; see [`DATA_START`].
pub(crate) const DATA_END: char = '\u{2}';

/// Makes text safe to place in one header field: every run of whitespace
/// and control characters becomes one space, and the ends are trimmed, so
/// no value (a CSV cell, say) can end the field and start a header of its
/// own (RFC 5322 section 2.2: a field ends at CRLF), and the result is the
/// same whatever line endings the CSV used. The data markers are kept.
pub(crate) fn one_line(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut space = false;
    for c in value.chars() {
        if c != DATA_START && c != DATA_END && (c.is_whitespace() || c.is_control()) {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.push(c);
    }
    out
}

/// `value` without the data markers, as a user should see it in a message.
pub(crate) fn without_markers(value: &str) -> String {
    value.replace([DATA_START, DATA_END], "")
}

/// Parses a rendered address-list header value (`Name <a@b>, c@d,
/// "Quoted, Name" <e@f>`, groups such as `Team: a@b, c@d;`) into display
/// names and addresses, checking every address.
///
/// `value` must already be one line (see [`one_line`]); substituted values
/// in it are marked (see [`DATA_START`]). `header` names the field for
/// error messages.
///
/// A marked value is data, never syntax: in a display name it is text, so
/// `Smith, John` or `Re: Bob` stay one name; inside `<...>` it is part of
/// the address; standing alone it must be exactly one address. Only the
/// template's own text (and values passed through the `raw` filter, which
/// are not marked) can add addresses, groups or quotes.
///
/// The parser is strict on purpose. A lenient one (mail-parser's, say)
/// reads `b@x.org Bcc: evil@y.org` as a *group* named `b@x.org Bcc` holding
/// `evil@y.org`: it silently drops one recipient and adds another. Here
/// anything that is not a clean RFC 5322 section 3.4 address list is an
/// error. Comments are skipped; encoded words in display names are kept as
/// written.
pub(crate) fn parse_address_list(
    header: &str,
    value: &str,
) -> Result<Vec<(Option<String>, String)>, MergeError> {
    let bad = |reason: String| MergeError::BadAddress {
        header: header.to_owned(),
        value: without_markers(value),
        reason,
    };
    let list = Cursor { s: value, pos: 0 }.address_list().map_err(bad)?;
    if list.is_empty() {
        return Err(bad("no address".to_owned()));
    }
    Ok(list)
}

/// RFC 5322 section 3.2.3 specials, plus the space that separates words.
fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !c.is_control() && !"()<>[]:;@\\,\"".contains(c)
}

/// Where a word of a phrase came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// An atom of the template's text.
    Atom,
    /// A quoted string (unquoted here), possibly holding values.
    Quoted,
    /// A substituted value.
    Data,
}

/// One word of a phrase.
struct Word {
    text: String,
    origin: Origin,
    /// Whether whitespace or a comment came before it.
    spaced: bool,
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

type Parsed<T> = Result<T, String>;

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Reads a marked value; the cursor is on its [`DATA_START`].
    fn data(&mut self) -> String {
        self.bump();
        let rest = &self.s[self.pos..];
        let len = rest.find(DATA_END).unwrap_or(rest.len());
        self.pos += len;
        self.bump();
        rest[..len].trim().to_owned()
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
            // A value inside a comment is skipped whole: its parentheses
            // are text.
            if self.peek() == Some(DATA_START) {
                self.data();
                continue;
            }
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
                None => return Err("unterminated comment".to_owned()),
            }
        }
    }

    fn quoted_string(&mut self) -> Parsed<String> {
        self.bump(); // the opening quote
        let mut out = String::new();
        loop {
            if self.peek() == Some(DATA_START) {
                // `"{{ name }}"`: the value's own quotes are text.
                out.push_str(&self.data());
                continue;
            }
            match self.bump() {
                Some('"') => return Ok(out),
                Some('\\') => out.push(
                    self.bump()
                        .ok_or_else(|| "unterminated quoted string".to_owned())?,
                ),
                Some(c) => out.push(c),
                None => return Err("unterminated quoted string".to_owned()),
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
            let before = self.pos;
            self.skip_cfws()?;
            let spaced = self.pos != before;
            let (text, origin) = match self.peek() {
                Some('"') => (self.quoted_string()?, Origin::Quoted),
                Some(DATA_START) => (self.data(), Origin::Data),
                Some(c) if is_word_char(c) => (self.atom(), Origin::Atom),
                _ => return Ok(words),
            };
            words.push(Word {
                text,
                origin,
                spaced,
            });
        }
    }

    /// Reads up to and past the `>` of an angle address: the template's text
    /// and values together make the address.
    fn angle_addr(&mut self) -> Parsed<String> {
        self.bump(); // the <
        let mut addr = String::new();
        loop {
            match self.peek() {
                Some(DATA_START) => addr.push_str(&self.data()),
                Some('>') => {
                    self.bump();
                    return Ok(addr.trim().to_owned());
                }
                Some(c) => {
                    self.bump();
                    addr.push(c);
                }
                None => return Err("missing >".to_owned()),
            }
        }
    }

    /// Reads the domain of a bare addr-spec, after its `@`.
    fn domain(&mut self) -> String {
        let mut domain = String::new();
        loop {
            match self.peek() {
                Some(DATA_START) => domain.push_str(&self.data()),
                Some(c) if is_word_char(c) || matches!(c, '[' | ']' | '@') => {
                    self.bump();
                    domain.push(c);
                }
                _ => return domain,
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
                Some(_) => return Err("expected a comma between addresses".to_owned()),
            }
        }
    }

    /// Parses one address (a mailbox or, outside a group, a group) into
    /// `out`. An empty list element (`a@b, , c@d`) adds nothing, as
    /// RFC 5322 section 4.4 allows.
    fn address(&mut self, out: &mut Vec<(Option<String>, String)>, in_group: bool) -> Parsed<()> {
        let words = self.words()?;
        match self.peek() {
            Some('<') => {
                let addr = self.angle_addr()?;
                check_mailbox(&addr).map_err(|why| describe(&addr, why))?;
                out.push((display_name(&words), addr));
            }
            Some('@') => {
                // A bare addr-spec: atoms and values written together, with
                // no space or quotes in the local part.
                let glued = words.iter().skip(1).all(|w| !w.spaced);
                let unquoted = words.iter().all(|w| w.origin != Origin::Quoted);
                if words.is_empty() || !glued || !unquoted {
                    return Err("an address with a space or quotes in its local part".to_owned());
                }
                let local: String = words.iter().map(|w| w.text.as_str()).collect();
                self.bump();
                let addr = format!("{local}@{}", self.domain());
                check_mailbox(&addr).map_err(|why| describe(&addr, why))?;
                out.push((None, addr));
            }
            Some(':') if !in_group => {
                if display_name(&words).is_none() {
                    return Err("a group without a name".to_owned());
                }
                self.bump();
                loop {
                    self.address(out, true)?;
                    self.skip_cfws()?;
                    match self.bump() {
                        Some(';') => return Ok(()),
                        Some(',') => {}
                        _ => return Err("a group without its closing ;".to_owned()),
                    }
                }
            }
            Some(',' | ';') | None => match words.as_slice() {
                [] => {}
                // A value standing alone is an address, or an error: never
                // a list, a group or a name.
                [
                    Word {
                        origin: Origin::Data,
                        text,
                        ..
                    },
                ] => {
                    if !text.is_empty() {
                        out.push(lone_mailbox(text)?);
                    }
                }
                _ => return Err("a name without an address".to_owned()),
            },
            Some(_) => return Err("unexpected character".to_owned()),
        }
        Ok(())
    }
}

/// Reads a value that stands alone where an address belongs
/// (`Cc: {{ manager }}`) as exactly one mailbox: `ana@example.org`, or a
/// name and `<ana@example.org>`, where everything before the last `<` is
/// the name (unquoted if it is one quoted string), commas and all.
fn lone_mailbox(text: &str) -> Parsed<(Option<String>, String)> {
    let Some((name, addr)) = text.strip_suffix('>').and_then(|t| t.rsplit_once('<')) else {
        check_mailbox(text).map_err(|why| describe(text, why))?;
        return Ok((None, text.to_owned()));
    };
    let addr = addr.trim();
    check_mailbox(addr).map_err(|why| describe(addr, why))?;
    let name = name.trim();
    let name = match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(quoted) => unescape(quoted),
        None => name.to_owned(),
    };
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    Ok(((!name.is_empty()).then_some(name), addr.to_owned()))
}

/// Undoes RFC 5322 quoted-pair escapes (`\"` is `"`).
fn unescape(quoted: &str) -> String {
    let mut out = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// Says why `addr` is not an address, in words that point at the fix.
fn describe(addr: &str, why: &str) -> String {
    if addr.contains([',', ';']) {
        format!(
            "{addr:?} is not one email address (a value standing alone is one address; \
             to use it as a list of addresses, write {{{{ column | raw }}}})"
        )
    } else {
        format!("{addr:?} is not an email address: {why}")
    }
}

/// The display name the words make: text joined as written, each run of
/// whitespace as one space.
fn display_name(words: &[Word]) -> Option<String> {
    let mut name = String::new();
    for word in words {
        if word.spaced && !name.is_empty() {
            name.push(' ');
        }
        name.push_str(&word.text);
    }
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    (!name.is_empty()).then_some(name)
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
    fn one_line_removes_line_breaks_and_controls() {
        assert_eq!(one_line(" Eve\r\nBcc: x@evil \n"), "Eve Bcc: x@evil");
        assert_eq!(one_line("a\rb\t\u{7}c\u{2028}d"), "a b c d");
        assert_eq!(one_line("\u{1} a \u{2}"), "\u{1} a \u{2}");
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
