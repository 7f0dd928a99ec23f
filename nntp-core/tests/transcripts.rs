//! Every transcript in `tests/transcripts/` replayed against the server session over an
//! in-memory news host: the server's lines are hard assertions, the host's event log is
//! snapshotted, and the outcome must not depend on how the client's writes were cut.
// A test reads the clock once for its starting point; everything after is relative to it.
#![allow(clippy::disallowed_methods)]

use std::time::Instant;

use nntp_core::transcript::{Split, Transcript, replay, replay_split};

#[test]
fn transcripts() {
    insta::glob!("transcripts", "*.txt", |path| {
        let text = std::fs::read_to_string(path).expect("readable transcript");
        let t = Transcript::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            text.starts_with("# rfc: "),
            "{}: the first line must cite RFC sections",
            path.display()
        );
        let start = Instant::now();
        let outcome = replay(&t, start);
        assert!(
            outcome.is_match(),
            "{}: {}",
            path.display(),
            outcome.report()
        );
        // Byte at a time: lines split across reads change nothing.
        let bytes = replay_split(&t, start, Split::Bytes);
        assert!(
            bytes.is_match(),
            "{} (one byte per read): {}",
            path.display(),
            bytes.report()
        );
        assert_eq!(
            bytes.events,
            outcome.events,
            "{}: events differ when split",
            path.display()
        );
        insta::assert_snapshot!(outcome.events.join("\n"));
    });
}
