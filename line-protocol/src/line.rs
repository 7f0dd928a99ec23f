//! Command lines with a length limit: SMTP (RFC 5321 section 4.5.3.1.4), NNTP (RFC 3977
//! section 3.1), IMAP command lines before their literals.
//!
//! A line ends at LF (a CR before it is removed; a bare LF is tolerated outside message data,
//! where no smuggling risk lives). A line longer than the limit is not kept: it is dropped as it
//! arrives and reported once its end is seen ([`Next::TooLong`]), so the session stays in step
//! without buffering it; a "line" that runs on far past any sane length
//! ([`Next::GiveUp`]) is a peer not speaking the protocol at all. The outcome depends only on
//! the bytes, never on how they were cut into reads.

/// Reads lines from the front of a buffer.
///
/// ```
/// use line_protocol::line::{LineReader, Next};
///
/// let mut r = LineReader::new(16, 64);
/// assert_eq!(r.next(b"NOOP\r\nQU"), Next::Line { line: b"NOOP", consumed: 6 });
/// assert_eq!(r.next(b"QU"), Next::Incomplete);
/// // Too long: dropped as it comes, answered once at its end.
/// assert_eq!(r.next(&[b'x'; 20]), Next::Skipping { consumed: 20 });
/// assert_eq!(r.next(b"xx\r\nNOOP\r\n"), Next::TooLong { consumed: 4 });
/// assert_eq!(r.next(b"NOOP\r\n"), Next::Line { line: b"NOOP", consumed: 6 });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineReader {
    limit: usize,
    give_up_after: usize,
    /// Octets of an over-long line dropped so far.
    skipped: Option<usize>,
}

/// What [`LineReader::next`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next<'a> {
    /// A whole line, without its CRLF (or LF); `consumed` includes the line end.
    Line {
        /// The line's text.
        line: &'a [u8],
        /// Octets taken from the input.
        consumed: usize,
    },
    /// No line end yet and the line is within the limit: keep the input, offer it again with
    /// more appended.
    Incomplete,
    /// Part of an over-long line, dropped; nothing to answer yet.
    Skipping {
        /// Octets taken from the input.
        consumed: usize,
    },
    /// The end of an over-long line: answer it (SMTP: `500 5.5.2 Line too long`).
    TooLong {
        /// Octets taken from the input.
        consumed: usize,
    },
    /// The line has run past `give_up_after` octets: the peer is not speaking the protocol.
    GiveUp {
        /// Octets taken from the input.
        consumed: usize,
    },
}

impl LineReader {
    /// Lines of at most `limit` octets, line end included; a line over `give_up_after` octets
    /// ends the conversation.
    pub fn new(limit: usize, give_up_after: usize) -> Self {
        LineReader {
            limit,
            give_up_after,
            skipped: None,
        }
    }

    /// The limit, line end included.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Looks for the next line at the front of `input`.
    pub fn next<'a>(&mut self, input: &'a [u8]) -> Next<'a> {
        let lf = memchr::memchr(b'\n', input);
        let available = lf.map_or(input.len(), |lf| lf + 1);
        let so_far = self.skipped.unwrap_or(0) + available;
        if so_far > self.give_up_after {
            // Decided on the line's length alone, so the outcome does not depend on how the
            // input was cut.
            self.skipped = None;
            return Next::GiveUp {
                consumed: available,
            };
        }
        let Some(lf) = lf else {
            if input.len() >= self.limit || self.skipped.is_some() {
                // Over the limit with no end in sight: drop what we have, keep skipping until
                // the line ends, then answer once.
                self.skipped = Some(so_far);
                return Next::Skipping {
                    consumed: input.len(),
                };
            }
            return Next::Incomplete;
        };
        let consumed = lf + 1;
        if self.skipped.take().is_some() || consumed > self.limit {
            return Next::TooLong { consumed };
        }
        let line = &input[..lf];
        Next::Line {
            line: line.strip_suffix(b"\r").unwrap_or(line),
            consumed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `size`, keeping what was not consumed, and lists the outcomes.
    fn outcomes(input: &[u8], size: usize) -> Vec<String> {
        let mut r = LineReader::new(8, 32);
        let mut kept = Vec::new();
        let mut out = Vec::new();
        for piece in input.chunks(size) {
            kept.extend_from_slice(piece);
            loop {
                let (what, used) = match r.next(&kept) {
                    Next::Line { line, consumed } => {
                        (format!("line {}", String::from_utf8_lossy(line)), consumed)
                    }
                    Next::Incomplete => break,
                    Next::Skipping { consumed } => (String::new(), consumed),
                    Next::TooLong { consumed } => ("too long".to_owned(), consumed),
                    Next::GiveUp { consumed } => ("give up".to_owned(), consumed),
                };
                kept.drain(..used);
                if !what.is_empty() {
                    out.push(what);
                }
                if kept.is_empty() {
                    break;
                }
            }
        }
        out
    }

    #[test]
    fn the_outcome_does_not_depend_on_the_cuts() {
        let input = b"ab\r\nc\nlonger than eight\r\nok\r\n";
        let whole = outcomes(input, input.len());
        assert_eq!(whole, ["line ab", "line c", "too long", "line ok"]);
        for size in 1..input.len() {
            assert_eq!(outcomes(input, size), whole, "pieces of {size}");
        }
        let endless = [b'x'; 40];
        for size in [1, 5, 40] {
            assert_eq!(outcomes(&endless, size), ["give up"], "pieces of {size}");
        }
    }

    #[test]
    fn the_limit_counts_the_line_end() {
        let mut r = LineReader::new(6, 100);
        assert_eq!(
            r.next(b"NOOP\r\n"),
            Next::Line {
                line: b"NOOP",
                consumed: 6
            }
        );
        assert_eq!(r.next(b"NOOPX\r\n"), Next::TooLong { consumed: 7 });
    }
}
