//! NNTP transcripts: the [`transcript`] format with NNTP's own `!` lines, replayed against a
//! [`ServerSession`] whose host is a [`MemoryNews`].
//!
//! `! user ADDRESS PASSWORD` adds a user and its notice group
//! (`buzon.mail.<domain>.<local>`); `! article ADDRESS [NUMBER]|BYTES` stores an article in
//! it (bytes with the format's escapes). `! config` keys: `hostname`, `plaintext_auth`,
//! `starttls`, `clock` (Unix seconds; DATE, NEWGROUPS and NEWNEWS read it). `@ host post
//! ADDRESS|BYTES` and `@ host withdraw ADDRESS NUMBER` change the groups mid-conversation.
//!
//! ```
//! use std::time::Instant;
//! use nntp_core::transcript::{Transcript, replay};
//!
//! let t = Transcript::parse("\
//! ! config plaintext_auth=true
//! ! user alice@example.com secret
//! S: 201 mx.example.com buzon NNTP ready, posting not permitted
//! C: GROUP buzon.mail.example-com.alice
//! S: 480 Authentication required
//! C: AUTHINFO USER alice@example.com
//! S: 381 Password required
//! C: AUTHINFO PASS secret
//! S: 281 Authentication accepted
//! C: GROUP buzon.mail.example-com.alice
//! S: 211 0 1 0 buzon.mail.example-com.alice
//! ").unwrap();
//! let outcome = replay(&t, Instant::now());
//! assert!(outcome.is_match(), "{}", outcome.report());
//! ```

mod memory;

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use transcript::{EventLog, Host, Role};
pub use transcript::{Item, Mismatch, Outcome, Split, TranscriptError, escape, unescape};

pub use memory::{MemoryHost, MemoryNews, describe, group_of};

use crate::config::ServerConfig;
use crate::server::ServerSession;

/// NNTP's `!` lines: the users and articles a replay starts with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NntpDirectives {
    /// `! user ADDRESS PASSWORD`.
    pub users: Vec<(String, String)>,
    /// `! article ADDRESS [NUMBER]|BYTES`.
    pub articles: Vec<(String, Option<u64>, Vec<u8>)>,
}

impl transcript::Directives for NntpDirectives {
    fn parse_line(&mut self, line: &str) -> Result<bool, String> {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        match word {
            "user" => {
                let (u, p) = rest.split_once(' ').ok_or("`! user ADDRESS PASSWORD`")?;
                self.users.push((u.into(), p.into()));
            }
            "article" => {
                let (head, bytes) = rest
                    .split_once('|')
                    .ok_or("`! article ADDRESS [NUMBER]|BYTES`")?;
                let mut words = head.split_whitespace();
                let user = words.next().ok_or("`! article ADDRESS [NUMBER]|BYTES`")?;
                let number = match words.next() {
                    Some(n) => Some(n.parse().map_err(|_| format!("bad number {n}"))?),
                    None => None,
                };
                self.articles.push((user.into(), number, unescape(bytes)));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn write_lines(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (u, p) in &self.users {
            writeln!(f, "! user {u} {p}")?;
        }
        for (u, n, bytes) in &self.articles {
            match n {
                Some(n) => writeln!(f, "! article {u} {n}|{}", escape(bytes))?,
                None => writeln!(f, "! article {u}|{}", escape(bytes))?,
            }
        }
        Ok(())
    }
}

/// A transcript with NNTP's directives.
pub type Transcript = transcript::Transcript<NntpDirectives>;

/// The server settings a transcript's `! config` lines give.
pub fn server_config(t: &Transcript) -> ServerConfig {
    let mut c = ServerConfig::new(t.config_value("hostname").unwrap_or("mx.example.com"));
    c.plaintext_auth = t.config_value("plaintext_auth") == Some("true");
    c.starttls = t.config_value("starttls") != Some("false");
    c
}

/// The news a transcript's `!` lines describe.
pub fn news(t: &Transcript) -> MemoryNews {
    // 2026-12-01 00:00:00 UTC unless the transcript says otherwise.
    let clock = t
        .config_value("clock")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_796_083_200);
    let mut news = MemoryNews::new(clock);
    for (u, p) in &t.directives.users {
        news.add_user(u, p);
    }
    for (u, n, bytes) in &t.directives.articles {
        news.post(u, *n, bytes.clone());
    }
    news
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

    /// `post ADDRESS|BYTES` stores a notice for ADDRESS; `withdraw ADDRESS NUMBER` removes one.
    fn act(
        &mut self,
        action: &str,
        _session: &mut ServerSession,
        _now: Instant,
        log: &mut EventLog,
    ) {
        let news = self.0.news_mut();
        let done = if let Some(rest) = action.strip_prefix("post ") {
            rest.split_once('|')
                .and_then(|(user, bytes)| news.post(user.trim(), None, unescape(bytes)))
                .is_some()
        } else if let Some(rest) = action.strip_prefix("withdraw ") {
            rest.split_once(' ')
                .is_some_and(|(user, n)| n.trim().parse().is_ok_and(|n| news.withdraw(user, n)))
        } else {
            false
        };
        if !done {
            log.note(format!("host action failed: {action}"));
        }
    }
}

/// Replays `t` against a new server session over the news it describes, the client's writes
/// whole.
pub fn replay(t: &Transcript, start: Instant) -> Outcome {
    replay_split(t, start, Split::Whole)
}

/// As [`replay`], with the client's writes cut as `split` says.
pub fn replay_split(t: &Transcript, start: Instant, split: Split<'_>) -> Outcome {
    let config = Arc::new(server_config(t));
    let implicit_tls = t.items.first() == Some(&Item::Tls);
    let mut session = ServerSession::new(config, implicit_tls, start);
    let mut host = ReplayHost(MemoryHost::new(news(t)));
    transcript::replay(
        &t.items,
        Role::Server,
        &mut session,
        &mut host,
        start,
        split,
    )
}
