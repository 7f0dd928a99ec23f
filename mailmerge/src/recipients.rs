//! Reading the recipients list from CSV.
//!
//! Two shapes are accepted:
//!
//! * a header row naming an address column (`email`, or what address-book
//!   exports call it: `E-mail Address`, `Primary Email`, `E-mail 1 - Value`;
//!   see the `columns` module), optional name columns and any other
//!   columns, which become template variables;
//! * the shape the original tool took: no header, just addresses, one or
//!   several per line. It is recognised when the first record names no email
//!   column and every non-empty field in it is an address.
//!
//! The file may be UTF-8 (with or without a byte-order mark), UTF-16 with a
//! byte-order mark, or Windows-1252, and separated by `,`, `;`, tabs or `|`
//! (see the `csv_text` module).

use crate::MergeError;
use crate::address::check_mailbox;
use crate::columns::{self, Roles};
use crate::csv_text;
use std::collections::{BTreeMap, BTreeSet};

/// How to read a recipients file. The default reads any of the shapes above
/// and skips bad rows.
///
/// ```
/// use mailmerge::{ReadOptions, read_recipients};
///
/// let csv = b"Mail;Naam\nana@example.org;Ana\n";
/// let options = ReadOptions {
///     email_column: Some("Mail".into()),
///     name_column: Some("Naam".into()),
///     ..ReadOptions::default()
/// };
/// let r = read_recipients(csv, &options)?;
/// assert_eq!(r.delimiter, b';');
/// assert_eq!(r.rows[0].name.as_deref(), Some("Ana"));
/// # Ok::<(), mailmerge::MergeError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Stop at the first bad row ([`MergeError::BadRow`]) instead of
    /// skipping it.
    pub strict: bool,
    /// The field delimiter; found from the header line when `None`.
    pub delimiter: Option<u8>,
    /// The file's encoding, as any WHATWG label (`utf-8`, `windows-1252`,
    /// `latin1`, `utf-16le`...); found from the bytes when `None`.
    pub encoding: Option<String>,
    /// The header of the address column; found by name when `None`.
    pub email_column: Option<String>,
    /// The header of the name column; found by name when `None`.
    pub name_column: Option<String>,
}

/// The recipients read from one CSV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipients {
    /// Column names from the header row, trimmed, in file order. For a
    /// headerless file this is just `["email"]`.
    pub columns: Vec<String>,
    /// The usable rows, in file order.
    pub rows: Vec<Row>,
    /// Rows that were skipped because they were bad (only when not strict).
    pub skipped: Vec<RowError>,
    /// Whether the file was the headerless "bare addresses" shape.
    pub headerless: bool,
    /// The encoding the file was read in (`UTF-8`, `UTF-16LE`,
    /// `windows-1252`...).
    pub encoding: &'static str,
    /// The field delimiter used.
    pub delimiter: u8,
    /// The header of the column the addresses came from (`None` when
    /// headerless).
    pub email_column: Option<String>,
    /// The header of the column the names came from, if any.
    pub name_column: Option<String>,
    /// The headers of the first, middle and last name columns found, joined
    /// into the name where [`name_column`](Self::name_column) is absent or
    /// empty.
    pub name_parts: Vec<String>,
    /// What the user should know about how the file was read (an encoding
    /// that had to be guessed, say). The rows are usable all the same.
    pub warnings: Vec<String>,
}

/// One recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// 1-based line in the file where the record starts.
    pub line: u64,
    /// 0-based position among the data records (or, in a headerless file,
    /// among the address fields), counting bad ones too, so it names the
    /// same recipient whether or not bad rows were skipped.
    pub index: usize,
    /// The address, trimmed and checked with [`check_mailbox`].
    pub email: String,
    /// The name: the name column, or the first, middle and last name columns
    /// joined with spaces; trimmed; `None` when absent or empty.
    pub name: Option<String>,
    /// Every named column by header name, including the email and name
    /// columns (both trimmed). Other values are kept exactly as in the file.
    pub fields: BTreeMap<String, String>,
}

