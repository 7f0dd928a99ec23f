//! Client transcripts under `tests/client-transcripts/`: the client must send exactly the `C:`
//! lines (hard assertion), its event log is snapshotted, and any cut of the server's replies
//! gives the same output and events.

use std::time::Instant;

use proptest::prelude::*;
use smtp_core::transcript::{Outcome, Split, Transcript, replay_client, replay_client_split};

fn load(path: &std::path::Path) -> Transcript {
    let text = std::fs::read_to_string(path).unwrap();
    Transcript::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn client_transcripts_replay() {
    insta::glob!(
        concat!(env!("CARGO_MANIFEST_DIR"), "/client-transcripts"),
        "*.txt",
        |path| {
            let outcome = replay_client(&load(path), Instant::now());
            assert!(
                outcome.is_match(),
                "{}: {}",
                path.display(),
                outcome.report()
            );
            insta::assert_snapshot!(outcome.events.join("\n"));
        }
    );
}

fn all() -> Vec<Transcript> {
    buzon_tests::load_transcripts("client-transcripts")
        .into_iter()
        .map(|(_, t)| t)
        .collect()
}

fn same(a: &Outcome, b: &Outcome) -> bool {
    a.output == b.output && a.events == b.events
}

#[test]
fn byte_at_a_time_replies_change_nothing() {
    for t in all() {
        let whole = replay_client(&t, Instant::now());
        let bytes = replay_client_split(&t, Instant::now(), Split::Bytes);
        assert!(same(&whole, &bytes), "{t}");
    }
}

proptest! {
    #[test]
    fn any_cut_of_replies_changes_nothing(seed in any::<u64>()) {
        let mut state = seed | 1;
        let mut cuts = move |len: usize| -> Vec<usize> {
            let mut v: Vec<usize> = (0..4)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state as usize) % (len + 1)
                })
                .collect();
            v.sort_unstable();
            v
        };
        for t in all() {
            let whole = replay_client(&t, Instant::now());
            let split = replay_client_split(&t, Instant::now(), Split::Custom(&mut cuts));
            prop_assert!(same(&whole, &split));
        }
    }
}
