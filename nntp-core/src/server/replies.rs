//! The text of multi-line replies (RFC 3977 section 3.1.1): lists of groups, header listings,
//! articles, help. Every line that starts with a dot is dot-stuffed.

use std::sync::Arc;

use line_protocol::dot::DotEncoder;

use super::Listing;
use crate::article::Article;
use crate::event::GroupInfo;
use crate::syntax::ListKind;

/// The lines of a multi-line reply, before stuffing.
pub(super) type Block = Vec<String>;

/// `first`, then `lines` dot-stuffed, then the terminating `.`.
pub(super) fn block(out: &mut Vec<u8>, first: &str, lines: &[String]) {
    out.extend_from_slice(first.as_bytes());
    out.extend_from_slice(b"\r\n");
    for l in lines {
        if l.starts_with('.') {
            out.push(b'.');
        }
        out.extend_from_slice(l.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

/// `first`, then the article text made of `parts`, dot-stuffed and terminated.
pub(super) fn text(out: &mut Vec<u8>, first: &str, parts: &[&[u8]]) {
    out.extend_from_slice(first.as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut encoder = DotEncoder::new();
    for p in parts {
        encoder.encode(p, out);
    }
    encoder.finish(out);
}

/// A group as LIST ACTIVE and NEWGROUPS show it: name, high, low, and `n` (no posting).
pub(super) fn active_line(g: &GroupInfo) -> String {
    format!("{} {} {} n", g.name, g.high, g.low)
}

/// The first line and the lines of a LIST that shows the user's groups.
pub(super) fn list(kind: &ListKind, groups: &[GroupInfo]) -> (&'static str, Block) {
    let wanted = |w: &Option<crate::syntax::Wildmat>, g: &GroupInfo| {
        w.as_ref().is_none_or(|w| w.matches(&g.name))
    };
    let pick = |w: &Option<crate::syntax::Wildmat>, f: &dyn Fn(&GroupInfo) -> String| -> Block {
        groups.iter().filter(|g| wanted(w, g)).map(f).collect()
    };
    match kind {
        ListKind::Active(w) => ("215 List of newsgroups follows", pick(w, &active_line)),
        ListKind::Newsgroups(w) => (
            "215 Newsgroup descriptions follow",
            pick(w, &|g| format!("{}\t{}", g.name, g.description)),
        ),
        ListKind::ActiveTimes(w) => (
            "215 Newsgroup creation times follow",
            pick(w, &|g| format!("{} {} {}", g.name, g.created, g.creator)),
        ),
        // RFC 6048 section 2.2: ACTIVE's fields with the count before the status.
        ListKind::Counts(w) => (
            "215 Newsgroups and their article counts follow",
            pick(w, &|g| {
                format!("{} {} {} {} n", g.name, g.high, g.low, g.count)
            }),
        ),
        // RFC 6048 section 2.4: what a new reader should subscribe to, which is every group
        // this user has.
        ListKind::Subscriptions(w) => (
            "215 Recommended subscriptions follow",
            pick(w, &|g| g.name.clone()),
        ),
        _ => ("215 Information follows", Vec::new()),
    }
}

/// The first line and the lines of OVER, HDR, XHDR or XPAT over `articles`.
pub(super) fn listing(
    listing: &Listing,
    articles: &[Arc<Article>],
    by_message_id: bool,
) -> (&'static str, Block) {
    // By message-id, OVER and HDR show number 0 (RFC 3977 8.3.2, 8.5.2); XHDR and XPAT
    // show the message-id itself (RFC 2980 2.6, 2.9).
    let key = |a: &Article, legacy: bool| match (by_message_id, legacy) {
        (false, _) => a.number.to_string(),
        (true, false) => "0".to_owned(),
        (true, true) => a.message_id().unwrap_or_default(),
    };
    match listing {
        Listing::Over { .. } => (
            "224 Overview information follows",
            articles
                .iter()
                .map(|a| a.overview().line(if by_message_id { 0 } else { a.number }))
                .collect(),
        ),
        Listing::Hdr { field, legacy } => (
            if *legacy {
                "221 Header follows"
            } else {
                "225 Headers follow"
            },
            articles
                .iter()
                .map(|a| format!("{} {}", key(a, *legacy), a.hdr(field)))
                .collect(),
        ),
        Listing::XPat { field, patterns } => (
            "221 Header follows",
            articles
                .iter()
                .filter_map(|a| {
                    let value = a.hdr(field);
                    patterns
                        .iter()
                        .any(|p| p.matches(&value))
                        .then(|| format!("{} {value}", key(a, true)))
                })
                .collect(),
        ),
    }
}

/// HELP's text.
pub(super) fn help() -> Block {
    [
        "These groups hold notices of new mail, one group per mailbox; they are read-only.",
        "  ARTICLE|HEAD|BODY|STAT [number|<message-id>]",
        "  AUTHINFO USER name / AUTHINFO PASS password",
        "  CAPABILITIES  DATE  HELP  MODE READER  QUIT  STARTTLS",
        "  GROUP newsgroup  LISTGROUP [newsgroup [range]]  NEXT  LAST",
        "  LIST [ACTIVE|ACTIVE.TIMES|COUNTS|NEWSGROUPS|SUBSCRIPTIONS [wildmat]]",
        "  LIST HEADERS|MOTD|OVERVIEW.FMT",
        "  OVER|XOVER [range]  HDR|XHDR field [range|<message-id>]",
        "  XPAT field range|<message-id> pattern...",
        "  NEWGROUPS [yy]yymmdd hhmmss [GMT]  NEWNEWS wildmat [yy]yymmdd hhmmss [GMT]",
    ]
    .map(String::from)
    .to_vec()
}

/// LIST MOTD's text.
pub(super) fn motd() -> Block {
    [
        "Each article here is a notice of a mail delivered to your mailbox.",
        "A notice goes away when its mail is read or deleted over IMAP.",
    ]
    .map(String::from)
    .to_vec()
}
