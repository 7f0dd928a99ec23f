//! The lexical layer of RFC 3501 section 9 (and RFC 9051 section 9): atoms, numbers, quoted
//! strings, literals, over one complete command whose literals the framer has already placed
//! inline after their `{n}` CRLF.

use std::borrow::Cow;

/// Why a command could not be parsed: the text of the `BAD` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError(pub Cow<'static, str>);

impl SyntaxError {
    pub(crate) fn new(text: impl Into<Cow<'static, str>>) -> Self {
        SyntaxError(text.into())
    }
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) type Result<T> = std::result::Result<T, SyntaxError>;

/// `atom-specials` (RFC 3501 section 9): what may not appear in an atom.
fn is_atom_special(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'{' | b' ' | b'%' | b'*' | b'"' | b'\\' | b']'
    ) || !(0x20..0x7f).contains(&b)
}

/// `ATOM-CHAR`.
pub(crate) fn is_atom_char(b: u8) -> bool {
    !is_atom_special(b)
}

/// `ASTRING-CHAR`: an atom char or `]` (`resp-specials`).
fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// `list-char`: an atom char, `list-wildcards` or `resp-specials`.
fn is_list_char(b: u8) -> bool {
    is_astring_char(b) || b == b'%' || b == b'*'
}

/// A position in one command.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Cursor { input, pos: 0 }
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.input[self.pos..]
    }

    pub(crate) fn is_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    /// Consumes `b` if it comes next.
    pub(crate) fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(crate) fn expect(&mut self, b: u8, what: &'static str) -> Result<()> {
        if self.eat(b) {
            Ok(())
        } else {
            Err(SyntaxError::new(what))
        }
    }

    /// One space, as the grammar's `SP`.
    pub(crate) fn sp(&mut self) -> Result<()> {
        self.expect(b' ', "expected a space")
    }

    pub(crate) fn end(&self) -> Result<()> {
        if self.is_end() {
            Ok(())
        } else {
            Err(SyntaxError::new("unexpected text after the command"))
        }
    }

    /// Consumes `word` case-insensitively if the input continues with it followed by a
    /// non-atom character (or the end).
    pub(crate) fn keyword(&mut self, word: &str) -> bool {
        let w = word.as_bytes();
        let rest = self.rest();
        if rest.len() >= w.len()
            && rest[..w.len()].eq_ignore_ascii_case(w)
            && rest.get(w.len()).is_none_or(|&b| !is_atom_char(b))
        {
            self.pos += w.len();
            true
        } else {
            false
        }
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        &self.input[start..self.pos]
    }

    /// `atom`: one or more atom characters.
    pub(crate) fn atom(&mut self) -> Result<&'a str> {
        let a = self.take_while(is_atom_char);
        if a.is_empty() {
            return Err(SyntaxError::new("expected an atom"));
        }
        // Atom characters are ASCII.
        Ok(std::str::from_utf8(a).unwrap_or_default())
    }

    /// An atom upper-cased, for keywords compared case-insensitively.
    pub(crate) fn keyword_atom(&mut self) -> Result<String> {
        Ok(self.atom()?.to_ascii_uppercase())
    }

    /// `number`: up to 32 bits.
    pub(crate) fn number(&mut self) -> Result<u32> {
        let digits = self.take_while(|b| b.is_ascii_digit());
        parse_digits(digits)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| SyntaxError::new("expected a number"))
    }

    /// `nz-number`.
    pub(crate) fn nz_number(&mut self) -> Result<u32> {
        match self.number()? {
            0 => Err(SyntaxError::new("zero is not a valid number here")),
            n => Ok(n),
        }
    }

    /// `number64` (RFC 9051), as CONDSTORE's mod-sequence values.
    pub(crate) fn number64(&mut self) -> Result<u64> {
        let digits = self.take_while(|b| b.is_ascii_digit());
        parse_digits(digits)
            .filter(|&n| n <= i64::MAX as u64)
            .ok_or_else(|| SyntaxError::new("expected a number"))
    }

    /// `string`: a quoted string or a literal.
    pub(crate) fn string(&mut self) -> Result<Cow<'a, [u8]>> {
        match self.peek() {
            Some(b'"') => self.quoted(),
            Some(b'{') | Some(b'~') => self.literal().map(Cow::Borrowed),
            _ => Err(SyntaxError::new("expected a string")),
        }
    }

    fn quoted(&mut self) -> Result<Cow<'a, [u8]>> {
        self.expect(b'"', "expected a quoted string")?;
        let start = self.pos;
        let mut owned: Option<Vec<u8>> = None;
        loop {
            match self.peek() {
                None | Some(b'\r') | Some(b'\n') => {
                    return Err(SyntaxError::new("unterminated quoted string"));
                }
                Some(b'"') => {
                    let text = match owned {
                        Some(v) => Cow::Owned(v),
                        None => Cow::Borrowed(&self.input[start..self.pos]),
                    };
                    self.pos += 1;
                    return Ok(text);
                }
                Some(b'\\') => {
                    let escaped = self.input.get(self.pos + 1).copied();
                    if !matches!(escaped, Some(b'"') | Some(b'\\')) {
                        return Err(SyntaxError::new("bad escape in a quoted string"));
                    }
                    let v = owned.get_or_insert_with(|| self.input[start..self.pos].to_vec());
                    v.push(escaped.unwrap_or_default());
                    self.pos += 2;
                }
                Some(0) => return Err(SyntaxError::new("NUL in a quoted string")),
                Some(b) => {
                    if let Some(v) = &mut owned {
                        v.push(b);
                    }
                    self.pos += 1;
                }
            }
        }
    }

    /// `literal` (and RFC 7888's `literal8`/non-synchronising forms): `{n}` or `{n+}`, CRLF,
    /// then n octets, which the framer has placed inline.
    pub(crate) fn literal(&mut self) -> Result<&'a [u8]> {
        self.eat(b'~');
        self.expect(b'{', "expected a literal")?;
        let len = self.number()? as usize;
        self.eat(b'+');
        self.expect(b'}', "bad literal length")?;
        self.expect(b'\r', "expected CRLF after a literal length")?;
        self.expect(b'\n', "expected CRLF after a literal length")?;
        let data = self
            .input
            .get(self.pos..self.pos + len)
            .ok_or_else(|| SyntaxError::new("literal shorter than announced"))?;
        self.pos += len;
        Ok(data)
    }

    /// `astring`: an atom (with `]` allowed) or a string.
    pub(crate) fn astring(&mut self) -> Result<Cow<'a, [u8]>> {
        match self.peek() {
            Some(b'"') | Some(b'{') => self.string(),
            _ => {
                let a = self.take_while(is_astring_char);
                if a.is_empty() {
                    Err(SyntaxError::new("expected an atom or a string"))
                } else {
                    Ok(Cow::Borrowed(a))
                }
            }
        }
    }

    /// `nstring`-like: `NIL` or a string.
    pub(crate) fn nstring(&mut self) -> Result<Option<Cow<'a, [u8]>>> {
        if self.keyword("NIL") {
            Ok(None)
        } else {
            self.string().map(Some)
        }
    }

    /// `list-mailbox`: list characters or a string (a LIST pattern).
    pub(crate) fn list_mailbox(&mut self) -> Result<Cow<'a, [u8]>> {
        match self.peek() {
            Some(b'"') | Some(b'{') => self.string(),
            _ => {
                let a = self.take_while(is_list_char);
                if a.is_empty() {
                    Err(SyntaxError::new("expected a mailbox pattern"))
                } else {
                    Ok(Cow::Borrowed(a))
                }
            }
        }
    }

    /// A parenthesised list of items, each parsed by `item`, separated by single spaces;
    /// `()` gives an empty list.
    pub(crate) fn list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.expect(b'(', "expected a list")?;
        let mut out = Vec::new();
        if self.eat(b')') {
            return Ok(out);
        }
        loop {
            out.push(item(self)?);
            if self.eat(b')') {
                return Ok(out);
            }
            self.sp()?;
        }
    }
}