/// A row that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based line in the file where the record starts.
    pub line: u64,
    /// What is wrong with it, naming the column.
    pub reason: String,
    /// The record's fields as read, in the file's column order (for a headerless file, the
    /// one field that was not an address): so the row can be shown and written back out for
    /// fixing.
    pub fields: Vec<String>,
}

/// Reads recipients from the bytes of a CSV file.
///
/// With [`ReadOptions::strict`], the first bad row is an error
/// ([`MergeError::BadRow`]); without it, bad rows land in
/// [`Recipients::skipped`] and the rest are returned.
///
/// ```
/// use mailmerge::{ReadOptions, read_recipients};
///
/// let csv = "email,name,plan\nana@example.org,Ana,gold\nbroken,Bo,free\n";
/// let r = read_recipients(csv.as_bytes(), &ReadOptions::default())?;
/// assert_eq!(r.columns, ["email", "name", "plan"]);
/// assert_eq!(r.rows[0].name.as_deref(), Some("Ana"));
/// assert_eq!(r.rows[0].fields["plan"], "gold");
/// assert_eq!(r.skipped[0].line, 3);
///
/// let strict = ReadOptions { strict: true, ..ReadOptions::default() };
/// assert!(read_recipients(csv.as_bytes(), &strict).is_err());
///
/// // An Outlook export: the address column and the name parts are found.
/// let outlook = b"First Name,Last Name,E-mail Address\nAda,Lovelace,ada@example.org\n";
/// let r = read_recipients(outlook, &ReadOptions::default())?;
/// assert_eq!(r.rows[0].email, "ada@example.org");
/// assert_eq!(r.rows[0].name.as_deref(), Some("Ada Lovelace"));
///
/// // The bare shape: addresses only, no header.
/// let r = read_recipients(b"a@x.org,b@y.org\n", &strict)?;
/// assert!(r.headerless);
/// assert_eq!(r.rows.len(), 2);
/// # Ok::<(), mailmerge::MergeError>(())
/// ```
pub fn read_recipients(csv: &[u8], options: &ReadOptions) -> Result<Recipients, MergeError> {
    let decoded = csv_text::decode(csv, options.encoding.as_deref())?;
    let warnings: Vec<String> = decoded.warning.into_iter().collect();
    let (sep, text, first_line) = match csv_text::sep_line(&decoded.text) {
        Some((sep, rest)) => (Some(sep), rest, 2),
        None => (None, decoded.text.as_str(), 1),
    };
    let delimiter = options
        .delimiter
        .or(sep)
        .unwrap_or_else(|| csv_text::detect_delimiter(text));

    let data = text.as_bytes();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        // Field counts are checked here, per row, so that one short row is a
        // skippable RowError rather than the end of the file.
        .flexible(true)
        .from_reader(data);
    let mut lines = Lines::new(data, first_line);
    let mut records = reader.records();

    let first = match records.next() {
        None => return Err(MergeError::Empty),
        Some(first) => first.map_err(csv_error)?,
    };
    let first_line = lines.of(first.position());
    let names: Vec<String> = first.iter().map(|f| f.trim().to_owned()).collect();

    let mut out = Recipients {
        columns: Vec::new(),
        rows: Vec::new(),
        skipped: Vec::new(),
        headerless: false,
        encoding: decoded.encoding,
        delimiter,
        email_column: None,
        name_column: None,
        name_parts: Vec::new(),
        warnings: Vec::new(),
    };

    let email_idx = match &options.email_column {
        Some(wanted) => {
            Some(
                columns::named(&names, wanted).ok_or_else(|| MergeError::NoSuchColumn {
                    option: "--email-column",
                    name: wanted.clone(),
                    found: names.clone(),
                })?,
            )
        }
        None => columns::email_column(&names),
    };
    if let Some(email) = email_idx {
        check_duplicates(&names)?;
        let (name, name_parts) = match &options.name_column {
            Some(wanted) => {
                let i = columns::named(&names, wanted).ok_or_else(|| MergeError::NoSuchColumn {
                    option: "--name-column",
                    name: wanted.clone(),
                    found: names.clone(),
                })?;
                (Some(i), Vec::new())
            }
            None => columns::name_columns(&names, email),
        };
        let header = Header {
            columns: names.clone(),
            roles: Roles {
                email,
                name,
                name_parts,
            },
        };
        out.email_column = Some(names[email].clone());
        out.name_column = header.roles.name.map(|i| names[i].clone());
        out.name_parts = header
            .roles
            .name_parts
            .iter()
            .map(|&i| names[i].clone())
            .collect();
        let mut sink = Sink {
            out: &mut out,
            strict: options.strict,
        };
        for (index, record) in records.enumerate() {
            let record = record.map_err(csv_error)?;
            let line = lines.of(record.position());
            let fields: Vec<String> = record.iter().map(str::to_owned).collect();
            let row = header.row(line, index, &fields, delimiter);
            sink.push(line, row, &fields)?;
        }
        out.columns = names;
        out.warnings = warnings;
        return Ok(out);
    }

    let looks_headerless = names.iter().any(|n| !n.is_empty())
        && names
            .iter()
            .all(|n| n.is_empty() || check_mailbox(n).is_ok());
    if !looks_headerless {
        return Err(MergeError::NoEmailColumn {
            found: names,
            delimiter,
        });
    }

    let mut sink = Sink {
        out: &mut out,
        strict: options.strict,
    };
    let mut index = 0;
    let first_fields: Vec<String> = first.iter().map(str::to_owned).collect();
    sink.headerless_record(first_line, first_fields, &mut index)?;
    for record in records {
        let record = record.map_err(csv_error)?;
        let line = lines.of(record.position());
        let fields = record.iter().map(str::to_owned).collect();
        sink.headerless_record(line, fields, &mut index)?;
    }
    out.columns = vec!["email".to_owned()];
    out.headerless = true;
    out.warnings = warnings;
    Ok(out)
}

