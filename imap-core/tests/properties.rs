//! Properties: any cutting of the client's writes gives the same conversation, and any
//! sequence of changes from two sessions leaves both sessions' views equal to the store once
//! they have synchronised.

// A test reads the clock once for its starting point; everything after is relative to it.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::Instant;

use imap_core::transcript::{MemoryHost, MemoryStore, Split, Transcript, replay, replay_split};
use imap_core::{Flags, ServerConfig, ServerSession};
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
}

/// One client of the model test.
struct Client {
    session: ServerSession,
    host: MemoryHost,
}

impl Client {
    fn new(store: &MemoryStore, now: Instant) -> Client {
        let mut config = ServerConfig::new("mx.example.com");
        config.plaintext_auth = true;
        let mut c = Client {
            session: ServerSession::new(Arc::new(config), false, now),
            host: MemoryHost::new(store.clone()),
        };
        c.send("t0 LOGIN alice secret", now);
        c.send("t1 SELECT INBOX", now);
        c
    }

    fn send(&mut self, line: &str, now: Instant) -> String {
        let input = format!("{line}\r\n");
        let mut used = 0;
        for _ in 0..1000 {
            used += self.session.handle_input(&input.as_bytes()[used..], now);
            self.host.answer_all(&mut self.session, now);
            if used == input.len() {
                break;
            }
        }
        assert_eq!(used, input.len());
        let mut out = Vec::new();
        self.session.poll_transmit(&mut out);
        String::from_utf8(out).expect("UTF-8")
    }

    /// (uid, flags) of every message as the client sees it after a NOOP.
    fn view(&mut self, now: Instant) -> Vec<(u32, String)> {
        self.send("v0 NOOP", now);
        let out = self.send("v1 FETCH 1:* (UID FLAGS)", now);
        out.lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("* ")?;
                let (_, rest) = rest.split_once(" FETCH (UID ")?;
                let (uid, rest) = rest.split_once(" FLAGS (")?;
                let flags = rest.split_once(')')?.0.replace("\\Recent", "");
                let mut f: Vec<&str> = flags.split_whitespace().collect();
                f.sort();
                Some((uid.parse().ok()?, f.join(" ")))
            })
            .collect()
    }
}

#[derive(Debug, Clone)]
enum Op {
    Deliver,
    Append(bool),
    Store(bool, u8, u8),
    Copy(bool, u8),
    Move(bool, u8),
    Expunge(bool),
    Noop(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Deliver),
        any::<bool>().prop_map(Op::Append),
        (any::<bool>(), 1u8..6, 0u8..4).prop_map(|(a, n, f)| Op::Store(a, n, f)),
        (any::<bool>(), 1u8..6).prop_map(|(a, n)| Op::Copy(a, n)),
        (any::<bool>(), 1u8..6).prop_map(|(a, n)| Op::Move(a, n)),
        any::<bool>().prop_map(Op::Expunge),
        any::<bool>().prop_map(Op::Noop),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn two_sessions_agree_with_the_store(ops in proptest::collection::vec(op(), 1..40)) {
        let now = Instant::now();
        let store = MemoryStore::new();
        store.add_user("alice", "secret");
        store.create("alice", "Other");
        let mut clients = [Client::new(&store, now), Client::new(&store, now)];
        let flags = ["\\Seen", "\\Deleted", "\\Flagged", "$Label1"];
        for (i, op) in ops.iter().enumerate() {
            match op {
                Op::Deliver => {
                    store.deliver("alice", "INBOX", format!("Subject: {i}\r\n\r\n{i}\r\n").as_bytes(), Flags::default());
                }
                Op::Append(a) => {
                    let msg = format!("Subject: a{i}\r\n\r\nappended\r\n");
                    let c = &mut clients[*a as usize];
                    let out = c.send(&format!("p{i} APPEND INBOX {{{}+}}\r\n{msg}", msg.len()), now);
                    prop_assert!(out.contains(&format!("p{i} OK [APPENDUID")), "{out}");
                }
                Op::Store(a, n, f) => {
                    let out = clients[*a as usize].send(&format!("s{i} STORE {n} +FLAGS ({})", flags[*f as usize]), now);
                    prop_assert!(out.contains(&format!("s{i} OK")), "{out}");
                }
                Op::Copy(a, n) => {
                    let out = clients[*a as usize].send(&format!("c{i} COPY {n} Other"), now);
                    prop_assert!(out.contains(&format!("c{i} OK")), "{out}");
                }
                Op::Move(a, n) => {
                    let out = clients[*a as usize].send(&format!("m{i} MOVE {n} Other"), now);
                    prop_assert!(out.contains(&format!("m{i} OK")), "{out}");
                }
                Op::Expunge(a) => {
                    let out = clients[*a as usize].send(&format!("e{i} EXPUNGE"), now);
                    prop_assert!(out.contains(&format!("e{i} OK")), "{out}");
                }
                Op::Noop(a) => {
                    clients[*a as usize].send(&format!("n{i} NOOP"), now);
                }
            }
        }
        let truth: Vec<(u32, String)> = store
            .messages("alice", "INBOX")
            .into_iter()
            .map(|(uid, f)| {
                let mut out = Vec::new();
                f.write(false, &mut out);
                let s = String::from_utf8(out).expect("ASCII");
                let mut v: Vec<&str> = s.trim_matches(|c| c == '(' || c == ')').split_whitespace().collect();
                v.sort();
                (uid, v.join(" "))
            })
            .collect();
        for c in &mut clients {
            prop_assert_eq!(c.view(now), truth.clone());
        }
    }
}
