//! Property tests of the SMTP server core (GUIDE section 8): chunking invariance over the
//! transcript corpus, the dot codec round trip, SMTP smuggling, and arbitrary input fed to a
//! session (no panic, well-formed replies, early timeouts change nothing).

use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use smtp_core::dot::{DotDecoder, DotEncoder};
use smtp_core::transcript::{Item, Outcome, Split, Transcript, replay_split};
use smtp_core::{ServerConfig, ServerEvent, ServerSession, Verdict};

// ---------------------------------------------------------------------------------------------
// The corpus

fn corpus() -> &'static [(String, Transcript)] {
    static CORPUS: std::sync::OnceLock<Vec<(String, Transcript)>> = std::sync::OnceLock::new();
    CORPUS.get_or_init(|| {
        let out = buzon_tests::load_transcripts("transcripts");
        assert!(out.len() > 1, "the corpus is empty");
        out
    })
}

/// `cases` per property unless `PROPTEST_CASES` asks for more (a longer soak) or fewer.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(cases),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/properties.txt",
        ))),
        ..ProptestConfig::default()
    }
}

/// Asserts that `other` said and did exactly what the whole-write replay `whole` did.
fn assert_same(name: &str, how: &str, whole: &Outcome, other: &Outcome) {
    assert!(
        whole.output == other.output,
        "{name}: output differs when cut {how}:\n--- whole\n{}\n--- cut\n{}",
        String::from_utf8_lossy(&whole.output),
        String::from_utf8_lossy(&other.output)
    );
    assert!(
        whole.events == other.events,
        "{name}: events differ when cut {how}:\n--- whole\n{}\n--- cut\n{}",
        whole.events.join("\n"),
        other.events.join("\n")
    );
}

/// A small deterministic generator, so that one proptest value can drive many cut decisions.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

// ---------------------------------------------------------------------------------------------
// Chunking invariance over the corpus

#[test]
fn every_transcript_byte_by_byte_matches_whole() {
    let start = Instant::now();
    for (name, t) in corpus() {
        let whole = replay_split(t, start, Split::Whole);
        assert!(whole.is_match(), "{name}: {}", whole.report());
        let bytes = replay_split(t, start, Split::Bytes);
        assert_same(name, "into single bytes", &whole, &bytes);
    }
}

#[test]
fn every_transcript_cut_at_every_single_point_matches_whole() {
    let start = Instant::now();
    for (name, t) in corpus() {
        let whole = replay_split(t, start, Split::Whole);
        // Consecutive client lines form one write; cutting every write at the same offset, for
        // every offset of the longest write, covers every single cut point.
        let mut longest_group = 0;
        let mut run = 0;
        for item in &t.items {
            match item {
                Item::Client(b) => run += b.len(),
                _ => run = 0,
            }
            longest_group = longest_group.max(run);
        }
        for at in 1..longest_group {
            let mut cut = |len: usize| if at < len { vec![at] } else { Vec::new() };
            let other = replay_split(t, start, Split::Custom(&mut cut));
            assert_same(name, &format!("at offset {at}"), &whole, &other);
        }
    }
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn random_cuts_match_whole(index in any::<prop::sample::Index>(), seed in any::<u64>(), density in 1usize..64) {
        let (name, t) = &corpus()[index.index(corpus().len())];
        let start = Instant::now();
        let whole = replay_split(t, start, Split::Whole);
        let mut rng = SplitMix(seed);
        let mut cut = |len: usize| {
            let mut cuts: Vec<usize> = (0..rng.below(density.min(len.max(1)) + 1))
                .map(|_| rng.below(len + 1))
                .collect();
            cuts.sort_unstable();
            cuts
        };
        let other = replay_split(t, start, Split::Custom(&mut cut));
        assert_same(name, &format!("randomly (seed {seed}, density {density})"), &whole, &other);
    }
}

// ---------------------------------------------------------------------------------------------
// The dot codec

/// Bodies whose only line endings are CRLF pairs, rich in dots at line starts.
fn crlf_body() -> impl Strategy<Value = Vec<u8>> {
    let text = prop::collection::vec(
        prop_oneof![
            Just(b'.'),
            Just(b'a'),
            Just(b' '),
            Just(0u8),
            Just(0xffu8),
            any::<u8>().prop_filter("no CR or LF", |b| *b != b'\r' && *b != b'\n'),
        ],
        0..12,
    );
    let line = prop_oneof![
        text.clone().prop_map(|mut t| {
            t.extend_from_slice(b"\r\n");
            t
        }),
        Just(b".\r\n".to_vec()),
        Just(b"..\r\n".to_vec()),
        Just(b"\r\n".to_vec()),
    ];
    (prop::collection::vec(line, 0..16), text).prop_map(|(lines, tail)| {
        let mut body: Vec<u8> = lines.concat();
        body.extend_from_slice(&tail);
        body
    })
}

