//! The name of a user's notice group: `buzon.mail.<domain>.<local part>`, a valid newsgroup
//! name (RFC 5536 section 3.1.4: components of `a-z`, digits, `+`, `-`, `_`, joined by dots)
//! that names exactly one mailbox. Two addresses never share a group, or one user would read
//! another's notices: the mapping is one-to-one, not merely tidy.
//!
//! In the domain, `.` becomes `-` (so `example.com` reads as `example-com`) and a `-` of the
//! domain itself is escaped; in the local part, `-` stays. Everything else outside `a-z0-9` is
//! `_` and two lower-case hex digits per UTF-8 octet (uppercase letters too: newsgroup
//! components should not hold them, and local parts may differ only in case).

/// The prefix of every notice group.
pub const PREFIX: &str = "buzon.mail.";

/// The notice group of `local@domain`.
///
/// ```
/// use nntp_core::notice_group;
/// assert_eq!(notice_group("example.com", "alice"), "buzon.mail.example-com.alice");
/// assert_eq!(notice_group("my-host.org", "bob.smith"), "buzon.mail.my_2dhost-org.bob_2esmith");
/// assert_eq!(notice_group("example.com", "Zoë"), "buzon.mail.example-com._5ao_c3_ab");
/// ```
pub fn notice_group(domain: &str, local: &str) -> String {
    let mut out = String::from(PREFIX);
    escape(&domain.to_ascii_lowercase(), &mut out, |c| match c {
        '.' => Some('-'),
        c if c.is_ascii_lowercase() || c.is_ascii_digit() => Some(c),
        _ => None,
    });
    out.push('.');
    escape(local, &mut out, |c| {
        (c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-').then_some(c)
    });
    out
}

fn escape(text: &str, out: &mut String, keep: impl Fn(char) -> Option<char>) {
    if text.is_empty() {
        out.push('_');
        return;
    }
    for c in text.chars() {
        match keep(c) {
            Some(k) => out.push(k),
            None => {
                let mut buf = [0; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("_{b:02x}"));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alike_addresses_get_different_groups() {
        let names = [
            notice_group("example.com", "alice"),
            notice_group("example.com", "Alice"),
            notice_group("example-com", "alice"),
            notice_group("example.com", "alice.x"),
            notice_group("example.com", "alice-x"),
            notice_group("example.com", "alice_x"),
            notice_group("example.com", ""),
        ];
        let distinct: std::collections::BTreeSet<&String> = names.iter().collect();
        assert_eq!(distinct.len(), names.len(), "{names:?}");
    }

    #[test]
    fn domains_are_case_insensitive() {
        assert_eq!(
            notice_group("Example.COM", "a"),
            notice_group("example.com", "a")
        );
    }
}
