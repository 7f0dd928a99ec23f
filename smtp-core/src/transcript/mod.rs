//! Plain-text SMTP transcripts: parse, replay against a [`ServerSession`], and record.
//!
//! The format (documented for humans in `docs/transcripts.md`):
//!
//! ```text
//! # rfc: 5321 3.3            comment
//! ! config hostname=mx.example.com
//! ! config domains=example.com
//! ! decide rcpt <nobody@example.com> = 550 5.1.1 no such user
//! ! decide data = 451 4.3.0 storage failed
//! S: 220 mx.example.com ESMTP buzon
//! C: EHLO client.example.org
//! C~ raw bytes, no CRLF added\r\n
//! @ +300s
//! @ eof
//! ```
//!
//! `C:` and `S:` lines get CRLF appended; `C~` and `S~` lines do not. In all four, `\r`, `\n`,
//! `\t`, `\\` and `\xHH` stand for the bytes they name (any other backslash is literal).
//! Consecutive client lines are sent as one write. `@ +Ns` moves the clock and fires due
//! timers; `@ eof` closes the client's side.
//!
//! ```
//! use std::time::Instant;
//! use smtp_core::transcript::{Transcript, replay};
//!
//! let t = Transcript::parse("\
//! ! config hostname=mx.example
//! S: 220 mx.example ESMTP buzon
//! C: NOOP
//! C: QUIT
//! S: 250 2.0.0 Ok
//! S: 221 2.0.0 mx.example closing connection
//! ").unwrap();
//! let outcome = replay(&t, Instant::now());
//! assert!(outcome.is_match(), "{}", outcome.report());
//! ```

mod client_run;
mod format;
mod record;
mod run;

pub use client_run::{describe_client_event, replay_client, replay_client_split};
pub use format::{Item, Transcript, TranscriptError, escape, unescape};
pub use record::Recorder;
pub use run::{
    Mismatch, Outcome, Script, Split, describe_event, replay, replay_split, test_tls_info,
};

#[cfg(doc)]
use crate::ServerSession;
