//! The command grammar (RFC 3501 section 9, with the extensions' additions), over one complete
//! command whose literals are inline.

use line_protocol::sasl::Secret;

use super::command::*;
use super::cursor::{Cursor, Result, SyntaxError, utf8};
use super::datetime::{date, date_time};
use super::sequence::{self, SequenceSet};

/// A command that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseFailure {
    /// Its tag, when one could be read: the `BAD` is then tagged, else untagged.
    pub tag: Option<String>,
    /// What was wrong.
    pub error: SyntaxError,
}

/// Parses one complete command (without its final CRLF; literals inline after their `{n}`
/// CRLF).
///
/// ```
/// use imap_core::syntax::{parse_command, CommandBody};
/// let c = parse_command(b"a1 select \"INBOX\" (CONDSTORE)").unwrap();
/// assert_eq!(c.tag, "a1");
/// assert!(matches!(c.body, CommandBody::Select { condstore: true, read_only: false, .. }));
/// assert!(parse_command(b"a2 FROB").is_err());
/// ```
pub fn parse_command(input: &[u8]) -> std::result::Result<Command, ParseFailure> {
    let mut c = Cursor::new(input);
    let tag = tag(&mut c).map_err(|error| ParseFailure { tag: None, error })?;
    let fail = |error| ParseFailure {
        tag: Some(tag.clone()),
        error,
    };
    c.sp()
        .map_err(|_| fail(SyntaxError::new("expected a command after the tag")))?;
    let body = body(&mut c).map_err(fail)?;
    c.end().map_err(fail)?;
    Ok(Command { tag, body })
}

/// The tag at the start of a command, if it has a valid one (to answer a command that is
/// refused before it is parsed).
pub fn parse_tag(command: &[u8]) -> Option<String> {
    let mut c = Cursor::new(command);
    let t = tag(&mut c).ok()?;
    (c.peek() == Some(b' ')).then_some(t)
}

/// `tag`: ASTRING-CHARs except `+` (RFC 3501 section 9); iOS Mail's `8.569` is one.
pub(crate) fn tag(c: &mut Cursor<'_>) -> Result<String> {
    let rest = c.rest();
    let len = rest
        .iter()
        .take_while(|&&b| super::cursor::is_atom_char(b) && b != b'+' || b == b']')
        .count();
    if len == 0 {
        return Err(SyntaxError::new("missing or invalid tag"));
    }
    let t = String::from_utf8_lossy(&rest[..len]).into_owned();
    for _ in 0..len {
        c.eat(c.peek().unwrap_or_default());
    }
    Ok(t)
}

fn mailbox(c: &mut Cursor<'_>) -> Result<String> {
    let name = utf8(c.astring()?)?;
    // RFC 3501 5.1: INBOX is case-insensitive.
    Ok(if name.eq_ignore_ascii_case("INBOX") {
        "INBOX".into()
    } else {
        name
    })
}

