//! What the session asks of its host, and what the host answers.
//!
//! Each question is a [`Request`] with a [`Ticket`]. Until
//! [`ServerSession::answer`](crate::ServerSession::answer) is called with that ticket the session
//! consumes no more input, so replies stay in order and a reader that pipelines a burst of
//! GROUPs (slrn does) is answered one command at a time.

use std::sync::Arc;

use line_protocol::sasl::Credentials;

use crate::article::Article;
use crate::syntax::NewsDate;

/// Names one outstanding request; pass it back with the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub(crate) u64);

/// Something the host must know or do.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Answer with [`ServerSession::answer`](crate::ServerSession::answer).
    Request {
        /// Pass back with the answer.
        ticket: Ticket,
        /// The question.
        request: Request,
    },
    /// The client broke a rule; the session has already answered.
    Violation(String),
}

/// A question for the host. Every request but [`Request::Login`] and [`Request::Date`] comes
/// only after a login, and is about that user's own groups.
#[derive(Debug)]
#[non_exhaustive]
pub enum Request {
    /// Check credentials (AUTHINFO USER and PASS): [`Answer::LoggedIn`] or
    /// [`Answer::LoginRefused`].
    Login(Credentials),
    /// The server's clock, for DATE: [`Answer::Date`].
    Date,
    /// The groups this user may read (for LIST, NEWGROUPS): [`Answer::Groups`]. With `created_since`
    /// (NEWGROUPS), only those created at or after it; a two-digit year is the host's to
    /// complete ([`NewsDate::unix_seconds`]), as it knows the current year.
    Groups {
        /// NEWGROUPS' date.
        created_since: Option<NewsDate>,
    },
    /// One group and the numbers of its articles (GROUP, LISTGROUP): [`Answer::Group`], with
    /// `None` for a group that does not exist or is not this user's.
    Group(String),
    /// The articles of `group` numbered `first..=last` that exist: [`Answer::Articles`], in
    /// ascending order.
    Articles {
        /// The group.
        group: String,
        /// The lowest number wanted.
        first: u64,
        /// The highest number wanted.
        last: u64,
    },
    /// The article with this message-id, in any of the user's groups: [`Answer::Articles`]
    /// with it, or empty.
    ByMessageId(String),
    /// Message-ids of the articles that arrived at or after `since` (NEWNEWS), with their
    /// group: [`Answer::MessageIds`].
    NewNews {
        /// NEWNEWS' date.
        since: NewsDate,
    },
}

/// A newsgroup as LIST, GROUP and NEWGROUPS show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// Its name.
    pub name: String,
    /// The lowest article number present; when the group is empty, one more than `high`
    /// (RFC 3977 section 6.1.1.2).
    pub low: u64,
    /// The highest article number ever given, even if that article is gone.
    pub high: u64,
    /// How many articles it holds.
    pub count: u64,
    /// When it was created (Unix seconds), for LIST ACTIVE.TIMES and NEWGROUPS.
    pub created: i64,
    /// Who created it, for LIST ACTIVE.TIMES.
    pub creator: String,
    /// One line saying what it is, for LIST NEWSGROUPS.
    pub description: String,
}

/// A group with the numbers of its articles, ascending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView {
    /// The group.
    pub info: GroupInfo,
    /// Its article numbers, ascending.
    pub numbers: Vec<u64>,
}

/// The host's answer to a [`Request`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Answer {
    /// The credentials are good.
    LoggedIn,
    /// They are not (or the account is disabled): `481`.
    LoginRefused,
    /// The clock, in Unix seconds.
    Date(i64),
    /// The user's groups.
    Groups(Vec<GroupInfo>),
    /// The group asked for, if it is the user's.
    Group(Option<Box<GroupView>>),
    /// Articles, ascending by number.
    Articles(Vec<Arc<Article>>),
    /// (group, message-id) pairs.
    MessageIds(Vec<(String, String)>),
    /// The host could not answer now (storage failure): `403` with this text, and the
    /// reader may try again.
    Failed(String),
}