fn parse_digits(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Text as UTF-8, for names and search strings; invalid bytes are a syntax error.
pub(crate) fn utf8(bytes: Cow<'_, [u8]>) -> Result<String> {
    String::from_utf8(bytes.into_owned()).map_err(|_| SyntaxError::new("text is not valid UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_atoms_and_literals() {
        let mut c = Cursor::new(b"\"a\\\"b\" atom] {3}\r\nxyz NIL");
        assert_eq!(c.string().unwrap().as_ref(), b"a\"b");
        c.sp().unwrap();
        assert_eq!(c.astring().unwrap().as_ref(), b"atom]");
        c.sp().unwrap();
        assert_eq!(c.astring().unwrap().as_ref(), b"xyz");
        c.sp().unwrap();
        assert_eq!(c.nstring().unwrap(), None);
        assert!(c.is_end());
    }

    #[test]
    fn keywords_need_a_word_boundary() {
        let mut c = Cursor::new(b"BODY.PEEK ");
        assert!(!c.keyword("BODY"));
        assert!(c.keyword("body.peek"));
        assert!(Cursor::new(b"uid fetch").keyword("UID"));
        assert!(!Cursor::new(b"uidx").keyword("UID"));
    }

    #[test]
    fn numbers_are_bounded() {
        assert_eq!(Cursor::new(b"4294967295").number().unwrap(), u32::MAX);
        assert!(Cursor::new(b"4294967296").number().is_err());
        assert!(Cursor::new(b"0").nz_number().is_err());
        assert!(Cursor::new(b"99999999999999999999").number64().is_err());
    }

    #[test]
    fn quoted_strings_refuse_bad_escapes_and_line_ends() {
        assert!(Cursor::new(b"\"a\\x\"").string().is_err());
        assert!(Cursor::new(b"\"a\r\n\"").string().is_err());
        assert!(Cursor::new(b"\"open").string().is_err());
    }
}
