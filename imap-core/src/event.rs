//! What the session asks of its host, and what the host answers.
//!
//! Every question that needs storage or accounts is a [`Request`] with a [`Ticket`]; the
//! session consumes no more input until [`ServerSession::answer`](crate::ServerSession::answer)
//! is called with that ticket, so replies stay in order and a pipelining client is held back
//! for free.

use line_protocol::sasl::Credentials;

use crate::fetch::FetchJob;
use crate::search::SearchJob;
use crate::syntax::{Flag, StatusItem};

/// Names one outstanding request; pass it back with the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub(crate) u64);

/// Something the host must know or do.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// Answer with [`ServerSession::answer`](crate::ServerSession::answer) (or, for a fetch,
    /// [`ServerSession::fetch_progress`](crate::ServerSession::fetch_progress)).
    Request {
        /// Pass back with the answer.
        ticket: Ticket,
        /// The question.
        request: Request,
    },
    /// The next piece of an APPEND's message, in order, between an
    /// [`Request::AppendStart`] answered with [`Answer::Done`] and its [`Request::AppendEnd`].
    AppendData(Vec<u8>),
    /// The APPEND will not complete (the client went away, or sent something else after the
    /// message): drop what was stored of it.
    AppendAborted,
    /// The selected mailbox is no longer selected (CLOSE, UNSELECT, another SELECT, LOGOUT):
    /// stop watching it.
    Deselected,
    /// The client broke a rule; the session has already answered.
    Violation(String),
}

/// A question for the host. Mailbox names are as the client sent them (modified UTF-7),
/// already checked by [`crate::mailbox_name_problem`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Request {
    /// Check credentials (LOGIN or AUTHENTICATE): [`Answer::LoggedIn`] or
    /// [`Answer::LoginRefused`].
    Login(Credentials),
    /// Select a mailbox: [`Answer::Selected`] or [`Answer::No`].
    Select {
        /// The mailbox.
        mailbox: String,
        /// EXAMINE.
        read_only: bool,
        /// With QRESYNC: report the UIDs expunged after this mod-sequence in
        /// [`SelectedMailbox::vanished`].
        vanished_since: Option<u64>,
    },
    /// CREATE: [`Answer::Done`] or [`Answer::No`].
    Create(String),
    /// DELETE.
    Delete(String),
    /// RENAME.
    Rename {
        /// Existing name.
        from: String,
        /// New name.
        to: String,
    },
    /// SUBSCRIBE (`true`) or UNSUBSCRIBE.
    Subscribe(String, bool),
    /// Every mailbox of the user, for LIST and LSUB: [`Answer::Mailboxes`]. The session
    /// matches the patterns.
    List {
        /// LIST-STATUS: the status of each mailbox too.
        status: Option<Vec<StatusItem>>,
    },
    /// STATUS: [`Answer::Status`] or [`Answer::No`].
    Status(String),
    /// APPEND is about to send a message of `size` octets: [`Answer::Done`] to take it (its
    /// bytes follow as [`Event::AppendData`]), [`Answer::No`] to refuse.
    AppendStart {
        /// The destination.
        mailbox: String,
        /// Flags for the new message.
        flags: Flags,
        /// Its internal date (Unix seconds), if the client gave one.
        date: Option<i64>,
        /// Octets.
        size: u64,
    },
    /// The message is complete: store it durably, then [`Answer::Appended`].
    AppendEnd,
    /// Report what changed in the selected mailbox since the session's
    /// [`synced_modseq`](crate::ServerSession::synced_modseq): [`Answer::Changes`].
    Sync,
    /// Run the fetch: see [`FetchJob`]; answer with
    /// [`fetch_progress`](crate::ServerSession::fetch_progress).
    Fetch(Box<FetchJob>),
    /// Run the search: [`SearchJob::run`], then [`Answer::Searched`].
    Search(Box<SearchJob>),
    /// Change flags of messages in the selected mailbox: [`Answer::Stored`].
    Store {
        /// The messages.
        uids: Vec<u32>,
        /// How.
        op: FlagChange,
        /// The flags.
        flags: Flags,
        /// RFC 7162 UNCHANGEDSINCE.
        unchanged_since: Option<u64>,
    },
    /// COPY or MOVE to another mailbox: [`Answer::Copied`] or [`Answer::No`] (with
    /// `TRYCREATE` if it does not exist). For MOVE, the host removes the originals.
    Copy {
        /// The messages, ascending.
        uids: Vec<u32>,
        /// The destination.
        mailbox: String,
        /// MOVE.
        moving: bool,
    },
    /// Remove the messages marked `\Deleted` (only those among `uids` if given):
    /// [`Answer::Expunged`].
    Expunge {
        /// UID EXPUNGE's set.
        uids: Option<Vec<u32>>,
    },
}

