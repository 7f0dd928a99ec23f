//! The crate's one error type.

use std::io;

/// Everything that can go wrong while reading recipients, parsing a template
/// or rendering one message.
///
/// Variants carry the line, column, header or file involved so that the CLI
/// can print a message a user can act on without extra context.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MergeError {
    /// A recipients row could not be used (wrong number of fields, empty or
    /// invalid address, invalid UTF-8). Returned for the first bad row when
    /// reading in strict mode, or for a bad header row in any mode.
    #[error("recipients line {line}: {reason}")]
    BadRow {
        /// 1-based line in the CSV file where the record starts.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },

    /// The header row names no `email` (or `e-mail`, `address`) column.
    #[error("recipients: no email column (looked for email, e-mail, address); found {found:?}")]
    NoEmailColumn {
        /// The column names that the header row does have.
        found: Vec<String>,
    },

    /// Two header columns have the same name, so a template variable would
    /// be ambiguous.
    #[error("recipients: column {name:?} appears more than once")]
    DuplicateColumn {
        /// The repeated column name.
        name: String,
    },

    /// The CSV input has no records at all.
    #[error("recipients: the file has no records")]
    Empty,

    /// The CSV reader itself failed.
    #[error("recipients: {message}")]
    Csv {
        /// The reader's description of the failure.
        message: String,
    },

    /// The template's header section is malformed (a line that is neither a
    /// header, a continuation nor the blank separator line; a repeated
    /// single-use header).
    #[error("template line {line}: {reason}")]
    TemplateSyntax {
        /// 1-based line in the template text.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },

    /// The template sets a header that the merge writes itself
    /// (`Date`, `Message-ID`, `MIME-Version`, `Content-*`).
    #[error("template line {line}: header {name} is written by the merge itself")]
    ReservedHeader {
        /// 1-based line in the template text.
        line: usize,
        /// The header name as written in the template.
        name: String,
    },

    /// minijinja refused a template part, at parse time (syntax) or at
    /// render time (a failing filter, an undefined value).
    #[error("template {part}: {message}")]
    Template {
        /// Which part: `body`, `html body` or `header Subject` and so on.
        part: String,
        /// minijinja's description, including its line information.
        message: String,
    },

    /// The template uses a variable that the recipients file has no column for.
    #[error(
        "template uses {name:?}, but the recipients have no such column (columns: {available:?})"
    )]
    MissingColumn {
        /// The variable the template uses.
        name: String,
        /// The columns the recipients file does have.
        available: Vec<String>,
    },

    /// Neither the template nor [`RenderContext::from`](crate::RenderContext::from)
    /// gives a `From` address.
    #[error("no From: the template has no From header and no sender was given")]
    NoFrom,

    /// A rendered address header does not hold valid addresses.
    #[error("header {header}: {reason} in {value:?}")]
    BadAddress {
        /// The header (`From`, `To`, `Cc`, `Bcc`, `Reply-To`, `Sender`).
        header: String,
        /// The rendered header value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The message would have no envelope recipient.
    #[error("the message has no recipients")]
    NoRecipients,

    /// The caller's Message-ID is not a usable `<id-left@id-right>`.
    #[error("bad Message-ID {value:?}: {reason}")]
    BadMessageId {
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The loader failed to read an `Attach:` file.
    #[error("attachment {name:?}: {source}")]
    Attachment {
        /// The rendered file name, as given to the loader.
        name: String,
        /// The loader's error.
        #[source]
        source: io::Error,
    },
}