fn body(c: &mut Cursor<'_>) -> Result<CommandBody> {
    let name = c.keyword_atom()?;
    Ok(match name.as_str() {
        "CAPABILITY" => CommandBody::Capability,
        "NOOP" => CommandBody::Noop,
        "LOGOUT" => CommandBody::Logout,
        "STARTTLS" => CommandBody::StartTls,
        "CHECK" => CommandBody::Check,
        "CLOSE" => CommandBody::Close,
        "UNSELECT" => CommandBody::Unselect,
        "EXPUNGE" => CommandBody::Expunge(None),
        "IDLE" => CommandBody::Idle,
        "NAMESPACE" => CommandBody::Namespace,
        "AUTHENTICATE" => {
            c.sp()?;
            let mechanism = c.keyword_atom()?;
            let initial = if c.eat(b' ') {
                let ir = c.rest().to_vec();
                while !c.is_end() {
                    c.eat(c.peek().unwrap_or_default());
                }
                if ir.is_empty() {
                    return Err(SyntaxError::new("empty initial response"));
                }
                Some(ir)
            } else {
                None
            };
            CommandBody::Authenticate { mechanism, initial }
        }
        "LOGIN" => {
            c.sp()?;
            let user = utf8(c.astring()?)?;
            c.sp()?;
            let password = Secret::new(c.astring()?.into_owned());
            CommandBody::Login { user, password }
        }
        "ENABLE" => {
            let mut caps = Vec::new();
            while c.eat(b' ') {
                caps.push(c.keyword_atom()?);
            }
            if caps.is_empty() {
                return Err(SyntaxError::new("ENABLE needs at least one capability"));
            }
            CommandBody::Enable(caps)
        }
        "ID" => {
            c.sp()?;
            if c.keyword("NIL") {
                CommandBody::Id(None)
            } else {
                let mut fields = Vec::new();
                let items = c.list(|c| {
                    let s = c.nstring()?;
                    Ok(s.map(|s| String::from_utf8_lossy(&s).into_owned()))
                })?;
                let mut it = items.into_iter();
                while let Some(k) = it.next() {
                    let v = it
                        .next()
                        .ok_or_else(|| SyntaxError::new("ID wants field and value pairs"))?;
                    let k = k.ok_or_else(|| SyntaxError::new("an ID field name is NIL"))?;
                    fields.push((k, v));
                }
                CommandBody::Id(Some(fields))
            }
        }
        "SELECT" | "EXAMINE" => select(c, name == "EXAMINE")?,
        "CREATE" => {
            c.sp()?;
            let m = mailbox(c)?;
            // RFC 4466's create parameters (USE) are not offered; refuse them clearly.
            if c.eat(b' ') {
                return Err(SyntaxError::new("CREATE parameters are not supported"));
            }
            CommandBody::Create(m)
        }
        "DELETE" => {
            c.sp()?;
            CommandBody::Delete(mailbox(c)?)
        }
        "RENAME" => {
            c.sp()?;
            let from = mailbox(c)?;
            c.sp()?;
            let to = mailbox(c)?;
            CommandBody::Rename { from, to }
        }
        "SUBSCRIBE" | "UNSUBSCRIBE" => {
            c.sp()?;
            CommandBody::Subscribe(mailbox(c)?, name == "SUBSCRIBE")
        }
        "LIST" => CommandBody::List(list(c, false)?),
        "LSUB" => CommandBody::List(list(c, true)?),
        "XLIST" => {
            // Outlook and older Gmail clients: LIST with special-use attributes.
            let mut l = list(c, false)?;
            l.return_special_use = true;
            CommandBody::List(l)
        }
        "STATUS" => {
            c.sp()?;
            let mailbox = mailbox(c)?;
            c.sp()?;
            let items = c.list(status_item)?;
            if items.is_empty() {
                return Err(SyntaxError::new("STATUS needs at least one item"));
            }
            CommandBody::Status { mailbox, items }
        }
        "APPEND" => CommandBody::Append(append(c)?),
        "SEARCH" => CommandBody::Search(search(c, false)?),
        "FETCH" => CommandBody::Fetch(fetch(c, false)?),
        "STORE" => CommandBody::Store(store(c, false)?),
        "COPY" | "MOVE" => {
            c.sp()?;
            let set = sequence::parse(c)?;
            c.sp()?;
            CommandBody::Copy {
                uid: false,
                set,
                mailbox: mailbox(c)?,
                moving: name == "MOVE",
            }
        }
        "UID" => {
            c.sp()?;
            let sub = c.keyword_atom()?;
            match sub.as_str() {
                "FETCH" => CommandBody::Fetch(fetch(c, true)?),
                "SEARCH" => CommandBody::Search(search(c, true)?),
                "STORE" => CommandBody::Store(store(c, true)?),
                "COPY" | "MOVE" => {
                    c.sp()?;
                    let set = sequence::parse(c)?;
                    c.sp()?;
                    CommandBody::Copy {
                        uid: true,
                        set,
                        mailbox: mailbox(c)?,
                        moving: sub == "MOVE",
                    }
                }
                "EXPUNGE" => {
                    c.sp()?;
                    CommandBody::Expunge(Some(sequence::parse(c)?))
                }
                _ => return Err(SyntaxError::new("unknown UID command")),
            }
        }
        _ => return Err(SyntaxError::new("unknown command")),
    })
}