/// Where rows go: the result, or the skipped list, or (strict) an error.
struct Sink<'a> {
    out: &'a mut Recipients,
    strict: bool,
}

impl Sink<'_> {
    fn push(
        &mut self,
        line: u64,
        row: Result<Row, String>,
        raw: &[String],
    ) -> Result<(), MergeError> {
        match row {
            Ok(row) => self.out.rows.push(row),
            Err(reason) if self.strict => return Err(MergeError::BadRow { line, reason }),
            Err(reason) => self.out.skipped.push(RowError {
                line,
                reason,
                fields: raw.to_vec(),
            }),
        }
        Ok(())
    }

    /// Every non-empty field of a headerless record is one recipient.
    fn headerless_record(
        &mut self,
        line: u64,
        fields: Vec<String>,
        index: &mut usize,
    ) -> Result<(), MergeError> {
        for field in fields {
            let email = field.trim();
            if email.is_empty() {
                continue;
            }
            let row = match check_mailbox(email) {
                Ok(()) => Ok(Row {
                    line,
                    index: *index,
                    email: email.to_owned(),
                    name: None,
                    fields: BTreeMap::from([("email".to_owned(), email.to_owned())]),
                }),
                Err(why) => Err(format!("{email:?} is not an email address: {why}")),
            };
            *index += 1;
            self.push(line, row, std::slice::from_ref(&field))?;
        }
        Ok(())
    }
}

/// The shape of a file with a header row.
struct Header {
    columns: Vec<String>,
    roles: Roles,
}

impl Header {
    fn row(
        &self,
        line: u64,
        index: usize,
        fields: &[String],
        delimiter: u8,
    ) -> Result<Row, String> {
        if fields.len() != self.columns.len() {
            return Err(format!(
                "{} fields where the header has {}: a missing or extra {} (or a quote left open) on this line?",
                fields.len(),
                self.columns.len(),
                csv_text::describe_delimiter(delimiter),
            ));
        }
        let column = &self.columns[self.roles.email];
        let email = fields[self.roles.email].trim();
        if email.is_empty() {
            return Err(format!("column {column:?} is empty: no address to send to"));
        }
        check_mailbox(email).map_err(|why| {
            format!("column {column:?}: {email:?} is not an email address: {why}")
        })?;
        let whole = self
            .roles
            .name
            .map(|i| fields[i].trim())
            .filter(|n| !n.is_empty());
        let name = match whole {
            Some(name) => Some(name.to_owned()),
            None => {
                let parts: Vec<&str> = self
                    .roles
                    .name_parts
                    .iter()
                    .map(|&i| fields[i].trim())
                    .filter(|p| !p.is_empty())
                    .collect();
                (!parts.is_empty()).then(|| parts.join(" "))
            }
        };
        let fields = self
            .columns
            .iter()
            .enumerate()
            // An unnamed column (a trailing comma in the header) cannot be a
            // template variable, so it is not kept.
            .filter(|(_, column)| !column.is_empty())
            .map(|(i, column)| {
                let value = if i == self.roles.email || Some(i) == self.roles.name {
                    fields[i].trim()
                } else {
                    fields[i].as_str()
                };
                (column.clone(), value.to_owned())
            })
            .collect();
        Ok(Row {
            line,
            index,
            email: email.to_owned(),
            name,
            fields,
        })
    }
}

