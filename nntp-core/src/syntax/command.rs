//! NNTP commands (RFC 3977, AUTHINFO from RFC 4643, STARTTLS from RFC 4642, and the RFC 2980
//! forms readers still send: XOVER, XHDR, XPAT). Keywords are case-insensitive (3977 section
//! 3.1); arguments are separated by one or more spaces or tabs.

use std::fmt;

use super::{NewsDate, Range, Wildmat};

/// The longest command line, CRLF included (RFC 3977 section 3.1).
pub const MAX_COMMAND_LINE: usize = 512;

/// An article named by number in the current group, or by message-id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArticleRef {
    /// An article number.
    Number(u64),
    /// A message-id, with its angle brackets.
    MessageId(String),
}

/// What OVER, HDR and XPAT look at: a range in the current group, or one message-id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Articles of the current group.
    Range(Range),
    /// One article anywhere.
    MessageId(String),
}

/// The LIST keywords (RFC 3977 section 7.6, RFC 6048).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListKind {
    /// `LIST` or `LIST ACTIVE [wildmat]`.
    Active(Option<Wildmat>),
    /// `LIST NEWSGROUPS [wildmat]`.
    Newsgroups(Option<Wildmat>),
    /// `LIST ACTIVE.TIMES [wildmat]`.
    ActiveTimes(Option<Wildmat>),
    /// `LIST COUNTS [wildmat]` (RFC 6048 section 2.2).
    Counts(Option<Wildmat>),
    /// `LIST SUBSCRIPTIONS [wildmat]` (RFC 6048 section 2.4).
    Subscriptions(Option<Wildmat>),
    /// `LIST OVERVIEW.FMT`.
    OverviewFmt,
    /// `LIST HEADERS [MSGID|RANGE]`.
    Headers(Option<HeadersFor>),
    /// `LIST MOTD` (RFC 6048 section 2.5).
    Motd,
    /// `LIST DISTRIB.PATS`: known, and answered as not kept here.
    DistribPats,
}

/// The argument of `LIST HEADERS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadersFor {
    /// `MSGID`: fields HDR can give for a message-id.
    MessageId,
    /// `RANGE`: fields HDR can give for a range.
    Range,
}

/// An AUTHINFO PASS argument; never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(pub String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// A command a client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `CAPABILITIES [keyword]`.
    Capabilities,
    /// `MODE READER`.
    ModeReader,
    /// `QUIT`.
    Quit,
    /// `HELP`.
    Help,
    /// `DATE`.
    Date,
    /// `GROUP name`.
    Group(String),
    /// `LISTGROUP [group [range]]`.
    ListGroup {
        /// The group, or the current one.
        group: Option<String>,
        /// The numbers wanted (all when absent).
        range: Option<Range>,
    },
    /// `ARTICLE [n|<id>]`.
    Article(Option<ArticleRef>),
    /// `HEAD [n|<id>]`.
    Head(Option<ArticleRef>),
    /// `BODY [n|<id>]`.
    Body(Option<ArticleRef>),
    /// `STAT [n|<id>]`.
    Stat(Option<ArticleRef>),
    /// `NEXT`.
    Next,
    /// `LAST`.
    Last,
    /// `OVER [range|<id>]`, or XOVER (which knows only ranges).
    Over {
        /// What to look at; the current article when absent.
        target: Option<Target>,
        /// Sent as XOVER (RFC 2980), whose readers expect `224` and no lines for an empty
        /// range.
        legacy: bool,
    },
    /// `HDR field [range|<id>]`, or XHDR.
    Hdr {
        /// The header field (or `:bytes`, `:lines`).
        field: String,
        /// What to look at; the current article when absent.
        target: Option<Target>,
        /// Sent as XHDR (RFC 2980 2.6), answered `221` instead of `225`.
        legacy: bool,
    },
    /// `XPAT field range|<id> pattern...` (RFC 2980 section 2.9).
    XPat {
        /// The header field.
        field: String,
        /// What to look at.
        target: Target,
        /// Patterns, any of which may match (each a wildmat).
        patterns: Vec<Wildmat>,
    },
    /// `NEWGROUPS date time [GMT]`.
    NewGroups(NewsDate),
    /// `NEWNEWS wildmat date time [GMT]`.
    NewNews(Wildmat, NewsDate),
    /// `LIST ...`.
    List(ListKind),
    /// `POST`.
    Post,
    /// `IHAVE <id>`.
    Ihave(String),
    /// `AUTHINFO USER name`.
    AuthUser(String),
    /// `AUTHINFO PASS password`.
    AuthPass(Password),
    /// `STARTTLS`.
    StartTls,
}

