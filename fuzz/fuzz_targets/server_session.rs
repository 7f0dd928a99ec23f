//! Drives a `ServerSession` with fuzzed peer bytes, chunking and clock jumps; every recipient
//! and message is accepted. Asserts: no panic, `handle_input` never reports more than it was
//! given, the output is whole `[2-5]xx` reply lines ending in CRLF, and after `is_closed`
//! nothing more is consumed.
#![no_main]

use std::sync::Arc;
use std::time::Instant;

use buzon_fuzz::{Step, check_reply_lines, steps};
use libfuzzer_sys::fuzz_target;
use smtp_core::{ServerConfig, ServerEvent, ServerSession, Verdict};

fn drain(s: &mut ServerSession, now: Instant, out: &mut Vec<u8>) -> bool {
    let mut decided = false;
    while let Some(ev) = s.poll_event() {
        match ev {
            ServerEvent::Recipient { ticket, .. } | ServerEvent::MessageEnd { ticket, .. } => {
                s.decide(ticket, Verdict::Accept, now)
                    .expect("the pending ticket is accepted");
                decided = true;
            }
            _ => {}
        }
    }
    s.poll_transmit(out);
    decided
}

fuzz_target!(|data: &[u8]| {
    let mut now = Instant::now();
    let mut s = ServerSession::new(Arc::new(ServerConfig::new("mx.example")), now);
    let mut out = Vec::new();
    let mut kept: Vec<u8> = Vec::new();
    drain(&mut s, now, &mut out);
    for step in steps(data) {
        match step {
            Step::Data(d) => {
                kept.extend_from_slice(d);
                loop {
                    let was_closed = s.is_closed();
                    let n = s.handle_input(&kept, now);
                    assert!(n <= kept.len(), "consumed {n} of {} bytes", kept.len());
                    if was_closed {
                        assert_eq!(n, 0, "consumed input after close");
                    }
                    kept.drain(..n);
                    let decided = drain(&mut s, now, &mut out);
                    if !decided || kept.is_empty() {
                        break;
                    }
                }
            }
            Step::Advance(d) => {
                now += d;
                if s.poll_timeout().is_some_and(|(t, _)| t > now) {
                    // Early calls must change nothing.
                    let before = out.len();
                    s.handle_timeout(now);
                    drain(&mut s, now, &mut out);
                    assert_eq!(out.len(), before, "early handle_timeout wrote output");
                } else {
                    s.handle_timeout(now);
                    drain(&mut s, now, &mut out);
                }
            }
            Step::Eof => {
                s.handle_eof(now);
                drain(&mut s, now, &mut out);
            }
            Step::Shutdown => {
                s.handle_shutdown(now);
                drain(&mut s, now, &mut out);
            }
        }
        check_reply_lines(&out);
        out.clear();
    }
    s.handle_eof(now);
    drain(&mut s, now, &mut out);
    check_reply_lines(&out);
    assert!(s.is_closed(), "session still open after EOF");
});
