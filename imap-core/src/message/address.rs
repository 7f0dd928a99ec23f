//! RFC 5322 address lists (section 3.4) as raw bytes, for the address structures of ENVELOPE
//! (RFC 3501 section 7.4.2). Nothing is decoded: encoded-words in display names stay as sent.
//! Lenient: malformed input yields whatever addresses can be recognised, never an error.

/// One element of an envelope address list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Item {
    /// A mailbox: `(name adl mailbox host)`.
    Mailbox {
        /// The display name, unquoted, or the comment of a bare addr-spec.
        name: Option<Vec<u8>>,
        /// The obsolete source route (`@a,@b`), as sent.
        adl: Option<Vec<u8>>,
        /// The local part, as sent (quotes kept, so it still reads as an address).
        mailbox: Vec<u8>,
        /// The domain; empty when the address has none. Never NIL: RFC 3501 section 7.4.2
        /// reads a NIL host as a group marker.
        host: Vec<u8>,
    },
    /// The start of a group: `(NIL NIL name NIL)`.
    GroupStart(Vec<u8>),
    /// The end of a group: `(NIL NIL NIL NIL)`.
    GroupEnd,
}

/// A lexical token of an address list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    /// An atom (dots included, so dot-atoms and obs-phrase words are one token).
    Word(&'a [u8]),
    /// A quoted string with its quotes.
    Quoted(&'a [u8]),
    /// A comment's contents, without the parentheses.
    Comment(&'a [u8]),
    /// A domain literal with its brackets.
    Literal(&'a [u8]),
    /// One of `< > @ , ; :`.
    Special(u8),
}

/// A token and whether whitespace (or a comment) came before it.
type Spaced<'a> = (Tok<'a>, bool);

/// Parses an unfolded address-list value.
pub(super) fn parse(value: &[u8]) -> Vec<Item> {
    let toks = lex(value);
    let mut items = Vec::new();
    let mut in_group = false;
    let mut pending: Vec<Spaced<'_>> = Vec::new();
    let mut i = 0;
    while let Some(&(tok, spaced)) = toks.get(i) {
        i += 1;
        match tok {
            Tok::Special(b'<') => {
                let name = phrase(&pending);
                pending.clear();
                let start = i;
                while toks.get(i).is_some_and(|t| t.0 != Tok::Special(b'>')) {
                    i += 1;
                }
                let inner = toks.get(start..i).unwrap_or_default();
                let (adl, mailbox, host) = angle_addr(inner);
                items.push(Item::Mailbox {
                    name,
                    adl,
                    mailbox,
                    host,
                });
                // Whatever follows up to the next separator is junk (or comments).
                while toks
                    .get(i)
                    .is_some_and(|t| !matches!(t.0, Tok::Special(b',') | Tok::Special(b';')))
                {
                    i += 1;
                }
            }
            Tok::Special(b':') if !in_group => {
                items.push(Item::GroupStart(phrase(&pending).unwrap_or_default()));
                pending.clear();
                in_group = true;
            }
            Tok::Special(b',') => flush(&mut pending, &mut items),
            Tok::Special(b';') => {
                flush(&mut pending, &mut items);
                if in_group {
                    items.push(Item::GroupEnd);
                    in_group = false;
                }
            }
            _ => pending.push((tok, spaced)),
        }
    }
    flush(&mut pending, &mut items);
    // An unterminated group still ends, so the client's structure stays balanced.
    if in_group {
        items.push(Item::GroupEnd);
    }
    items
}

/// Turns the tokens since the last separator into a bare addr-spec, if there are any.
fn flush(pending: &mut Vec<Spaced<'_>>, items: &mut Vec<Item>) {
    if pending.iter().any(|t| !matches!(t.0, Tok::Comment(_))) {
        // A bare addr-spec's name, by long custom (`user@host (Full Name)`), is its comment.
        let name = pending.iter().find_map(|t| match t.0 {
            Tok::Comment(c) => Some(c.to_vec()).filter(|c| !c.is_empty()),
            _ => None,
        });
        let (mailbox, host) = addr_spec(pending);
        items.push(Item::Mailbox {
            name,
            adl: None,
            mailbox,
            host,
        });
    }
    pending.clear();
}

/// The inside of `<...>`: an optional source route (`@a,@b:`) and an addr-spec.
fn angle_addr(inner: &[Spaced<'_>]) -> (Option<Vec<u8>>, Vec<u8>, Vec<u8>) {
    let first = inner.iter().find(|t| !matches!(t.0, Tok::Comment(_)));
    let colon = inner.iter().position(|t| t.0 == Tok::Special(b':'));
    match (first, colon) {
        (Some((Tok::Special(b'@'), _)), Some(colon)) => {
            let adl = raw(&inner[..colon]);
            let (mailbox, host) = addr_spec(&inner[colon + 1..]);
            (Some(adl).filter(|a| !a.is_empty()), mailbox, host)
        }
        _ => {
            let (mailbox, host) = addr_spec(inner);
            (None, mailbox, host)
        }
    }
}

/// Splits tokens at the last `@` into local part and domain, whitespace and comments dropped.
fn addr_spec(toks: &[Spaced<'_>]) -> (Vec<u8>, Vec<u8>) {
    match toks.iter().rposition(|t| t.0 == Tok::Special(b'@')) {
        Some(at) => (raw(&toks[..at]), raw(&toks[at + 1..])),
        None => (raw(toks), Vec::new()),
    }
}

/// The tokens as sent, without whitespace or comments.
fn raw(toks: &[Spaced<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (tok, _) in toks {
        match *tok {
            Tok::Word(w) | Tok::Quoted(w) | Tok::Literal(w) => out.extend_from_slice(w),
            Tok::Special(c) => out.push(c),
            Tok::Comment(_) => {}
        }
    }
    out
}

/// A display name: words joined by one space where the sender had space, quoted strings
/// unquoted, comments dropped. `None` when empty.
fn phrase(toks: &[Spaced<'_>]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for &(tok, spaced) in toks {
        let text: Vec<u8> = match tok {
            Tok::Word(w) | Tok::Literal(w) => w.to_vec(),
            Tok::Quoted(q) => unquote(q),
            Tok::Special(c) => vec![c],
            Tok::Comment(_) => continue,
        };
        if spaced && !out.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(&text);
    }
    Some(out).filter(|o| !o.is_empty())
}

/// The contents of a quoted string (with its quotes), escapes resolved.
fn unquote(q: &[u8]) -> Vec<u8> {
    let inner = q.strip_prefix(b"\"").unwrap_or(q);
    let inner = inner.strip_suffix(b"\"").unwrap_or(inner);
    let mut out = Vec::with_capacity(inner.len());
    let mut escaped = false;
    for &b in inner {
        if escaped || b != b'\\' {
            out.push(b);
            escaped = false;
        } else {
            escaped = true;
        }
    }
    out
}

/// Splits an address list into tokens (RFC 5322 sections 3.2 and 3.4).
fn lex(s: &[u8]) -> Vec<Spaced<'_>> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut spaced = false;
    while let Some(&b) = s.get(i) {
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => {
                spaced = true;
                i += 1;
            }
            b'(' => {
                let end = comment_end(s, i);
                let closed = end > i + 1 && s.get(end - 1) == Some(&b')');
                let inner = s
                    .get(i + 1..if closed { end - 1 } else { end })
                    .unwrap_or_default();
                out.push((Tok::Comment(inner), spaced));
                spaced = true;
                i = end;
            }
            b'"' => {
                let end = delimited_end(s, i, b'"');
                out.push((Tok::Quoted(&s[i..end]), spaced));
                spaced = false;
                i = end;
            }
            b'[' => {
                let end = delimited_end(s, i, b']');
                out.push((Tok::Literal(&s[i..end]), spaced));
                spaced = false;
                i = end;
            }
            b'<' | b'>' | b'@' | b',' | b';' | b':' => {
                out.push((Tok::Special(b), spaced));
                spaced = false;
                i += 1;
            }
            _ => {
                // A stray `)` (or `]`) is part of a word; the first byte always is, so the
                // lexer always moves on.
                let start = i;
                i += 1;
                while s
                    .get(i)
                    .is_some_and(|&c| !b" \t\r\n(\"[<>@,;:".contains(&c))
                {
                    i += 1;
                }
                out.push((Tok::Word(&s[start..i]), spaced));
                spaced = false;
            }
        }
    }
    out
}

/// The end (exclusive) of the comment opening at `start`: comments nest and `\` escapes
/// (RFC 5322 section 3.2.2). An unterminated comment runs to the end.
fn comment_end(s: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while let Some(&b) = s.get(i) {
        i += 1;
        match b {
            b'\\' => i = (i + 1).min(s.len()),
            b'(' => depth += 1,
            b')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    s.len()
}

/// The end (exclusive) of a quoted string or domain literal opening at `start` and closed by
/// `close`; `\` escapes. An unterminated one runs to the end.
fn delimited_end(s: &[u8], start: usize, close: u8) -> usize {
    let mut i = start + 1;
    while let Some(&b) = s.get(i) {
        i += 1;
        if b == b'\\' {
            i = (i + 1).min(s.len());
        } else if b == close {
            return i;
        }
    }
    s.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(name: Option<&str>, mailbox: &str, host: &str) -> Item {
        Item::Mailbox {
            name: name.map(|n| n.as_bytes().to_vec()),
            adl: None,
            mailbox: mailbox.as_bytes().to_vec(),
            host: host.as_bytes().to_vec(),
        }
    }

    #[test]
    fn name_addr_and_addr_spec() {
        assert_eq!(
            parse(b"\"Doe, John\" <john@example.com>, jane@example.org (Jane Roe), Joe Q. Public <joe@x.y>"),
            vec![
                mailbox(Some("Doe, John"), "john", "example.com"),
                mailbox(Some("Jane Roe"), "jane", "example.org"),
                mailbox(Some("Joe Q. Public"), "joe", "x.y"),
            ]
        );
    }

    #[test]
    fn encoded_words_stay_raw() {
        assert_eq!(
            parse(b"=?UTF-8?Q?J=C3=B6rg?= <j@x>"),
            vec![mailbox(Some("=?UTF-8?Q?J=C3=B6rg?="), "j", "x")]
        );
    }

    #[test]
    fn groups() {
        assert_eq!(
            parse(b"undisclosed-recipients:;"),
            vec![
                Item::GroupStart(b"undisclosed-recipients".to_vec()),
                Item::GroupEnd
            ]
        );
        assert_eq!(
            parse(b"a@b, Friends: c@d, \"E\" <e@f>; , g@h"),
            vec![
                mailbox(None, "a", "b"),
                Item::GroupStart(b"Friends".to_vec()),
                mailbox(None, "c", "d"),
                mailbox(Some("E"), "e", "f"),
                Item::GroupEnd,
                mailbox(None, "g", "h"),
            ]
        );
        assert_eq!(
            parse(b"Open: a@b"),
            vec![
                Item::GroupStart(b"Open".to_vec()),
                mailbox(None, "a", "b"),
                Item::GroupEnd
            ]
        );
    }

    #[test]
    fn route_quoted_local_part_and_missing_domain() {
        assert_eq!(
            parse(b"<@r1.example,@r2.example:user@host>"),
            vec![Item::Mailbox {
                name: None,
                adl: Some(b"@r1.example,@r2.example".to_vec()),
                mailbox: b"user".to_vec(),
                host: b"host".to_vec(),
            }]
        );
        assert_eq!(
            parse(b"\"john doe\"@example.com"),
            vec![mailbox(None, "\"john doe\"", "example.com")]
        );
        assert_eq!(parse(b"postmaster"), vec![mailbox(None, "postmaster", "")]);
        assert_eq!(
            parse(b"user@[192.0.2.1]"),
            vec![mailbox(None, "user", "[192.0.2.1]")]
        );
    }

    #[test]
    fn junk_never_fails() {
        // A stray `)` once stopped the lexer in its tracks (found by the mutation proptest).
        assert_eq!(parse(b"c@exa)mple"), vec![mailbox(None, "c", "exa)mple")]);
        assert!(parse(b"").is_empty());
        assert!(parse(b" , ,, (just a comment)").is_empty());
        for junk in [
            &b"<<<"[..],
            b"\"unterminated",
            b"(((",
            b"a@b@c <",
            b"\\",
            b"[x",
            b">;:",
            b")",
            b"a)b, (c)) d",
        ] {
            let _ = parse(junk);
        }
    }
}
