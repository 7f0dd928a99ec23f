//! The users file: one account per line, parsed and written back.
//!
//! ```text
//! # buzon users: address:password-hash:state:aliases
//! alice@example.com:$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA:enabled:al@example.com
//! bob@example.com:$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA:disabled:
//! ```
//!
//! The fields are separated by `:` (which appears in neither an address we accept nor a PHC
//! string), like Dovecot's passwd-file. Addresses are compared without regard to case: RFC 5321
//! section 2.4 lets a local part be case-sensitive, but no mail system a user meets treats
//! `Alice@` and `alice@` as two people.

use std::collections::BTreeMap;
use std::fmt;

/// One account.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Account {
    /// The login and the primary address, lower-case.
    pub address: String,
    /// The argon2id PHC string of the password.
    pub(crate) hash: String,
    /// A disabled account cannot log in; its mail is still delivered.
    pub enabled: bool,
    /// Other addresses that deliver to this account and that it may send as, lower-case.
    pub aliases: Vec<String>,
}

impl fmt::Debug for Account {
    /// Leaves the hash out: it is as good as the password to an offline attacker.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("address", &self.address)
            .field("enabled", &self.enabled)
            .field("aliases", &self.aliases)
            .finish_non_exhaustive()
    }
}

impl Account {
    /// The argon2id PHC string of the password, for [`verify_password`](crate::verify_password).
    pub fn password_hash(&self) -> &str {
        &self.hash
    }

    /// True if mail from `address` may be sent by this account: its own address or an alias.
    pub fn may_send_as(&self, address: &str) -> bool {
        let address = address.to_ascii_lowercase();
        self.address == address || self.aliases.contains(&address)
    }
}

/// The accounts of a users file.
///
/// ```
/// use accounts::Users;
/// let users = Users::parse(
///     "# comment\n\
///      alice@example.com:$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA:enabled:al@example.com\n",
/// ).unwrap();
/// assert_eq!(users.resolve("AL@example.com").unwrap().address, "alice@example.com");
/// assert!(users.resolve("bob@example.com").is_none());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Users {
    accounts: BTreeMap<String, Account>,
    /// Alias to account address.
    aliases: BTreeMap<String, String>,
}

/// A line of a users file that cannot be read, or a change that would make it inconsistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsersError {
    /// A line that is not `address:hash:state:aliases`.
    #[error("line {line}: {reason}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// `address` is already an account or an alias.
    #[error("{0} already exists")]
    Exists(String),
    /// No account has this address.
    #[error("no user {0}")]
    NoSuchUser(String),
    /// Not something we accept as an address.
    #[error("{address:?} is not an address: {reason}")]
    BadAddress {
        /// What was given.
        address: String,
        /// Why not.
        reason: &'static str,
    },
}

impl Users {
    /// Reads the text of a users file.
    pub fn parse(text: &str) -> Result<Users, UsersError> {
        let mut users = Users::default();
        for (i, line) in text.lines().enumerate() {
            let at_line = |reason: String| UsersError::Line {
                line: i + 1,
                reason,
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split(':').collect();
            let [address, hash, state, aliases] = fields[..] else {
                return Err(at_line(format!(
                    "expected 4 fields separated by ':' (address:hash:state:aliases), found {}",
                    fields.len()
                )));
            };
            let address = normalize(address).map_err(|e| at_line(e.to_string()))?;
            if !hash.starts_with("$argon2") {
                return Err(at_line(format!(
                    "the password of {address} is not an argon2 hash"
                )));
            }
            let enabled = match state {
                "enabled" => true,
                "disabled" => false,
                other => {
                    return Err(at_line(format!(
                        "state {other:?}: expected \"enabled\" or \"disabled\""
                    )));
                }
            };
            let aliases = aliases
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(normalize)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| at_line(e.to_string()))?;
            users
                .insert(Account {
                    address,
                    hash: hash.to_owned(),
                    enabled,
                    aliases,
                })
                .map_err(|e| at_line(e.to_string()))?;
        }
        Ok(users)
    }

