//! Every transcript in `tests/transcripts/` replayed in memory: the server's lines are hard
//! assertions, and the host's event log is snapshotted with insta.

use std::time::Instant;

use smtp_core::transcript::{Transcript, replay};

#[test]
fn transcripts() {
    insta::glob!("../transcripts", "*.txt", |path| {
        let text = std::fs::read_to_string(path).expect("readable transcript");
        let t = Transcript::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            text.starts_with("# rfc: "),
            "{}: the first line must cite RFC sections",
            path.display()
        );
        let outcome = replay(&t, Instant::now());
        assert!(
            outcome.is_match(),
            "{}: {}",
            path.display(),
            outcome.report()
        );
        insta::assert_snapshot!(outcome.events.join("\n"));
    });
}
