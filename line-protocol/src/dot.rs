//! The DATA body codec: dot-stuffing and the `CRLF.CRLF` terminator (RFC 5321 sections 4.1.1.4
//! and 4.5.2).
//!
//! The decoder starts at the beginning of a line (the DATA command's own CRLF ended the previous
//! one), so a dot on the very first body line is unstuffed or ends the body like any other.
//! Only `CR LF . CR LF` ends a body. A bare LF or a bare CR is never a line end here: `\n.\n`,
//! `\n.\r\n` and `\r.\r\n` are body content. That rules out the 2023 "SMTP smuggling" attacks,
//! where servers disagreeing on the terminator let one message hide a second one. The decoder
//! reports bare line endings so the server can refuse such a body (RFC 5321 section 2.3.8
//! forbids them).

use memchr::memchr2;

/// Streaming decoder for a dot-stuffed DATA body.
///
/// ```
/// use line_protocol::dot::DotDecoder;
/// let mut d = DotDecoder::new(1000);
/// let mut body = Vec::new();
/// let (used, done) = d.decode(b"..hidden dot\r\n.\r\nQUIT\r\n", &mut body);
/// assert!(done);
/// assert_eq!(used, 17); // "QUIT\r\n" is left for the command parser
/// assert_eq!(body, b".hidden dot\r\n");
/// ```
#[derive(Debug, Clone)]
pub struct DotDecoder {
    state: State,
    line_len: usize,
    max_line: usize,
    bare_line_ending: bool,
    long_line: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// After CRLF (or at the very start of the body).
    LineStart,
    /// Inside a line.
    Text,
    /// After a CR inside a line: CRLF if an LF follows, a bare CR otherwise.
    Cr,
    /// After a dot at the start of a line.
    Dot,
    /// After `CRLF . CR`: the end if an LF follows.
    DotCr,
    /// The terminator has been read.
    Done,
}

impl DotDecoder {
    /// A decoder that flags lines longer than `max_line` octets, CRLF included (RFC 5321
    /// section 4.5.3.1.6 sets 1000).
    pub fn new(max_line: usize) -> Self {
        DotDecoder {
            state: State::LineStart,
            line_len: 0,
            max_line,
            bare_line_ending: false,
            long_line: false,
        }
    }

    /// Decodes as much of `input` as possible, appending unstuffed body bytes to `out`.
    ///
    /// Returns the bytes consumed and whether the terminator was read. Everything before the
    /// terminator is always consumed; bytes after it are left for the caller.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> (usize, bool) {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                State::Done => break,
                State::LineStart => {
                    if b == b'.' {
                        self.line_len = 1;
                        self.state = State::Dot;
                        i += 1;
                    } else {
                        self.state = State::Text;
                    }
                }
                State::Text => match memchr2(b'\r', b'\n', &input[i..]) {
                    None => {
                        out.extend_from_slice(&input[i..]);
                        self.grow_line(input.len() - i);
                        i = input.len();
                    }
                    Some(n) => {
                        out.extend_from_slice(&input[i..i + n]);
                        i += n;
                        if input[i] == b'\r' {
                            self.grow_line(n);
                            self.state = State::Cr;
                        } else {
                            self.bare_line_ending = true;
                            out.push(b'\n');
                            self.grow_line(n + 1);
                        }
                        i += 1;
                    }
                },
                State::Cr => {
                    if b == b'\n' {
                        out.extend_from_slice(b"\r\n");
                        self.grow_line(2);
                        self.line_len = 0;
                        self.state = State::LineStart;
                        i += 1;
                    } else {
                        self.bare_cr(out);
                    }
                }
                State::Dot => {
                    if b == b'\r' {
                        self.state = State::DotCr;
                        i += 1;
                    } else {
                        // A stuffed line: the leading dot is dropped (RFC 5321 4.5.2).
                        self.state = State::Text;
                    }
                }
                State::DotCr => {
                    if b == b'\n' {
                        self.state = State::Done;
                        i += 1;
                        break;
                    }
                    // ". CR x": a stuffed line whose first text is a bare CR.
                    self.bare_cr(out);
                }
            }
        }
        (i, self.state == State::Done)
    }

    fn bare_cr(&mut self, out: &mut Vec<u8>) {
        self.bare_line_ending = true;
        out.push(b'\r');
        self.grow_line(1);
        self.state = State::Text;
    }

    fn grow_line(&mut self, n: usize) {
        self.line_len += n;
        if self.line_len > self.max_line {
            self.long_line = true;
        }
    }

    /// True once the body held a CR or LF that was not part of a CRLF pair.
    pub fn saw_bare_line_ending(&self) -> bool {
        self.bare_line_ending
    }

    /// True once a line was longer than the limit given to [`new`](Self::new).
    pub fn saw_long_line(&self) -> bool {
        self.long_line
    }

    /// True once the terminating `.CRLF` has been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }
}

