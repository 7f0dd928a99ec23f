//! IMAP transcripts: the [`transcript`] format with IMAP's own `!` lines, replayed against a
//! [`ServerSession`] whose host is a [`MemoryStore`].
//!
//! ```text
//! # rfc: 3501 6.3.1
//! ! config plaintext_auth=true
//! ! user alice secret
//! ! mailbox Sent
//! ! message INBOX \Seen|Subject: hi\r\n\r\nhello\r\n
//! S: * OK [CAPABILITY ...] mx.example.com IMAP4rev1 ready
//! C: a1 LOGIN alice secret
//! ```
//!
//! `! user NAME PASSWORD` adds a user (the first one owns the mailboxes and messages that
//! follow), `! mailbox NAME` creates a mailbox, `! message MAILBOX FLAGS|BYTES` delivers a
//! message (flags separated by spaces, `-` for none; bytes with the format's escapes).
//! `! config` keys: `hostname`, `plaintext_auth`, `starttls`, `append_limit`.
//!
//! ```
//! use std::time::Instant;
//! use imap_core::transcript::{Transcript, replay};
//!
//! let t = Transcript::parse("\
//! ! config plaintext_auth=true
//! ! user alice secret
//! S: * OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE AUTH=PLAIN] mx.example.com IMAP4rev1 ready
//! C: a1 login alice wrong
//! S: a1 NO [AUTHENTICATIONFAILED] Authentication failed
//! ").unwrap();
//! let outcome = replay(&t, Instant::now());
//! assert!(outcome.is_match(), "{}", outcome.report());
//! ```

mod memory;

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use session_api::Session;
use transcript::{EventLog, Host, Role};
pub use transcript::{Item, Mismatch, Outcome, Split, TranscriptError, escape, unescape};

pub use memory::{MemoryHost, MemoryStore, describe};

use crate::config::ServerConfig;
use crate::event::Flags;
use crate::session::ServerSession;
use crate::syntax::Flag;

/// IMAP's `!` lines: the store's starting contents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImapDirectives {
    /// `! user NAME PASSWORD`.
    pub users: Vec<(String, String)>,
    /// `! mailbox NAME`.
    pub mailboxes: Vec<String>,
    /// `! message MAILBOX FLAGS|BYTES`: (mailbox, flags as written, bytes).
    pub messages: Vec<(String, String, Vec<u8>)>,
}

