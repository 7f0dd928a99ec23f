//! Mailbox names and where they live on disk.
//!
//! Layout (Dovecot `mail_location = maildir:<root>/%d/%n`, Maildir++):
//! `<root>/<domain>/<local>/{tmp,new,cur}` is the INBOX, and
//! `<root>/<domain>/<local>/.<Folder>/{tmp,new,cur}` the other folders.
//!
//! Validation here is defence in depth: the SMTP core already checks address
//! syntax, but these strings become path components, so nothing that could
//! leave the root (`/`, `..`) or clash with Maildir++ folders (a leading `.`)
//! may pass, whatever the caller did.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::StoreError;

/// RFC 5321 4.5.3.1.1: the maximum local part is 64 octets.
pub const MAX_LOCAL_LEN: usize = 64;
/// RFC 5321 4.5.3.1.2: the maximum domain is 255 octets.
pub const MAX_DOMAIN_LEN: usize = 255;
/// Folder names are single path components; most file systems cap those at
/// 255 octets, and the leading `.` takes one.
const MAX_FOLDER_LEN: usize = 254;

/// A validated recipient mailbox: a domain and a local part, both usable as
/// single path components below the mail root.
///
/// ```
/// use mailstore::Mailbox;
///
/// let m = Mailbox::new("Example.COM", "Alice")?;
/// assert_eq!(m.domain(), "example.com");
/// assert_eq!(m.local(), "alice");
/// assert_eq!(m.to_string(), "alice@example.com");
///
/// assert!(Mailbox::new("example.com", "../etc").is_err());
/// assert!(Mailbox::new("example.com", "jos\u{e9}").is_ok()); // SMTPUTF8
/// # Ok::<(), mailstore::StoreError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mailbox {
    domain: String,
    local: String,
}

impl Mailbox {
    /// Validates and normalises a mailbox.
    ///
    /// Both parts are ASCII-lowercased (non-ASCII UTF-8 is kept as given, for
    /// SMTPUTF8). Refused: empty parts, a `/`, `\`, NUL or other ASCII
    /// control character, a leading `.`, a local part over 64 octets or a
    /// domain over 255 octets.
    pub fn new(domain: &str, local: &str) -> Result<Self, StoreError> {
        let domain = domain.to_ascii_lowercase();
        let local = local.to_ascii_lowercase();
        check_component(&domain, MAX_DOMAIN_LEN).map_err(|reason| StoreError::InvalidMailbox {
            part: "domain",
            value: domain.clone(),
            reason,
        })?;
        check_component(&local, MAX_LOCAL_LEN).map_err(|reason| StoreError::InvalidMailbox {
            part: "local part",
            value: local.clone(),
            reason,
        })?;
        Ok(Mailbox { domain, local })
    }

    /// The domain, lowercased.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The local part, ASCII-lowercased.
    pub fn local(&self) -> &str {
        &self.local
    }

    /// The mailbox directory (its INBOX) below `root`.
    pub(crate) fn dir(&self, root: &Path) -> PathBuf {
        root.join(&self.domain).join(&self.local)
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

/// Checks that `s` is one safe path component of at most `max` octets.
fn check_component(s: &str, max: usize) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("empty");
    }
    if s.len() > max {
        return Err("too long");
    }
    if s.starts_with('.') {
        // Covers `.` and `..`, and keeps Maildir++ folders (`.Sent`) and
        // the root's own dot files out of reach.
        return Err("starts with '.'");
    }
    if s.contains(['/', '\\']) {
        return Err("contains a path separator");
    }
    if s.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("contains a control character");
    }
    Ok(())
}

