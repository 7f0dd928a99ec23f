//! The overview database's format (RFC 3977 section 8.4): the fields OVER returns, in the
//! order `LIST OVERVIEW.FMT` announces them, one line per article.

/// What `LIST OVERVIEW.FMT` answers, line by line: the seven fields RFC 3977 8.4.1 requires,
/// in its order, with the last two in their RFC 2980 spelling (`Bytes:`, `Lines:`), which
/// 8.4.2 allows for compatibility and INN sends: slrn turns XOVER off when it sees
/// `:bytes` ("OVERVIEW.FMT not RFC 2980 compliant").
pub const OVERVIEW_FMT: [&str; 7] = [
    "Subject:",
    "From:",
    "Date:",
    "Message-ID:",
    "References:",
    "Bytes:",
    "Lines:",
];

/// The longest overview line we send, CRLF excluded. Python's `nntplib` refuses lines over
/// 2048 octets (its `_MAXLINE`); the subject and sender are shortened to fit.
pub const MAX_OVERVIEW_LINE: usize = 2000;

/// One article's overview fields, as decoded header text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overview {
    /// `Subject`.
    pub subject: String,
    /// `From`.
    pub from: String,
    /// `Date`.
    pub date: String,
    /// `Message-ID`, with its angle brackets.
    pub message_id: String,
    /// `References`.
    pub references: String,
    /// The article's size in octets.
    pub bytes: u64,
    /// Its body's lines.
    pub lines: u64,
}

impl Overview {
    /// The OVER line for article `number`: tab-separated, each tab, CR and LF inside a field
    /// turned into a space (RFC 3977 8.3.2), at most [`MAX_OVERVIEW_LINE`] octets.
    ///
    /// ```
    /// use nntp_core::Overview;
    /// let o = Overview {
    ///     subject: "New mail\tfrom bob".into(),
    ///     from: "bob@example.org".into(),
    ///     date: "Wed, 02 Dec 2026 21:50:53 +0000".into(),
    ///     message_id: "<1@buzon>".into(),
    ///     bytes: 812,
    ///     lines: 9,
    ///     ..Overview::default()
    /// };
    /// assert_eq!(o.line(3), "3\tNew mail from bob\tbob@example.org\tWed, 02 Dec 2026 21:50:53 +0000\t<1@buzon>\t\t812\t9");
    /// ```
    pub fn line(&self, number: u64) -> String {
        let date = clean(&self.date, 200);
        let message_id = clean(&self.message_id, 250);
        let tail = format!("{}\t{}", self.bytes, self.lines);
        let fixed = number.to_string().len() + date.len() + message_id.len() + tail.len() + 7;
        // What is left goes to the subject first (readers show it), then the sender, then
        // References, of which the last ids (the nearest parents) are kept.
        let mut room = MAX_OVERVIEW_LINE.saturating_sub(fixed);
        let subject = clean(&self.subject, room / 2 + room / 4);
        room -= subject.len();
        let from = clean(&self.from, room);
        room -= from.len();
        let mut references = clean(&self.references, usize::MAX);
        if references.len() > room {
            let over = references.len() - room;
            // A character boundary at or after the cut: ids are ASCII, but a field may not be.
            let from_end = (over..=references.len())
                .find(|&k| references.is_char_boundary(k))
                .unwrap_or(references.len());
            references = references[from_end..]
                .find(' ')
                .map_or(String::new(), |i| references[from_end + i + 1..].to_owned());
        }
        format!("{number}\t{subject}\t{from}\t{date}\t{message_id}\t{references}\t{tail}")
    }
}

/// The field with tabs, CR and LF as spaces, cut at a character boundary to `max` octets.
fn clean(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars() {
        let c = if matches!(c, '\t' | '\r' | '\n') {
            ' '
        } else {
            c
        };
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_fields_are_cut_to_fit_nntplib() {
        let o = Overview {
            subject: "é".repeat(3000),
            from: "f".repeat(3000),
            date: "Wed, 02 Dec 2026 21:50:53 +0000".into(),
            message_id: "<1@b>".into(),
            references: (0..400)
                .map(|i| format!("<{i}@x>"))
                .collect::<Vec<_>>()
                .join(" "),
            bytes: 1,
            lines: 1,
        };
        let line = o.line(12_345);
        assert!(line.len() <= MAX_OVERVIEW_LINE, "{}", line.len());
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 8);
        assert_eq!(fields[0], "12345");
        assert_eq!(fields[4], "<1@b>");
        assert_eq!((fields[6], fields[7]), ("1", "1"));
        assert!(fields[1].starts_with("éé") && fields[2].starts_with("ff"));
        // With a short subject and sender, References keeps its last ids, cut between two.
        let o = Overview {
            subject: "s".into(),
            from: "f".into(),
            ..o
        };
        let line = o.line(1);
        assert!(line.len() <= MAX_OVERVIEW_LINE);
        let refs = line.split('\t').nth(5).unwrap();
        assert!(
            refs.ends_with(" <399@x>") && refs.starts_with('<'),
            "{refs}"
        );
        assert!(refs.len() > 1500);
    }

    #[test]
    fn line_breaks_inside_fields_become_spaces() {
        let o = Overview {
            subject: "a\r\n\tb".into(),
            ..Overview::default()
        };
        assert_eq!(o.line(1), "1\ta   b\t\t\t\t\t0\t0");
    }
}