/// Decodes `wire` fed in the pieces `cuts` make; returns body, octets consumed and whether
/// the terminator was read.
fn decode_in_pieces(wire: &[u8], cuts: &[usize]) -> (Vec<u8>, usize, DotDecoder) {
    let mut d = DotDecoder::new(usize::MAX);
    let mut body = Vec::new();
    let mut used = 0;
    let mut from = 0;
    for cut in cuts.iter().copied().chain([wire.len()]) {
        let cut = cut.clamp(from, wire.len());
        if used == from {
            let (n, _) = d.decode(&wire[from..cut], &mut body);
            used += n;
        }
        from = cut;
    }
    (body, used, d)
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn dot_codec_round_trips(body in crlf_body(), encode_cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6), decode_cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12)) {
        // Encoding in pieces gives the same wire as encoding at once.
        let mut wire = Vec::new();
        let mut e = DotEncoder::new();
        let mut points: Vec<usize> = encode_cuts.iter().map(|i| i.index(body.len() + 1)).collect();
        points.sort_unstable();
        let mut from = 0;
        for p in points.into_iter().chain([body.len()]) {
            e.encode(&body[from..p], &mut wire);
            from = p;
        }
        e.finish(&mut wire);
        let mut once = Vec::new();
        let mut e = DotEncoder::new();
        e.encode(&body, &mut once);
        e.finish(&mut once);
        prop_assert_eq!(&wire, &once);

        // Whatever follows the terminator is left alone.
        let terminator_end = wire.len();
        wire.extend_from_slice(b"QUIT\r\n");
        let mut expected = body.clone();
        if !expected.is_empty() && !expected.ends_with(b"\r\n") {
            expected.extend_from_slice(b"\r\n");
        }
        let mut cuts: Vec<usize> = decode_cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        cuts.sort_unstable();
        for cuts in [&[][..], &cuts[..]] {
            let (decoded, used, d) = decode_in_pieces(&wire, cuts);
            prop_assert!(d.is_done());
            prop_assert_eq!(used, terminator_end);
            prop_assert!(!d.saw_bare_line_ending());
            prop_assert_eq!(&decoded, &expected);
        }
    }
}

/// A body with at least one smuggling sequence and no real `CRLF . CRLF`, even when one is
/// appended.
fn smuggling_body() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        3 => prop::sample::select(vec![
            &b"\n.\n"[..],
            b"\n.\r\n",
            b"\r.\r\n",
            b"\r\n.\n",
            b"\r\n.\r",
            b".\n",
            b"\r\n",
            b"MAIL FROM:<evil@example.org>\r\n",
            b"RCPT TO:<victim@example.com>\r\n",
            b"DATA\r\n",
            b"QUIT\r\n",
        ])
        .prop_map(<[u8]>::to_vec),
        2 => prop::collection::vec(prop::sample::select(vec![b'a', b'.', b'\r', b'\n', b' ']), 1..6),
    ];
    let smuggle = prop::sample::select(vec![&b"\n.\n"[..], b"\n.\r\n", b"\r.\r\n"]);
    (
        prop::collection::vec(piece.clone(), 0..8),
        smuggle,
        prop::collection::vec(piece, 0..8),
    )
        .prop_map(|(before, s, after)| {
            let mut body = before.concat();
            body.extend_from_slice(s);
            body.extend_from_slice(&after.concat());
            body
        })
        .prop_filter("no end of data but the one appended", |b| {
            let mut wire = b.clone();
            wire.extend_from_slice(b"\r\n.\r\n");
            let first_end = wire.windows(5).position(|w| w == b"\r\n.\r\n");
            !b.starts_with(b".\r\n") && first_end == Some(wire.len() - 5)
        })
}