/// Why a line is not a command we can run: `500` for an unknown command, `501` for a known
/// one with bad arguments (RFC 3977 section 3.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// No such command (or a LIST keyword we do not know: RFC 3977 7.6.1 says 501 for
    /// that, which is `Syntax`).
    Unknown,
    /// The arguments are wrong; the text says how.
    Syntax(&'static str),
}

impl Command {
    /// Parses one command line, without its CRLF.
    ///
    /// ```
    /// use nntp_core::syntax::{ArticleRef, Command, CommandError, Range};
    /// assert_eq!(Command::parse("group buzon.mail.example-com.alice"),
    ///            Ok(Command::Group("buzon.mail.example-com.alice".into())));
    /// assert_eq!(Command::parse("ARTICLE <a@b>"),
    ///            Ok(Command::Article(Some(ArticleRef::MessageId("<a@b>".into())))));
    /// assert_eq!(Command::parse("LISTGROUP g 3-"),
    ///            Ok(Command::ListGroup { group: Some("g".into()), range: Some(Range { first: 3, last: None }) }));
    /// assert_eq!(Command::parse("FROB"), Err(CommandError::Unknown));
    /// assert!(matches!(Command::parse("GROUP"), Err(CommandError::Syntax(_))));
    /// ```
    pub fn parse(line: &str) -> Result<Command, CommandError> {
        let words: Vec<&str> = line.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
        let Some((verb, args)) = words.split_first() else {
            return Err(CommandError::Unknown);
        };
        let verb = verb.to_ascii_uppercase();
        let none = |c: Command| {
            if args.is_empty() {
                Ok(c)
            } else {
                Err(CommandError::Syntax("this command takes no arguments"))
            }
        };
        match verb.as_str() {
            "CAPABILITIES" => match args {
                [] | [_] => Ok(Command::Capabilities),
                _ => Err(CommandError::Syntax("CAPABILITIES [keyword]")),
            },
            "MODE" => match args {
                [m] if m.eq_ignore_ascii_case("READER") => Ok(Command::ModeReader),
                _ => Err(CommandError::Syntax("MODE READER")),
            },
            "QUIT" => none(Command::Quit),
            "HELP" => none(Command::Help),
            "DATE" => none(Command::Date),
            "NEXT" => none(Command::Next),
            "LAST" => none(Command::Last),
            "POST" => none(Command::Post),
            "STARTTLS" => none(Command::StartTls),
            "GROUP" => match args {
                [g] => Ok(Command::Group(group_name(g)?)),
                _ => Err(CommandError::Syntax("GROUP newsgroup")),
            },
            "LISTGROUP" => match args {
                [] => Ok(Command::ListGroup {
                    group: None,
                    range: None,
                }),
                [g] => Ok(Command::ListGroup {
                    group: Some(group_name(g)?),
                    range: None,
                }),
                [g, r] => Ok(Command::ListGroup {
                    group: Some(group_name(g)?),
                    range: Some(Range::parse(r).ok_or(CommandError::Syntax("bad range"))?),
                }),
                _ => Err(CommandError::Syntax("LISTGROUP [newsgroup [range]]")),
            },
            "ARTICLE" => article_ref(args).map(Command::Article),
            "HEAD" => article_ref(args).map(Command::Head),
            "BODY" => article_ref(args).map(Command::Body),
            "STAT" => article_ref(args).map(Command::Stat),
            "OVER" | "XOVER" => {
                let legacy = verb == "XOVER";
                match args {
                    [] => Ok(Command::Over {
                        target: None,
                        legacy,
                    }),
                    [t] => Ok(Command::Over {
                        target: Some(target(t, !legacy)?),
                        legacy,
                    }),
                    _ => Err(CommandError::Syntax("OVER [range|message-id]")),
                }
            }
            "HDR" | "XHDR" => match args {
                [f] => Ok(Command::Hdr {
                    field: field_name(f)?,
                    target: None,
                    legacy: verb == "XHDR",
                }),
                [f, t] => Ok(Command::Hdr {
                    field: field_name(f)?,
                    target: Some(target(t, true)?),
                    legacy: verb == "XHDR",
                }),
                _ => Err(CommandError::Syntax("HDR field [range|message-id]")),
            },
            "XPAT" => match args {
                [f, t, pats @ ..] if !pats.is_empty() => Ok(Command::XPat {
                    field: field_name(f)?,
                    target: target(t, true)?,
                    patterns: pats
                        .iter()
                        .map(|p| Wildmat::parse(p).ok_or(CommandError::Syntax("bad pattern")))
                        .collect::<Result<_, _>>()?,
                }),
                _ => Err(CommandError::Syntax(
                    "XPAT field range|message-id pattern...",
                )),
            },
            "NEWGROUPS" => match args {
                [d, t] => Ok(Command::NewGroups(date(d, t)?)),
                [d, t, g] if g.eq_ignore_ascii_case("GMT") => Ok(Command::NewGroups(date(d, t)?)),
                _ => Err(CommandError::Syntax("NEWGROUPS date time [GMT]")),
            },
            "NEWNEWS" => match args {
                [w, d, t] => Ok(Command::NewNews(wildmat(w)?, date(d, t)?)),
                [w, d, t, g] if g.eq_ignore_ascii_case("GMT") => {
                    Ok(Command::NewNews(wildmat(w)?, date(d, t)?))
                }
                _ => Err(CommandError::Syntax("NEWNEWS wildmat date time [GMT]")),
            },
            "LIST" => list(args).map(Command::List),
            "IHAVE" => match args {
                [id] if is_message_id(id) => Ok(Command::Ihave((*id).to_owned())),
                _ => Err(CommandError::Syntax("IHAVE message-id")),
            },
            "AUTHINFO" => match args {
                [k, user] if k.eq_ignore_ascii_case("USER") => {
                    Ok(Command::AuthUser((*user).to_owned()))
                }
                // A password may hold spaces: everything after "PASS " is it (RFC 4643 2.3.2
                // forbids that, but clients send it and refusing it only locks users out).
                [k, _, ..] if k.eq_ignore_ascii_case("PASS") => {
                    Ok(Command::AuthPass(Password(after_words(line, 2).to_owned())))
                }
                _ => Err(CommandError::Syntax(
                    "AUTHINFO USER name | AUTHINFO PASS password",
                )),
            },
            _ => Err(CommandError::Unknown),
        }
    }
}

