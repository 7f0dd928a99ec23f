//! Address lists (RFC 5322 section 3.4) as ENVELOPE wants them (RFC 3501 section 7.4.2):
//! `(name adl mailbox host)` per mailbox, groups as a start and an end marker. Display names
//! stay as sent (encoded-words are not decoded: the client does that).

/// One ENVELOPE address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Address {
    Mailbox {
        name: Option<Vec<u8>>,
        local: Vec<u8>,
        host: Option<Vec<u8>>,
    },
    GroupStart(Vec<u8>),
    GroupEnd,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(Vec<u8>),
    Quoted(Vec<u8>),
    Special(u8),
}

fn tokens(v: &[u8]) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let c = v[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'(' => {
                // A comment, nested ones too: dropped.
                let mut depth = 0usize;
                while i < v.len() {
                    match v[i] {
                        b'\\' => i += 1,
                        b'(' => depth += 1,
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                i += 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
            b'"' => {
                let mut s = Vec::new();
                i += 1;
                while i < v.len() && v[i] != b'"' {
                    if v[i] == b'\\' && i + 1 < v.len() {
                        i += 1;
                    }
                    s.push(v[i]);
                    i += 1;
                }
                i += 1;
                out.push(Tok::Quoted(s));
            }
            b'<' | b'>' | b'@' | b',' | b':' | b';' => {
                out.push(Tok::Special(c));
                i += 1;
            }
            _ => {
                let start = i;
                while i < v.len() && !b" \t\r\n()\"<>@,:;".contains(&v[i]) {
                    i += 1;
                }
                out.push(Tok::Word(v[start..i].to_vec()));
            }
        }
    }
    out
}

/// Parses an address list; what cannot be read is skipped, never an error.
pub(crate) fn parse_list(v: &[u8]) -> Vec<Address> {
    let toks = tokens(v);
    let mut out = Vec::new();
    let mut segment: Vec<Tok> = Vec::new();
    let mut in_group = false;
    let mut angle = false;
    for t in toks {
        match t {
            Tok::Special(b'<') => {
                angle = true;
                segment.push(t);
            }
            Tok::Special(b'>') => {
                angle = false;
                segment.push(t);
            }
            // Inside <...>, `:` ends a route and `,` separates its hops.
            _ if angle => segment.push(t),
            Tok::Special(b':') if !in_group => {
                in_group = true;
                out.push(Address::GroupStart(words(&segment)));
                segment.clear();
            }
            Tok::Special(b',') => out.extend(mailbox(std::mem::take(&mut segment))),
            Tok::Special(b';') => {
                out.extend(mailbox(std::mem::take(&mut segment)));
                if in_group {
                    out.push(Address::GroupEnd);
                    in_group = false;
                }
            }
            t => segment.push(t),
        }
    }
    out.extend(mailbox(segment));
    if in_group {
        out.push(Address::GroupEnd);
    }
    out
}

/// The words of a phrase joined by single spaces.
fn words(ts: &[Tok]) -> Vec<u8> {
    let parts: Vec<&[u8]> = ts
        .iter()
        .filter_map(|t| match t {
            Tok::Word(w) | Tok::Quoted(w) => Some(w.as_slice()),
            Tok::Special(_) => None,
        })
        .collect();
    parts.join(&b' ')
}

/// One mailbox: `phrase <addr-spec>` or a bare `addr-spec`.
fn mailbox(segment: Vec<Tok>) -> Option<Address> {
    if segment.is_empty() {
        return None;
    }
    let (name, mut spec) = match segment.iter().position(|t| *t == Tok::Special(b'<')) {
        Some(open) => {
            let close = segment
                .iter()
                .rposition(|t| *t == Tok::Special(b'>'))
                .filter(|c| *c > open)
                .unwrap_or(segment.len());
            let name = words(&segment[..open]);
            (
                Some(name).filter(|n| !n.is_empty()),
                segment[open + 1..close].to_vec(),
            )
        }
        None => (None, segment),
    };
    // A route (`@a,@b:`) before the address: RFC 3501 gives it as adl, which servers leave NIL.
    if let Some(colon) = spec.iter().position(|t| *t == Tok::Special(b':')) {
        spec.drain(..=colon);
    }
    let text = |ts: &[Tok]| -> Vec<u8> {
        let mut v = Vec::new();
        for t in ts {
            match t {
                Tok::Word(w) | Tok::Quoted(w) => v.extend_from_slice(w),
                Tok::Special(c) => v.push(*c),
            }
        }
        v
    };
    let at = spec.iter().rposition(|t| *t == Tok::Special(b'@'));
    let (local, host) = match at {
        Some(a) => (
            text(&spec[..a]),
            Some(text(&spec[a + 1..])).filter(|h| !h.is_empty()),
        ),
        None => (text(&spec), None),
    };
    if local.is_empty() {
        return None;
    }
    Some(Address::Mailbox { name, local, host })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mb(name: Option<&str>, local: &str, host: Option<&str>) -> Address {
        Address::Mailbox {
            name: name.map(|n| n.as_bytes().to_vec()),
            local: local.as_bytes().to_vec(),
            host: host.map(|h| h.as_bytes().to_vec()),
        }
    }

    #[test]
    fn common_forms() {
        assert_eq!(
            parse_list(b"\"Doe, John\" <john@example.com>, jane@example.org (Jane)"),
            [
                mb(Some("Doe, John"), "john", Some("example.com")),
                mb(None, "jane", Some("example.org"))
            ]
        );
        assert_eq!(
            parse_list(b"Fred Bloggs <fred@x.y>"),
            [mb(Some("Fred Bloggs"), "fred", Some("x.y"))]
        );
        assert_eq!(
            parse_list(b"A Group: a@b, c@d; e@f"),
            [
                Address::GroupStart(b"A Group".to_vec()),
                mb(None, "a", Some("b")),
                mb(None, "c", Some("d")),
                Address::GroupEnd,
                mb(None, "e", Some("f"))
            ]
        );
        assert_eq!(
            parse_list(b"undisclosed-recipients:;"),
            [
                Address::GroupStart(b"undisclosed-recipients".to_vec()),
                Address::GroupEnd
            ]
        );
        assert_eq!(parse_list(b"<@route.x:u@h>"), [mb(None, "u", Some("h"))]);
        assert_eq!(
            parse_list(b"=?utf-8?q?J=C3=B6rg?= <j@x>"),
            [mb(Some("=?utf-8?q?J=C3=B6rg?="), "j", Some("x"))]
        );
        assert_eq!(parse_list(b"postmaster"), [mb(None, "postmaster", None)]);
        assert!(parse_list(b"").is_empty());
    }
}
