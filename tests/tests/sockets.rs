//! Every transcript that does not move the clock, played over real loopback sockets against
//! both adapters: the replies must be exactly the transcript's, as in the in-memory replay.

use buzon_tests::{RunningServer, Runtime, ScriptService, play_over_socket};
use smtp_core::transcript::Transcript;

fn transcripts() -> Vec<(String, Transcript)> {
    buzon_tests::load_transcripts("transcripts")
}

fn all_over(runtime: Runtime) {
    let mut failures = Vec::new();
    let mut played = 0;
    for (name, t) in transcripts() {
        if t.uses_clock() || t.uses_tls() {
            continue;
        }
        let server = RunningServer::start(runtime, ScriptService::new(&t));
        if let Err(e) = play_over_socket(&t, server.addr) {
            failures.push(format!("{name}: {e}"));
        }
        played += 1;
    }
    assert!(played > 0);
    assert!(
        failures.is_empty(),
        "{} of {played} failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn transcripts_over_smol() {
    all_over(Runtime::Smol);
}

#[test]
fn transcripts_over_mio() {
    all_over(Runtime::Mio);
}