fn select(c: &mut Cursor<'_>, read_only: bool) -> Result<CommandBody> {
    c.sp()?;
    let mailbox = mailbox(c)?;
    let mut condstore = false;
    let mut qresync = None;
    if c.eat(b' ') {
        c.expect(b'(', "expected select parameters")?;
        loop {
            let p = c.keyword_atom()?;
            match p.as_str() {
                "CONDSTORE" => condstore = true,
                "QRESYNC" => {
                    c.sp()?;
                    qresync = Some(qresync_params(c)?);
                }
                _ => return Err(SyntaxError::new("unknown select parameter")),
            }
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
    }
    Ok(CommandBody::Select {
        mailbox,
        read_only,
        condstore,
        qresync,
    })
}

/// `"(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")"`.
fn qresync_params(c: &mut Cursor<'_>) -> Result<QresyncParams> {
    c.expect(b'(', "expected QRESYNC parameters")?;
    let uid_validity = c.nz_number()?;
    c.sp()?;
    let mod_seq = c.number64()?;
    let mut known_uids = None;
    let mut seq_match = None;
    if c.eat(b' ') {
        if c.peek() == Some(b'(') {
            seq_match = Some(seq_match_data(c)?);
        } else {
            known_uids = Some(sequence::parse(c)?);
            if c.eat(b' ') {
                seq_match = Some(seq_match_data(c)?);
            }
        }
    }
    c.expect(b')', "expected ) after QRESYNC parameters")?;
    Ok(QresyncParams {
        uid_validity,
        mod_seq,
        known_uids,
        seq_match,
    })
}

fn seq_match_data(c: &mut Cursor<'_>) -> Result<(SequenceSet, SequenceSet)> {
    c.expect(b'(', "expected sequence match data")?;
    let seqs = sequence::parse(c)?;
    c.sp()?;
    let uids = sequence::parse(c)?;
    c.expect(b')', "expected ) after sequence match data")?;
    Ok((seqs, uids))
}

fn list(c: &mut Cursor<'_>, lsub: bool) -> Result<ListCommand> {
    let mut l = ListCommand {
        lsub,
        reference: String::new(),
        patterns: Vec::new(),
        subscribed_only: lsub,
        recursive_match: false,
        special_use_only: false,
        return_subscribed: false,
        return_children: false,
        return_special_use: false,
        return_status: None,
        extended: false,
    };
    c.sp()?;
    if !lsub && c.peek() == Some(b'(') {
        l.extended = true;
        for opt in c.list(|c| c.keyword_atom())? {
            match opt.as_str() {
                "SUBSCRIBED" => l.subscribed_only = true,
                "RECURSIVEMATCH" => l.recursive_match = true,
                "REMOTE" => {}
                "SPECIAL-USE" => l.special_use_only = true,
                _ => return Err(SyntaxError::new("unknown LIST selection option")),
            }
        }
        // RFC 5258 section 3: RECURSIVEMATCH alone is an error.
        if l.recursive_match && !l.subscribed_only {
            return Err(SyntaxError::new(
                "RECURSIVEMATCH needs another selection option",
            ));
        }
        c.sp()?;
    }
    l.reference = utf8(c.astring().or_else(|_| c.string())?)?;
    c.sp()?;
    if !lsub && c.peek() == Some(b'(') {
        l.extended = true;
        l.patterns = c.list(|c| utf8(c.list_mailbox()?))?;
        if l.patterns.is_empty() {
            return Err(SyntaxError::new("LIST needs a pattern"));
        }
    } else {
        l.patterns.push(utf8(c.list_mailbox()?)?);
    }
    if !lsub && c.eat(b' ') {
        if !c.keyword("RETURN") {
            return Err(SyntaxError::new("expected RETURN"));
        }
        l.extended = true;
        c.sp()?;
        c.expect(b'(', "expected return options")?;
        if !c.eat(b')') {
            loop {
                let opt = c.keyword_atom()?;
                match opt.as_str() {
                    "SUBSCRIBED" => l.return_subscribed = true,
                    "CHILDREN" => l.return_children = true,
                    "SPECIAL-USE" => l.return_special_use = true,
                    "STATUS" => {
                        c.sp()?;
                        l.return_status = Some(c.list(status_item)?);
                    }
                    _ => return Err(SyntaxError::new("unknown LIST return option")),
                }
                if c.eat(b')') {
                    break;
                }
                c.sp()?;
            }
        }
    }
    Ok(l)
}

fn status_item(c: &mut Cursor<'_>) -> Result<StatusItem> {
    Ok(match c.keyword_atom()?.as_str() {
        "MESSAGES" => StatusItem::Messages,
        "RECENT" => StatusItem::Recent,
        "UIDNEXT" => StatusItem::UidNext,
        "UIDVALIDITY" => StatusItem::UidValidity,
        "UNSEEN" => StatusItem::Unseen,
        "HIGHESTMODSEQ" => StatusItem::HighestModSeq,
        "SIZE" => StatusItem::Size,
        _ => return Err(SyntaxError::new("unknown STATUS item")),
    })
}

/// A flag in a flag list: `\Name` or a keyword atom.
pub(crate) fn flag(c: &mut Cursor<'_>) -> Result<Flag> {
    if c.eat(b'\\') {
        let name = c.atom()?;
        Ok(match name.to_ascii_uppercase().as_str() {
            "SEEN" => Flag::Seen,
            "ANSWERED" => Flag::Answered,
            "FLAGGED" => Flag::Flagged,
            "DELETED" => Flag::Deleted,
            "DRAFT" => Flag::Draft,
            "RECENT" => Flag::Recent,
            _ => Flag::Extension(format!("\\{name}")),
        })
    } else {
        Ok(Flag::Keyword(c.atom()?.to_owned()))
    }
}

fn flag_list(c: &mut Cursor<'_>) -> Result<Vec<Flag>> {
    c.list(flag)
}

/// APPEND up to its message literal. The literal itself is not parsed here: the framer
/// streams it (see [`append_prefix`]).
fn append(c: &mut Cursor<'_>) -> Result<AppendCommand> {
    c.sp()?;
    let mailbox = mailbox(c)?;
    c.sp()?;
    let mut flags = Vec::new();
    if c.peek() == Some(b'(') {
        flags = flag_list(c)?;
        c.sp()?;
    }
    let mut date = None;
    if c.peek() == Some(b'"') {
        date = Some(date_time(c)?.0);
        c.sp()?;
    }
    c.eat(b'~');
    c.expect(b'{', "expected the message literal")?;
    let size = c.number64()?;
    let non_sync = c.eat(b'+');
    c.expect(b'}', "bad literal length")?;
    if flags.contains(&Flag::Recent) {
        return Err(SyntaxError::new("\\Recent cannot be set"));
    }
    Ok(AppendCommand {
        mailbox,
        flags,
        date,
        size,
        non_sync,
    })
}

/// What [`append_prefix`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendPrefix {
    /// Not an APPEND: read the literal into the command as usual.
    NotAppend,
    /// An APPEND whose literal here is an argument (a mailbox name sent as a literal).
    Argument,
    /// The message literal of an APPEND: stream it.
    Message {
        /// The tag.
        tag: String,
        /// The arguments.
        append: AppendCommand,
    },
    /// An APPEND that is malformed before its literal.
    Bad(ParseFailure),
}

