//! The codecs on their own. Byte 0 picks the check, the rest is its input:
//! - 0: `Command::parse`; a parsed command renders and parses back to itself.
//! - 1: `reply::parse` on raw bytes never panics, consumes at most the input, and a parsed
//!   reply renders to bytes that parse back to the same reply.
//! - 2: a `Reply` built from the input (code, enhanced code, lines split at `|`) renders,
//!   parses back whole, and re-renders to the same bytes.
//! - 3: a CRLF-only body (LF in the input becomes CRLF, CR dropped) goes through `DotEncoder`
//!   in fuzzed pieces and back through `DotDecoder` unchanged.
//! - other: `DotDecoder` on raw bytes: no panic, consumption within bounds, `done` only at a
//!   terminator.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_core::command::Command;
use smtp_core::dot::{DotDecoder, DotEncoder};
use smtp_core::reply::{self, Parsed};
use smtp_core::{EnhancedCode, Reply};

const MAX: usize = 1 << 20;

fn command(line: &[u8]) {
    // RFC 5321 2.3.8: a CR or LF inside a command line is a syntax error, never an argument.
    if line.contains(&b'\n') || line.contains(&b'\r') {
        assert!(
            Command::parse(line).is_err(),
            "a line with CR or LF parsed: {:?}",
            String::from_utf8_lossy(line)
        );
        return;
    }
    let Ok(cmd) = Command::parse(line) else {
        return;
    };
    let text = cmd.to_string();
    assert!(
        !text.contains(['\r', '\n']),
        "rendered command has a line break: {text:?}"
    );
    let again = Command::parse(text.as_bytes())
        .unwrap_or_else(|e| panic!("{cmd:?} rendered as {text:?} does not parse: {e:?}"));
    assert_eq!(again, cmd, "round trip through {text:?}");
}

fn reply_raw(input: &[u8]) {
    match reply::parse(input, 512) {
        Parsed::Complete(r, n) => {
            assert!(n > 0 && n <= input.len());
            round_trip(&r);
        }
        _ => {}
    }
}

fn round_trip(r: &Reply) {
    let wire = r.to_bytes();
    match reply::parse(&wire, MAX) {
        Parsed::Complete(back, n) => {
            assert_eq!(
                n,
                wire.len(),
                "{r:?} parsed only {n} of {} bytes",
                wire.len()
            );
            // A reply built without an enhanced code whose text starts with one ("250 2.0.0 ok")
            // is read back with that code: RFC 2034 puts the code at the start of the text, so
            // the wire cannot tell them apart. Otherwise the bytes must come back unchanged.
            if !(r.enhanced().is_none() && back.enhanced().is_some()) {
                assert_eq!(
                    back.to_bytes(),
                    wire,
                    "{r:?} re-rendered differently as {back:?}"
                );
            }
            // Always: a parsed reply is a fixed point of render + parse.
            let again = back.to_bytes();
            assert_eq!(
                reply::parse(&again, MAX),
                Parsed::Complete(back.clone(), again.len())
            );
            // RFC 3463 has no class 3, so a 3xx reply's enhanced code is read back as text.
            if r.enhanced()
                .is_some_and(|e| u16::from(e.0) == r.code() / 100 && e.0 != 3)
            {
                assert_eq!(&back, r, "structural round trip");
            }
        }
        other => panic!(
            "{r:?} rendered as {:?} parsed as {other:?}",
            String::from_utf8_lossy(&wire)
        ),
    }
}

fn reply_built(input: &[u8]) {
    if input.len() < 6 {
        return;
    }
    let code = 200 + u16::from_le_bytes([input[0], input[1]]) % 400;
    let enhanced = (input[2] & 1 == 0).then(|| {
        let class = if input[2] & 2 == 0 {
            (code / 100) as u8
        } else {
            input[2] >> 2
        };
        EnhancedCode(class, u16::from(input[3]), u16::from(input[4]) * 3)
    });
    let text = String::from_utf8_lossy(&input[5..]);
    let r = Reply::multiline(code, enhanced, text.split('|'));
    round_trip(&r);
}

fn dot_round_trip(input: &[u8]) {
    let Some((&piece, input)) = input.split_first() else {
        return;
    };
    let mut body = Vec::with_capacity(input.len() * 2);
    for &b in input {
        match b {
            b'\r' => {}
            b'\n' => body.extend_from_slice(b"\r\n"),
            b => body.push(b),
        }
    }
    let mut enc = DotEncoder::new();
    let mut wire = Vec::new();
    for part in body.chunks(usize::from(piece).max(1)) {
        enc.encode(part, &mut wire);
    }
    enc.finish(&mut wire);
    let mut dec = DotDecoder::new(MAX);
    let mut back = Vec::new();
    let mut used = 0;
    let mut done = false;
    for part in wire.chunks(usize::from(piece).max(1)) {
        assert!(!done, "terminator before the end of the encoded body");
        let (n, d) = dec.decode(part, &mut back);
        assert!(n <= part.len());
        used += n;
        done = d;
    }
    assert!(done, "no terminator found");
    assert_eq!(used, wire.len());
    assert!(
        !dec.saw_bare_line_ending(),
        "bare line ending in a CRLF-only body"
    );
    let mut expected = body.clone();
    if !expected.is_empty() && !expected.ends_with(b"\r\n") {
        expected.extend_from_slice(b"\r\n");
    }
    assert_eq!(back, expected, "dot round trip");
}

fn dot_raw(input: &[u8]) {
    let mut dec = DotDecoder::new(1000);
    let mut out = Vec::new();
    let (n, done) = dec.decode(input, &mut out);
    assert!(n <= input.len());
    assert!(out.len() <= n);
    if done {
        assert!(input[..n].ends_with(b"\r\n.\r\n") || &input[..n] == b".\r\n");
        assert!(dec.is_done());
    } else {
        assert_eq!(n, input.len(), "an unfinished body must consume everything");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, input)) = data.split_first() else {
        return;
    };
    match which {
        0 => command(input.strip_suffix(b"\r\n").unwrap_or(input)),
        1 => reply_raw(input),
        2 => reply_built(input),
        3 => dot_round_trip(input),
        _ => dot_raw(input),
    }
});
