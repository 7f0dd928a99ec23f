//! Plain-text protocol transcripts, for any line-based protocol with a sans-IO
//! [`Session`](session_api::Session): the file format, a replay loop, a recorder and a report of
//! where a replay parted from its transcript.
//!
//! A transcript is a conversation and the settings it needs:
//!
//! ```text
//! # comment
//! ! config hostname=mx.example.com
//! S: 220 mx.example.com ESMTP buzon
//! C: EHLO client.example.org
//! C~ raw bytes, no CRLF added\r\n
//! @ +300s
//! @ tls
//! @ host deliver INBOX
//! @ eof
//! ```
//!
//! `C:` and `S:` lines get CRLF appended; `C~` and `S~` lines do not. In all four, `\r`, `\n`,
//! `\t`, `\\` and `\xHH` stand for the bytes they name (any other backslash is literal).
//! Consecutive lines of one side are one write. `@ +Ns` moves the clock and fires due timers,
//! `@ tls` is where the transport becomes TLS, `@ host ACTION` is something that happens on the
//! host's side at that point (another session's change, a delivery: the protocol's [`Host`] says
//! what its actions mean), `@ eof` closes the client's side.
//!
//! This crate knows nothing of any one protocol. A protocol adds its own `!` lines (SMTP's
//! `! decide` and `! submit`) as a [`Directives`] type, and answers its session's events with a
//! [`Host`]:
//!
//! ```
//! use std::time::Instant;
//! use session_api::Session;
//! use transcript::{EventLog, Host, Role, Split, Transcript, replay};
//!
//! /// A protocol that answers every line with `ok`.
//! #[derive(Default)]
//! struct Ok { out: Vec<u8> }
//! impl Session for Ok {
//!     type Event = ();
//!     fn handle_input(&mut self, input: &[u8], _now: Instant) -> usize {
//!         let lines = input.iter().filter(|&&b| b == b'\n').count();
//!         for _ in 0..lines { self.out.extend_from_slice(b"ok\r\n") }
//!         input.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
//!     }
//!     fn handle_eof(&mut self, _now: Instant) {}
//!     fn handle_timeout(&mut self, _now: Instant) {}
//!     fn handle_shutdown(&mut self, _now: Instant) {}
//!     fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
//!         let n = self.out.len();
//!         out.append(&mut self.out);
//!         n
//!     }
//!     fn poll_event(&mut self) -> Option<()> { None }
//!     fn poll_timeout(&self) -> Option<session_api::Deadline> { None }
//!     fn is_closed(&self) -> bool { false }
//! }
//!
//! /// It asks nothing of its host.
//! struct Nothing;
//! impl Host<Ok> for Nothing {
//!     fn answer(&mut self, _: &mut Ok, _: Instant, _: &mut EventLog) -> bool { false }
//! }
//!
//! let t: Transcript = Transcript::parse("C: hello\nS: ok\nC: again\nS: ok\n").unwrap();
//! let outcome = replay(&t.items, Role::Server, &mut Ok::default(), &mut Nothing,
//!                      Instant::now(), Split::Bytes);
//! assert!(outcome.is_match(), "{}", outcome.report());
//! ```
#![forbid(unsafe_code)]

mod escape;
mod format;
mod log;
mod record;
mod replay;

pub use escape::{escape, unescape};
pub use format::{Directives, Item, Transcript, TranscriptError};
pub use log::EventLog;
pub use record::Recorder;
pub use replay::{Host, Mismatch, Outcome, Role, Split, replay, test_tls_info};