/// The text of `line` after its first `n` words and the blanks after them.
fn after_words(line: &str, n: usize) -> &str {
    let mut rest = line.trim_start_matches([' ', '\t']);
    for _ in 0..n {
        let end = rest.find([' ', '\t']).unwrap_or(rest.len());
        rest = rest[end..].trim_start_matches([' ', '\t']);
    }
    rest
}

fn article_ref(args: &[&str]) -> Result<Option<ArticleRef>, CommandError> {
    match args {
        [] => Ok(None),
        [a] if is_message_id(a) => Ok(Some(ArticleRef::MessageId((*a).to_owned()))),
        [a] => match Range::parse(a) {
            Some(r) if r.last == Some(r.first) => Ok(Some(ArticleRef::Number(r.first))),
            _ => Err(CommandError::Syntax("an article number or a message-id")),
        },
        _ => Err(CommandError::Syntax("one article number or message-id")),
    }
}

fn target(text: &str, message_id_allowed: bool) -> Result<Target, CommandError> {
    if is_message_id(text) {
        return if message_id_allowed {
            Ok(Target::MessageId(text.to_owned()))
        } else {
            Err(CommandError::Syntax("XOVER takes a range"))
        };
    }
    Range::parse(text)
        .map(Target::Range)
        .ok_or(CommandError::Syntax("a range or a message-id"))
}

