//! Drives a `ClientSession` with two submitted messages against fuzzed server bytes, chunking
//! and clock jumps. Asserts: no panic, the output is CRLF lines that are either SMTP commands
//! or lines of the submitted bodies, every job gets exactly one outcome (Delivered or
//! Failed), and once the session closes (`Closed` seen) every job has had its outcome.
//!
//! Byte 0 holds options (bit 0: pipelining, bit 1: chunking, bit 2: quit at once, bit 3:
//! submit a third message when Ready); the rest is decoded by `buzon_fuzz::steps`.
#![no_main]

use std::collections::BTreeMap;
use std::time::Instant;

use buzon_fuzz::{Step, steps};
use libfuzzer_sys::fuzz_target;
use smtp_core::address::{parse_forward_path, parse_reverse_path};
use smtp_core::client::{ClientConfig, ClientEvent, ClientSession, JobId, Message};
use smtp_core::command::Command;

const BODY1: &[u8] = b"Subject: one\r\n\r\n.leading dot\r\nhello\r\n";
const BODY2: &[u8] = b"Subject: zwei \xc3\xa4\r\n\r\nbody\r\n";
const BODY_LINES: &[&[u8]] = &[
    b"Subject: one",
    b"",
    b".leading dot",
    b"..leading dot",
    b"hello",
    b"Subject: zwei \xc3\xa4",
    b"body",
    b".",
];

fn message(from: &str, to: &[&str], body: &[u8]) -> Message {
    Message::new(
        parse_reverse_path(from).expect("valid sender").0,
        to.iter()
            .map(|t| parse_forward_path(t).expect("valid recipient").0)
            .collect(),
        body.to_vec(),
    )
}

struct Run {
    jobs: Vec<JobId>,
    outcomes: BTreeMap<JobId, u32>,
    closed_seen: bool,
    third: bool,
    /// Jobs submitted after the session had closed: their `Failed(NotSent)` may follow `Closed`.
    late: Vec<JobId>,
}

impl Run {
    fn drain(&mut self, s: &mut ClientSession, out: &mut Vec<u8>) {
        while let Some(ev) = s.poll_event() {
            match ev {
                ClientEvent::Delivered { job, .. } | ClientEvent::Failed { job, .. } => {
                    assert!(self.jobs.contains(&job), "outcome for unknown job {job:?}");
                    assert!(
                        !self.closed_seen || self.late.contains(&job),
                        "outcome for {job:?} after Closed"
                    );
                    let n = self.outcomes.entry(job).or_default();
                    *n += 1;
                    assert_eq!(*n, 1, "two outcomes for {job:?}");
                }
                ClientEvent::Closed(_) => {
                    assert!(!self.closed_seen, "Closed twice");
                    self.closed_seen = true;
                    for job in self.jobs.iter().filter(|j| !self.late.contains(j)) {
                        assert_eq!(
                            self.outcomes.get(job),
                            Some(&1),
                            "{job:?} had no outcome at Closed"
                        );
                    }
                }
                ClientEvent::Ready(_) if self.third => {
                    self.third = false;
                    let closed = s.is_closed();
                    let id = s.submit(message("<>", &["<c@mx.example>"], BODY1));
                    self.jobs.push(id);
                    if closed {
                        self.late.push(id);
                    }
                }
                _ => {}
            }
        }
        s.poll_transmit(out);
        check_commands(out);
        out.clear();
    }
}

fn check_commands(out: &[u8]) {
    if out.is_empty() {
        return;
    }
    assert!(
        out.ends_with(b"\r\n"),
        "output does not end with CRLF: {:?}",
        String::from_utf8_lossy(out)
    );
    for line in out.split_inclusive(|b| *b == b'\n') {
        let line = line
            .strip_suffix(b"\r\n")
            .unwrap_or_else(|| panic!("bare LF in output {:?}", String::from_utf8_lossy(out)));
        assert!(
            !line.contains(&b'\r'),
            "bare CR in output {:?}",
            String::from_utf8_lossy(out)
        );
        if BODY_LINES.contains(&line) {
            continue;
        }
        let cmd = Command::parse(line).unwrap_or_else(|e| {
            panic!("not a command: {:?} ({e:?})", String::from_utf8_lossy(line))
        });
        // The rendered form must be exactly what was sent.
        assert_eq!(
            cmd.to_string().as_bytes(),
            line,
            "command not in canonical form"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&opts, data)) = data.split_first() else {
        return;
    };
    let mut now = Instant::now();
    let mut config = ClientConfig::new("client.example");
    config.pipelining = opts & 1 != 0;
    config.chunking = opts & 2 != 0;
    let mut s = ClientSession::new(config, now);
    let mut run = Run {
        jobs: Vec::new(),
        outcomes: BTreeMap::new(),
        closed_seen: false,
        third: opts & 8 != 0,
        late: Vec::new(),
    };
    run.jobs.push(s.submit(message(
        "<a@client.example>",
        &["<b@mx.example>", "<c@mx.example>"],
        BODY1,
    )));
    run.jobs
        .push(s.submit(message("<d@client.example>", &["<e@mx.example>"], BODY2)));
    if opts & 4 != 0 {
        s.quit();
    }
    let mut out = Vec::new();
    run.drain(&mut s, &mut out);
    let mut kept: Vec<u8> = Vec::new();
    for step in steps(data) {
        match step {
            Step::Data(d) => {
                kept.extend_from_slice(d);
                let n = s.handle_input(&kept, now);
                assert!(n <= kept.len(), "consumed {n} of {} bytes", kept.len());
                kept.drain(..n);
            }
            Step::Advance(d) => {
                now += d;
                s.handle_timeout(now);
            }
            Step::Eof => s.handle_eof(now),
            Step::Shutdown => s.handle_shutdown(now),
        }
        run.drain(&mut s, &mut out);
    }
    s.handle_eof(now);
    run.drain(&mut s, &mut out);
    assert!(s.is_closed(), "session open after EOF");
    assert!(run.closed_seen, "closed without a Closed event");
    for job in &run.jobs {
        assert_eq!(run.outcomes.get(job), Some(&1), "{job:?} has no outcome");
    }
});
