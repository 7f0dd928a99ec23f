//! The host's side of a replay, as lines of text.

use crate::escape::escape;

/// What the host saw during a replay: one line per event, decision or transport change.
///
/// Payload octets (a message body, a literal, an article) reported across several events are
/// merged into one `data "..."` line, so the log reads the same however the input was cut,
/// even when a UTF-8 character was cut between two reads.
///
/// ```
/// let mut log = transcript::EventLog::default();
/// log.note("rcpt <a@b.example>");
/// log.data(b"Gr\xc3");
/// log.data(b"\xbc\xc3\x9fe\r\n");
/// log.note("end");
/// assert_eq!(log.lines(), ["rcpt <a@b.example>", r#"data "Grüße\r\n""#, "end"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventLog {
    lines: Vec<String>,
    /// While the last line is merged data: its last octets when they start a UTF-8 character
    /// without finishing it (escaped provisionally, as the next data may finish it).
    data_tail: Option<Vec<u8>>,
}

impl EventLog {
    /// Adds a line that is not payload data.
    pub fn note(&mut self, line: impl Into<String>) {
        self.data_tail = None;
        self.lines.push(line.into());
    }

    /// Adds payload octets, merged with the data just before them.
    pub fn data(&mut self, octets: &[u8]) {
        let mut octets = match self.data_tail.take() {
            Some(tail) => {
                let line = self.lines.last_mut().expect("the data line was logged");
                line.truncate(line.len() - escape(&tail).len() - "\"".len());
                [&tail[..], octets].concat()
            }
            None => {
                self.lines.push("data \"".to_owned());
                octets.to_vec()
            }
        };
        let tail = octets.split_off(octets.len() - incomplete_utf8_suffix(&octets));
        let line = self.lines.last_mut().expect("the data line was logged");
        line.push_str(&escape(&octets));
        line.push_str(&escape(&tail));
        line.push('"');
        self.data_tail = Some(tail);
    }

    /// The lines so far.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The lines, ending the log.
    pub fn into_lines(self) -> Vec<String> {
        self.lines
    }
}

/// How many octets at the end of `b` begin a UTF-8 character without completing it (0 to 3).
fn incomplete_utf8_suffix(b: &[u8]) -> usize {
    let continuations = b
        .iter()
        .rev()
        .take(3)
        .take_while(|&&c| (0x80..0xc0).contains(&c))
        .count();
    let Some(&lead) = b.len().checked_sub(continuations + 1).map(|i| &b[i]) else {
        return 0;
    };
    let len = match lead {
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => return 0,
    };
    if continuations + 1 < len {
        continuations + 1
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_utf8_suffixes() {
        assert_eq!(incomplete_utf8_suffix(b""), 0);
        assert_eq!(incomplete_utf8_suffix(b"a"), 0);
        assert_eq!(incomplete_utf8_suffix(b"a\xc3"), 1);
        assert_eq!(incomplete_utf8_suffix(b"a\xc3\xbc"), 0);
        assert_eq!(incomplete_utf8_suffix(b"\xe2\x82"), 2);
        assert_eq!(incomplete_utf8_suffix(b"\xf0\x9f\x98"), 3);
        assert_eq!(incomplete_utf8_suffix(b"\xf0\x9f\x98\x80"), 0);
        assert_eq!(incomplete_utf8_suffix(b"a\x82"), 0);
        assert_eq!(incomplete_utf8_suffix(b"\xff"), 0);
    }

    #[test]
    fn data_reads_the_same_however_it_is_cut() {
        let whole = b"Gr\xc3\xbc\xc3\x9fe \xe2\x82\xac \xff\xe2\x82\r\n";
        let mut one = EventLog::default();
        one.data(whole);
        for at in 0..=whole.len() {
            let mut two = EventLog::default();
            two.data(&whole[..at]);
            two.data(&whole[at..]);
            assert_eq!(two.lines(), one.lines(), "cut at {at}");
        }
        assert_eq!(one.lines(), [r#"data "Grüße € \xff\xe2\x82\r\n""#]);
    }
}
