//! Wildmats (RFC 3977 section 4): comma-separated patterns of `*` (any run of characters) and
//! `?` (one character), each possibly negated with `!`; the last pattern that matches a name
//! decides (4.2: "the last such pattern ... determines the result"). Brackets and backslash
//! escapes are not part of RFC 3977's grammar and match themselves.

/// A parsed wildmat.
///
/// ```
/// use nntp_core::syntax::Wildmat;
/// let w = Wildmat::parse("buzon.*,!buzon.mail.example-com.bob").unwrap();
/// assert!(w.matches("buzon.mail.example-com.alice"));
/// assert!(!w.matches("buzon.mail.example-com.bob"));
/// assert!(!w.matches("comp.lang.rust"));
/// assert!(Wildmat::parse("a,,b").is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wildmat {
    patterns: Vec<(bool, Vec<char>)>,
}

impl Wildmat {
    /// Parses a wildmat; `None` for an empty pattern (`a,,b`, a lone `!`) or a character RFC
    /// 3977 4.1 forbids in one (controls, space, `\`, `[`, `]` are refused: they cannot be
    /// meant portably).
    pub fn parse(text: &str) -> Option<Wildmat> {
        let mut patterns = Vec::new();
        for part in text.split(',') {
            let (negated, body) = match part.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, part),
            };
            if body.is_empty()
                || body
                    .chars()
                    .any(|c| c.is_control() || matches!(c, ' ' | '\\' | '[' | ']'))
            {
                return None;
            }
            patterns.push((negated, body.chars().collect()));
        }
        Some(Wildmat { patterns })
    }

    /// Everything (`*`).
    pub fn all() -> Wildmat {
        Wildmat {
            patterns: vec![(false, vec!['*'])],
        }
    }

    /// Whether `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        self.patterns
            .iter()
            .rev()
            .find(|(_, p)| glob(p, &name))
            .is_some_and(|(negated, _)| !negated)
    }
}

/// `*` and `?` matching, without backtracking blow-ups: the classic greedy star with one
/// restart point is linear in practice and never worse than quadratic.
fn glob(pattern: &[char], name: &[char]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(c) if *c == '?' || *c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_and_question_marks() {
        let m = |p: &str, n: &str| Wildmat::parse(p).unwrap().matches(n);
        assert!(m("*", ""));
        assert!(m("*", "anything.at.all"));
        assert!(m("a*b", "ab"));
        assert!(m("a*b", "axxb"));
        assert!(!m("a*b", "axxbc"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("*.alice", "buzon.mail.x.alice"));
        assert!(m("b*z*n", "buzon"));
        assert!(m("é*", "éa"), "UTF-8 names match by character");
    }

    #[test]
    fn the_last_match_decides() {
        let w = Wildmat::parse("*,!comp.*,comp.lang.*").unwrap();
        assert!(w.matches("alt.x"));
        assert!(!w.matches("comp.os"));
        assert!(w.matches("comp.lang.rust"));
        assert!(!Wildmat::parse("!*").unwrap().matches("a"));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in ["", ",", "a,", "!", "a b", "a[b]", "a\\b", "a\tb"] {
            assert!(Wildmat::parse(bad).is_none(), "{bad:?}");
        }
    }
}
