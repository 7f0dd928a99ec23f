//! What FETCH and SEARCH need from a message's bytes (RFC 3501 sections 6.4.4, 6.4.5, 7.4.2):
//! ENVELOPE, BODY and BODYSTRUCTURE, the bytes BODY\[section\] names, and the header, text and
//! date tests of SEARCH.
//!
//! Everything here is a pure function of the raw message (RFC 5322, lines ending in CRLF or a
//! bare LF), so it needs no I/O and no clock, and it never fails or panics: broken input gives
//! the answer Dovecot would give (a broken multipart is text/plain, a missing part is empty).
//! Sections are byte ranges of the original wherever possible, so a caller can stream them
//! from a file; ENVELOPE needs only the header.

mod address;
mod content;
mod envelope;
mod header;
mod render;
mod search;
mod section;
mod structure;
mod tree;

pub use envelope::envelope;
pub use header::header_end;
pub use render::{write_nstring, write_string};
pub use search::{header_matches, sent_date, text_matches};
pub use section::{Section, SectionData, SectionPart, section};
pub use structure::body_structure;
