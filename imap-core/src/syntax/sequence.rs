//! Sequence sets (RFC 3501 section 9 `sequence-set`, RFC 5182's `$`): which messages a command
//! names, by sequence number or by UID.

use super::cursor::{Cursor, Result, SyntaxError};

/// One end of a range: a number, or `*` (the largest number in use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqNumber {
    /// A message sequence number or UID.
    Value(u32),
    /// `*`: the last message (its sequence number, or its UID).
    Last,
}

/// A set of messages as the client wrote it: ranges, or `$` (SEARCHRES, RFC 5182) for the
/// result of the last `SEARCH ... RETURN (SAVE)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SequenceSet {
    /// Ranges; `a:b` is the same as `b:a`.
    Ranges(Vec<(SeqNumber, SeqNumber)>),
    /// `$`.
    Saved,
}

impl SequenceSet {
    /// The set of the numbers `1..=last` that it names, ascending and without repeats, where
    /// `*` stands for `last`. An empty mailbox gives an empty result whatever the set.
    ///
    /// ```
    /// use imap_core::syntax::SequenceSet;
    /// let set = SequenceSet::parse(b"2:4,1,*").unwrap();
    /// assert_eq!(set.resolve(6, &[]), [1, 2, 3, 4, 6]);
    /// assert_eq!(SequenceSet::parse(b"5:*").unwrap().resolve(3, &[]), [3]);
    /// ```
    pub fn resolve(&self, last: u32, saved: &[u32]) -> Vec<u32> {
        let ranges = match self {
            SequenceSet::Saved => return saved.iter().copied().filter(|&n| n <= last).collect(),
            SequenceSet::Ranges(r) => r,
        };
        let value = |n: SeqNumber| match n {
            SeqNumber::Value(v) => v,
            SeqNumber::Last => last,
        };
        let mut spans: Vec<(u32, u32)> = ranges
            .iter()
            .filter_map(|&(a, b)| {
                let (lo, hi) = minmax(value(a), value(b));
                let hi = hi.min(last);
                (lo <= hi && lo >= 1).then_some((lo, hi))
            })
            .collect();
        spans.sort_unstable();
        let mut out = Vec::new();
        let mut next = 1;
        for (lo, hi) in spans {
            for n in lo.max(next)..=hi {
                out.push(n);
            }
            next = next.max(hi.saturating_add(1));
        }
        out
    }

    /// Whether `n` is in the set, with `*` standing for `last`; for UID sets, where a UID
    /// range names the UIDs that exist within it.
    pub fn contains(&self, n: u32, last: u32, saved: &[u32]) -> bool {
        match self {
            SequenceSet::Saved => saved.binary_search(&n).is_ok(),
            SequenceSet::Ranges(r) => r.iter().any(|&(a, b)| {
                let v = |x| match x {
                    SeqNumber::Value(v) => v,
                    SeqNumber::Last => last,
                };
                let (lo, hi) = minmax(v(a), v(b));
                (lo..=hi).contains(&n)
            }),
        }
    }

    /// Parses a whole sequence set.
    pub fn parse(text: &[u8]) -> std::result::Result<SequenceSet, SyntaxError> {
        let mut c = Cursor::new(text);
        let set = parse(&mut c)?;
        c.end()?;
        Ok(set)
    }
}

fn minmax(a: u32, b: u32) -> (u32, u32) {
    if a <= b { (a, b) } else { (b, a) }
}

fn seq_number(c: &mut Cursor<'_>) -> Result<SeqNumber> {
    if c.eat(b'*') {
        Ok(SeqNumber::Last)
    } else {
        c.nz_number().map(SeqNumber::Value)
    }
}

pub(crate) fn parse(c: &mut Cursor<'_>) -> Result<SequenceSet> {
    if c.eat(b'$') {
        return Ok(SequenceSet::Saved);
    }
    let mut ranges = Vec::new();
    loop {
        let a = seq_number(c).map_err(|_| SyntaxError::new("bad sequence set"))?;
        let b = if c.eat(b':') {
            seq_number(c).map_err(|_| SyntaxError::new("bad sequence set"))?
        } else {
            a
        };
        ranges.push((a, b));
        if !c.eat(b',') {
            return Ok(SequenceSet::Ranges(ranges));
        }
    }
}

/// Writes `numbers` (ascending) as a compact sequence set: `1:3,7,9:10`.
///
/// ```
/// assert_eq!(imap_core::syntax::compact_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
/// ```
pub fn compact_set(numbers: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < numbers.len() {
        let start = numbers[i];
        let mut end = start;
        while i + 1 < numbers.len() && numbers[i + 1] == end.wrapping_add(1) {
            i += 1;
            end = numbers[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_in_either_order_and_clip() {
        let set = SequenceSet::parse(b"4:2,9:*,1").unwrap();
        assert_eq!(set.resolve(10, &[]), [1, 2, 3, 4, 9, 10]);
        // mbsync's huge upper bound means "to the end".
        let set = SequenceSet::parse(b"1:1000000000").unwrap();
        assert_eq!(set.resolve(3, &[]), [1, 2, 3]);
        assert!(set.resolve(0, &[]).is_empty());
        assert!(SequenceSet::parse(b"0").is_err());
        assert!(SequenceSet::parse(b"1,").is_err());
        assert!(SequenceSet::parse(b"1::2").is_err());
    }

    #[test]
    fn compact_round_trip() {
        let n = [1, 2, 3, 5, 8, 9];
        let set = SequenceSet::parse(compact_set(&n).as_bytes()).unwrap();
        assert_eq!(set.resolve(100, &[]), n);
    }
}