/// How STORE changes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagChange {
    /// `+FLAGS`.
    Add,
    /// `-FLAGS`.
    Remove,
    /// `FLAGS`.
    Replace,
}

/// The host's answer to a [`Request`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Answer {
    /// Done (CREATE, DELETE, RENAME, SUBSCRIBE, APPEND's start).
    Done,
    /// Refused: `tag NO [code] text`.
    No {
        /// A response code such as `TRYCREATE`, `NONEXISTENT`, `ALREADYEXISTS`, `TOOBIG`.
        code: Option<String>,
        /// Human-readable text.
        text: String,
    },
    /// The credentials are good; the user is logged in.
    LoggedIn,
    /// The credentials are wrong (`NO [AUTHENTICATIONFAILED]`).
    LoginRefused,
    /// The mailbox is selected.
    Selected(Box<SelectedMailbox>),
    /// The user's mailboxes.
    Mailboxes(Vec<MailboxEntry>),
    /// STATUS.
    Status(StatusInfo),
    /// APPEND stored the message.
    Appended {
        /// The destination's UIDVALIDITY.
        uid_validity: u32,
        /// The new message's UID.
        uid: u32,
    },
    /// The changes since the session's sync point.
    Changes(Changes),
    /// STORE's outcome.
    Stored {
        /// The messages whose flags are now as given (changed or not), with their mod-sequence.
        updated: Vec<MessageInfo>,
        /// UNCHANGEDSINCE failures.
        modified: Vec<u32>,
    },
    /// COPY or MOVE done.
    Copied {
        /// The destination's UIDVALIDITY.
        uid_validity: u32,
        /// (source UID, new UID), ascending by source.
        pairs: Vec<(u32, u32)>,
    },
    /// The UIDs expunged.
    Expunged(Vec<u32>),
    /// The UIDs a search matched, ascending.
    Searched(Vec<u32>),
}

impl Answer {
    /// A `NO` with a response code.
    pub fn no(code: Option<&str>, text: impl Into<String>) -> Answer {
        Answer::No {
            code: code.map(str::to_owned),
            text: text.into(),
        }
    }
}

/// A message's flags: the five system flags and keywords.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Flags {
    /// `\Seen`.
    pub seen: bool,
    /// `\Answered`.
    pub answered: bool,
    /// `\Flagged`.
    pub flagged: bool,
    /// `\Deleted`.
    pub deleted: bool,
    /// `\Draft`.
    pub draft: bool,
    /// Keywords, sorted.
    pub keywords: Vec<String>,
}

impl Flags {
    /// The flags named in a STORE or APPEND (`\Recent` and unknown `\Names` are not stored).
    pub fn from_list(list: &[Flag]) -> Flags {
        let mut f = Flags::default();
        for flag in list {
            match flag {
                Flag::Seen => f.seen = true,
                Flag::Answered => f.answered = true,
                Flag::Flagged => f.flagged = true,
                Flag::Deleted => f.deleted = true,
                Flag::Draft => f.draft = true,
                Flag::Keyword(k) => {
                    if !f.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                        f.keywords.push(k.clone());
                    }
                }
                Flag::Recent | Flag::Extension(_) => {}
            }
        }
        f.keywords.sort();
        f
    }

    /// Whether `flag` is set.
    pub fn has(&self, flag: &Flag) -> bool {
        match flag {
            Flag::Seen => self.seen,
            Flag::Answered => self.answered,
            Flag::Flagged => self.flagged,
            Flag::Deleted => self.deleted,
            Flag::Draft => self.draft,
            Flag::Keyword(k) => self.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)),
            Flag::Recent | Flag::Extension(_) => false,
        }
    }

    /// Writes the flag list, `\Recent` included when `recent`: `(\Seen $Forwarded)`.
    pub fn write(&self, recent: bool, out: &mut Vec<u8>) {
        out.push(b'(');
        let mut first = true;
        let mut put = |s: &str, out: &mut Vec<u8>| {
            if !first {
                out.push(b' ');
            }
            first = false;
            out.extend_from_slice(s.as_bytes());
        };
        for (on, name) in [
            (self.seen, "\\Seen"),
            (self.answered, "\\Answered"),
            (self.flagged, "\\Flagged"),
            (self.deleted, "\\Deleted"),
            (self.draft, "\\Draft"),
            (recent, "\\Recent"),
        ] {
            if on {
                put(name, out);
            }
        }
        for k in &self.keywords {
            put(k, out);
        }
        out.push(b')');
    }
}