fn check_duplicates(names: &[String]) -> Result<(), MergeError> {
    let mut seen = BTreeSet::new();
    for name in names.iter().filter(|n| !n.is_empty()) {
        if !seen.insert(name.as_str()) {
            return Err(MergeError::DuplicateColumn { name: name.clone() });
        }
    }
    Ok(())
}

/// Finds the 1-based line where records start.
///
/// The csv crate's own `Position::line` is not usable for this: it counts a
/// CRLF's LF as the start of the next record, ignores bare CR line endings
/// and lags after quoted newlines. So lines are counted here from the
/// record's byte offset, treating CRLF, LF and CR each as one line break.
struct Lines<'a> {
    data: &'a [u8],
    /// Bytes before `offset` hold `line - 1` line breaks.
    offset: usize,
    line: u64,
}

impl<'a> Lines<'a> {
    /// `first_line` is the line `data` starts on (2 after a `sep=` line).
    fn new(data: &'a [u8], first_line: u64) -> Self {
        Lines {
            data,
            offset: 0,
            line: first_line,
        }
    }

    fn of(&mut self, position: Option<&csv::Position>) -> u64 {
        // The reader records a position for every record it returns.
        let mut start = position.map_or(0, |p| p.byte() as usize);
        // A record's recorded start may sit on the line break before it.
        while matches!(self.data.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        let start = start.min(self.data.len()).max(self.offset);
        let span = &self.data[self.offset..start];
        for (i, &b) in span.iter().enumerate() {
            let crlf_head = b == b'\r' && self.data.get(self.offset + i + 1) == Some(&b'\n');
            if b == b'\n' || (b == b'\r' && !crlf_head) {
                self.line += 1;
            }
        }
        self.offset = start;
        self.line
    }
}

fn csv_error(err: csv::Error) -> MergeError {
    MergeError::Csv {
        message: err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(strict: bool) -> ReadOptions {
        ReadOptions {
            strict,
            ..ReadOptions::default()
        }
    }

    fn read(text: &str, strict: bool) -> Recipients {
        read_recipients(text.as_bytes(), &opts(strict)).unwrap()
    }

    #[test]
    fn header_row_with_extra_columns() {
        let r = read("Email,Name,city\n ana@x.org ,  Ana  ,Lisboa \n", true);
        assert_eq!(r.columns, ["Email", "Name", "city"]);
        assert!(!r.headerless);
        let row = &r.rows[0];
        assert_eq!((row.line, row.index), (2, 0));
        assert_eq!(row.email, "ana@x.org");
        assert_eq!(row.name.as_deref(), Some("Ana"));
        assert_eq!(row.fields["Email"], "ana@x.org");
        assert_eq!(row.fields["Name"], "Ana");
        // Only email and name are trimmed.
        assert_eq!(row.fields["city"], "Lisboa ");
    }

    #[test]
    fn email_column_aliases_in_order_of_preference() {
        let r = read("address,E-Mail\nRua 1,ana@x.org\n", true);
        assert_eq!(r.rows[0].email, "ana@x.org");
        assert_eq!(r.rows[0].fields["address"], "Rua 1");
        let r = read("ADDRESS\nbo@y.org\n", true);
        assert_eq!(r.rows[0].email, "bo@y.org");
        assert_eq!(r.rows[0].name, None);
    }

    #[test]
    fn bom_is_not_part_of_the_first_column() {
        let r = read_recipients(b"\xEF\xBB\xBFemail,name\na@x.org,A\n", &opts(true)).unwrap();
        assert_eq!(r.columns, ["email", "name"]);
        assert_eq!(r.rows[0].line, 2);
    }

    #[test]
    fn quoted_fields_keep_commas_quotes_and_newlines() {
        let r = read(
            "email,name,note\na@x.org,\"Smith, Ana\",\"said \"\"hi\"\"\nthen left\"\nb@y.org,Bo,x\n",
            true,
        );
        assert_eq!(r.rows[0].name.as_deref(), Some("Smith, Ana"));
        assert_eq!(r.rows[0].fields["note"], "said \"hi\"\nthen left");
        // The two-line record pushes the next one to line 4.
        assert_eq!((r.rows[1].line, r.rows[1].index), (4, 1));
    }

    #[test]
    fn bad_rows_are_skipped_with_line_numbers() {
        let r = read(
            "email,name\na@x.org,A\n,Empty\nnot-an-address,B\nc@z.org\nd@w.org,D,extra\ne@v.org,E\n",
            false,
        );
        let emails: Vec<_> = r.rows.iter().map(|r| (r.email.as_str(), r.index)).collect();
        assert_eq!(emails, [("a@x.org", 0), ("e@v.org", 5)]);
        let lines: Vec<_> = r.skipped.iter().map(|s| s.line).collect();
        assert_eq!(lines, [3, 4, 5, 6]);
        assert_eq!(
            r.skipped[0].reason,
            r#"column "email" is empty: no address to send to"#
        );
        assert!(
            r.skipped[1].reason.contains("not-an-address"),
            "{:?}",
            r.skipped[1]
        );
        assert_eq!(
            r.skipped[2].reason,
            "1 fields where the header has 2: a missing or extra ',' (or a quote left open) on this line?"
        );
        assert!(
            r.skipped[3]
                .reason
                .starts_with("3 fields where the header has 2")
        );
    }

    #[test]
    fn strict_stops_at_the_first_bad_row() {
        let err = read_recipients(b"email\na@x.org\nbad\nworse\n", &opts(true)).unwrap_err();
        assert!(
            matches!(err, MergeError::BadRow { line: 3, ref reason } if reason.contains("bad")),
            "{err}"
        );
    }

    #[test]
    fn windows_1252_is_read_with_a_warning() {
        let csv = b"email;name\na@x.org;Jos\xe9\nb@y.org;Zo\xeb \x93Z\x94\n";
        let r = read_recipients(csv, &opts(true)).unwrap();
        assert_eq!(r.encoding, "windows-1252");
        assert_eq!(r.delimiter, b';');
        let names: Vec<_> = r.rows.iter().map(|r| r.name.as_deref().unwrap()).collect();
        assert_eq!(names, ["José", "Zoë \u{201c}Z\u{201d}"]);
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    }

    #[test]
    fn excel_sep_line_sets_the_delimiter_and_counts_as_a_line() {
        let r = read("sep=;\r\nemail;name\r\na@x.org;\"Smith; Ann\"\r\n", true);
        assert_eq!(r.columns, ["email", "name"]);
        assert_eq!(r.rows[0].name.as_deref(), Some("Smith; Ann"));
        assert_eq!(r.rows[0].line, 3);
    }

    #[test]
    fn name_parts_are_joined_where_there_is_no_name() {
        let r = read(
            "Display Name,First Name,Last Name,Primary Email\n,Ada,Lovelace,a@x.org\nThe Count,Ada,,b@y.org\n,,,c@z.org\n",
            true,
        );
        let names: Vec<_> = r.rows.iter().map(|r| r.name.as_deref()).collect();
        assert_eq!(names, [Some("Ada Lovelace"), Some("The Count"), None]);
        assert_eq!(r.email_column.as_deref(), Some("Primary Email"));
        assert_eq!(r.name_column.as_deref(), Some("Display Name"));
        assert_eq!(r.name_parts, ["First Name", "Last Name"]);
    }

    #[test]
    fn columns_named_in_the_options() {
        let csv = b"Mail,Naam,Email\na@x.org,Ana,not-used\n";
        let options = ReadOptions {
            email_column: Some("mail".into()),
            name_column: Some("NAAM".into()),
            ..opts(true)
        };
        let r = read_recipients(csv, &options).unwrap();
        assert_eq!(
            (r.rows[0].email.as_str(), r.rows[0].name.as_deref()),
            ("a@x.org", Some("Ana"))
        );
        let options = ReadOptions {
            email_column: Some("Correo".into()),
            ..opts(true)
        };
        let err = read_recipients(csv, &options).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"recipients: --email-column "Correo": no such column; the columns are "Mail", "Naam", "Email""#
        );
    }

    #[test]
    fn a_wrong_delimiter_is_named_in_the_error() {
        let options = ReadOptions {
            delimiter: Some(b','),
            ..opts(false)
        };
        let err = read_recipients(b"email;name\na@x.org;A\n", &options).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"recipients: found one column "email;name": is the file separated by semicolons? try --delimiter ';'"#
        );
    }

