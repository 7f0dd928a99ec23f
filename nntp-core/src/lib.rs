//! Sans-IO NNTP for buzon's new-mail notices (RFC 3977 with AUTHINFO, RFC 4643, and STARTTLS,
//! RFC 4642): the pieces that read what a news reader sends. The server session that answers
//! them, in the shape of `smtp-core` and `imap-core`, is being built on top (issue 12;
//! `docs/architecture.md`).
//!
//! ```
//! use nntp_core::syntax::{Command, ListKind, Wildmat};
//!
//! // What slrn sends on connect, pipelined: each line parses on its own.
//! let lines = ["MODE READER", "LIST SUBSCRIPTIONS", "list active buzon.*", "NEWGROUPS 261130 120000 GMT"];
//! let parsed: Vec<Command> = lines.iter().map(|l| Command::parse(l).unwrap()).collect();
//! assert_eq!(parsed[0], Command::ModeReader);
//! assert_eq!(parsed[2], Command::List(ListKind::Active(Wildmat::parse("buzon.*"))));
//! ```
#![forbid(unsafe_code)]

mod group_name;
mod overview;
pub mod syntax;

pub use group_name::{PREFIX as NOTICE_GROUP_PREFIX, notice_group};
pub use overview::{MAX_OVERVIEW_LINE, OVERVIEW_FMT, Overview};