/// Looks at a command line that ends with a literal's `{n}` (or `{n+}`): is this the message
/// literal of an APPEND? `line` is the command so far, with earlier literals inline and
/// without the CRLF after the `{n}`.
///
/// ```
/// use imap_core::syntax::{append_prefix, AppendPrefix};
/// let p = append_prefix(b"A3 APPEND Sent (\\Seen) {310+}");
/// let AppendPrefix::Message { append, .. } = p else { panic!() };
/// assert_eq!((append.size, append.non_sync), (310, true));
/// assert_eq!(append_prefix(b"A4 APPEND {5}"), AppendPrefix::Argument);
/// assert_eq!(append_prefix(b"A5 LOGIN {5}"), AppendPrefix::NotAppend);
/// ```
pub fn append_prefix(line: &[u8]) -> AppendPrefix {
    let mut c = Cursor::new(line);
    let Ok(tag) = tag(&mut c) else {
        return AppendPrefix::NotAppend;
    };
    if c.sp().is_err() || !c.keyword("APPEND") {
        return AppendPrefix::NotAppend;
    }
    // Where this literal's `{` starts: the mailbox being a literal means it is an argument.
    let after_cmd = Cursor::new(c.rest());
    let mut probe = after_cmd.clone();
    if probe.sp().is_ok() && matches!(probe.peek(), Some(b'{') | Some(b'~')) {
        return AppendPrefix::Argument;
    }
    match append(&mut c) {
        Ok(append) if c.is_end() => AppendPrefix::Message { tag, append },
        Ok(_) => AppendPrefix::Bad(ParseFailure {
            tag: Some(tag),
            error: SyntaxError::new("unexpected text in APPEND"),
        }),
        Err(error) => AppendPrefix::Bad(ParseFailure {
            tag: Some(tag),
            error,
        }),
    }
}

