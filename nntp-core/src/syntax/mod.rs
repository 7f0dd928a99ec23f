//! The NNTP grammar: commands, article ranges, wildmats and NEWGROUPS/NEWNEWS dates. Pure
//! functions; the session (next) decides what each command answers.

mod command;
mod date;
mod range;
mod wildmat;

pub use command::{
    ArticleRef, Command, CommandError, HeadersFor, ListKind, MAX_COMMAND_LINE, Password, Target,
    is_message_id,
};
pub use date::{NewsDate, Year, article_date, date_digits, year_of};
pub use range::Range;
pub use wildmat::Wildmat;