/// The directory of Maildir++ folder `name` inside `mailbox_dir`.
///
/// `INBOX` (any case) is the mailbox directory itself; any other name `N`
/// is `.N`, with `.` as the hierarchy separator (`Archive.2024`). The name
/// is taken as stored on disk: IMAP's modified UTF-7 encoding is the
/// caller's business.
pub(crate) fn folder_dir(mailbox_dir: PathBuf, name: &str) -> Result<PathBuf, StoreError> {
    if name.eq_ignore_ascii_case("INBOX") {
        return Ok(mailbox_dir);
    }
    let invalid = |reason| StoreError::InvalidFolder {
        name: name.to_owned(),
        reason,
    };
    check_component(name, MAX_FOLDER_LEN).map_err(invalid)?;
    if name.ends_with('.') || name.contains("..") {
        // An empty hierarchy level; `..` would also be a parent reference.
        return Err(invalid("has an empty hierarchy level"));
    }
    Ok(mailbox_dir.join(format!(".{name}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(domain: &str, local: &str) -> &'static str {
        match Mailbox::new(domain, local) {
            Err(StoreError::InvalidMailbox { reason, .. }) => reason,
            other => panic!("expected InvalidMailbox for {domain:?} {local:?}, got {other:?}"),
        }
    }

    #[test]
    fn refuses_unsafe_local_parts() {
        assert_eq!(reason("example.com", "../x"), "starts with '.'");
        assert_eq!(reason("example.com", ".."), "starts with '.'");
        assert_eq!(reason("example.com", "."), "starts with '.'");
        assert_eq!(reason("example.com", ".hidden"), "starts with '.'");
        assert_eq!(reason("example.com", "a/b"), "contains a path separator");
        assert_eq!(reason("example.com", "a\\b"), "contains a path separator");
        assert_eq!(
            reason("example.com", "a\0b"),
            "contains a control character"
        );
        assert_eq!(
            reason("example.com", "a\rb"),
            "contains a control character"
        );
        assert_eq!(
            reason("example.com", "a\nb"),
            "contains a control character"
        );
        assert_eq!(
            reason("example.com", "a\x7fb"),
            "contains a control character"
        );
        assert_eq!(reason("example.com", ""), "empty");
        assert_eq!(reason("example.com", &"a".repeat(65)), "too long");
        // 33 two-octet characters: 33 chars but 66 octets.
        assert_eq!(reason("example.com", &"\u{e9}".repeat(33)), "too long");
    }

    #[test]
    fn refuses_unsafe_domains() {
        assert_eq!(reason("", "a"), "empty");
        assert_eq!(reason("..", "a"), "starts with '.'");
        assert_eq!(reason(".example.com", "a"), "starts with '.'");
        assert_eq!(reason("example.com/..", "a"), "contains a path separator");
        assert_eq!(reason("exa\0mple", "a"), "contains a control character");
        assert_eq!(reason(&"a".repeat(256), "a"), "too long");
        match Mailbox::new("a/b", "x") {
            Err(StoreError::InvalidMailbox { part, value, .. }) => {
                assert_eq!(part, "domain");
                assert_eq!(value, "a/b");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn accepts_and_normalises_valid_names() {
        let m = Mailbox::new("EXAMPLE.com", "Bob.Smith+tag").unwrap();
        assert_eq!((m.domain(), m.local()), ("example.com", "bob.smith+tag"));
        // Non-ASCII is kept byte for byte (only ASCII is lowercased).
        let m = Mailbox::new("b\u{fc}cher.example", "J\u{d6}rg").unwrap();
        assert_eq!(
            (m.domain(), m.local()),
            ("b\u{fc}cher.example", "j\u{d6}rg")
        );
        assert!(Mailbox::new(&"a".repeat(255), &"b".repeat(64)).is_ok());
        // A dot inside is fine; only a leading one is special.
        assert!(Mailbox::new("example.com", "a..b").is_ok());
        assert_eq!(
            Mailbox::new("example.com", "a")
                .unwrap()
                .dir(Path::new("/m")),
            Path::new("/m/example.com/a")
        );
    }

    #[test]
    fn folder_paths() {
        let base = PathBuf::from("/m/example.com/a");
        assert_eq!(folder_dir(base.clone(), "INBOX").unwrap(), base);
        assert_eq!(folder_dir(base.clone(), "inbox").unwrap(), base);
        assert_eq!(
            folder_dir(base.clone(), "Sent").unwrap(),
            base.join(".Sent")
        );
        assert_eq!(
            folder_dir(base.clone(), "Archive.2024").unwrap(),
            base.join(".Archive.2024")
        );
        for bad in ["", ".", "..", ".Sent", "a/b", "a..b", "a.", "a\0", "a\\b"] {
            assert!(
                matches!(
                    folder_dir(base.clone(), bad),
                    Err(StoreError::InvalidFolder { .. })
                ),
                "{bad:?} accepted"
            );
        }
    }
}