fn search(c: &mut Cursor<'_>, uid: bool) -> Result<SearchCommand> {
    c.sp()?;
    let mut ret = None;
    if c.keyword("RETURN") {
        c.sp()?;
        let mut r = SearchReturn::default();
        for opt in c.list(|c| c.keyword_atom())? {
            match opt.as_str() {
                "MIN" => r.min = true,
                "MAX" => r.max = true,
                "ALL" => r.all = true,
                "COUNT" => r.count = true,
                "SAVE" => r.save = true,
                _ => return Err(SyntaxError::new("unknown SEARCH return option")),
            }
        }
        // RFC 4731 section 3.1: RETURN () means RETURN (ALL).
        if !(r.min || r.max || r.count || r.save) {
            r.all = true;
        }
        ret = Some(r);
        c.sp()?;
    }
    if c.keyword("CHARSET") {
        c.sp()?;
        let cs = utf8(c.astring()?)?.to_ascii_uppercase();
        if cs != "UTF-8" && cs != "US-ASCII" {
            return Err(SyntaxError::new(
                "[BADCHARSET (UTF-8 US-ASCII)] unsupported charset",
            ));
        }
        c.sp()?;
    }
    let mut keys = vec![search_key(c, 0)?];
    while c.eat(b' ') {
        keys.push(search_key(c, 0)?);
    }
    let key = if keys.len() == 1 {
        keys.remove(0)
    } else {
        SearchKey::And(keys)
    };
    Ok(SearchCommand { uid, ret, key })
}

/// Search criteria nest (NOT, OR, parentheses); this bounds the depth so a hostile command
/// cannot exhaust the stack.
const MAX_SEARCH_DEPTH: usize = 32;

fn search_key(c: &mut Cursor<'_>, depth: usize) -> Result<SearchKey> {
    if depth > MAX_SEARCH_DEPTH {
        return Err(SyntaxError::new("search criteria nested too deeply"));
    }
    if c.peek() == Some(b'(') {
        let keys = c.list(|c| search_key(c, depth + 1))?;
        if keys.is_empty() {
            return Err(SyntaxError::new("empty search criteria list"));
        }
        return Ok(SearchKey::And(keys));
    }
    if matches!(c.peek(), Some(b'0'..=b'9') | Some(b'*') | Some(b'$')) {
        return Ok(SearchKey::Sequence(sequence::parse(c)?));
    }
    let word = c.keyword_atom()?;
    let text = |c: &mut Cursor<'_>| -> Result<String> {
        c.sp()?;
        utf8(c.astring()?)
    };
    let header = |name: &str, c: &mut Cursor<'_>| -> Result<SearchKey> {
        c.sp()?;
        Ok(SearchKey::Header(name.into(), utf8(c.astring()?)?))
    };
    Ok(match word.as_str() {
        "ALL" => SearchKey::All,
        "ANSWERED" => SearchKey::Flag(Flag::Answered, true),
        "DELETED" => SearchKey::Flag(Flag::Deleted, true),
        "DRAFT" => SearchKey::Flag(Flag::Draft, true),
        "FLAGGED" => SearchKey::Flag(Flag::Flagged, true),
        "SEEN" => SearchKey::Flag(Flag::Seen, true),
        "UNANSWERED" => SearchKey::Flag(Flag::Answered, false),
        "UNDELETED" => SearchKey::Flag(Flag::Deleted, false),
        "UNDRAFT" => SearchKey::Flag(Flag::Draft, false),
        "UNFLAGGED" => SearchKey::Flag(Flag::Flagged, false),
        "UNSEEN" => SearchKey::Flag(Flag::Seen, false),
        "NEW" => SearchKey::New,
        "OLD" => SearchKey::Old,
        "RECENT" => SearchKey::Recent,
        "KEYWORD" | "UNKEYWORD" => {
            c.sp()?;
            SearchKey::Flag(Flag::Keyword(c.atom()?.to_owned()), word == "KEYWORD")
        }
        "BCC" => header("BCC", c)?,
        "CC" => header("CC", c)?,
        "FROM" => header("FROM", c)?,
        "TO" => header("TO", c)?,
        "SUBJECT" => header("SUBJECT", c)?,
        "HEADER" => {
            c.sp()?;
            let name = utf8(c.astring()?)?;
            c.sp()?;
            SearchKey::Header(name, utf8(c.astring()?)?)
        }
        "BODY" => SearchKey::Body(text(c)?),
        "TEXT" => SearchKey::Text(text(c)?),
        "LARGER" | "SMALLER" => {
            c.sp()?;
            let n = c.number64()?;
            if word == "LARGER" {
                SearchKey::Larger(n)
            } else {
                SearchKey::Smaller(n)
            }
        }
        "BEFORE" | "ON" | "SINCE" | "SENTBEFORE" | "SENTON" | "SENTSINCE" => {
            c.sp()?;
            let d = date(c)?;
            match word.as_str() {
                "BEFORE" => SearchKey::Before(d),
                "ON" => SearchKey::On(d),
                "SINCE" => SearchKey::Since(d),
                "SENTBEFORE" => SearchKey::SentBefore(d),
                "SENTON" => SearchKey::SentOn(d),
                _ => SearchKey::SentSince(d),
            }
        }
        "UID" => {
            c.sp()?;
            SearchKey::Uid(sequence::parse(c)?)
        }
        "NOT" => {
            c.sp()?;
            SearchKey::Not(Box::new(search_key(c, depth + 1)?))
        }
        "OR" => {
            c.sp()?;
            let a = search_key(c, depth + 1)?;
            c.sp()?;
            let b = search_key(c, depth + 1)?;
            SearchKey::Or(Box::new(a), Box::new(b))
        }
        "MODSEQ" => {
            c.sp()?;
            // RFC 7162 3.1.5: an optional entry name and type come before the value.
            if c.peek() == Some(b'"') {
                c.string()?;
                c.sp()?;
                let kind = c.keyword_atom()?;
                if !matches!(kind.as_str(), "PRIV" | "SHARED" | "ALL") {
                    return Err(SyntaxError::new("bad MODSEQ entry type"));
                }
                c.sp()?;
            }
            SearchKey::ModSeq(c.number64()?)
        }
        _ => return Err(SyntaxError::new("unknown search key")),
    })
}

