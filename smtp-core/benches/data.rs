//! Throughput of the server core's DATA path, with no I/O.
//!
//! - `dot_decoder`: the bare `DotDecoder` over a dot-stuffed body.
//! - `server_session`: a whole `ServerSession` transaction (EHLO, MAIL, RCPT, DATA, body, `.`),
//!   driven as an adapter would: 64 KiB reads, events drained after each read, recipients and
//!   the message end accepted with `decide`, replies polled.
//! - `server_session_small`: the same for one 2 KiB message per session (the end-to-end
//!   benchmark's workload), to show the per-message cost of the core alone.
//!
//! The body is 10 MiB of 76-character lines ending in CRLF (as base64 or quoted-printable
//! parts are); one line in 16 starts with a dot and is dot-stuffed on the wire. Throughput
//! counts wire bytes of the body (stuffing included). `data_10MiB_short_lines` repeats the
//! session case with 20-character lines, where per-line work weighs four times as much.
//!
//! Run with `cargo bench -p smtp-core --bench data`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use smtp_core::dot::DotDecoder;
use smtp_core::{ServerConfig, ServerEvent, ServerSession, Verdict};

const BODY_SIZE: usize = 10 << 20;
const READ_SIZE: usize = 64 << 10;
const ENVELOPE: &[u8] = b"EHLO client.example\r\nMAIL FROM:<sender@client.example>\r\n\
RCPT TO:<user@mx.example>\r\nDATA\r\n";

/// A dot-stuffed body of about `size` wire bytes in lines of `width` characters plus CRLF,
/// terminator included.
fn wire_body(size: usize, width: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/ ";
    let mut wire = Vec::with_capacity(size + 100);
    let mut seed: u32 = 0x9e37_79b9;
    let mut line = 0usize;
    while wire.len() < size {
        if line % 16 == 7 {
            // A text line that begins with a dot: stuffed on the wire (RFC 5321 4.5.2).
            wire.extend_from_slice(b"..");
            for _ in 1..width {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                wire.push(ALPHABET[(seed >> 26) as usize]);
            }
        } else {
            for _ in 0..width {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                wire.push(ALPHABET[(seed >> 26) as usize]);
            }
        }
        wire.extend_from_slice(b"\r\n");
        line += 1;
    }
    wire.extend_from_slice(b".\r\n");
    wire
}

/// Drives one session over `envelope`, then `body` in `READ_SIZE` reads; returns the body
/// bytes the host received (so the work cannot be optimised away).
fn run_session(config: &Arc<ServerConfig>, now: Instant, envelope: &[u8], body: &[u8]) -> usize {
    let mut session = ServerSession::new(config.clone(), now);
    let mut out = Vec::with_capacity(1024);
    let mut received = 0usize;
    let mut ended = false;
    let mut feed = |session: &mut ServerSession, mut input: &[u8], received: &mut usize| {
        // Offer everything; after a decision, offer the rest again (the driving contract).
        loop {
            let used = session.handle_input(input, now);
            input = &input[used..];
            let mut decided = false;
            while let Some(ev) = session.poll_event() {
                match ev {
                    ServerEvent::Recipient { ticket, .. } => {
                        session.decide(ticket, Verdict::Accept, now).unwrap();
                        decided = true;
                    }
                    ServerEvent::MessageData(bytes) => *received += bytes.len(),
                    ServerEvent::MessageEnd { ticket, .. } => {
                        session.decide(ticket, Verdict::Accept, now).unwrap();
                        decided = true;
                        ended = true;
                    }
                    other => {
                        black_box(other);
                    }
                }
            }
            out.clear();
            session.poll_transmit(&mut out);
            black_box(&out);
            if input.is_empty() || !decided {
                return input.len();
            }
        }
    };
    let left = feed(&mut session, envelope, &mut received);
    assert_eq!(left, 0, "envelope not consumed");
    for chunk in body.chunks(READ_SIZE) {
        // An adapter would keep unconsumed bytes for the next read; in DATA the core consumes
        // everything up to the terminator, and nothing follows it here.
        let left = feed(&mut session, chunk, &mut received);
        debug_assert_eq!(left, 0);
    }
    assert!(ended, "message end not reached");
    received
}

fn bench_data(c: &mut Criterion) {
    // The core never reads the clock; one instant serves every session (nothing times out
    // within a benchmark).
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let body = wire_body(BODY_SIZE, 76);
    let mut config = ServerConfig::new("mx.example");
    config.limits.message_size = 64 << 20;
    let config = Arc::new(config);

    // Sanity: what the session hands over equals what the decoder produces.
    let mut decoded = Vec::new();
    let (used, done) = DotDecoder::new(1000).decode(&body, &mut decoded);
    assert!(done && used == body.len());
    assert_eq!(run_session(&config, now, ENVELOPE, &body), decoded.len());

    let mut g = c.benchmark_group("data_10MiB");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.sample_size(30);
    g.measurement_time(Duration::from_secs(8));

    g.bench_function("dot_decoder", |b| {
        let mut out = Vec::with_capacity(READ_SIZE);
        b.iter(|| {
            let mut d = DotDecoder::new(1000);
            let mut total = 0;
            for chunk in body.chunks(READ_SIZE) {
                out.clear();
                let (used, _) = d.decode(black_box(chunk), &mut out);
                total += used + out.len();
            }
            black_box(total)
        });
    });

    g.bench_function("server_session", |b| {
        b.iter(|| black_box(run_session(&config, now, ENVELOPE, black_box(&body))));
    });
    g.finish();

    // The same with 20-character lines: four times the per-line work per byte.
    let short = wire_body(BODY_SIZE, 20);
    let mut g = c.benchmark_group("data_10MiB_short_lines");
    g.throughput(Throughput::Bytes(short.len() as u64));
    g.sample_size(30);
    g.measurement_time(Duration::from_secs(8));
    g.bench_function("server_session", |b| {
        b.iter(|| black_box(run_session(&config, now, ENVELOPE, black_box(&short))));
    });
    g.finish();

    // One 2 KiB message per session: the core's share of an end-to-end message.
    let small = wire_body(2048, 76);
    let mut g = c.benchmark_group("session_2KiB_message");
    g.throughput(Throughput::Elements(1));
    g.bench_function("server_session", |b| {
        b.iter(|| black_box(run_session(&config, now, ENVELOPE, black_box(&small))));
    });
    g.finish();
}

criterion_group!(benches, bench_data);
criterion_main!(benches);
