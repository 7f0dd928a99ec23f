//! What FETCH and SEARCH need from a message's bytes: ENVELOPE, BODYSTRUCTURE, the byte ranges
//! of sections, and text matching. Pure functions over `&[u8]`; ranges point into the original
//! so a caller can stream a part from its file.

mod address;
mod envelope;
mod search;
mod section;
mod structure;
mod tree;

pub use envelope::envelope;
pub use search::{header_matches, sent_date, text_matches};
pub use section::{Section, SectionData, SectionPart, section};
pub use structure::body_structure;
pub use tree::header_end;
