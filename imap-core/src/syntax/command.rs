//! What a client can ask, as parsed: one type per command of RFC 3501 section 6 and of the
//! extensions we offer (`docs/imap.md` lists them).

use line_protocol::sasl::Secret;

use super::datetime::Date;
use super::sequence::SequenceSet;

/// A tagged command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The client's tag, echoed in the completion.
    pub tag: String,
    /// What it asks.
    pub body: CommandBody,
}

/// A command's name and arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandBody {
    /// RFC 3501 6.1.1.
    Capability,
    /// RFC 3501 6.1.2.
    Noop,
    /// RFC 3501 6.1.3.
    Logout,
    /// RFC 3501 6.2.1.
    StartTls,
    /// RFC 3501 6.2.2, with RFC 4959's initial response.
    Authenticate {
        /// The SASL mechanism, upper-cased.
        mechanism: String,
        /// The initial response as sent (base64, or `=` for empty).
        initial: Option<Vec<u8>>,
    },
    /// RFC 3501 6.2.3.
    Login {
        /// The user name.
        user: String,
        /// The password.
        password: Secret,
    },
    /// RFC 5161.
    Enable(Vec<String>),
    /// RFC 2971: the client's fields, or `None` for `NIL`.
    Id(Option<Vec<(String, Option<String>)>>),
    /// RFC 2342.
    Namespace,
    /// RFC 3501 6.3.1 / 6.3.2, with RFC 7162's parameters.
    Select {
        /// The mailbox name as sent (modified UTF-7, or UTF-8 after `ENABLE UTF8=ACCEPT`).
        mailbox: String,
        /// EXAMINE.
        read_only: bool,
        /// `(CONDSTORE)`.
        condstore: bool,
        /// `(QRESYNC (...))`.
        qresync: Option<QresyncParams>,
    },
    /// RFC 3501 6.3.3.
    Create(String),
    /// RFC 3501 6.3.4.
    Delete(String),
    /// RFC 3501 6.3.5.
    Rename {
        /// The existing name.
        from: String,
        /// The new name.
        to: String,
    },
    /// RFC 3501 6.3.6 (`true`) and 6.3.7.
    Subscribe(String, bool),
    /// RFC 3501 6.3.8 and 6.3.9, RFC 5258 (LIST-EXTENDED), RFC 6154, RFC 5819.
    List(ListCommand),
    /// RFC 3501 6.3.10.
    Status {
        /// The mailbox.
        mailbox: String,
        /// What to report.
        items: Vec<StatusItem>,
    },
    /// RFC 3501 6.3.11: the part up to the literal; the message streams separately.
    Append(AppendCommand),
    /// RFC 3501 6.4.1.
    Check,
    /// RFC 3501 6.4.2.
    Close,
    /// RFC 3691.
    Unselect,
    /// RFC 3501 6.4.3; with a UID set, RFC 4315's UID EXPUNGE.
    Expunge(Option<SequenceSet>),
    /// RFC 3501 6.4.4, RFC 4731 (ESEARCH), RFC 5182 (SAVE).
    Search(SearchCommand),
    /// RFC 3501 6.4.5, RFC 7162's modifiers.
    Fetch(FetchCommand),
    /// RFC 3501 6.4.6, RFC 7162's UNCHANGEDSINCE.
    Store(StoreCommand),
    /// RFC 3501 6.4.7 (`moving: false`) and RFC 6851 MOVE.
    Copy {
        /// UID COPY / UID MOVE.
        uid: bool,
        /// The messages.
        set: SequenceSet,
        /// The destination.
        mailbox: String,
        /// MOVE.
        moving: bool,
    },
    /// RFC 2177.
    Idle,
}

/// RFC 7162 section 3.2.5: what the client knew of the mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QresyncParams {
    /// The UIDVALIDITY it knew.
    pub uid_validity: u32,
    /// The highest mod-sequence it had seen.
    pub mod_seq: u64,
    /// The UIDs it knows, if it said.
    pub known_uids: Option<SequenceSet>,
    /// Pairs of sequence numbers and UIDs it knows, to narrow VANISHED (EARLIER).
    pub seq_match: Option<(SequenceSet, SequenceSet)>,
}