proptest! {
    #![proptest_config(config(1000))]

    #[test]
    fn smuggling_sequences_never_end_the_body(body in smuggling_body(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12)) {
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(body.len() + 1)).collect();
        cuts.sort_unstable();
        // Fed as it is, the body never ends: every octet is consumed and no end is seen.
        let (_, used, d) = decode_in_pieces(&body, &cuts);
        prop_assert!(!d.is_done());
        prop_assert_eq!(used, body.len());
        prop_assert!(d.saw_bare_line_ending());
        // Only the real terminator ends it, exactly where it ends.
        let mut wire = body.clone();
        wire.extend_from_slice(b"\r\n.\r\nNOOP\r\n");
        let (_, used, d) = decode_in_pieces(&wire, &cuts);
        prop_assert!(d.is_done());
        prop_assert_eq!(used, wire.len() - b"NOOP\r\n".len());
    }

    #[test]
    fn smuggled_transaction_is_refused_once(body in smuggling_body(), seed in any::<u64>()) {
        let mut input = b"EHLO c.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n".to_vec();
        input.extend_from_slice(&body);
        input.extend_from_slice(b"\r\n.\r\nQUIT\r\n");
        let plan = Plan::cut_randomly(&input, seed);
        let run = drive(&fuzz_config(&Knobs::default()), &input, &plan, TimeoutCalls::Due);
        let out = String::from_utf8_lossy(&run.output);
        let replies: Vec<&str> = out.lines().collect();
        prop_assert!(out.ends_with("554 5.6.0 Message refused: bare CR or LF in data (RFC 5321 section 2.3.8)\r\n221 2.0.0 mx.example closing connection\r\n"), "{out}");
        prop_assert_eq!(replies.iter().filter(|l| l.starts_with("354")).count(), 1);
        prop_assert_eq!(replies.iter().filter(|l| l.starts_with("250 2.1.0")).count(), 1);
        let starts = run.events.iter().filter(|e| matches!(e, ServerEvent::MessageStart(_))).count();
        prop_assert_eq!(starts, 1);
        let ends = run.events.iter().filter(|e| matches!(e, ServerEvent::MessageEnd { .. })).count();
        prop_assert_eq!(ends, 0, "a smuggled message was delivered");
        prop_assert!(run.events.iter().any(|e| matches!(e, ServerEvent::MessageAborted(smtp_core::AbortReason::BareLineEnding))));
    }
}

// ---------------------------------------------------------------------------------------------
// Arbitrary input to a session

/// Limits small enough that arbitrary input reaches them.
#[derive(Debug, Clone)]
struct Knobs {
    message_size: u64,
    command_line: usize,
    text_line: usize,
    recipients: usize,
    errors: u32,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            message_size: 1 << 20,
            command_line: 512,
            text_line: 1000,
            recipients: 100,
            errors: 1000,
        }
    }
}

fn knobs() -> impl Strategy<Value = Knobs> {
    (8u64..400, 16usize..200, 8usize..200, 1usize..5, 1u32..50).prop_map(
        |(message_size, command_line, text_line, recipients, errors)| Knobs {
            message_size,
            command_line,
            text_line,
            recipients,
            errors,
        },
    )
}

fn fuzz_config(k: &Knobs) -> Arc<ServerConfig> {
    let mut c = ServerConfig::new("mx.example");
    c.limits.message_size = k.message_size;
    c.limits.command_line = k.command_line;
    c.limits.text_line = k.text_line;
    c.limits.recipients = k.recipients;
    c.limits.errors = k.errors;
    Arc::new(c)
}

/// How the input reaches the session: write boundaries and the seconds before each write.
#[derive(Debug, Clone)]
struct Plan {
    /// (end offset, seconds to wait before writing up to it), offsets ascending.
    writes: Vec<(usize, u64)>,
    eof: bool,
}

impl Plan {
    fn whole(input: &[u8]) -> Self {
        Plan {
            writes: vec![(input.len(), 0)],
            eof: false,
        }
    }

    fn cut_randomly(input: &[u8], seed: u64) -> Self {
        let mut rng = SplitMix(seed);
        let mut cuts: Vec<usize> = (0..rng.below(16))
            .map(|_| rng.below(input.len() + 1))
            .collect();
        cuts.push(input.len());
        cuts.sort_unstable();
        Plan {
            writes: cuts.into_iter().map(|c| (c, 0)).collect(),
            eof: false,
        }
    }
}

fn plan(len: usize) -> impl Strategy<Value = Plan> {
    (
        prop::collection::vec((any::<prop::sample::Index>(), 0u64..400), 0..12),
        any::<bool>(),
    )
        .prop_map(move |(cuts, eof)| {
            let mut writes: Vec<(usize, u64)> = cuts
                .into_iter()
                .map(|(i, s)| (i.index(len + 1), s))
                .collect();
            writes.sort_unstable();
            writes.push((len, 0));
            Plan { writes, eof }
        })
}