    #[test]
    fn headerless_one_line_several_addresses() {
        let r = read("a@x.org,b@y.org\n", true);
        assert!(r.headerless);
        assert_eq!(r.columns, ["email"]);
        let got: Vec<_> = r
            .rows
            .iter()
            .map(|r| (r.email.as_str(), r.line, r.index))
            .collect();
        assert_eq!(got, [("a@x.org", 1, 0), ("b@y.org", 1, 1)]);
        assert_eq!(
            r.rows[0].fields,
            BTreeMap::from([("email".into(), "a@x.org".into())])
        );
        assert_eq!(r.rows[0].name, None);
    }

    #[test]
    fn headerless_one_address_per_line_with_gaps() {
        let r = read("a@x.org\r\nb@y.org , \n\nbroken\nc@z.org", false);
        assert!(r.headerless);
        let got: Vec<_> = r.rows.iter().map(|r| (r.email.as_str(), r.line)).collect();
        assert_eq!(got, [("a@x.org", 1), ("b@y.org", 2), ("c@z.org", 5)]);
        assert_eq!(
            r.skipped,
            [RowError {
                line: 4,
                reason: "\"broken\" is not an email address: no @ in address".into(),
                fields: vec!["broken".into()],
            }]
        );
        let err = read_recipients(b"a@x.org\nbroken\n", &opts(true)).unwrap_err();
        assert!(matches!(err, MergeError::BadRow { line: 2, .. }));
    }

