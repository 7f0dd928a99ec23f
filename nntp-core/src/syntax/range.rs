//! Article ranges (RFC 3977 section 6.1.4 LISTGROUP, 8.3 OVER, 8.5 HDR): `n`, `n-` and `n-m`.

use std::fmt;

/// Article numbers from `first` to `last` inclusive (`last` is `None` for `n-`: to the end).
///
/// ```
/// use nntp_core::syntax::Range;
/// assert_eq!(Range::parse("3-7"), Some(Range { first: 3, last: Some(7) }));
/// assert_eq!(Range::parse("12-"), Some(Range { first: 12, last: None }));
/// assert_eq!(Range::parse("5"), Some(Range::single(5)));
/// assert!(Range::parse("7-3").unwrap().is_empty());
/// assert_eq!(Range::parse("x"), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The first number.
    pub first: u64,
    /// The last number, or `None` for "and every later one".
    pub last: Option<u64>,
}

/// RFC 3977 section 6: article numbers have at most 16 digits.
const MAX_DIGITS: usize = 16;

impl Range {
    /// Just article `n`.
    pub fn single(n: u64) -> Range {
        Range {
            first: n,
            last: Some(n),
        }
    }

    /// Parses `n`, `n-` or `n-m`; `None` if it is none of these.
    pub fn parse(text: &str) -> Option<Range> {
        let number = |s: &str| {
            (!s.is_empty() && s.len() <= MAX_DIGITS && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        match text.split_once('-') {
            None => number(text).map(Range::single),
            Some((a, "")) => Some(Range {
                first: number(a)?,
                last: None,
            }),
            Some((a, b)) => Some(Range {
                first: number(a)?,
                last: Some(number(b)?),
            }),
        }
    }

    /// Whether `n` is in the range.
    pub fn contains(&self, n: u64) -> bool {
        n >= self.first && self.last.is_none_or(|l| n <= l)
    }

    /// A range whose end is before its start holds nothing (RFC 3977 8.3.2: "an empty range").
    pub fn is_empty(&self) -> bool {
        self.last.is_some_and(|l| l < self.first)
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.last {
            Some(l) if l == self.first => write!(f, "{l}"),
            Some(l) => write!(f, "{}-{l}", self.first),
            None => write!(f, "{}-", self.first),
        }
    }
}
