//! Envelope addresses: the `Path` grammar of RFC 5321 section 4.1.2, extended for UTF-8 by
//! RFC 6531 section 3.3.

use std::fmt;

/// Longest local part, RFC 5321 section 4.5.3.1.1.
pub const MAX_LOCAL_PART: usize = 64;
/// Longest domain, RFC 5321 section 4.5.3.1.2.
pub const MAX_DOMAIN: usize = 255;
/// Longest path including the angle brackets, RFC 5321 section 4.5.3.1.3.
pub const MAX_PATH: usize = 256;

/// A mailbox `local@domain`.
///
/// The local part is kept unquoted (`"john doe"@x` has local part `john doe`); [`Display`]
/// quotes it again when needed.
///
/// ```
/// use smtp_core::address::{parse_forward_path, ForwardPath};
/// let (path, rest) = parse_forward_path("<\"John Doe\"@Example.COM> NOTIFY=NEVER").unwrap();
/// let ForwardPath::Mailbox(m) = path else { panic!() };
/// assert_eq!(m.local(), "John Doe");
/// assert_eq!(m.domain(), "Example.COM");
/// assert_eq!(m.to_string(), "\"John Doe\"@Example.COM");
/// assert_eq!(rest, "NOTIFY=NEVER");
/// ```
///
/// [`Display`]: fmt::Display
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mailbox {
    local: String,
    domain: String,
}

impl Mailbox {
    /// The local part, unquoted.
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The domain as written, or an address literal with its brackets (`[192.0.2.1]`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// True if any part is outside ASCII (needs SMTPUTF8, RFC 6531).
    pub fn is_ascii(&self) -> bool {
        self.local.is_ascii() && self.domain.is_ascii()
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_dot_string(&self.local) {
            f.write_str(&self.local)?;
        } else {
            f.write_str("\"")?;
            for c in self.local.chars() {
                if c == '"' || c == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str("\"")?;
        }
        write!(f, "@{}", self.domain)
    }
}

/// The argument of `MAIL FROM:`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReversePath {
    /// `<>`: no bounces go back (RFC 5321 section 4.5.5).
    Null,
    /// A sender mailbox.
    Mailbox(Mailbox),
}

/// The argument of `RCPT TO:`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ForwardPath {
    /// `<postmaster>` without a domain, which every server must accept (RFC 5321 section 4.5.1).
    Postmaster,
    /// A recipient mailbox.
    Mailbox(Mailbox),
}

impl fmt::Display for ReversePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReversePath::Null => f.write_str("<>"),
            ReversePath::Mailbox(m) => write!(f, "<{m}>"),
        }
    }
}

impl fmt::Display for ForwardPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardPath::Postmaster => f.write_str("<postmaster>"),
            ForwardPath::Mailbox(m) => write!(f, "<{m}>"),
        }
    }
}

impl ReversePath {
    /// True unless a part is outside ASCII.
    pub fn is_ascii(&self) -> bool {
        match self {
            ReversePath::Null => true,
            ReversePath::Mailbox(m) => m.is_ascii(),
        }
    }
}

impl ForwardPath {
    /// True unless a part is outside ASCII.
    pub fn is_ascii(&self) -> bool {
        match self {
            ForwardPath::Postmaster => true,
            ForwardPath::Mailbox(m) => m.is_ascii(),
        }
    }
}

/// Why a path did not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressError {
    /// Not a path by the RFC 5321 grammar.
    Syntax,
    /// A part is longer than RFC 5321 section 4.5.3.1 allows.
    TooLong,
}

/// Parses `<mailbox>` or `<>` at the start of `input` (after `MAIL FROM:`); returns the path and
/// the parameters that follow, with leading spaces removed.
pub fn parse_reverse_path(input: &str) -> Result<(ReversePath, &str), AddressError> {
    let (inner, rest) = bracketed(input)?;
    if inner.is_empty() {
        return Ok((ReversePath::Null, rest));
    }
    Ok((ReversePath::Mailbox(parse_mailbox(inner)?), rest))
}

/// Parses `<mailbox>` or `<postmaster>` at the start of `input` (after `RCPT TO:`); returns the
/// path and the parameters that follow, with leading spaces removed.
pub fn parse_forward_path(input: &str) -> Result<(ForwardPath, &str), AddressError> {
    let (inner, rest) = bracketed(input)?;
    if inner.eq_ignore_ascii_case("postmaster") {
        return Ok((ForwardPath::Postmaster, rest));
    }
    if inner.is_empty() {
        return Err(AddressError::Syntax);
    }
    Ok((ForwardPath::Mailbox(parse_mailbox(inner)?), rest))
}

/// Splits `<...> rest` into the text between the brackets (source route removed) and the rest.
fn bracketed(input: &str) -> Result<(&str, &str), AddressError> {
    // "MAIL FROM: <a@b>" breaks the grammar but is common; accepting it harms nobody.
    let input = input.trim_start_matches(' ');
    let body = input.strip_prefix('<').ok_or(AddressError::Syntax)?;
    let end = closing_bracket(body).ok_or(AddressError::Syntax)?;
    let (inner, rest) = (&body[..end], &body[end + 1..]);
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return Err(AddressError::Syntax);
    }
    if inner.len() + 2 > MAX_PATH {
        return Err(AddressError::TooLong);
    }
    Ok((strip_source_route(inner)?, rest.trim_start_matches(' ')))
}