    #[test]
    fn header_without_email_column_names_the_columns() {
        let err = read_recipients(b"id,name\na@x.org,A\n", &opts(false)).unwrap_err();
        match err {
            MergeError::NoEmailColumn { ref found, .. } => assert_eq!(found, &["id", "name"]),
            ref other => panic!("{other}"),
        }
        assert!(err.to_string().contains("--email-column"), "{err}");
        // One address among non-addresses is not the bare shape either.
        let err = read_recipients(b"a@x.org,Ana\n", &opts(false)).unwrap_err();
        assert!(matches!(err, MergeError::NoEmailColumn { .. }));
    }

    #[test]
    fn empty_input_and_duplicate_columns_are_errors() {
        assert!(matches!(
            read_recipients(b"", &opts(false)),
            Err(MergeError::Empty)
        ));
        assert!(matches!(
            read_recipients(b"\xEF\xBB\xBF", &opts(false)),
            Err(MergeError::Empty)
        ));
        let err = read_recipients(b"email,x,x\n", &opts(false)).unwrap_err();
        assert!(matches!(err, MergeError::DuplicateColumn { ref name } if name == "x"));
    }

    #[test]
    fn line_numbers_follow_every_line_ending() {
        let r = read("email\ra@x.org\r\nb@y.org\n\r\nc@z.org\r\rbad\n", false);
        let got: Vec<_> = r.rows.iter().map(|r| (r.email.as_str(), r.line)).collect();
        assert_eq!(got, [("a@x.org", 2), ("b@y.org", 3), ("c@z.org", 5)]);
        assert_eq!(r.skipped[0].line, 7);
    }

    #[test]
    fn header_only_file_has_no_rows() {
        let r = read("email,name\n", true);
        assert!(r.rows.is_empty() && r.skipped.is_empty());
    }
}
