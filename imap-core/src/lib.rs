//! A sans-IO IMAP server session: IMAP4rev1 (RFC 3501) with IDLE, ENABLE, ID, NAMESPACE,
//! UNSELECT, UIDPLUS, MOVE, CHILDREN, SPECIAL-USE, LIST-EXTENDED, LIST-STATUS, ESEARCH,
//! SEARCHRES, CONDSTORE, QRESYNC, APPENDLIMIT, SASL-IR and LITERAL+ (`docs/imap.md` says what
//! each means here).
//!
//! Bytes and the time go in; responses, [`Event`]s for the host and the next deadline come
//! out. The host owns storage and accounts: each question is a [`Request`] with a [`Ticket`],
//! answered with [`ServerSession::answer`]. Message bodies never sit whole in the session: an
//! APPEND streams out as [`Event::AppendData`], a FETCH is rendered in chunks by a
//! [`FetchJob`] the host runs.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use imap_core::{ServerConfig, ServerSession};
//! use session_api::Session;
//!
//! let now = Instant::now();
//! let mut s = ServerSession::new(Arc::new(ServerConfig::new("mx.example.com")), false, now);
//! let mut out = Vec::new();
//! s.poll_transmit(&mut out);
//! assert!(out.starts_with(b"* OK [CAPABILITY IMAP4rev1 "));
//! out.clear();
//! let used = s.handle_input(b"a1 NOOP\r\na2 LOG", now);
//! assert_eq!(used, 9); // the incomplete command is the caller's to keep
//! s.poll_transmit(&mut out);
//! assert_eq!(out, b"a1 OK NOOP completed\r\n");
//! ```
#![forbid(unsafe_code)]

mod config;
mod event;
pub mod fetch;
mod list;
mod mailbox_name;
pub mod message;
pub mod search;
mod session;
pub mod syntax;
pub mod transcript;

pub use config::ServerConfig;
pub use event::{
    Answer, Changes, Event, FlagChange, Flags, MailboxEntry, MessageInfo, Request, SelectedMailbox,
    StatusInfo, Ticket,
};
pub use fetch::{FetchJob, MessageSource};
pub use mailbox_name::{MAX_NAME, SEPARATOR, mailbox_name_problem};
pub use search::SearchJob;
pub use session::{FetchProgress, ServerSession};
