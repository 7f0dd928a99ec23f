//! What `buzon send` tells the user: a results file (one CSV line per row as its outcome is
//! known), a CSV of the failed rows that can be fed back as input, and the closing summary.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::Context;
use mailmerge::{Row, RowError};

/// Outcome of one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Accepted by the server for every recipient.
    Sent,
    /// Accepted, but the server refused some recipients (listed in the reply column).
    Partial,
    /// Refused permanently (5xx, or a message the server cannot take).
    Failed,
    /// Still deferred (4xx, lost connections) after every retry.
    Deferred,
    /// The row could not be turned into a message (template or attachment error).
    Invalid,
    /// The CSV row itself was unusable.
    Skipped,
}

impl Status {
    /// The word in the results file.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Sent => "sent",
            Status::Partial => "partial",
            Status::Failed => "failed",
            Status::Deferred => "deferred",
            Status::Invalid => "invalid",
            Status::Skipped => "skipped",
        }
    }
}

impl std::str::FromStr for Status {
    type Err = ();

    fn from_str(s: &str) -> Result<Status, ()> {
        Ok(match s {
            "sent" => Status::Sent,
            "partial" => Status::Partial,
            "failed" => Status::Failed,
            "deferred" => Status::Deferred,
            "invalid" => Status::Invalid,
            "skipped" => Status::Skipped,
            _ => return Err(()),
        })
    }
}

impl Status {
    /// Whether the row belongs in the failed-rows file: nobody got it, or somebody did not.
    pub(crate) fn needs_fixing(self) -> bool {
        matches!(
            self,
            Status::Failed | Status::Deferred | Status::Invalid | Status::Skipped
        )
    }
}

/// A row of the failed-rows file: the values to write under the CSV's columns, and why.
#[derive(Debug, Clone)]
pub(crate) struct FailedRow {
    pub values: Vec<String>,
    pub reason: String,
}

impl FailedRow {
    /// A parsed row, its fields under `columns`.
    pub(crate) fn of_row(row: &Row, columns: &[String], reason: &str) -> FailedRow {
        FailedRow {
            values: columns
                .iter()
                .map(|c| row.fields.get(c).cloned().unwrap_or_default())
                .collect(),
            reason: reason.to_owned(),
        }
    }

    /// A row the CSV reader could not use, its fields as read.
    pub(crate) fn of_skipped(bad: &RowError) -> FailedRow {
        FailedRow {
            values: bad.fields.clone(),
            reason: bad.reason.clone(),
        }
    }
}

/// Writes `rows` as a CSV with `columns` plus a column saying why each failed, so the file can
/// be fixed and given back as the recipients.
pub(crate) fn write_failed_csv<W: std::io::Write>(
    out: W,
    columns: &[String],
    rows: &[FailedRow],
) -> anyhow::Result<()> {
    let mut w = csv::WriterBuilder::new().flexible(true).from_writer(out);
    let mut header = columns.to_vec();
    // The reason is data the user reads, not a field to merge; a name no column takes.
    let mut reason = "error".to_owned();
    while header.contains(&reason) {
        reason.insert_str(0, "send_");
    }
    header.push(reason);
    w.write_record(&header)?;
    for row in rows {
        let mut values = row.values.clone();
        // A short record (the reason it was skipped) is padded so the reason stays last.
        values.resize(values.len().max(columns.len()), String::new());
        values.push(row.reason.clone());
        w.write_record(&values)?;
    }
    w.flush()?;
    Ok(())
}

/// Counts for the summary.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tally {
    pub sent: usize,
    pub partial: usize,
    pub failed: usize,
    pub deferred: usize,
    pub invalid: usize,
    pub skipped: usize,
    /// Recipients refused with 5xx in rows that reached others.
    pub refused_recipients: usize,
}

/// The results file and the rows to write to the failed-rows CSV.
pub(crate) struct Report {
    out: csv::Writer<BufWriter<File>>,
    path: PathBuf,
    /// The CSV's columns, for the failed-rows file.
    columns: Vec<String>,
    failed_rows: Vec<FailedRow>,
    pub tally: Tally,
}

impl Report {
    /// A new results file (replacing any), for a CSV with `columns`.
    pub(crate) fn create(path: &Path, columns: &[String]) -> anyhow::Result<Report> {
        let file = File::create(path)
            .with_context(|| format!("cannot create results file {}", path.display()))?;
        Self::start(file, path, columns, true)
    }

    /// Adds to the results file of earlier runs of the same campaign (creating it if needed),
    /// so it keeps every outcome across pauses and crashes.
    pub(crate) fn append(path: &Path, columns: &[String]) -> anyhow::Result<Report> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open results file {}", path.display()))?;
        let fresh = file.metadata().map(|m| m.len() == 0).unwrap_or(true);
        Self::start(file, path, columns, fresh)
    }

    fn start(file: File, path: &Path, columns: &[String], header: bool) -> anyhow::Result<Report> {
        let mut out = csv::Writer::from_writer(BufWriter::new(file));
        if header {
            out.write_record(["line", "email", "status", "reply"])?;
            out.flush()?;
        }
        Ok(Report {
            out,
            path: path.to_owned(),
            columns: columns.to_vec(),
            failed_rows: Vec::new(),
            tally: Tally::default(),
        })
    }

    /// Records a CSV row that could not be used (`email`: what its address column held).
    pub(crate) fn record_skipped(&mut self, bad: &RowError, email: &str) {
        self.record(bad.line, email, Status::Skipped, &bad.reason, None);
        self.failed_rows.push(FailedRow::of_skipped(bad));
    }

    /// Records a row's outcome; flushed at once so an interrupted run keeps what it knew.
    pub(crate) fn record(
        &mut self,
        line: u64,
        email: &str,
        status: Status,
        reply: &str,
        row: Option<&Row>,
    ) {
        let t = &mut self.tally;
        match status {
            Status::Sent => t.sent += 1,
            Status::Partial => t.partial += 1,
            Status::Failed => t.failed += 1,
            Status::Deferred => t.deferred += 1,
            Status::Invalid => t.invalid += 1,
            Status::Skipped => t.skipped += 1,
        }
        if status.needs_fixing()
            && let Some(row) = row
        {
            self.failed_rows
                .push(FailedRow::of_row(row, &self.columns, reply));
        }
        let written = self
            .out
            .write_record([line.to_string().as_str(), email, status.as_str(), reply])
            .and_then(|()| self.out.flush().map_err(csv::Error::from));
        if let Err(e) = written {
            tracing::error!(error = %e, path = %self.path.display(), "cannot write results");
        }
    }

    /// Writes the failed rows with the input's columns and the reason, so the file can be
    /// fixed and be the next `--csv`. Returns the path if there was anything to write.
    pub(crate) fn write_failed(&mut self, path: &Path) -> anyhow::Result<Option<PathBuf>> {
        if self.failed_rows.is_empty() {
            return Ok(None);
        }
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        write_failed_csv(BufWriter::new(file), &self.columns, &self.failed_rows)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Some(path.to_owned()))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}
