//! What buzon's line-based mail protocols share, so that each is written once:
//!
//! - [`base64`]: RFC 4648 base64, for SASL and MIME encoded words.
//! - [`dot`]: dot-stuffing, the transparency procedure of SMTP `DATA` (RFC 5321 section 4.5.2)
//!   and of NNTP articles (RFC 3977 section 3.1.1): a decoder that streams in bounded chunks and
//!   ends only at `CRLF.CRLF`, and an encoder.
//! - [`line`](mod@line): command lines with a length limit, over-long lines dropped as they arrive and
//!   answered once.
//! - [`sasl`]: SASL PLAIN and LOGIN exchanges as SMTP AUTH, IMAP AUTHENTICATE and NNTP
//!   AUTHINFO SASL carry them, base64 on lines, and [`Secret`](sasl::Secret) for credentials.
//! - [`reply`]: numeric replies (`250 2.1.0 Ok`), with RFC 3463 enhanced status codes and the
//!   SMTP multi-line form. Codes 100 to 599 can be built (NNTP uses 1xx); the multi-line
//!   parser takes SMTP's 2xx to 5xx.
//!
//! Sans-IO like the cores: no sockets, files, clocks or threads.
#![forbid(unsafe_code)]

pub mod base64;
pub mod dot;
pub mod line;
pub mod reply;
pub mod sasl;

pub use reply::{EnhancedCode, Reply};
