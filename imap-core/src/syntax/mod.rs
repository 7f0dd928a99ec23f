//! IMAP syntax: parsing commands (RFC 3501 section 9 with the extensions' grammar) and the
//! pieces of it responses reuse.

mod command;
mod cursor;
mod datetime;
mod parse;
pub(crate) mod render;
mod sequence;

pub use crate::message::{write_nstring, write_string};
pub use command::*;
pub use cursor::SyntaxError;
pub use datetime::{Date, format_date_time};
pub use parse::{AppendPrefix, ParseFailure, append_prefix, parse_command, parse_tag};
pub use sequence::{SeqNumber, SequenceSet, compact_set};
