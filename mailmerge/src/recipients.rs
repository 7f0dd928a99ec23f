//! Reading the recipients list from CSV.
//!
//! Two shapes are accepted:
//!
//! * a header row naming an `email` column (also spelled `e-mail` or
//!   `address`, in any case), an optional `name` column and any other
//!   columns, which become template variables;
//! * the shape the original tool took: no header, just addresses, one or
//!   several per line. It is recognised when the first record names no email
//!   column and every non-empty field in it is an address.

use crate::MergeError;
use crate::address::check_mailbox;
use std::collections::{BTreeMap, BTreeSet};

/// Header names that identify the address column, in order of preference: a
/// file with both `email` and `address` columns most likely uses `address`
/// for a postal address.
const EMAIL_COLUMNS: [&str; 3] = ["email", "e-mail", "address"];

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
    /// The `name` column, trimmed; `None` when absent or empty.
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
    /// What is wrong with it.
    pub reason: String,
}

/// Reads recipients from CSV bytes.
///
/// With `strict`, the first bad row is an error
/// ([`MergeError::BadRow`]); without it, bad rows land in
/// [`Recipients::skipped`] and the rest are returned.
///
/// ```
/// let csv = "email,name,plan\nana@example.org,Ana,gold\nbroken,Bo,free\n";
/// let r = mailmerge::read_recipients(csv.as_bytes(), false).unwrap();
/// assert_eq!(r.columns, ["email", "name", "plan"]);
/// assert_eq!(r.rows[0].name.as_deref(), Some("Ana"));
/// assert_eq!(r.rows[0].fields["plan"], "gold");
/// assert_eq!(r.skipped[0].line, 3);
///
/// assert!(mailmerge::read_recipients(csv.as_bytes(), true).is_err());
///
/// // The bare shape: addresses only, no header.
/// let r = mailmerge::read_recipients(b"a@x.org,b@y.org\n", true).unwrap();
/// assert!(r.headerless);
/// assert_eq!(r.rows.len(), 2);
/// ```
pub fn read_recipients(csv: &[u8], strict: bool) -> Result<Recipients, MergeError> {
    // Spreadsheet programs like to start UTF-8 exports with a BOM; it must
    // not become part of the first column's name.
    let data = csv.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(csv);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        // Field counts are checked here, per row, so that one short row is a
        // skippable RowError rather than the end of the file.
        .flexible(true)
        .from_reader(data);
    let mut lines = Lines::new(data);
    let mut records = reader.byte_records();

    let first = match records.next() {
        None => return Err(MergeError::Empty),
        Some(first) => first.map_err(csv_error)?,
    };
    let first_line = lines.of(&first);
    let first_fields = decode(&first).map_err(|reason| MergeError::BadRow {
        line: first_line,
        reason,
    })?;
    let names: Vec<String> = first_fields.iter().map(|f| f.trim().to_owned()).collect();

    let mut out = Recipients {
        columns: Vec::new(),
        rows: Vec::new(),
        skipped: Vec::new(),
        headerless: false,
    };
    let mut sink = Sink {
        out: &mut out,
        strict,
    };

    if let Some(email_idx) = email_column(&names) {
        check_duplicates(&names)?;
        let name_idx = names.iter().position(|n| n.eq_ignore_ascii_case("name"));
        let header = Header {
            columns: names.clone(),
            email_idx,
            name_idx,
        };
        for (index, record) in records.enumerate() {
            let record = record.map_err(csv_error)?;
            let line = lines.of(&record);
            let row = decode(&record).and_then(|fields| header.row(line, index, &fields));
            sink.push(line, row)?;
        }
        out.columns = names;
        return Ok(out);
    }

    let looks_headerless = names.iter().any(|n| !n.is_empty())
        && names
            .iter()
            .all(|n| n.is_empty() || check_mailbox(n).is_ok());
    if !looks_headerless {
        return Err(MergeError::NoEmailColumn { found: names });
    }

    let mut index = 0;
    sink.headerless_record(first_line, Ok(first_fields), &mut index)?;
    for record in records {
        let record = record.map_err(csv_error)?;
        let line = lines.of(&record);
        sink.headerless_record(line, decode(&record), &mut index)?;
    }
    out.columns = vec!["email".to_owned()];
    out.headerless = true;
    Ok(out)
}

/// Where rows go: the result, or the skipped list, or (strict) an error.
struct Sink<'a> {
    out: &'a mut Recipients,
    strict: bool,
}

impl Sink<'_> {
    fn push(&mut self, line: u64, row: Result<Row, String>) -> Result<(), MergeError> {
        match row {
            Ok(row) => self.out.rows.push(row),
            Err(reason) if self.strict => return Err(MergeError::BadRow { line, reason }),
            Err(reason) => self.out.skipped.push(RowError { line, reason }),
        }
        Ok(())
    }

    /// Every non-empty field of a headerless record is one recipient.
    fn headerless_record(
        &mut self,
        line: u64,
        fields: Result<Vec<String>, String>,
        index: &mut usize,
    ) -> Result<(), MergeError> {
        let fields = match fields {
            Ok(fields) => fields,
            Err(reason) => return self.push(line, Err(reason)),
        };
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
                Err(why) => Err(format!("invalid address {email:?}: {why}")),
            };
            *index += 1;
            self.push(line, row)?;
        }
        Ok(())
    }
}