fn fetch(c: &mut Cursor<'_>, uid: bool) -> Result<FetchCommand> {
    c.sp()?;
    let set = sequence::parse(c)?;
    c.sp()?;
    let mut items = if c.peek() == Some(b'(') {
        c.list(fetch_item)?
    } else {
        match c
            .rest()
            .iter()
            .position(|&b| b == b' ')
            .map_or(c.rest(), |n| &c.rest()[..n])
        {
            m if m.eq_ignore_ascii_case(b"ALL") => {
                c.keyword("ALL");
                vec![
                    FetchItem::Flags,
                    FetchItem::InternalDate,
                    FetchItem::Rfc822Size,
                    FetchItem::Envelope,
                ]
            }
            m if m.eq_ignore_ascii_case(b"FAST") => {
                c.keyword("FAST");
                vec![
                    FetchItem::Flags,
                    FetchItem::InternalDate,
                    FetchItem::Rfc822Size,
                ]
            }
            m if m.eq_ignore_ascii_case(b"FULL") => {
                c.keyword("FULL");
                vec![
                    FetchItem::Flags,
                    FetchItem::InternalDate,
                    FetchItem::Rfc822Size,
                    FetchItem::Envelope,
                    FetchItem::Body,
                ]
            }
            _ => vec![fetch_item(c)?],
        }
    };
    if items.is_empty() {
        return Err(SyntaxError::new("FETCH needs at least one item"));
    }
    let mut changed_since = None;
    let mut vanished = false;
    if c.eat(b' ') {
        c.expect(b'(', "expected FETCH modifiers")?;
        loop {
            match c.keyword_atom()?.as_str() {
                "CHANGEDSINCE" => {
                    c.sp()?;
                    // iPhone Mail sends CHANGEDSINCE 0, which RFC 7162's grammar forbids
                    // (mod-sequence-value is at least 1); it can only mean "everything".
                    changed_since = Some(c.number64()?);
                }
                "VANISHED" => vanished = true,
                _ => return Err(SyntaxError::new("unknown FETCH modifier")),
            }
            if c.eat(b')') {
                break;
            }
            c.sp()?;
        }
        // RFC 7162 3.2.6: VANISHED needs CHANGEDSINCE and a UID FETCH.
        if vanished && (changed_since.is_none() || !uid) {
            return Err(SyntaxError::new(
                "VANISHED needs UID FETCH with CHANGEDSINCE",
            ));
        }
    }
    if changed_since.is_some() && !items.contains(&FetchItem::ModSeq) {
        // RFC 7162 3.1.4.1: CHANGEDSINCE implies MODSEQ.
        items.push(FetchItem::ModSeq);
    }
    Ok(FetchCommand {
        uid,
        set,
        items,
        changed_since,
        vanished,
    })
}

