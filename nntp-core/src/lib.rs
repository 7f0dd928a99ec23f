//! Sans-IO NNTP for buzon's new-mail notices (RFC 3977 with AUTHINFO, RFC 4643, and STARTTLS,
//! RFC 4642), in the shape of `smtp-core` and `imap-core`: a reader [`ServerSession`] (bytes
//! and the time in; replies, [`Event`]s for the host and the next deadline out), the grammar
//! it reads ([`syntax`]), the article views it gives ([`Article`], [`Overview`]) and replayable
//! [`transcript`]s over an in-memory host.
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

mod article;
pub mod client;
mod config;
mod event;
mod group_name;
mod overview;
mod server;
pub mod syntax;
pub mod transcript;

pub use article::Article;
pub use config::ServerConfig;
pub use event::{Answer, Event, GroupInfo, GroupView, Request, Ticket};
pub use group_name::{PREFIX as NOTICE_GROUP_PREFIX, notice_group};
pub use overview::{MAX_OVERVIEW_LINE, OVERVIEW_FMT, Overview};
pub use server::ServerSession;
