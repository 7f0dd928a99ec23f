//! A sans-IO SMTP implementation (RFC 5321): bytes and time in; bytes, events and deadlines out.
//!
//! The crate owns no socket, file, thread or clock. The same input bytes and the same `now`
//! give the same output, so sessions can be driven by any event loop, replayed from recorded
//! transcripts ([`transcript`]) and tested deterministically.
//!
//! - [`ServerSession`]: the receiving side. It asks its host about recipients and hands over
//!   message data as [`ServerEvent`]s; see the type for the driving contract.
//! - [`policy::LocalDomains`]: the "is this recipient ours" check shared by hosts and tests.
//! - [`dot`], [`command`], [`reply`], [`address`]: the codecs, usable on their own.
//!
//! ```
//! use std::{sync::Arc, time::Instant};
//! use smtp_core::{ServerConfig, ServerSession};
//!
//! let now = Instant::now();
//! let mut session = ServerSession::new(Arc::new(ServerConfig::new("mx.example")), now);
//! let mut out = Vec::new();
//! session.poll_transmit(&mut out);
//! assert_eq!(out, b"220 mx.example ESMTP buzon\r\n");
//! session.handle_input(b"QUIT\r\n", now);
//! out.clear();
//! session.poll_transmit(&mut out);
//! assert_eq!(out, b"221 2.0.0 mx.example closing connection\r\n");
//! assert!(session.is_closed());
//! ```
#![forbid(unsafe_code)]

pub mod address;
pub mod client;
pub mod command;
mod config;
/// Dot-stuffing for DATA, shared with NNTP (from the `line-protocol` crate).
pub use line_protocol::dot;
mod ehlo;
mod event;
pub mod policy;
/// Numeric replies with enhanced status codes (from the `line-protocol` crate).
pub use line_protocol::reply;
mod server;
pub mod size;
pub mod trace;
pub mod transcript;

pub use config::{AuthPolicy, Limits, ServerConfig, Timeouts};
pub use event::{
    AbortReason, BodyType, Envelope, Login, ServerEvent, Ticket, TimerKind, UsageError, Verdict,
    Violation,
};
pub use reply::{EnhancedCode, Reply};
pub use server::ServerSession;
