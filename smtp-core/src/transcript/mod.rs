//! SMTP transcripts: the [`transcript`] format with SMTP's own lines ([`SmtpDirectives`]),
//! replayed against a [`ServerSession`] or a [`ClientSession`](crate::client::ClientSession),
//! and recorded from live sessions.
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
//! The conversation lines (`C:`, `S:`, `C~`, `S~`, `@`) and `! config` belong to every
//! protocol and are read by the [`transcript`] crate; `! decide`, `! submit` and `! quit` are
//! SMTP's.
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

mod client_replay;
mod directives;
mod record;
mod server_replay;

pub use client_replay::{describe_client_event, replay_client, replay_client_split};
pub use directives::SmtpDirectives;
pub use record::Recorder;
pub use server_replay::{Script, describe_event, replay, replay_split, server_config};
pub use transcript::{
    Item, Mismatch, Outcome, Split, TranscriptError, escape, test_tls_info, unescape,
};

/// A transcript with SMTP's directives.
pub type Transcript = transcript::Transcript<SmtpDirectives>;

#[cfg(doc)]
use crate::ServerSession;
