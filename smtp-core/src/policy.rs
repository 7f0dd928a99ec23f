//! Which recipients are ours: the local-domain check every host needs, pure so that transcripts
//! and the real server decide the same way.

use crate::address::ForwardPath;
use crate::{EnhancedCode, Reply};

/// A recipient accepted for local delivery, normalised for storage.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct LocalRecipient {
    /// The configured domain it belongs to, lower case.
    pub domain: String,
    /// The local part, lower case; safe as a single directory name.
    pub local: String,
}

/// Accepts mail for a set of domains and refuses everything else (never an open relay).
///
/// ```
/// use smtp_core::address::parse_forward_path;
/// use smtp_core::policy::LocalDomains;
///
/// let policy = LocalDomains::new(["Example.com"]);
/// let (rcpt, _) = parse_forward_path("<Alice@EXAMPLE.COM>").unwrap();
/// let local = policy.check(&rcpt).unwrap();
/// assert_eq!((local.domain.as_str(), local.local.as_str()), ("example.com", "alice"));
///
/// let (relay, _) = parse_forward_path("<bob@elsewhere.org>").unwrap();
/// assert_eq!(policy.check(&relay).unwrap_err().code(), 550);
/// let (evil, _) = parse_forward_path("<\"../../etc\"@example.com>").unwrap();
/// assert_eq!(policy.check(&evil).unwrap_err().code(), 553);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalDomains {
    domains: Vec<String>,
}

impl LocalDomains {
    /// Mail for these domains (matched case-insensitively) is ours.
    pub fn new<I, S>(domains: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        LocalDomains {
            domains: domains
                .into_iter()
                .map(|d| d.as_ref().to_lowercase())
                .collect(),
        }
    }

    /// The configured domains, lower case.
    pub fn domains(&self) -> &[String] {
        &self.domains
    }

    /// Accepts the recipient as a local mailbox or gives the refusal to send.
    ///
    /// `<postmaster>` without a domain goes to postmaster of the first domain (RFC 5321
    /// section 4.5.1 requires accepting it).
    pub fn check(&self, to: &ForwardPath) -> Result<LocalRecipient, Reply> {
        let (local, domain) = match to {
            ForwardPath::Postmaster => match self.domains.first() {
                Some(d) => ("postmaster".to_owned(), d.clone()),
                None => return Err(relay_denied()),
            },
            ForwardPath::Mailbox(m) => (m.local().to_lowercase(), m.domain().to_lowercase()),
        };
        if !self.domains.contains(&domain) {
            return Err(relay_denied());
        }
        if !is_safe_mailbox_name(&local) {
            return Err(Reply::new(
                553,
                EnhancedCode(5, 1, 3),
                "Mailbox name not allowed",
            ));
        }
        Ok(LocalRecipient { domain, local })
    }
}

fn relay_denied() -> Reply {
    Reply::new(550, EnhancedCode(5, 7, 1), "Relay access denied")
}

/// True if `local` can be one directory name under the storage root and nothing else: no path
/// separators, no `..`, no leading dot (Maildir++ folder names start with one), no control
/// characters or NUL.
pub fn is_safe_mailbox_name(local: &str) -> bool {
    !local.is_empty()
        && !local.starts_with('.')
        && !local.contains("..")
        && !local
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
}
