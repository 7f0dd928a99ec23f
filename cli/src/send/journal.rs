//! The resume journal of `buzon send`: one line per row the server accepted, fsynced before
//! the next result is recorded, so a re-run after a crash or Ctrl-C skips exactly those rows.
//!
//! Format: `sent<TAB><row index><TAB><email>` per accepted row (fsynced), and
//! `start<TAB><row index><TAB><email>` when a row is handed to a connection and
//! `clear<TAB>...` when it certainly did not arrive (never sent, or refused); these two are not
//! fsynced, they only serve the warning below. A torn last line (power cut mid-write) is ignored on load.
//!
//! `sent` lines are written at once (a killed sender loses none) and fsynced in groups (at most
//! 64 rows or 50 ms), so a power loss can lose the last few; those rows are sent again.
//!
//! Exactly-once delivery is impossible when the sender is killed between the server storing a
//! message and the sender recording the server's 250 (RFC 1047). Such a row is "started" but not
//! "sent" in the journal; a re-run sends it again, because a duplicate is better than a loss
//! (RFC 5321 section 6.1), and says how many rows were in that state. A graceful stop (Ctrl-C,
//! SIGTERM) waits for replies in flight, so it leaves no such rows.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// An open journal.
pub(crate) struct Journal {
    path: PathBuf,
    file: File,
    done: BTreeSet<(usize, String)>,
    /// Rows started in an earlier run without a recorded outcome.
    uncertain: usize,
    /// `sent` lines written since the last fsync.
    unsynced: usize,
    last_sync: std::time::Instant,
}

/// At most this many accepted rows wait for a shared fsync of the journal.
const SYNC_EVERY: usize = 64;
/// And at most this long.
const SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);

impl Journal {
    /// Opens (creating if needed) and loads the journal at `path`.
    pub(crate) fn open(path: &Path) -> anyhow::Result<Journal> {
        let text = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read journal {}", path.display()));
            }
        };
        // Only complete lines count; see the module docs.
        let complete = match text.iter().rposition(|&b| b == b'\n') {
            Some(i) => &text[..=i],
            None => &[][..],
        };
        let mut done = BTreeSet::new();
        let mut started = BTreeSet::new();
        for line in complete.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let line = String::from_utf8_lossy(line);
            let mut parts = line.splitn(3, '\t');
            let (Some(kind), Some(index), Some(email)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Ok(index) = index.parse::<usize>() else {
                continue;
            };
            match kind {
                "sent" => {
                    started.remove(&(index, email.to_owned()));
                    done.insert((index, email.to_owned()));
                }
                "start" => {
                    started.insert((index, email.to_owned()));
                }
                "clear" => {
                    started.remove(&(index, email.to_owned()));
                }
                _ => {}
            }
        }
        let uncertain = started.len();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open journal {}", path.display()))?;
        if complete.len() < text.len() {
            // Cut the torn line off, or the next record would be glued to it.
            file.set_len(complete.len() as u64)
                .with_context(|| format!("cannot repair journal {}", path.display()))?;
        }
        Ok(Journal {
            path: path.to_owned(),
            file,
            done,
            uncertain,
            unsynced: 0,
            last_sync: std::time::Instant::now(),
        })
    }

    /// True if this row was accepted in an earlier run.
    pub(crate) fn is_done(&self, index: usize, email: &str) -> bool {
        self.done.contains(&(index, email.to_owned()))
    }

    /// How many rows the journal holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.done.len()
    }

    /// Rows an earlier run handed to the server without learning the outcome.
    pub(crate) fn uncertain(&self) -> usize {
        self.uncertain
    }

    /// Notes that a row is being sent (not fsynced; see the module docs).
    pub(crate) fn start(&mut self, index: usize, email: &str) {
        if let Err(e) = self.append("start", index, email) {
            tracing::warn!(error = %e, path = %self.path.display(), "cannot write journal");
        }
    }

    /// Appends one line with a single `write`, so a killed process leaves whole lines.
    fn append(&mut self, kind: &str, index: usize, email: &str) -> std::io::Result<String> {
        // Tabs and newlines cannot occur in a valid address, but a journal must never be
        // corrupted by one: such an address is recorded with them replaced.
        let email = email.replace(['\t', '\n', '\r'], " ");
        self.file
            .write_all(format!("{kind}\t{index}\t{email}\n").as_bytes())?;
        Ok(email)
    }

    /// Notes that a started row certainly did not reach the server (never sent, or refused).
    pub(crate) fn clear(&mut self, index: usize, email: &str) {
        if let Err(e) = self.append("clear", index, email) {
            tracing::warn!(error = %e, path = %self.path.display(), "cannot write journal");
        }
    }

    /// Records an accepted row durably (write, then fsync).
    ///
    /// The line is written at once: from then on a killed process cannot lose it (the kernel
    /// holds it). The fsync that protects it from a power loss is shared: it runs once
    /// [`SYNC_EVERY`] rows or [`SYNC_INTERVAL`] have gone by, and at [`sync`](Self::sync).
    pub(crate) fn record(&mut self, index: usize, email: &str) -> anyhow::Result<()> {
        let email = self
            .append("sent", index, email)
            .with_context(|| format!("cannot write journal {}", self.path.display()))?;
        self.done.insert((index, email));
        self.unsynced += 1;
        if self.unsynced >= SYNC_EVERY || self.last_sync.elapsed() >= SYNC_INTERVAL {
            self.sync()?;
        }
        Ok(())
    }

    /// Makes every line written so far durable.
    pub(crate) fn sync(&mut self) -> anyhow::Result<()> {
        if self.unsynced > 0 {
            self.file
                .sync_data()
                .with_context(|| format!("cannot write journal {}", self.path.display()))?;
            self.unsynced = 0;
        }
        self.last_sync = std::time::Instant::now();
        Ok(())
    }

    /// Where the journal is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        if let Err(e) = self.sync() {
            tracing::error!(error = %e, "journal fsync failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopen_and_torn_lines_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let mut j = Journal::open(&path).unwrap();
        j.record(0, "a@x.org").unwrap();
        j.record(2, "c@x.org").unwrap();
        drop(j);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"sent\t3\td@x.o").unwrap(); // torn: no newline
        drop(f);
        let mut j = Journal::open(&path).unwrap();
        assert!(j.is_done(0, "a@x.org") && j.is_done(2, "c@x.org"));
        assert!(!j.is_done(1, "b@x.org") && !j.is_done(3, "d@x.org"));
        assert_eq!(j.len(), 2);
        j.record(4, "e@x.org").unwrap();
        drop(j);
        let j = Journal::open(&path).unwrap();
        assert!(j.is_done(4, "e@x.org") && j.len() == 3);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "sent\t0\ta@x.org\nsent\t2\tc@x.org\nsent\t4\te@x.org\n"
        );
    }
}