fn fetch_item(c: &mut Cursor<'_>) -> Result<FetchItem> {
    // The name runs to `[`, a space or `)`: `BODY.PEEK[...]` has no boundary after PEEK.
    let rest = c.rest();
    let len = rest
        .iter()
        .take_while(|&&b| !matches!(b, b'[' | b' ' | b')' | b'<'))
        .count();
    let name = rest[..len].to_ascii_uppercase();
    for _ in 0..len {
        c.eat(c.peek().unwrap_or_default());
    }
    Ok(match name.as_slice() {
        b"ENVELOPE" => FetchItem::Envelope,
        b"FLAGS" => FetchItem::Flags,
        b"INTERNALDATE" => FetchItem::InternalDate,
        b"RFC822" => FetchItem::Rfc822,
        b"RFC822.HEADER" => FetchItem::Rfc822Header,
        b"RFC822.SIZE" => FetchItem::Rfc822Size,
        b"RFC822.TEXT" => FetchItem::Rfc822Text,
        // Outlook's obsolete RFC822.PEEK (RFC 1730 section 6.4.5).
        b"RFC822.PEEK" => FetchItem::Rfc822Peek,
        b"BODYSTRUCTURE" => FetchItem::BodyStructure,
        b"UID" => FetchItem::Uid,
        b"MODSEQ" => FetchItem::ModSeq,
        b"BODY" if c.peek() != Some(b'[') => FetchItem::Body,
        b"BODY" | b"BODY.PEEK" => {
            let section = section(c)?;
            let partial = if c.eat(b'<') {
                let offset = c.number()?;
                c.expect(b'.', "expected .length in a partial")?;
                let length = c.nz_number()?;
                c.expect(b'>', "expected > after a partial")?;
                Some((offset, length))
            } else {
                None
            };
            FetchItem::Section {
                peek: name == b"BODY.PEEK",
                section,
                partial,
            }
        }
        _ => return Err(SyntaxError::new("unknown FETCH item")),
    })
}

fn section(c: &mut Cursor<'_>) -> Result<SectionSpec> {
    c.expect(b'[', "expected [")?;
    let mut path = Vec::new();
    let mut text = SectionText::Full;
    if !c.eat(b']') {
        loop {
            if c.peek().is_some_and(|b| b.is_ascii_digit()) {
                path.push(c.nz_number()?);
                if c.eat(b'.') {
                    continue;
                }
                break;
            }
            let rest = c.rest();
            let len = rest
                .iter()
                .take_while(|&&b| b.is_ascii_alphabetic() || b == b'.')
                .count();
            let word = rest[..len].to_ascii_uppercase();
            for _ in 0..len {
                c.eat(c.peek().unwrap_or_default());
            }
            text = match word.as_slice() {
                b"HEADER" => SectionText::Header,
                b"TEXT" => SectionText::Text,
                b"MIME" if !path.is_empty() => SectionText::Mime,
                b"HEADER.FIELDS" | b"HEADER.FIELDS.NOT" => {
                    c.sp()?;
                    let names = c.list(|c| utf8(c.astring()?))?;
                    if names.is_empty() {
                        return Err(SyntaxError::new("HEADER.FIELDS needs field names"));
                    }
                    SectionText::HeaderFields {
                        names,
                        not: word.ends_with(b".NOT"),
                    }
                }
                _ => return Err(SyntaxError::new("bad section")),
            };
            break;
        }
        c.expect(b']', "expected ] after the section")?;
    }
    Ok(SectionSpec { path, text })
}

fn store(c: &mut Cursor<'_>, uid: bool) -> Result<StoreCommand> {
    c.sp()?;
    let set = sequence::parse(c)?;
    c.sp()?;
    let mut unchanged_since = None;
    if c.eat(b'(') {
        if !c.keyword("UNCHANGEDSINCE") {
            return Err(SyntaxError::new("unknown STORE modifier"));
        }
        c.sp()?;
        unchanged_since = Some(c.number64()?);
        c.expect(b')', "expected ) after STORE modifiers")?;
        c.sp()?;
    }
    let op = if c.eat(b'+') {
        StoreOp::Add
    } else if c.eat(b'-') {
        StoreOp::Remove
    } else {
        StoreOp::Replace
    };
    let item = c.keyword_atom()?;
    let silent = match item.as_str() {
        "FLAGS" => false,
        "FLAGS.SILENT" => true,
        _ => return Err(SyntaxError::new("expected FLAGS or FLAGS.SILENT")),
    };
    c.sp()?;
    let flags = if c.peek() == Some(b'(') {
        flag_list(c)?
    } else {
        // RFC 3501's grammar also allows the flags without parentheses.
        let mut f = vec![flag(c)?];
        while c.eat(b' ') {
            f.push(flag(c)?);
        }
        f
    };
    Ok(StoreCommand {
        uid,
        set,
        unchanged_since,
        op,
        silent,
        flags,
    })
}