/// Finds the `>` closing the path, skipping quoted strings (a local part may hold `>`).
fn closing_bracket(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut quoted = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b'>' if !quoted => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Removes an obsolete source route `@a,@b:` (RFC 5321 section 4.1.1.3 and appendix C: servers
/// must accept and ignore it).
fn strip_source_route(inner: &str) -> Result<&str, AddressError> {
    if !inner.starts_with('@') {
        return Ok(inner);
    }
    let colon = inner.find(':').ok_or(AddressError::Syntax)?;
    for hop in inner[..colon].split(',') {
        let domain = hop.strip_prefix('@').ok_or(AddressError::Syntax)?;
        if !is_domain(domain) {
            return Err(AddressError::Syntax);
        }
    }
    Ok(&inner[colon + 1..])
}

fn parse_mailbox(s: &str) -> Result<Mailbox, AddressError> {
    let (local, domain) = if let Some(quoted) = s.strip_prefix('"') {
        let end = closing_quote(quoted).ok_or(AddressError::Syntax)?;
        let rest = &quoted[end + 1..];
        let domain = rest.strip_prefix('@').ok_or(AddressError::Syntax)?;
        (unquote(&quoted[..end])?, domain)
    } else {
        let at = s.rfind('@').ok_or(AddressError::Syntax)?;
        let local = &s[..at];
        if !is_dot_string(local) {
            return Err(AddressError::Syntax);
        }
        (local.to_owned(), &s[at + 1..])
    };
    if !(is_domain(domain) || is_address_literal(domain)) {
        return Err(AddressError::Syntax);
    }
    if local.len() > MAX_LOCAL_PART || domain.len() > MAX_DOMAIN {
        return Err(AddressError::TooLong);
    }
    Ok(Mailbox {
        local,
        domain: domain.to_owned(),
    })
}

fn closing_quote(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'"' => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Unescapes the content of a quoted string: `qtextSMTP` and `quoted-pairSMTP` (%d92 %d32-126).
fn unquote(s: &str) -> Result<String, AddressError> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(q @ ' '..='~') => out.push(q),
                _ => return Err(AddressError::Syntax),
            },
            ' ' | '!' | '#'..='[' | ']'..='~' => out.push(c),
            c if !c.is_ascii() => out.push(c),
            _ => return Err(AddressError::Syntax),
        }
    }
    Ok(out)
}

/// `atext` of RFC 5322 section 3.2.3, plus any non-ASCII character (RFC 6531 section 3.3).
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

/// `Dot-string = Atom *("." Atom)`.
fn is_dot_string(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

/// `Domain = sub-domain *("." sub-domain)`; U-labels allowed (RFC 6531).
fn is_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_DOMAIN
        && s.split('.').all(|label| {
            let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || !c.is_ascii();
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(ok_char)
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// `address-literal`: `[IPv4]`, `[IPv6:...]` or a general `[tag:content]`.
fn is_address_literal(s: &str) -> bool {
    let Some(inner) = s.strip_prefix('[').and_then(|s| s.strip_suffix(']')) else {
        return false;
    };
    if let Some(v6) = inner.strip_prefix("IPv6:") {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    if inner.parse::<std::net::Ipv4Addr>().is_ok() {
        return true;
    }
    // General-address-literal = Standardized-tag ":" 1*dcontent; dcontent is %d33-90 / %d94-126.
    match inner.split_once(':') {
        Some((tag, content)) => {
            is_domain(tag)
                && !content.is_empty()
                && content
                    .bytes()
                    .all(|b| (33..=90).contains(&b) || (94..=126).contains(&b))
        }
        None => false,
    }
}

/// True if `s` is a valid `Domain` or `address-literal`: the argument EHLO and HELO expect.
pub fn is_domain_or_literal(s: &str) -> bool {
    is_domain(s) || is_address_literal(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fwd(s: &str) -> Result<ForwardPath, AddressError> {
        parse_forward_path(s).map(|(p, _)| p)
    }

    #[test]
    fn parses_plain_quoted_and_literal_addresses() {
        let ForwardPath::Mailbox(m) = fwd("<a.b+c@example.com>").unwrap() else {
            panic!()
        };
        assert_eq!((m.local(), m.domain()), ("a.b+c", "example.com"));
        let ForwardPath::Mailbox(m) = fwd(r#"<"a\"b c"@x.org>"#).unwrap() else {
            panic!()
        };
        assert_eq!(m.local(), "a\"b c");
        assert_eq!(m.to_string(), r#""a\"b c"@x.org"#);
        assert!(fwd("<u@[192.0.2.1]>").is_ok());
        assert!(fwd("<u@[IPv6:2001:db8::1]>").is_ok());
        assert_eq!(fwd("<Postmaster>").unwrap(), ForwardPath::Postmaster);
        let (p, rest) = parse_reverse_path("<>  SIZE=10").unwrap();
        assert_eq!((p, rest), (ReversePath::Null, "SIZE=10"));
    }

    #[test]
    fn source_routes_are_ignored() {
        let ForwardPath::Mailbox(m) = fwd("<@a.example,@b.example:u@c.example>").unwrap() else {
            panic!()
        };
        assert_eq!(m.to_string(), "u@c.example");
    }

    #[test]
    fn utf8_addresses_parse_and_are_flagged() {
        let p = fwd("<josé@bücher.example>").unwrap();
        assert!(!p.is_ascii());
    }

    #[test]
    fn rejects_malformed_paths() {
        for bad in [
            "a@b",
            "<a@b",
            "<a@>",
            "<@b>",
            "<a..b@c>",
            "<.a@c>",
            "<a.@c>",
            "<a b@c>",
            "<a@b c>",
            "<a@-b>",
            "<a@b..c>",
            "<\"a@b>",
            "<a@[1.2.3]>",
            "<a@b>x",
            "<>",
            "<a@b@c>",
            "<a\"b@c>",
        ] {
            assert!(fwd(bad).is_err(), "{bad} should fail");
        }
        let long_local = format!("<{}@x.org>", "a".repeat(65));
        assert_eq!(fwd(&long_local), Err(AddressError::TooLong));
    }
}
