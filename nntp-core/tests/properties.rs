//! Properties: any cutting of the reader's writes gives the same conversation, and any
//! sequence of command lines, well-formed or not, gets exactly one reply per command with a
//! status code, in order, with no panic.

// A test reads the clock once for its starting point; everything after is relative to it.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::Instant;

use nntp_core::transcript::{MemoryHost, MemoryNews, Split, Transcript, replay, replay_split};
use nntp_core::{ServerConfig, ServerSession};
use proptest::prelude::*;
use session_api::Session;

fn transcripts() -> Vec<(String, Transcript)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/transcripts");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("transcripts folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable");
            (
                p.display().to_string(),
                Transcript::parse(&text).expect("parses"),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Words commands are made of: every verb, some arguments that mean something here, and
/// some that do not.
const WORDS: &[&str] = &[
    "ARTICLE",
    "HEAD",
    "BODY",
    "STAT",
    "GROUP",
    "LISTGROUP",
    "NEXT",
    "LAST",
    "OVER",
    "XOVER",
    "HDR",
    "XHDR",
    "XPAT",
    "LIST",
    "ACTIVE",
    "COUNTS",
    "NEWSGROUPS",
    "OVERVIEW.FMT",
    "HEADERS",
    "NEWGROUPS",
    "NEWNEWS",
    "DATE",
    "HELP",
    "CAPABILITIES",
    "MODE",
    "READER",
    "POST",
    "IHAVE",
    "AUTHINFO",
    "USER",
    "PASS",
    "buzon.mail.example-com.alice",
    "1",
    "2",
    "0",
    "1-",
    "2-1",
    "3-9",
    "18446744073709551615",
    "-",
    "<1@x>",
    "<>",
    "*",
    "!*",
    "Subject",
    ":bytes",
    "261201",
    "000000",
    "GMT",
    "alice@example.com",
    "secret",
    "\t",
    "é",
    "",
];

fn logged_in(now: Instant) -> (ServerSession, MemoryHost) {
    let mut config = ServerConfig::new("mx.example.com");
    config.plaintext_auth = true;
    let mut news = MemoryNews::new(1_796_083_200);
    news.add_user("alice@example.com", "secret");
    for n in 1..=3 {
        let text = format!("Message-ID: <{n}@x>\r\nSubject: s{n}\r\n\r\n.body {n}\r\n");
        news.post("alice@example.com", None, text.into_bytes());
    }
    let mut session = ServerSession::new(Arc::new(config), false, now);
    let mut host = MemoryHost::new(news);
    let mut out = Vec::new();
    for line in [
        "AUTHINFO USER alice@example.com\r\n",
        "AUTHINFO PASS secret\r\n",
    ] {
        assert_eq!(session.handle_input(line.as_bytes(), now), line.len());
        host.answer_all(&mut session, now);
    }
    session.poll_transmit(&mut out);
    assert!(out.ends_with(b"281 Authentication accepted\r\n"));
    (session, host)
}

/// The status codes of the replies in `out`, skipping the bodies of multi-line replies.
fn status_codes(out: &[u8]) -> Vec<u16> {
    let text = String::from_utf8_lossy(out);
    let mut codes = Vec::new();
    let mut in_block = false;
    for line in text.split_terminator("\r\n") {
        if in_block {
            in_block = line != ".";
            continue;
        }
        let code: u16 = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        codes.push(code);
        // The multi-line replies (RFC 3977 section 3.2.1.1).
        in_block = match code {
            100 | 101 | 215 | 220 | 221 | 222 | 224 | 225 | 230 | 231 => true,
            // GROUP's 211 is one line, LISTGROUP's is followed by the numbers.
            211 => line.ends_with("list follows"),
            _ => false,
        };
    }
    codes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn any_cutting_of_the_input_gives_the_same_output(seed in any::<u64>()) {
        let start = Instant::now();
        for (name, t) in transcripts() {
            let mut state = seed | 1;
            let mut cut = |len: usize| {
                let mut cuts = Vec::new();
                let mut at = 0;
                while at < len {
                    // xorshift: a cheap stream of cut lengths from the seed.
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    at += 1 + (state % 17) as usize;
                    if at < len {
                        cuts.push(at);
                    }
                }
                cuts
            };
            let outcome = replay_split(&t, start, Split::Custom(&mut cut));
            prop_assert!(outcome.is_match(), "{}: {}", name, outcome.report());
            prop_assert_eq!(outcome.output, replay(&t, start).output);
        }
    }

    #[test]
    fn every_command_gets_one_reply(
        commands in prop::collection::vec(prop::collection::vec(prop::sample::select(WORDS), 0..5), 1..15)
    ) {
        let now = Instant::now();
        let (mut session, mut host) = logged_in(now);
        let mut wire = Vec::new();
        for words in &commands {
            wire.extend_from_slice(words.join(" ").as_bytes());
            wire.extend_from_slice(b"\r\n");
        }
        // Pipelined, as slrn does: the session takes what it can, the host answers, repeat.
        let mut used = 0;
        let mut out = Vec::new();
        while used < wire.len() && !session.is_closed() {
            let n = session.handle_input(&wire[used..], now);
            used += n;
            let answered = !host.answer_all(&mut session, now).is_empty();
            session.poll_transmit(&mut out);
            prop_assert!(n > 0 || answered, "stuck at {:?}", String::from_utf8_lossy(&wire[used..]));
        }
        let codes = status_codes(&out);
        prop_assert_eq!(codes.len(), commands.len(), "{}", String::from_utf8_lossy(&out));
        prop_assert!(codes.iter().all(|c| (100..600).contains(c)), "{:?}", codes);
    }
}