    /// The account that receives mail for `address`: by its own address or an alias.
    pub fn resolve(&self, address: &str) -> Option<&Account> {
        let address = address.to_ascii_lowercase();
        let primary = self.aliases.get(&address).unwrap_or(&address);
        self.accounts.get(primary)
    }

    /// The account whose login is `address` (aliases are not logins).
    pub fn account(&self, address: &str) -> Option<&Account> {
        self.accounts.get(&address.to_ascii_lowercase())
    }

    /// Every account, by address.
    pub fn iter(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values()
    }

    /// How many accounts there are.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    /// True if there are no accounts.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// Adds an account with the password hash `hash`.
    pub fn add(&mut self, address: &str, hash: String) -> Result<&Account, UsersError> {
        let address = normalize(address)?;
        self.insert(Account {
            address: address.clone(),
            hash,
            enabled: true,
            aliases: Vec::new(),
        })?;
        Ok(&self.accounts[&address])
    }

    /// Removes an account and its aliases; returns it.
    pub fn remove(&mut self, address: &str) -> Result<Account, UsersError> {
        let address = address.to_ascii_lowercase();
        let account = self
            .accounts
            .remove(&address)
            .ok_or(UsersError::NoSuchUser(address))?;
        for alias in &account.aliases {
            self.aliases.remove(alias);
        }
        Ok(account)
    }

    /// Replaces the password hash of an account.
    pub fn set_hash(&mut self, address: &str, hash: String) -> Result<(), UsersError> {
        self.account_mut(address)?.hash = hash;
        Ok(())
    }

    /// Enables or disables an account.
    pub fn set_enabled(&mut self, address: &str, enabled: bool) -> Result<(), UsersError> {
        self.account_mut(address)?.enabled = enabled;
        Ok(())
    }

    /// Makes `alias` deliver to (and be sendable as by) the account `address`.
    pub fn add_alias(&mut self, address: &str, alias: &str) -> Result<(), UsersError> {
        let alias = normalize(alias)?;
        if self.resolve(&alias).is_some() {
            return Err(UsersError::Exists(alias));
        }
        let account = self.account_mut(address)?;
        account.aliases.push(alias.clone());
        let primary = account.address.clone();
        self.aliases.insert(alias, primary);
        Ok(())
    }

    /// Removes an alias.
    pub fn remove_alias(&mut self, alias: &str) -> Result<(), UsersError> {
        let alias = alias.to_ascii_lowercase();
        let primary = self
            .aliases
            .remove(&alias)
            .ok_or_else(|| UsersError::NoSuchUser(alias.clone()))?;
        if let Some(account) = self.accounts.get_mut(&primary) {
            account.aliases.retain(|a| *a != alias);
        }
        Ok(())
    }

    fn account_mut(&mut self, address: &str) -> Result<&mut Account, UsersError> {
        let address = address.to_ascii_lowercase();
        self.accounts
            .get_mut(&address)
            .ok_or(UsersError::NoSuchUser(address))
    }

    fn insert(&mut self, account: Account) -> Result<(), UsersError> {
        for name in std::iter::once(&account.address).chain(&account.aliases) {
            if self.resolve(name).is_some() {
                return Err(UsersError::Exists(name.clone()));
            }
        }
        for alias in &account.aliases {
            if *alias == account.address
                || account.aliases.iter().filter(|a| *a == alias).count() > 1
            {
                return Err(UsersError::Exists(alias.clone()));
            }
            self.aliases.insert(alias.clone(), account.address.clone());
        }
        self.accounts.insert(account.address.clone(), account);
        Ok(())
    }
}

impl fmt::Display for Users {
    /// The file's text; [`Users::parse`] reads the same accounts back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "# buzon users (docs/accounts.md): address:password-hash:state:aliases"
        )?;
        for a in self.accounts.values() {
            let state = if a.enabled { "enabled" } else { "disabled" };
            writeln!(
                f,
                "{}:{}:{state}:{}",
                a.address,
                a.hash,
                a.aliases.join(",")
            )?;
        }
        Ok(())
    }
}