fn list(args: &[&str]) -> Result<ListKind, CommandError> {
    let Some((keyword, rest)) = args.split_first() else {
        return Ok(ListKind::Active(None));
    };
    let pattern = || -> Result<Option<Wildmat>, CommandError> {
        match rest {
            [] => Ok(None),
            [w] => wildmat(w).map(Some),
            _ => Err(CommandError::Syntax("one wildmat at most")),
        }
    };
    let bare = |k: ListKind| {
        if rest.is_empty() {
            Ok(k)
        } else {
            Err(CommandError::Syntax("this LIST keyword takes no argument"))
        }
    };
    match keyword.to_ascii_uppercase().as_str() {
        "ACTIVE" => pattern().map(ListKind::Active),
        "NEWSGROUPS" => pattern().map(ListKind::Newsgroups),
        "ACTIVE.TIMES" => pattern().map(ListKind::ActiveTimes),
        "COUNTS" => pattern().map(ListKind::Counts),
        "SUBSCRIPTIONS" => pattern().map(ListKind::Subscriptions),
        "OVERVIEW.FMT" => bare(ListKind::OverviewFmt),
        "MOTD" => bare(ListKind::Motd),
        "DISTRIB.PATS" => bare(ListKind::DistribPats),
        "HEADERS" => match rest {
            [] => Ok(ListKind::Headers(None)),
            [a] if a.eq_ignore_ascii_case("MSGID") => {
                Ok(ListKind::Headers(Some(HeadersFor::MessageId)))
            }
            [a] if a.eq_ignore_ascii_case("RANGE") => {
                Ok(ListKind::Headers(Some(HeadersFor::Range)))
            }
            _ => Err(CommandError::Syntax("LIST HEADERS [MSGID|RANGE]")),
        },
        _ => Err(CommandError::Syntax("unknown LIST keyword")),
    }
}

fn wildmat(text: &str) -> Result<Wildmat, CommandError> {
    Wildmat::parse(text).ok_or(CommandError::Syntax("bad wildmat"))
}

fn date(d: &str, t: &str) -> Result<NewsDate, CommandError> {
    NewsDate::parse(d, t).ok_or(CommandError::Syntax(
        "date is yymmdd or yyyymmdd, time hhmmss",
    ))
}

/// A header field name as HDR takes it: printable ASCII without `:` (except the `:bytes` and
/// `:lines` metadata items of RFC 3977 8.1).
fn field_name(text: &str) -> Result<String, CommandError> {
    let meta = text.eq_ignore_ascii_case(":bytes") || text.eq_ignore_ascii_case(":lines");
    if meta || (text.bytes().all(|b| b.is_ascii_graphic() && b != b':')) {
        Ok(text.to_owned())
    } else {
        Err(CommandError::Syntax("bad header field name"))
    }
}

/// A newsgroup name (RFC 3977 section 4.1's wildmat-exact characters, which exclude the
/// wildmat specials).
fn group_name(text: &str) -> Result<String, CommandError> {
    let ok = !text.is_empty()
        && text.len() <= 497
        && text.chars().all(|c| {
            !c.is_control() && !matches!(c, ' ' | '!' | '*' | ',' | '?' | '[' | '\\' | ']')
        });
    if ok {
        Ok(text.to_owned())
    } else {
        Err(CommandError::Syntax("bad newsgroup name"))
    }
}

