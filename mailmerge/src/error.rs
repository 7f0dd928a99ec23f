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

    /// The header row has no column that holds addresses, and the file is
    /// not a bare list of addresses either.
    #[error("{}", no_email_column(found, *delimiter))]
    NoEmailColumn {
        /// The column names that the header row does have.
        found: Vec<String>,
        /// The delimiter the header row was split with.
        delimiter: u8,
    },

    /// A column named in [`ReadOptions`](crate::ReadOptions) is not in the
    /// header row.
    #[error(
        "recipients: {option} {name:?}: no such column; the columns are {}",
        list(found)
    )]
    NoSuchColumn {
        /// The option that named it (`--email-column`, `--name-column`).
        option: &'static str,
        /// The name given.
        name: String,
        /// The column names that the header row does have.
        found: Vec<String>,
    },

    /// [`ReadOptions::encoding`](crate::ReadOptions::encoding) names no
    /// encoding known to the WHATWG Encoding Standard.
    #[error(
        "recipients: unknown encoding {label:?} (try utf-8, windows-1252, latin1, utf-16le or utf-16be)"
    )]
    UnknownEncoding {
        /// The label given.
        label: String,
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
        "template uses {name:?}, but the recipients have no such column (columns: {}; a header \
         that is not a plain name is written in lower case with _ for spaces and signs, \
         \"E-mail Address\" as e_mail_address, or as row[\"E-mail Address\"])",
        list(available)
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
    #[error("header {header}: {}", in_value(reason, value))]
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

/// Column names as a user reads them: `"a", "b"`.
fn list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Says that no address column was found, and what to do about it: a file
/// whose one column holds another delimiter was most likely split wrong.
fn no_email_column(found: &[String], delimiter: u8) -> String {
    if let [only] = found {
        for (d, word) in [
            (';', "semicolons"),
            ('\t', "tabs"),
            (',', "commas"),
            ('|', "bars"),
        ] {
            if only.contains(d) && char::from(delimiter) != d {
                let flag = if d == '\t' {
                    "tab".to_owned()
                } else {
                    format!("'{d}'")
                };
                return format!(
                    "recipients: found one column {only:?}: is the file separated by {word}? \
                     try --delimiter {flag}"
                );
            }
        }
    }
    format!(
        "recipients: no column of email addresses (looked for headers like \"email\", \
         \"E-mail Address\", \"Primary Email\", \"E-mail 1 - Value\"); the columns are {}; \
         name the right one with --email-column",
        list(found)
    )
}

/// A reason with the value it is about, unless the reason quotes it already.
fn in_value(reason: &str, value: &str) -> String {
    let quoted = format!("{value:?}");
    if reason.contains(&quoted) {
        reason.to_owned()
    } else {
        format!("{reason} in {quoted}")
    }
}