impl transcript::Directives for ImapDirectives {
    fn parse_line(&mut self, line: &str) -> Result<bool, String> {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        match word {
            "user" => {
                let (u, p) = rest.split_once(' ').ok_or("`! user NAME PASSWORD`")?;
                self.users.push((u.into(), p.into()));
            }
            "mailbox" => self.mailboxes.push(rest.trim().into()),
            "message" => {
                let (mailbox, rest) = rest
                    .split_once(' ')
                    .ok_or("`! message MAILBOX FLAGS|BYTES`")?;
                let (flags, bytes) = rest
                    .split_once('|')
                    .ok_or("`! message MAILBOX FLAGS|BYTES`")?;
                self.messages
                    .push((mailbox.into(), flags.into(), unescape(bytes)));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn write_lines(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (u, p) in &self.users {
            writeln!(f, "! user {u} {p}")?;
        }
        for m in &self.mailboxes {
            writeln!(f, "! mailbox {m}")?;
        }
        for (m, flags, bytes) in &self.messages {
            writeln!(f, "! message {m} {flags}|{}", escape(bytes))?;
        }
        Ok(())
    }
}

/// A transcript with IMAP's directives.
pub type Transcript = transcript::Transcript<ImapDirectives>;

/// The server settings a transcript's `! config` lines give.
pub fn server_config(t: &Transcript) -> ServerConfig {
    let mut c = ServerConfig::new(t.config_value("hostname").unwrap_or("mx.example.com"));
    c.plaintext_auth = t.config_value("plaintext_auth") == Some("true");
    c.starttls = t.config_value("starttls") == Some("true");
    if let Some(n) = t.config_value("append_limit").and_then(|v| v.parse().ok()) {
        c.append_limit = n;
    }
    c
}

/// The store a transcript's `!` lines describe.
pub fn store(t: &Transcript) -> MemoryStore {
    let store = MemoryStore::new();
    let d = &t.directives;
    for (u, p) in &d.users {
        store.add_user(u, p);
    }
    let owner = d.users.first().map(|(u, _)| u.as_str()).unwrap_or("alice");
    for m in &d.mailboxes {
        store.create(owner, m);
    }
    for (mailbox, flags, bytes) in &d.messages {
        store.deliver(owner, mailbox, bytes, parse_flags(flags));
    }
    store
}

/// Flags as the `!` and `@ host` lines write them: separated by spaces, `-` for none.
fn parse_flags(text: &str) -> Flags {
    let list: Vec<Flag> = text
        .split_whitespace()
        .filter(|f| *f != "-")
        .map(|f| match f.to_ascii_lowercase().as_str() {
            "\\seen" => Flag::Seen,
            "\\answered" => Flag::Answered,
            "\\flagged" => Flag::Flagged,
            "\\deleted" => Flag::Deleted,
            "\\draft" => Flag::Draft,
            _ => Flag::Keyword(f.into()),
        })
        .collect();
    Flags::from_list(&list)
}

struct ReplayHost(MemoryHost);

impl Host<ServerSession> for ReplayHost {
    fn answer(&mut self, session: &mut ServerSession, now: Instant, log: &mut EventLog) -> bool {
        let lines = self.0.answer_all(session, now);
        let any = !lines.is_empty();
        for l in lines {
            log.note(l);
        }
        any
    }

    /// Another session's changes and deliveries, in the logged-in user's mailboxes:
    /// `deliver MAILBOX FLAGS|BYTES`, `store MAILBOX UID FLAGS` (the flags become exactly
    /// these), `expunge MAILBOX UID`. Then the session hears the changes, as a real host's
    /// notice makes it.
    fn act(&mut self, action: &str, session: &mut ServerSession, now: Instant, log: &mut EventLog) {
        let store = self.0.store().clone();
        let Some(owner) = self.0.user().map(str::to_owned) else {
            log.note(format!("host action before login: {action}"));
            return;
        };
        let mut words = action.splitn(3, ' ');
        let (verb, mailbox, rest) = (
            words.next().unwrap_or(""),
            words.next().unwrap_or(""),
            words.next().unwrap_or(""),
        );
        let done = match verb {
            "deliver" => rest
                .split_once('|')
                .and_then(|(flags, bytes)| {
                    store.deliver(&owner, mailbox, &unescape(bytes), parse_flags(flags))
                })
                .is_some(),
            "store" => rest.split_once(' ').is_some_and(|(uid, flags)| {
                uid.parse()
                    .is_ok_and(|uid| store.set_flags(&owner, mailbox, uid, parse_flags(flags)))
            }),
            "expunge" => rest
                .trim()
                .parse()
                .is_ok_and(|uid| store.expunge(&owner, mailbox, uid)),
            _ => false,
        };
        if !done {
            log.note(format!("host action failed: {action}"));
            return;
        }
        if let Some(changes) = self.0.changes_for(session) {
            session.handle_changes(changes, now);
        }
    }
}

/// Replays `t` against a new server session over the store it describes, the client's
/// writes whole.
pub fn replay(t: &Transcript, start: Instant) -> Outcome {
    replay_split(t, start, Split::Whole)
}

/// As [`replay`], with the client's writes cut as `split` says.
pub fn replay_split(t: &Transcript, start: Instant, split: Split<'_>) -> Outcome {
    let config = Arc::new(server_config(t));
    let implicit_tls = t.items.first() == Some(&Item::Tls);
    let mut session = ServerSession::new(config, implicit_tls, start);
    let mut host = ReplayHost(MemoryHost::new(store(t)));
    let outcome = transcript::replay(
        &t.items,
        Role::Server,
        &mut session,
        &mut host,
        start,
        split,
    );
    let _ = session.is_closed();
    outcome
}