/// RFC 3977 section 3.6: `<`, then printable ASCII without `>`, then `>`, at most 250 octets.
pub fn is_message_id(text: &str) -> bool {
    text.len() >= 3
        && text.len() <= 250
        && text.starts_with('<')
        && text.ends_with('>')
        && text[1..text.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'>')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_are_case_insensitive_and_blanks_may_repeat() {
        assert_eq!(Command::parse("mode reader"), Ok(Command::ModeReader));
        assert_eq!(Command::parse("Mode\tReader"), Ok(Command::ModeReader));
        assert_eq!(
            Command::parse("xover 1-5"),
            Ok(Command::Over {
                target: Some(Target::Range(Range {
                    first: 1,
                    last: Some(5)
                })),
                legacy: true
            })
        );
        assert_eq!(
            Command::parse("list  active  buzon.*"),
            Ok(Command::List(ListKind::Active(Some(
                Wildmat::parse("buzon.*").unwrap()
            ))))
        );
        assert_eq!(
            Command::parse("LIST"),
            Ok(Command::List(ListKind::Active(None)))
        );
    }

    #[test]
    fn slrn_sends_two_digit_years() {
        let Ok(Command::NewGroups(d)) = Command::parse("NEWGROUPS 261130 120000 GMT") else {
            panic!("not parsed");
        };
        assert_eq!(d.full_year(2026), 2026);
        assert!(Command::parse("NEWNEWS buzon.* 20261130 120000").is_ok());
        assert!(matches!(
            Command::parse("NEWGROUPS 261130"),
            Err(CommandError::Syntax(_))
        ));
        assert!(matches!(
            Command::parse("NEWGROUPS 261130 120000 UTC"),
            Err(CommandError::Syntax(_))
        ));
    }

    #[test]
    fn passwords_keep_their_spaces_and_never_show() {
        let c = Command::parse("AUTHINFO PASS two words").unwrap();
        assert_eq!(c, Command::AuthPass(Password("two words".into())));
        assert!(!format!("{c:?}").contains("two"));
        assert_eq!(
            Command::parse("authinfo user alice"),
            Ok(Command::AuthUser("alice".into()))
        );
        assert!(matches!(
            Command::parse("AUTHINFO SASL PLAIN"),
            Err(CommandError::Syntax(_))
        ));
    }

    #[test]
    fn articles_by_number_or_message_id() {
        assert_eq!(Command::parse("STAT"), Ok(Command::Stat(None)));
        assert_eq!(
            Command::parse("HEAD 12"),
            Ok(Command::Head(Some(ArticleRef::Number(12))))
        );
        assert!(matches!(
            Command::parse("BODY 1-2"),
            Err(CommandError::Syntax(_))
        ));
        assert!(matches!(
            Command::parse("BODY <a b>"),
            Err(CommandError::Syntax(_))
        ));
        assert!(matches!(
            Command::parse("XOVER <a@b>"),
            Err(CommandError::Syntax(_))
        ));
        assert_eq!(
            Command::parse("OVER <a@b>"),
            Ok(Command::Over {
                target: Some(Target::MessageId("<a@b>".into())),
                legacy: false
            })
        );
        assert!(!is_message_id("<>"));
        assert!(!is_message_id(&format!("<{}>", "a".repeat(249))));
    }

    #[test]
    fn hdr_and_xpat() {
        assert_eq!(
            Command::parse("XHDR subject 1-"),
            Ok(Command::Hdr {
                field: "subject".into(),
                target: Some(Target::Range(Range {
                    first: 1,
                    last: None
                })),
                legacy: true
            })
        );
        assert!(Command::parse("HDR :bytes 3").is_ok());
        assert!(matches!(
            Command::parse("HDR a:b"),
            Err(CommandError::Syntax(_))
        ));
        let Ok(Command::XPat { patterns, .. }) = Command::parse("XPAT Subject 1-9 *mail* *alice*")
        else {
            panic!("not parsed");
        };
        assert_eq!(patterns.len(), 2);
        assert!(matches!(
            Command::parse("XPAT Subject 1-9"),
            Err(CommandError::Syntax(_))
        ));
    }

    #[test]
    fn list_keywords() {
        assert_eq!(
            Command::parse("LIST OVERVIEW.FMT"),
            Ok(Command::List(ListKind::OverviewFmt))
        );
        assert_eq!(
            Command::parse("list headers range"),
            Ok(Command::List(ListKind::Headers(Some(HeadersFor::Range))))
        );
        assert_eq!(
            Command::parse("LIST SUBSCRIPTIONS"),
            Ok(Command::List(ListKind::Subscriptions(None)))
        );
        assert!(matches!(
            Command::parse("LIST OVERVIEW.FMT x"),
            Err(CommandError::Syntax(_))
        ));
        assert!(matches!(
            Command::parse("LIST FROBS"),
            Err(CommandError::Syntax(_))
        ));
    }

    #[test]
    fn groups_and_bad_names() {
        assert_eq!(
            Command::parse("LISTGROUP"),
            Ok(Command::ListGroup {
                group: None,
                range: None
            })
        );
        assert!(matches!(
            Command::parse("GROUP a*b"),
            Err(CommandError::Syntax(_))
        ));
        assert!(matches!(
            Command::parse("GROUP a b"),
            Err(CommandError::Syntax(_))
        ));
        assert!(matches!(
            Command::parse("LISTGROUP g x-y"),
            Err(CommandError::Syntax(_))
        ));
        assert_eq!(Command::parse(""), Err(CommandError::Unknown));
        assert_eq!(
            Command::parse("QUIT now"),
            Err(CommandError::Syntax("this command takes no arguments"))
        );
    }
}
