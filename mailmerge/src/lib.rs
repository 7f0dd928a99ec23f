//! The pure half of a CSV mail merge.
//!
//! [`read_recipients`] turns CSV bytes into rows, [`Template::parse`] turns a
//! message template into something that [`Template::render`] fills in per
//! row, producing the envelope and the full RFC 5322 message. Nothing here
//! opens a socket, reads a clock or touches a file: the date and Message-ID
//! arrive in a [`RenderContext`], and attachments through a loader closure.
//! The `buzon send` command does the files, the network and the journal.
//!
//! ```
//! use mailmerge::{read_recipients, ReadOptions, RenderContext, Template};
//!
//! let recipients = read_recipients(b"email,name\nana@example.org,Ana\n", &ReadOptions::default())?;
//! let template = Template::parse("Subject: Hello {{ name }}\n\nHi {{ name }}!\n", None)?;
//! template.check_columns(&recipients.columns)?;
//!
//! for (i, row) in recipients.rows.iter().enumerate() {
//!     let ctx = RenderContext {
//!         from: Some("News <news@example.com>".into()),
//!         date: 1_700_000_000,
//!         message_id: format!("<{i}.1700000000@example.com>"),
//!     };
//!     let out = template.render(row, &ctx, &|_| unreachable!("no attachments"))?;
//!     assert_eq!(out.recipients, ["ana@example.org"]);
//!     assert_eq!(out.to, [(Some("Ana".to_owned()), "ana@example.org".to_owned())]);
//! }
//! # Ok::<(), mailmerge::MergeError>(())
//! ```

mod address;
mod columns;
mod csv_text;
mod error;
mod header_text;
mod message;
mod recipients;
mod template;

pub use address::check_mailbox;
pub use columns::variable_name;
pub use error::MergeError;
pub use message::content_type_for;
pub use recipients::{ReadOptions, Recipients, Row, RowError, read_recipients};
pub use template::{RenderContext, Rendered, Template};