/// One message as the host knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageInfo {
    /// Its UID.
    pub uid: u32,
    /// Its mod-sequence (RFC 7162).
    pub modseq: u64,
    /// Its flags.
    pub flags: Flags,
    /// RFC822.SIZE.
    pub size: u64,
    /// INTERNALDATE, Unix seconds.
    pub internal_date: i64,
}

/// A mailbox just selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedMailbox {
    /// UIDVALIDITY (never 0).
    pub uid_validity: u32,
    /// UIDNEXT.
    pub uid_next: u32,
    /// HIGHESTMODSEQ.
    pub highest_modseq: u64,
    /// Every message, ascending by UID.
    pub messages: Vec<MessageInfo>,
    /// The UIDs that are `\Recent` in this session.
    pub recent: Vec<u32>,
    /// Keywords in use in the mailbox, for FLAGS and PERMANENTFLAGS.
    pub keywords: Vec<String>,
    /// Whether the host allows changes (false forces read-only, as EXAMINE).
    pub writable: bool,
    /// With QRESYNC: UIDs expunged after the client's mod-sequence.
    pub vanished: Vec<u32>,
}

/// What changed in the selected mailbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// New messages and messages whose flags changed, each with its new mod-sequence.
    pub changed: Vec<MessageInfo>,
    /// UIDs expunged.
    pub vanished: Vec<u32>,
    /// New messages that are `\Recent` in this session.
    pub recent: Vec<u32>,
    /// UIDNEXT now.
    pub uid_next: u32,
    /// HIGHESTMODSEQ now: the session's next sync point.
    pub highest_modseq: u64,
}

/// A mailbox, for LIST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxEntry {
    /// Its name as the client sees it, `.` separating levels.
    pub name: String,
    /// Its special use (RFC 6154), such as `\Sent`.
    pub special_use: Option<String>,
    /// Subscribed.
    pub subscribed: bool,
    /// False for a name only subscribed to (LSUB lists it; LIST says `\NonExistent`).
    pub exists: bool,
    /// Its status, when [`Request::List`] asked.
    pub status: Option<StatusInfo>,
}

/// A mailbox's status (RFC 3501 section 6.3.10).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusInfo {
    /// MESSAGES.
    pub messages: u32,
    /// RECENT.
    pub recent: u32,
    /// UIDNEXT.
    pub uid_next: u32,
    /// UIDVALIDITY.
    pub uid_validity: u32,
    /// UNSEEN.
    pub unseen: u32,
    /// HIGHESTMODSEQ.
    pub highest_modseq: u64,
    /// SIZE (RFC 8438).
    pub size: u64,
}

impl StatusInfo {
    /// Writes `(ITEM value ...)` for `items`.
    pub fn write(&self, items: &[StatusItem], out: &mut Vec<u8>) {
        out.push(b'(');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            let value = match item {
                StatusItem::Messages => u64::from(self.messages),
                StatusItem::Recent => u64::from(self.recent),
                StatusItem::UidNext => u64::from(self.uid_next),
                StatusItem::UidValidity => u64::from(self.uid_validity),
                StatusItem::Unseen => u64::from(self.unseen),
                StatusItem::HighestModSeq => self.highest_modseq,
                StatusItem::Size => self.size,
            };
            out.extend_from_slice(format!("{} {value}", item.name()).as_bytes());
        }
        out.push(b')');
    }
}
