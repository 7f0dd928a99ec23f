//! What `buzon send` tells the user: a results file (one CSV line per row as its outcome is
//! known), a CSV of the failed rows that can be fed back as input, and the closing summary.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::Context;
use mailmerge::Row;

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
    fn as_str(self) -> &'static str {
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
    failed_rows: Vec<Row>,
    pub tally: Tally,
}

impl Report {
    pub(crate) fn create(path: &Path) -> anyhow::Result<Report> {
        let file = File::create(path)
            .with_context(|| format!("cannot create results file {}", path.display()))?;
        let mut out = csv::Writer::from_writer(BufWriter::new(file));
        out.write_record(["line", "email", "status", "reply"])?;
        Ok(Report {
            out,
            path: path.to_owned(),
            failed_rows: Vec::new(),
            tally: Tally::default(),
        })
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
        if matches!(status, Status::Failed | Status::Deferred | Status::Invalid)
            && let Some(row) = row
        {
            self.failed_rows.push(row.clone());
        }
        let written = self
            .out
            .write_record([line.to_string().as_str(), email, status.as_str(), reply])
            .and_then(|()| self.out.flush().map_err(csv::Error::from));
        if let Err(e) = written {
            tracing::error!(error = %e, path = %self.path.display(), "cannot write results");
        }
    }

    /// Writes the failed rows with the input's columns, so the file can be the next `--csv`.
    /// Returns the path if there was anything to write.
    pub(crate) fn write_failed(
        &mut self,
        path: &Path,
        columns: &[String],
    ) -> anyhow::Result<Option<PathBuf>> {
        if self.failed_rows.is_empty() {
            return Ok(None);
        }
        let mut w = csv::Writer::from_path(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        w.write_record(columns)?;
        for row in &self.failed_rows {
            w.write_record(
                columns
                    .iter()
                    .map(|c| row.fields.get(c).map_or("", String::as_str)),
            )?;
        }
        w.flush()?;
        Ok(Some(path.to_owned()))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}