/// When the driver calls `handle_timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeoutCalls {
    /// Only once `poll_timeout` says the deadline has passed.
    Due,
    /// Also early: after every write and before every wait, whatever the deadline.
    Early,
}

#[derive(Debug, PartialEq, Eq)]
struct Run {
    output: Vec<u8>,
    /// Events with adjacent message data merged.
    events: Vec<ServerEvent>,
    closed: bool,
}

/// Drives a session with an accept-all host, as an adapter would.
fn drive(config: &Arc<ServerConfig>, input: &[u8], plan: &Plan, timeouts: TimeoutCalls) -> Run {
    let start = Instant::now();
    let mut now = start;
    let mut s = ServerSession::new(config.clone(), now);
    let mut output = Vec::new();
    let mut events: Vec<ServerEvent> = Vec::new();
    let mut kept: Vec<u8> = Vec::new();
    let mut from = 0;
    let mut pump = |s: &mut ServerSession, kept: &mut Vec<u8>, now: Instant| loop {
        let used = s.handle_input(kept, now);
        assert!(used <= kept.len(), "consumed more than offered");
        kept.drain(..used);
        let mut decided = false;
        while let Some(ev) = s.poll_event() {
            let ticket = match &ev {
                ServerEvent::Recipient { ticket, .. } | ServerEvent::MessageEnd { ticket, .. } => {
                    Some(*ticket)
                }
                _ => None,
            };
            match (events.last_mut(), ev) {
                (Some(ServerEvent::MessageData(last)), ServerEvent::MessageData(more)) => {
                    last.extend_from_slice(&more)
                }
                (_, ev) => events.push(ev),
            }
            if let Some(ticket) = ticket {
                s.decide(ticket, Verdict::Accept, now)
                    .expect("the ticket of the event just polled");
                decided = true;
            }
        }
        if !decided || kept.is_empty() {
            break;
        }
    };
    for &(end, wait) in &plan.writes {
        if timeouts == TimeoutCalls::Early {
            s.handle_timeout(now);
        }
        let target = now + Duration::from_secs(wait);
        // Fire every deadline on the way, as an adapter's timer would.
        while let Some((deadline, _)) = s.poll_timeout() {
            if deadline > target {
                break;
            }
            now = deadline;
            s.handle_timeout(now);
            pump(&mut s, &mut kept, now);
        }
        now = target;
        if timeouts == TimeoutCalls::Early {
            s.handle_timeout(now);
            pump(&mut s, &mut kept, now);
        }
        let end = end.clamp(from, input.len());
        kept.extend_from_slice(&input[from..end]);
        from = end;
        pump(&mut s, &mut kept, now);
        s.poll_transmit(&mut output);
        if timeouts == TimeoutCalls::Early {
            s.handle_timeout(now);
            pump(&mut s, &mut kept, now);
            s.poll_transmit(&mut output);
        }
    }
    if plan.eof {
        s.handle_eof(now);
        pump(&mut s, &mut kept, now);
    }
    s.poll_transmit(&mut output);
    Run {
        output,
        events,
        closed: s.is_closed(),
    }
}

/// Every line is `[2-5]xy` then SP or `-`, ends in CRLF and holds no other CR or LF; a `-` line
/// is followed by a line of the same code (RFC 5321 section 4.2.1).
fn assert_well_formed(output: &[u8]) {
    assert!(
        output.is_empty() || output.ends_with(b"\r\n"),
        "output does not end in CRLF: {:?}",
        String::from_utf8_lossy(output)
    );
    let mut continued: Option<&[u8]> = None;
    for line in output.split_inclusive(|&b| b == b'\n') {
        let text = line
            .strip_suffix(b"\r\n")
            .unwrap_or_else(|| panic!("line without CRLF: {:?}", String::from_utf8_lossy(line)));
        assert!(
            !text.contains(&b'\r') && !text.contains(&b'\n'),
            "bare CR or LF in a reply line: {:?}",
            String::from_utf8_lossy(line)
        );
        assert!(
            text.len() >= 4
                && (b'2'..=b'5').contains(&text[0])
                && text[1].is_ascii_digit()
                && text[2].is_ascii_digit()
                && (text[3] == b' ' || text[3] == b'-'),
            "malformed reply line: {:?}",
            String::from_utf8_lossy(line)
        );
        if let Some(code) = continued {
            assert_eq!(
                code,
                &text[..3],
                "a multi-line reply changed code: {:?}",
                String::from_utf8_lossy(output)
            );
        }
        continued = (text[3] == b'-').then_some(&text[..3]);
    }
    assert!(continued.is_none(), "output ends inside a multi-line reply");
}