/// Helps tests build literals: `{n}` CRLF then the bytes.
#[cfg(test)]
pub(crate) fn lit(s: &str) -> String {
    format!("{{{}}}\r\n{s}", s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> CommandBody {
        match parse_command(s.as_bytes()) {
            Ok(c) => c.body,
            Err(e) => panic!("{s:?}: {}", e.error),
        }
    }

    fn bad(s: &str) -> String {
        parse_command(s.as_bytes()).unwrap_err().error.to_string()
    }

    #[test]
    fn real_client_forms() {
        // Thunderbird: lower case, LIST-EXTENDED with RETURN.
        let CommandBody::List(l) = ok("61 list (subscribed) \"\" \"*\" return (special-use)")
        else {
            panic!()
        };
        assert!(l.subscribed_only && l.return_special_use && l.extended);
        // iOS: a dotted tag.
        assert_eq!(parse_command(b"8.569 IDLE").unwrap().tag, "8.569");
        // Outlook: mixed-case obsolete RFC822.peek.
        let CommandBody::Fetch(f) = ok("WIR00001 UID fetch 1:* (UID RFC822.SIZE RFC822.peek)")
        else {
            panic!()
        };
        assert!(f.uid && f.items.len() == 3);
        // mbsync.
        let CommandBody::Store(s) = ok("7 UID STORE 3 +FLAGS.SILENT (\\Deleted)") else {
            panic!()
        };
        assert!(s.silent && s.op == StoreOp::Add && s.flags == [Flag::Deleted]);
        // neomutt.
        let CommandBody::Status { items, .. } =
            ok("a0002 STATUS \"INBOX\" (UIDNEXT UIDVALIDITY UNSEEN RECENT MESSAGES)")
        else {
            panic!()
        };
        assert_eq!(items.len(), 5);
        // iPhone Mail 16.5.1.
        let CommandBody::Fetch(f) = ok("5 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 0)") else {
            panic!()
        };
        assert_eq!(f.changed_since, Some(0));
        assert!(f.items.contains(&FetchItem::ModSeq));
    }

    #[test]
    fn literals_inline() {
        let cmd = format!("a LOGIN {} {}", lit("alice"), lit("pa ss"));
        let CommandBody::Login { user, password } = ok(&cmd) else {
            panic!()
        };
        assert_eq!((user.as_str(), password.expose()), ("alice", &b"pa ss"[..]));
    }

    #[test]
    fn sections_and_partials() {
        let CommandBody::Fetch(f) =
            ok("a FETCH 1 (BODY.PEEK[1.2.HEADER.FIELDS (From \"Subject\")]<0.100> BODY[] BODY)")
        else {
            panic!()
        };
        assert_eq!(
            f.items[0],
            FetchItem::Section {
                peek: true,
                section: SectionSpec {
                    path: vec![1, 2],
                    text: SectionText::HeaderFields {
                        names: vec!["From".into(), "Subject".into()],
                        not: false
                    }
                },
                partial: Some((0, 100)),
            }
        );
        assert_eq!(f.items[2], FetchItem::Body);
        assert_eq!(bad("a FETCH 1 (BODY[MIME])"), "bad section");
        assert_eq!(bad("a FETCH 1 BODY[1"), "expected ] after the section");
    }

    #[test]
    fn search_keys_nest() {
        let CommandBody::Search(s) = ok(
            "a UID SEARCH RETURN (MIN COUNT) CHARSET UTF-8 OR (FROM bob SEEN) NOT 1:3 SINCE 1-Feb-2024",
        ) else {
            panic!()
        };
        assert!(s.uid && s.ret.unwrap().min && s.ret.unwrap().count);
        let SearchKey::And(keys) = s.key else {
            panic!()
        };
        assert_eq!(keys.len(), 2);
        assert!(bad("a SEARCH CHARSET KOI8-R ALL").starts_with("[BADCHARSET"));
        let deep = format!("a SEARCH {}ALL", "NOT ".repeat(40));
        assert_eq!(bad(&deep), "search criteria nested too deeply");
    }

    #[test]
    fn select_with_qresync() {
        let CommandBody::Select {
            qresync: Some(q), ..
        } = ok("a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))")
        else {
            panic!()
        };
        assert_eq!((q.uid_validity, q.mod_seq), (67890007, 20050715194045000));
        assert!(q.known_uids.is_some());
        assert!(bad("a SELECT INBOX (FOO)").contains("unknown"));
    }

    #[test]
    fn malformed_commands() {
        assert_eq!(parse_command(b"").unwrap_err().tag, None);
        assert_eq!(parse_command(b"+a NOOP").unwrap_err().tag, None);
        assert_eq!(bad("a NOOP extra"), "unexpected text after the command");
        // Evolution's unescaped quotes.
        assert!(parse_command(b"A00520 SELECT \"*\"INBOX\"\"").is_err());
        assert_eq!(bad("a"), "expected a command after the tag");
    }
}
