//! The notice article a delivered message yields: who sent it, about what, how big, where to
//! open it (an RFC 5092 IMAP URL) and its first lines, as a news article (RFC 5536) any
//! reader shows.

use mail_parser::MessageParser;

use crate::encode::{clean_text, display_name, encode_words};

/// How much of a message is read to write its notice: enough for the header and the first
/// lines of text of any sane mail, and a bounded cost for a 25 MB one.
pub const READ_AT_MOST: usize = 64 * 1024;

/// What a notice says about its mail, from the mail's header and first text part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailFacts {
    /// The sender's display name, decoded, if it has one.
    pub name: Option<String>,
    /// The sender's address (or `nobody@<host>` when the mail names none).
    pub address: String,
    /// The subject, decoded and cleaned, or `(no subject)`.
    pub subject: String,
    /// The mail's own `Date`, if it has a readable one.
    pub date: Option<String>,
    /// Its first lines of text.
    pub first_lines: Vec<String>,
}

impl MailFacts {
    /// Reads the facts from the start of a message (at most [`READ_AT_MOST`] octets of it).
    ///
    /// ```
    /// let facts = notices::MailFacts::read(
    ///     b"From: =?UTF-8?Q?Jos=C3=A9?= <jose@example.org>\r\nSubject: Hola\r\n\r\nLine one\r\n\r\nLine two\r\n",
    ///     "mx.example.com",
    /// );
    /// assert_eq!(facts.name.as_deref(), Some("José"));
    /// assert_eq!(facts.address, "jose@example.org");
    /// assert_eq!(facts.first_lines, ["Line one", "", "Line two"]);
    /// ```
    pub fn read(message: &[u8], hostname: &str) -> MailFacts {
        let message = &message[..message.len().min(READ_AT_MOST)];
        let parsed = MessageParser::default().parse(message);
        let (mut name, mut address) = (None, None);
        let (mut subject, mut date, mut text) = (None, None, None);
        if let Some(m) = &parsed {
            if let Some(first) = m.from().and_then(|a| a.first()) {
                name = first
                    .name
                    .as_deref()
                    .map(|n| clean_text(n, 80))
                    .filter(|n| !n.is_empty());
                address = first.address.as_deref().and_then(clean_address);
            }
            if address.is_none()
                && let Some(rp) = m.return_path().as_text()
            {
                address = clean_address(rp.trim_matches(['<', '>']));
            }
            subject = m.subject().map(|s| clean_text(s, 200));
            date = m.date().map(|d| d.to_rfc822());
            text = m.body_text(0).map(|t| t.into_owned());
        }
        MailFacts {
            name,
            address: address.unwrap_or_else(|| format!("nobody@{hostname}")),
            subject: subject
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "(no subject)".into()),
            date,
            first_lines: first_lines(text.as_deref().unwrap_or("")),
        }
    }

    /// Who sent it, as a reader should see it: the name, or the address when there is none.
    pub fn who(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.address)
    }
}

/// An address fit for a header: no blanks, controls, angle brackets or quotes, one `@`.
fn clean_address(text: &str) -> Option<String> {
    let ok = !text.is_empty()
        && text.len() <= 254
        && text.matches('@').count() == 1
        && !text.starts_with('@')
        && !text.ends_with('@')
        && text
            .chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && !"<>\"(),;:[]\\".contains(c));
    ok.then(|| text.to_owned())
}