/// LIST and LSUB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCommand {
    /// LSUB rather than LIST.
    pub lsub: bool,
    /// The reference name.
    pub reference: String,
    /// The patterns (one, or several with LIST-EXTENDED).
    pub patterns: Vec<String>,
    /// Selection options (RFC 5258 section 3.1): `SUBSCRIBED`.
    pub subscribed_only: bool,
    /// `RECURSIVEMATCH`.
    pub recursive_match: bool,
    /// `SPECIAL-USE` as a selection option (RFC 6154 section 5.1).
    pub special_use_only: bool,
    /// RETURN options: `SUBSCRIBED`.
    pub return_subscribed: bool,
    /// `CHILDREN`.
    pub return_children: bool,
    /// `SPECIAL-USE`.
    pub return_special_use: bool,
    /// `STATUS (...)` (RFC 5819).
    pub return_status: Option<Vec<StatusItem>>,
    /// Whether the extended syntax was used (the reply then always carries `\Subscribed`
    /// when asked and CHILDREN information).
    pub extended: bool,
}

/// A STATUS data item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum StatusItem {
    /// MESSAGES.
    Messages,
    /// RECENT.
    Recent,
    /// UIDNEXT.
    UidNext,
    /// UIDVALIDITY.
    UidValidity,
    /// UNSEEN.
    Unseen,
    /// HIGHESTMODSEQ (RFC 7162).
    HighestModSeq,
    /// SIZE (RFC 8438).
    Size,
}

impl StatusItem {
    /// The item's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            StatusItem::Messages => "MESSAGES",
            StatusItem::Recent => "RECENT",
            StatusItem::UidNext => "UIDNEXT",
            StatusItem::UidValidity => "UIDVALIDITY",
            StatusItem::Unseen => "UNSEEN",
            StatusItem::HighestModSeq => "HIGHESTMODSEQ",
            StatusItem::Size => "SIZE",
        }
    }
}

/// APPEND's arguments before its message literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendCommand {
    /// The destination.
    pub mailbox: String,
    /// Flags to set on the new message.
    pub flags: Vec<Flag>,
    /// The internal date to give it (Unix seconds), if sent.
    pub date: Option<i64>,
    /// The size of the message literal.
    pub size: u64,
    /// `{n+}`: the client sends the literal without waiting (RFC 7888).
    pub non_sync: bool,
}

/// A message flag.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flag {
    /// `\Seen`.
    Seen,
    /// `\Answered`.
    Answered,
    /// `\Flagged`.
    Flagged,
    /// `\Deleted`.
    Deleted,
    /// `\Draft`.
    Draft,
    /// `\Recent` (only ever reported, never stored).
    Recent,
    /// A keyword (`$Forwarded`, `NonJunk`).
    Keyword(String),
    /// Another `\Name`, which RFC 3501 reserves; stored nowhere.
    Extension(String),
}

impl Flag {
    /// The flag as written on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Flag::Seen => "\\Seen",
            Flag::Answered => "\\Answered",
            Flag::Flagged => "\\Flagged",
            Flag::Deleted => "\\Deleted",
            Flag::Draft => "\\Draft",
            Flag::Recent => "\\Recent",
            Flag::Keyword(k) | Flag::Extension(k) => k,
        }
    }
}

/// SEARCH and UID SEARCH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchCommand {
    /// UID SEARCH.
    pub uid: bool,
    /// `RETURN (...)` (RFC 4731): `None` for a plain `* SEARCH` answer.
    pub ret: Option<SearchReturn>,
    /// The criteria, all of which must hold.
    pub key: SearchKey,
}

/// What `SEARCH RETURN (...)` asks for (RFC 4731, RFC 5182).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchReturn {
    /// MIN.
    pub min: bool,
    /// MAX.
    pub max: bool,
    /// ALL.
    pub all: bool,
    /// COUNT.
    pub count: bool,
    /// SAVE.
    pub save: bool,
}

/// A search criterion (RFC 3501 section 6.4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
#[non_exhaustive]
pub enum SearchKey {
    All,
    And(Vec<SearchKey>),
    Or(Box<SearchKey>, Box<SearchKey>),
    Not(Box<SearchKey>),
    Sequence(SequenceSet),
    Uid(SequenceSet),
    Flag(Flag, bool),
    New,
    Old,
    Recent,
    Larger(u64),
    Smaller(u64),
    /// Internal date BEFORE / ON / SINCE.
    Before(Date),
    On(Date),
    Since(Date),
    /// Date: header SENTBEFORE / SENTON / SENTSINCE.
    SentBefore(Date),
    SentOn(Date),
    SentSince(Date),
    /// A header field contains the string (FROM, TO, CC, BCC, SUBJECT map onto this).
    Header(String, String),
    Body(String),
    Text(String),
    /// MODSEQ (RFC 7162 section 3.1.5).
    ModSeq(u64),
}