/// Command-like input: whole command lines that take a session deep into transactions (DATA
/// and BDAT bodies included), mixed with fragments from a small alphabet of verbs, `<`, `>`,
/// `@`, `:`, spaces, CR, LF, dots and digits.
fn command_like() -> impl Strategy<Value = Vec<u8>> {
    let line = prop::sample::select(vec![
        &b"EHLO c.example\r\n"[..],
        b"HELO c.example\r\n",
        b"MAIL FROM:<a@b.example>\r\n",
        b"MAIL FROM:<> SIZE=20 BODY=8BITMIME\r\n",
        b"MAIL FROM:<j\xc3\xa9@b.example> SMTPUTF8\r\n",
        b"RCPT TO:<u@example.com>\r\n",
        b"RCPT TO:<postmaster>\r\n",
        b"DATA\r\n",
        b"BDAT 0 LAST\r\n",
        b"BDAT 3\r\n",
        b"BDAT 7 LAST\r\n",
        b"RSET\r\n",
        b"NOOP\r\n",
        b"\r\n.\r\n",
        b".\r\n",
        b"..\r\n",
        b"a line of text\r\n",
    ]);
    let fragment = prop::sample::select(vec![
        &b"MAIL FROM:"[..],
        b"RCPT TO:",
        b"DATA",
        b"BDAT ",
        b" LAST",
        b"QUIT\r\n",
        b"VRFY ",
        b"EXPN ",
        b"HELP",
        b"STARTTLS",
        b" SIZE=",
        b" BODY=8BITMIME",
        b" SMTPUTF8",
        b"<",
        b">",
        b"@",
        b":",
        b" ",
        b"\r",
        b"\n",
        b"\r\n",
        b"\n.\n",
        b"\n.\r\n",
        b"\r.\r\n",
        b".",
        b"0",
        b"1",
        b"7",
        b"42",
        b"a",
        b"\xc3\xa9",
        b"\xff",
        b"\0",
    ]);
    let piece = prop_oneof![3 => line, 2 => fragment];
    prop::collection::vec(piece, 0..80).prop_map(|t| t.concat())
}

fn arbitrary_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..600),
        command_like(),
        command_like(),
        command_like(),
    ]
}

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn arbitrary_input_never_breaks_the_session(
        (input, plan) in arbitrary_input().prop_flat_map(|i| { let n = i.len(); (Just(i), plan(n)) }),
        knobs in prop_oneof![Just(Knobs::default()), knobs()],
    ) {
        let config = fuzz_config(&knobs);
        let due = drive(&config, &input, &plan, TimeoutCalls::Due);
        assert_well_formed(&due.output);
        // Calling handle_timeout before a deadline changes nothing.
        let early = drive(&config, &input, &plan, TimeoutCalls::Early);
        prop_assert_eq!(&due, &early);
    }

    #[test]
    fn command_like_input_is_split_invariant(
        input in command_like(),
        seed in any::<u64>(),
        knobs in prop_oneof![Just(Knobs::default()), knobs()],
    ) {
        let config = fuzz_config(&knobs);
        let whole = drive(&config, &input, &Plan::whole(&input), TimeoutCalls::Due);
        assert_well_formed(&whole.output);
        let cut = drive(&config, &input, &Plan::cut_randomly(&input, seed), TimeoutCalls::Due);
        prop_assert_eq!(&whole, &cut);
        let mut bytes = Plan::whole(&input);
        bytes.writes = (1..=input.len()).map(|i| (i, 0)).collect();
        let by_byte = drive(&config, &input, &bytes, TimeoutCalls::Due);
        prop_assert_eq!(&whole, &by_byte);
    }
}

#[test]
fn well_formed_check_catches_bad_output() {
    let bad: [&[u8]; 5] = [
        b"250 ok",
        b"25 ok\r\n",
        b"600 no\r\n",
        b"250-a\r\n251 b\r\n",
        b"250-a\r\n",
    ];
    for b in bad {
        assert!(
            std::panic::catch_unwind(|| assert_well_formed(b)).is_err(),
            "{:?} passed",
            String::from_utf8_lossy(b)
        );
    }
    assert_well_formed(b"220 mx\r\n250-a\r\n250 b\r\n");
}