/// `address` lower-cased, if it is one we accept: `local@domain`, printable, no spaces, no `:`.
fn normalize(address: &str) -> Result<String, UsersError> {
    let bad = |reason| UsersError::BadAddress {
        address: address.to_owned(),
        reason,
    };
    let (local, domain) = address.rsplit_once('@').ok_or_else(|| bad("no @"))?;
    if local.is_empty() || domain.is_empty() {
        return Err(bad("empty local part or domain"));
    }
    if address.len() > 254 {
        // RFC 5321 section 4.5.3.1.3: a path is at most 256 octets with its brackets.
        return Err(bad("longer than 254 octets"));
    }
    if address
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, ':' | ',' | '<' | '>'))
    {
        return Err(bad("contains a space, control character or one of : , < >"));
    }
    if !domain
        .split('.')
        .all(|l| !l.is_empty() && l.chars().all(|c| c.is_alphanumeric() || c == '-'))
    {
        return Err(bad("the domain is not a host name"));
    }
    Ok(address.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA";

    #[test]
    fn text_reads_back_the_same() {
        let mut u = Users::default();
        u.add("Alice@Example.com", HASH.into()).unwrap();
        u.add("bob@example.com", HASH.into()).unwrap();
        u.add_alias("alice@example.com", "al@example.com").unwrap();
        u.set_enabled("bob@example.com", false).unwrap();
        let text = u.to_string();
        assert!(text.contains(&format!(
            "alice@example.com:{HASH}:enabled:al@example.com\n"
        )));
        assert!(text.contains(&format!("bob@example.com:{HASH}:disabled:\n")));
        assert_eq!(Users::parse(&text).unwrap(), u);
    }

    #[test]
    fn bad_lines_are_named() {
        let e = Users::parse(&format!("# c\n\nalice@example.com:{HASH}:enabled\n")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 3: expected 4 fields separated by ':' (address:hash:state:aliases), found 3"
        );
        let e = Users::parse("alice@example.com:plain:enabled:\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 1: the password of alice@example.com is not an argon2 hash"
        );
        let e = Users::parse(&format!("alice@example.com:{HASH}:on:\n")).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"line 1: state "on": expected "enabled" or "disabled""#
        );
        let e = Users::parse(&format!("alice:{HASH}:enabled:\n")).unwrap_err();
        assert_eq!(e.to_string(), r#"line 1: "alice" is not an address: no @"#);
        let two =
            format!("a@example.com:{HASH}:enabled:b@example.com\nb@example.com:{HASH}:enabled:\n");
        assert_eq!(
            Users::parse(&two).unwrap_err().to_string(),
            "line 2: b@example.com already exists"
        );
    }

    #[test]
    fn aliases_resolve_and_may_be_sent_as() {
        let mut u = Users::default();
        u.add("alice@example.com", HASH.into()).unwrap();
        u.add_alias("alice@example.com", "Sales@Example.com")
            .unwrap();
        let a = u.resolve("sales@example.com").unwrap();
        assert_eq!(a.address, "alice@example.com");
        assert!(a.may_send_as("SALES@example.com"));
        assert!(!a.may_send_as("bob@example.com"));
        assert!(
            u.account("sales@example.com").is_none(),
            "an alias is not a login"
        );
        assert_eq!(
            u.add_alias("alice@example.com", "alice@example.com"),
            Err(UsersError::Exists("alice@example.com".into()))
        );
        assert_eq!(
            u.add("sales@example.com", HASH.into()).unwrap_err(),
            UsersError::Exists("sales@example.com".into())
        );
        u.remove_alias("sales@example.com").unwrap();
        assert!(u.resolve("sales@example.com").is_none());
        u.remove("alice@example.com").unwrap();
        assert!(u.is_empty());
    }

    #[test]
    fn debug_leaves_the_hash_out() {
        let mut u = Users::default();
        u.add("alice@example.com", HASH.into()).unwrap();
        assert!(!format!("{u:?}").contains("argon2"));
    }
}