/// FETCH and UID FETCH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchCommand {
    /// UID FETCH (which always returns UID).
    pub uid: bool,
    /// The messages.
    pub set: SequenceSet,
    /// What to return.
    pub items: Vec<FetchItem>,
    /// `(CHANGEDSINCE n)` (RFC 7162 section 3.1.4).
    pub changed_since: Option<u64>,
    /// `(VANISHED)` (RFC 7162 section 3.2.6), UID FETCH only.
    pub vanished: bool,
}

/// A FETCH data item (RFC 3501 section 6.4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchItem {
    /// ENVELOPE.
    Envelope,
    /// FLAGS.
    Flags,
    /// INTERNALDATE.
    InternalDate,
    /// RFC822 (like `BODY[]`, sets \Seen).
    Rfc822,
    /// RFC822.PEEK, the obsolete RFC 1730 form Outlook sends: RFC822 without setting \Seen,
    /// answered as RFC822.
    Rfc822Peek,
    /// RFC822.HEADER (like `BODY.PEEK[HEADER]`).
    Rfc822Header,
    /// RFC822.SIZE.
    Rfc822Size,
    /// RFC822.TEXT (like `BODY[TEXT]`, sets \Seen).
    Rfc822Text,
    /// BODY (non-extensible BODYSTRUCTURE).
    Body,
    /// BODYSTRUCTURE.
    BodyStructure,
    /// UID.
    Uid,
    /// MODSEQ (RFC 7162).
    ModSeq,
    /// `BODY[section]<partial>` and ``BODY.PEEK[...]``.
    Section {
        /// BODY.PEEK: does not set \Seen.
        peek: bool,
        /// Which part.
        section: SectionSpec,
        /// `<offset.length>`.
        partial: Option<(u32, u32)>,
    },
}

impl FetchItem {
    /// Whether fetching this sets `\Seen` on a read-write mailbox (RFC 3501 section 6.4.5).
    pub fn sets_seen(&self) -> bool {
        matches!(
            self,
            FetchItem::Rfc822 | FetchItem::Rfc822Text | FetchItem::Section { peek: false, .. }
        )
    }
}

/// A section specification: part numbers, then what of the part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionSpec {
    /// `1.2.3`: empty for the whole message.
    pub path: Vec<u32>,
    /// What of it.
    pub text: SectionText,
}

/// The text part of a section specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    /// Nothing: the whole (part).
    Full,
    /// HEADER.
    Header,
    /// HEADER.FIELDS (names) / HEADER.FIELDS.NOT (names).
    HeaderFields {
        /// The field names as sent.
        names: Vec<String>,
        /// .NOT.
        not: bool,
    },
    /// TEXT.
    Text,
    /// MIME.
    Mime,
}

impl SectionSpec {
    /// The section as the response names it: `1.2.HEADER.FIELDS (FROM)`.
    pub fn to_wire(&self) -> String {
        let mut s: Vec<String> = self.path.iter().map(u32::to_string).collect();
        match &self.text {
            SectionText::Full => {}
            SectionText::Header => s.push("HEADER".into()),
            SectionText::Text => s.push("TEXT".into()),
            SectionText::Mime => s.push("MIME".into()),
            SectionText::HeaderFields { names, not } => {
                let names: Vec<String> = names.iter().map(|n| super::render::astring(n)).collect();
                s.push(format!(
                    "HEADER.FIELDS{} ({})",
                    if *not { ".NOT" } else { "" },
                    names.join(" ")
                ));
            }
        }
        s.join(".")
    }
}

/// STORE and UID STORE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreCommand {
    /// UID STORE.
    pub uid: bool,
    /// The messages.
    pub set: SequenceSet,
    /// `(UNCHANGEDSINCE n)` (RFC 7162 section 3.1.3).
    pub unchanged_since: Option<u64>,
    /// `+FLAGS`, `-FLAGS` or `FLAGS`.
    pub op: StoreOp,
    /// `.SILENT`.
    pub silent: bool,
    /// The flags.
    pub flags: Vec<Flag>,
}

/// How STORE changes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// `+FLAGS`.
    Add,
    /// `-FLAGS`.
    Remove,
    /// `FLAGS`.
    Replace,
}