/// Streaming dot-stuffer for sending a body with DATA.
///
/// ```
/// use line_protocol::dot::DotEncoder;
/// let mut e = DotEncoder::new();
/// let mut wire = Vec::new();
/// e.encode(b".a\r\nb", &mut wire);
/// e.finish(&mut wire);
/// assert_eq!(wire, b"..a\r\nb\r\n.\r\n");
/// ```
#[derive(Debug, Clone)]
pub struct DotEncoder {
    at_line_start: bool,
    after_cr: bool,
    empty: bool,
}

impl Default for DotEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl DotEncoder {
    /// An encoder at the start of a body.
    pub fn new() -> Self {
        DotEncoder {
            at_line_start: true,
            after_cr: false,
            empty: true,
        }
    }

    /// Appends `body` to `out`, doubling every dot that starts a line. Lines start only after
    /// CRLF, mirroring [`DotDecoder`].
    pub fn encode(&mut self, body: &[u8], out: &mut Vec<u8>) {
        out.reserve(body.len() + body.len() / 64);
        for &b in body {
            if self.at_line_start && b == b'.' {
                out.push(b'.');
            }
            out.push(b);
            self.at_line_start = self.after_cr && b == b'\n';
            self.after_cr = b == b'\r';
            self.empty = false;
        }
    }

    /// Ends the body: adds a CRLF if the last line lacks one, then `.CRLF`.
    pub fn finish(self, out: &mut Vec<u8>) {
        if !self.at_line_start && !self.empty {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(wire: &[u8]) -> (Vec<u8>, usize, bool, DotDecoder) {
        let mut d = DotDecoder::new(1000);
        let mut out = Vec::new();
        let (n, done) = d.decode(wire, &mut out);
        (out, n, done, d)
    }

    #[test]
    fn first_line_dot_is_unstuffed_or_ends() {
        assert_eq!(decode_all(b".\r\n").0, b"");
        assert!(decode_all(b".\r\n").2);
        assert_eq!(decode_all(b"..x\r\n.\r\n").0, b".x\r\n");
    }

    #[test]
    fn smuggling_sequences_do_not_end_the_body() {
        for wire in [
            &b"a\n.\nMAIL FROM:<x@y>\r\n"[..],
            b"a\n.\r\nMAIL FROM:<x@y>\r\n",
            b"a\r.\r\nMAIL FROM:<x@y>\r\n",
            b"a\r\n.\nRCPT\r\n",
            b"a\r\n.\rRCPT\r\n",
        ] {
            let (_, n, done, d) = decode_all(wire);
            assert!(!done, "{wire:?} ended the body");
            assert_eq!(n, wire.len());
            assert!(d.saw_bare_line_ending());
        }
    }

    #[test]
    fn long_lines_are_flagged() {
        // 998 octets of text plus CRLF is exactly the limit of 1000.
        let mut wire = vec![b'x'; 998];
        wire.extend_from_slice(b"\r\n.\r\n");
        assert!(!decode_all(&wire).3.saw_long_line());
        let mut wire = vec![b'x'; 998];
        wire.extend_from_slice(b"y\r\n.\r\n");
        assert!(decode_all(&wire).3.saw_long_line());
    }

    #[test]
    fn decoding_byte_by_byte_matches() {
        let wire = b"a\r\n..b\r\n.c\r\n\r\n..\r\n.\r\nrest";
        let (whole, n, done, _) = decode_all(wire);
        assert!(done);
        let mut d = DotDecoder::new(1000);
        let mut out = Vec::new();
        let mut used = 0;
        for i in 0..wire.len() {
            let (k, fin) = d.decode(&wire[i..=i], &mut out);
            used += k;
            if fin {
                break;
            }
        }
        assert_eq!((out, used), (whole, n));
        assert_eq!(&wire[n..], b"rest");
    }
}