/// The shape of a file with a header row.
struct Header {
    columns: Vec<String>,
    email_idx: usize,
    name_idx: Option<usize>,
}

impl Header {
    fn row(&self, line: u64, index: usize, fields: &[String]) -> Result<Row, String> {
        if fields.len() != self.columns.len() {
            return Err(format!(
                "expected {} fields, found {}",
                self.columns.len(),
                fields.len()
            ));
        }
        let email = fields[self.email_idx].trim();
        if email.is_empty() {
            return Err("empty email".to_owned());
        }
        check_mailbox(email).map_err(|why| format!("invalid address {email:?}: {why}"))?;
        let name = self
            .name_idx
            .map(|i| fields[i].trim())
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        let fields = self
            .columns
            .iter()
            .enumerate()
            // An unnamed column (a trailing comma in the header) cannot be a
            // template variable, so it is not kept.
            .filter(|(_, column)| !column.is_empty())
            .map(|(i, column)| {
                let value = if i == self.email_idx || Some(i) == self.name_idx {
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

fn email_column(names: &[String]) -> Option<usize> {
    EMAIL_COLUMNS
        .iter()
        .find_map(|want| names.iter().position(|n| n.eq_ignore_ascii_case(want)))
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

fn decode(record: &csv::ByteRecord) -> Result<Vec<String>, String> {
    record
        .iter()
        .enumerate()
        .map(|(i, field)| {
            String::from_utf8(field.to_vec())
                .map_err(|_| format!("invalid UTF-8 in field {}", i + 1))
        })
        .collect()
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
    fn new(data: &'a [u8]) -> Self {
        Lines {
            data,
            offset: 0,
            line: 1,
        }
    }

    fn of(&mut self, record: &csv::ByteRecord) -> u64 {
        // The reader records a position for every record it returns.
        let mut start = record.position().map_or(0, |p| p.byte() as usize);
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

    fn read(text: &str, strict: bool) -> Recipients {
        read_recipients(text.as_bytes(), strict).unwrap()
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
        let r = read_recipients(b"\xEF\xBB\xBFemail,name\na@x.org,A\n", true).unwrap();
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
        assert_eq!(r.skipped[0].reason, "empty email");
        assert!(
            r.skipped[1].reason.contains("not-an-address"),
            "{:?}",
            r.skipped[1]
        );
        assert_eq!(r.skipped[2].reason, "expected 2 fields, found 1");
        assert_eq!(r.skipped[3].reason, "expected 2 fields, found 3");
    }

    #[test]
    fn strict_stops_at_the_first_bad_row() {
        let err = read_recipients(b"email\na@x.org\nbad\nworse\n", true).unwrap_err();
        assert!(
            matches!(err, MergeError::BadRow { line: 3, ref reason } if reason.contains("bad")),
            "{err}"
        );
    }

    #[test]
    fn invalid_utf8_is_a_bad_row_with_its_line() {
        let csv = b"email,name\na@x.org,A\nb@y.org,\xFF\xFE\nc@z.org,C\n";
        let r = read_recipients(csv, false).unwrap();
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.skipped[0].line, 3);
        assert!(r.skipped[0].reason.contains("UTF-8"));
        let err = read_recipients(csv, true).unwrap_err();
        assert!(matches!(err, MergeError::BadRow { line: 3, .. }), "{err}");
        let err = read_recipients(b"em\xFFail\na@x.org\n", false).unwrap_err();
        assert!(matches!(err, MergeError::BadRow { line: 1, .. }), "{err}");
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
                reason: "invalid address \"broken\": no @ in address".into()
            }]
        );
        let err = read_recipients(b"a@x.org\nbroken\n", true).unwrap_err();
        assert!(matches!(err, MergeError::BadRow { line: 2, .. }));
    }

    #[test]
    fn header_without_email_column_names_the_columns() {
        let err = read_recipients(b"mail,name\na@x.org,A\n", false).unwrap_err();
        match err {
            MergeError::NoEmailColumn { found } => assert_eq!(found, ["mail", "name"]),
            other => panic!("{other}"),
        }
        // One address among non-addresses is not the bare shape either.
        let err = read_recipients(b"a@x.org,Ana\n", false).unwrap_err();
        assert!(matches!(err, MergeError::NoEmailColumn { .. }));
    }

    #[test]
    fn empty_input_and_duplicate_columns_are_errors() {
        assert!(matches!(
            read_recipients(b"", false),
            Err(MergeError::Empty)
        ));
        assert!(matches!(
            read_recipients(b"\xEF\xBB\xBF", false),
            Err(MergeError::Empty)
        ));
        let err = read_recipients(b"email,x,x\n", false).unwrap_err();
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