/// Up to eight lines (and 1000 characters) of the text, from its first non-empty line, each
/// cleaned and at most 160 characters; blank runs kept to one empty line.
fn first_lines(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut total = 0;
    for raw in text.lines() {
        let line = clean_text(raw, 160);
        if line.is_empty() && out.last().is_none_or(|l| l.is_empty()) {
            continue;
        }
        total += line.chars().count();
        out.push(line);
        if out.len() == 8 || total >= 1000 {
            break;
        }
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out
}

/// Where a notice's mail is and how to reach it.
#[derive(Debug, Clone)]
pub struct Origin<'a> {
    /// The mailbox's owner, as they log in (`alice@example.com`).
    pub user: &'a str,
    /// The Maildir folder (`INBOX`).
    pub folder: &'a str,
    /// The folder's UIDVALIDITY and the message's UID.
    pub uid_validity: u32,
    /// The message's UID.
    pub uid: u32,
    /// Its size in octets.
    pub size: u64,
    /// The IMAP server's host and port for the URL, if IMAP is served.
    pub imap: Option<(&'a str, u16)>,
}

impl Origin<'_> {
    /// The message's IMAP URL (RFC 5092 section 3): the user percent-encoded, then the
    /// mailbox, UIDVALIDITY and UID.
    ///
    /// ```
    /// let o = notices::Origin { user: "alice@example.com", folder: "INBOX", uid_validity: 7, uid: 42, size: 1, imap: Some(("mx.example.com", 143)) };
    /// assert_eq!(o.imap_url().unwrap(), "imap://alice%40example.com@mx.example.com:143/INBOX;UIDVALIDITY=7/;UID=42");
    /// ```
    pub fn imap_url(&self) -> Option<String> {
        let (host, port) = self.imap?;
        Some(format!(
            "imap://{}@{host}:{port}/{};UIDVALIDITY={}/;UID={}",
            percent(self.user),
            percent(self.folder),
            self.uid_validity,
            self.uid
        ))
    }
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
fn percent(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A notice's identity in its group.
#[derive(Debug, Clone)]
pub struct Placement<'a> {
    /// The group (`buzon.mail.example-com.alice`).
    pub group: &'a str,
    /// The article's number in it.
    pub number: u64,
    /// The server's name, for `Path` and `Message-ID`.
    pub hostname: &'a str,
    /// When the mail arrived (Unix seconds): the article's `Date`.
    pub arrived: i64,
}

/// The message-id of notice `number` of `group`: unique as long as the group's numbers are.
pub fn message_id(group: &str, number: u64, hostname: &str) -> String {
    format!("<{number}.{group}@{hostname}>")
}

/// Writes the notice article: header, empty line, body; CRLF line ends, no dot-stuffing.
///
/// No `References`: a notice starts no thread, and RFC 5536 section 3.2.10 does not allow
/// the field empty.
pub fn notice_article(facts: &MailFacts, origin: &Origin<'_>, at: &Placement<'_>) -> Vec<u8> {
    let from = match &facts.name {
        Some(n) => format!("{} <{}>", display_name(n), facts.address),
        None => facts.address.clone(),
    };
    let subject = encode_words(&clean_text(
        &format!("New mail from {}: {}", facts.who(), facts.subject),
        240,
    ));
    let mut a = String::with_capacity(1024);
    let mut field = |name: &str, value: &str| {
        a.push_str(name);
        a.push_str(": ");
        a.push_str(value);
        a.push_str("\r\n");
    };
    field("Path", &format!("{}!not-for-mail", at.hostname));
    field("From", &from);
    field("Newsgroups", at.group);
    field("Subject", &subject);
    field("Date", &nntp_core::syntax::article_date(at.arrived));
    field("Message-ID", &message_id(at.group, at.number, at.hostname));
    field("MIME-Version", "1.0");
    field("Content-Type", "text/plain; charset=UTF-8");
    field("Content-Transfer-Encoding", "8bit");
    a.push_str("\r\n");
    let who = match &facts.name {
        Some(n) => format!("{n} <{}>", facts.address),
        None => facts.address.clone(),
    };
    let mut line = |label: &str, value: &str| {
        a.push_str(&format!("{label:<9}{value}\r\n"));
    };
    line("From:", &who);
    line("Subject:", &facts.subject);
    line("Date:", facts.date.as_deref().unwrap_or("(none given)"));
    line("Size:", &size_text(origin.size));
    line("Folder:", origin.folder);
    if let Some(url) = origin.imap_url() {
        line("Open:", &url);
    }
    if !facts.first_lines.is_empty() {
        a.push_str("\r\n");
        for l in &facts.first_lines {
            a.push_str(l);
            a.push_str("\r\n");
        }
    }
    a.into_bytes()
}

/// `812 octets`, `2.1 KiB (2150 octets)`, `3.4 MiB (3565158 octets)`.
fn size_text(octets: u64) -> String {
    const KIB: f64 = 1024.0;
    let n = octets as f64;
    if octets < 1024 {
        format!("{octets} octets")
    } else if n < KIB * KIB {
        format!("{:.1} KiB ({octets} octets)", n / KIB)
    } else {
        format!("{:.1} MiB ({octets} octets)", n / KIB / KIB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin<'static> {
        Origin {
            user: "alice@example.com",
            folder: "INBOX",
            uid_validity: 1_700_000_000,
            uid: 3,
            size: 2150,
            imap: Some(("mx.example.com", 1143)),
        }
    }

    fn placement() -> Placement<'static> {
        Placement {
            group: "buzon.mail.example-com.alice",
            number: 9,
            hostname: "mx.example.com",
            arrived: 1_796_169_599,
        }
    }

    #[test]
    fn the_whole_notice() {
        let facts = MailFacts::read(
            b"From: Bob <bob@example.org>\r\nSubject: Lunch\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\n\r\n\r\n.see you\r\nat noon\r\n",
            "mx.example.com",
        );
        let text = notice_article(&facts, &origin(), &placement());
        assert_eq!(
            String::from_utf8(text).unwrap(),
            "Path: mx.example.com!not-for-mail\r\n\
             From: Bob <bob@example.org>\r\n\
             Newsgroups: buzon.mail.example-com.alice\r\n\
             Subject: New mail from Bob: Lunch\r\n\
             Date: Tue, 01 Dec 2026 23:59:59 +0000\r\n\
             Message-ID: <9.buzon.mail.example-com.alice@mx.example.com>\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=UTF-8\r\n\
             Content-Transfer-Encoding: 8bit\r\n\
             \r\n\
             From:    Bob <bob@example.org>\r\n\
             Subject: Lunch\r\n\
             Date:    Tue, 1 Dec 2026 10:00:00 +0000\r\n\
             Size:    2.1 KiB (2150 octets)\r\n\
             Folder:  INBOX\r\n\
             Open:    imap://alice%40example.com@mx.example.com:1143/INBOX;UIDVALIDITY=1700000000/;UID=3\r\n\
             \r\n\
             .see you\r\n\
             at noon\r\n"
        );
    }

    #[test]
    fn hostile_headers_stay_inside_their_fields() {
        let facts = MailFacts::read(
            b"From: \"Evil\r\n\tNewsgroups: alt.test\" <evil@example.org>\r\nSubject: =?UTF-8?B?aGkNCk5ld3Nncm91cHM6IGFsdC50ZXN0?=\r\n\r\nx\r\n",
            "mx.example.com",
        );
        let text = String::from_utf8(notice_article(&facts, &origin(), &placement())).unwrap();
        let head = text.split("\r\n\r\n").next().unwrap();
        assert_eq!(
            head.lines()
                .filter(|l| l.starts_with("Newsgroups:"))
                .count(),
            1,
            "{head}"
        );
        assert!(head.lines().all(|l| l.len() <= 998));
    }

    #[test]
    fn a_mail_with_no_header_still_gets_a_notice() {
        let facts = MailFacts::read(b"\r\njust text\r\n", "mx.example.com");
        assert_eq!(facts.address, "nobody@mx.example.com");
        assert_eq!(facts.subject, "(no subject)");
        let text = String::from_utf8(notice_article(&facts, &origin(), &placement())).unwrap();
        assert!(text.contains("Subject: New mail from nobody@mx.example.com: (no subject)\r\n"));
    }

    #[test]
    fn non_ascii_subjects_are_encoded() {
        let facts = MailFacts::read(
            "From: jose@example.org\r\nSubject: Caf\u{e9} \u{2615}\r\n\r\nx\r\n".as_bytes(),
            "h",
        );
        let text = String::from_utf8(notice_article(&facts, &origin(), &placement())).unwrap();
        let subject = text.lines().find(|l| l.starts_with("Subject:")).unwrap();
        assert!(subject.starts_with("Subject: =?UTF-8?B?"), "{subject}");
        assert!(text.is_ascii() || text.split("\r\n\r\n").next().unwrap().is_ascii());
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(size_text(812), "812 octets");
        assert_eq!(size_text(3_565_158), "3.4 MiB (3565158 octets)");
    }
}
