//! LIST and LSUB (RFC 3501 sections 6.3.8 and 6.3.9, RFC 5258 LIST-EXTENDED, RFC 6154
//! SPECIAL-USE, RFC 5819 LIST-STATUS): matching patterns against the user's mailboxes.

use crate::event::MailboxEntry;
use crate::mailbox_name::SEPARATOR;
use crate::syntax::ListCommand;

/// Whether `name` matches `pattern`: `*` matches anything, `%` anything but the separator
/// (RFC 3501 section 6.3.8). INBOX matches case-insensitively.
pub(crate) fn matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some((b'%', rest)) => {
                let stop = n
                    .iter()
                    .position(|&c| c == SEPARATOR as u8)
                    .unwrap_or(n.len());
                (0..=stop).any(|i| go(rest, &n[i..]))
            }
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    // Each wildcard explores the rest of the name; a pattern with many of them over a long
    // name is exponential, so bound the work the way every server does: names are short
    // (255 octets) and patterns with more than a few wildcards are refused by the caller.
    let (p, n) = if name.len() >= 5
        && name[..5].eq_ignore_ascii_case("INBOX")
        && pattern.len() >= 5
        && pattern[..5].eq_ignore_ascii_case("INBOX")
    {
        (
            format!("INBOX{}", &pattern[5..]),
            format!("INBOX{}", &name[5..]),
        )
    } else {
        (pattern.to_owned(), name.to_owned())
    };
    go(p.as_bytes(), n.as_bytes())
}

/// The most wildcards a pattern may hold.
pub(crate) const MAX_WILDCARDS: usize = 8;

/// One line to answer.
#[derive(Debug)]
pub(crate) struct Listed<'a> {
    pub(crate) name: &'a str,
    /// The entry, or `None` for a level of hierarchy that is no mailbox itself.
    pub(crate) entry: Option<&'a MailboxEntry>,
    pub(crate) attributes: Vec<&'static str>,
}

/// The entries a LIST or LSUB answers, in the host's order, with their attributes.
pub(crate) fn select<'a>(
    cmd: &ListCommand,
    entries: &'a [MailboxEntry],
    parents: &'a [String],
) -> Vec<Listed<'a>> {
    let patterns: Vec<String> = cmd
        .patterns
        .iter()
        .map(|p| {
            // RFC 3501 6.3.8: the reference is prefixed to the pattern.
            if cmd.reference.is_empty() || p.starts_with(SEPARATOR) {
                p.clone()
            } else {
                format!("{}{}", cmd.reference, p)
            }
        })
        .collect();
    let has_children = |name: &str| {
        entries.iter().any(|e| {
            e.exists
                && e.name.len() > name.len()
                && e.name.starts_with(name)
                && e.name.as_bytes()[name.len()] == SEPARATOR as u8
        })
    };
    let mut out = Vec::new();
    for e in entries {
        if !patterns.iter().any(|p| matches(p, &e.name)) {
            continue;
        }
        if cmd.subscribed_only && !e.subscribed {
            continue;
        }
        if !cmd.subscribed_only && !e.exists {
            continue;
        }
        if cmd.special_use_only && e.special_use.is_none() {
            continue;
        }
        let mut attributes = Vec::new();
        if !e.exists {
            // RFC 5258 section 3.4 for LIST; LSUB only knows \Noselect (RFC 3501 6.3.9).
            attributes.push(if cmd.lsub {
                "\\Noselect"
            } else {
                "\\NonExistent"
            });
        }
        if !cmd.lsub {
            // RFC 3348 CHILDREN; cheap to say always.
            attributes.push(if has_children(&e.name) {
                "\\HasChildren"
            } else {
                "\\HasNoChildren"
            });
        }
        if (cmd.subscribed_only || cmd.return_subscribed) && e.subscribed && !cmd.lsub {
            attributes.push("\\Subscribed");
        }
        if let Some(use_) = &e.special_use {
            attributes.push(special_use(use_));
        }
        out.push(Listed {
            name: &e.name,
            entry: Some(e),
            attributes,
        });
    }
    if !cmd.subscribed_only && !cmd.special_use_only {
        // RFC 3501 6.3.8: levels of hierarchy that are not mailboxes themselves are listed
        // with \Noselect (Maildir++ creates `a.b` without `a`).
        for p in parents {
            if patterns.iter().any(|pat| matches(pat, p)) {
                let attributes = if cmd.lsub {
                    vec!["\\Noselect"]
                } else {
                    vec!["\\Noselect", "\\HasChildren"]
                };
                out.push(Listed {
                    name: p,
                    entry: None,
                    attributes,
                });
            }
        }
    }
    out
}

/// The levels of hierarchy above existing mailboxes that are not mailboxes themselves.
pub(crate) fn implied_parents(entries: &[MailboxEntry]) -> Vec<String> {
    let names: std::collections::BTreeSet<&str> = entries
        .iter()
        .filter(|e| e.exists)
        .map(|e| e.name.as_str())
        .collect();
    let mut out = std::collections::BTreeSet::new();
    for name in &names {
        let mut end = 0;
        while let Some(i) = name[end..].find(SEPARATOR) {
            let parent = &name[..end + i];
            if !names.contains(parent) {
                out.insert(parent.to_owned());
            }
            end += i + 1;
        }
    }
    out.into_iter().collect()
}

fn special_use(s: &str) -> &'static str {
    match s {
        "\\Sent" => "\\Sent",
        "\\Drafts" => "\\Drafts",
        "\\Trash" => "\\Trash",
        "\\Junk" => "\\Junk",
        "\\Archive" => "\\Archive",
        "\\All" => "\\All",
        "\\Flagged" => "\\Flagged",
        _ => "\\Extension",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(matches("*", "Archive.2024"));
        assert!(!matches("%", "Archive.2024"));
        assert!(matches("%", "Archive"));
        assert!(matches("Archive.%", "Archive.2024"));
        assert!(matches("inbox", "INBOX"));
        assert!(matches("Tra", "Tra"));
        assert!(!matches("Tra", "Trash"));
        assert!(matches("*a*", "Trash"));
    }
}
