//! Shared input decoding for the session fuzz targets (str0m style: the fuzz input carries the
//! byte stream, its chunking and the clock).
//!
//! Layout: byte 0 sets the default chunk size (`0` = everything up to the next control byte
//! in one chunk, otherwise 1..=255 bytes). The rest is the peer's byte stream, in which three
//! byte values are control codes rather than data:
//!
//! - `0xFF n`: the clock jumps `n * 8` seconds (up to 34 minutes, past every SMTP timeout) and
//!   `handle_timeout` is called;
//! - `0xFE`: the peer closes (`handle_eof`);
//! - `0xFD`: the host shuts down (`handle_shutdown`).
//!
//! A raw transcript is a valid input, so the seed corpora are the transcripts' peer lines with
//! one leading chunk-size byte.

use std::time::Duration;

/// One step of a session run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<'a> {
    /// Bytes from the peer.
    Data(&'a [u8]),
    /// Time passes.
    Advance(Duration),
    /// The peer closed.
    Eof,
    /// The host stops.
    Shutdown,
}

/// Splits a fuzz input into steps.
pub fn steps(input: &[u8]) -> Vec<Step<'_>> {
    let Some((&chunk, mut rest)) = input.split_first() else {
        return Vec::new();
    };
    let chunk = chunk as usize;
    let mut out = Vec::new();
    while !rest.is_empty() {
        match rest[0] {
            0xFF => {
                let n = rest.get(1).copied().unwrap_or(0);
                out.push(Step::Advance(Duration::from_secs(u64::from(n) * 8)));
                rest = rest.get(2..).unwrap_or_default();
            }
            0xFE => {
                out.push(Step::Eof);
                rest = &rest[1..];
            }
            0xFD => {
                out.push(Step::Shutdown);
                rest = &rest[1..];
            }
            _ => {
                let end = rest.iter().position(|b| *b >= 0xFD).unwrap_or(rest.len());
                let data = &rest[..end];
                let size = if chunk == 0 { data.len() } else { chunk };
                for piece in data.chunks(size.max(1)) {
                    out.push(Step::Data(piece));
                }
                rest = &rest[end..];
            }
        }
    }
    out
}

/// Checks that `out` is a sequence of whole SMTP reply lines: each `^[2-5][0-9]{2}[ -]` (or a
/// bare code) and ending with CRLF, with no other CR or LF.
pub fn check_reply_lines(out: &[u8]) {
    if out.is_empty() {
        return;
    }
    assert!(
        out.ends_with(b"\r\n"),
        "output does not end with CRLF: {:?}",
        String::from_utf8_lossy(out)
    );
    for line in out.split_inclusive(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r\n").unwrap_or_else(|| {
            panic!(
                "line without CRLF in output: {:?}",
                String::from_utf8_lossy(out)
            )
        });
        assert!(
            !line.contains(&b'\r'),
            "bare CR in output line {:?}",
            String::from_utf8_lossy(line)
        );
        let ok = line.len() >= 4
            && (b'2'..=b'5').contains(&line[0])
            && line[1].is_ascii_digit()
            && line[2].is_ascii_digit()
            && (line[3] == b' ' || line[3] == b'-');
        assert!(
            ok,
            "malformed reply line {:?}",
            String::from_utf8_lossy(line)
        );
    }
}
