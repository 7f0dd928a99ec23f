//! The external feed's durable queue: notices waiting to be posted to another news server,
//! one file each under `<storage>/.buzon-feed/queue/`, named after the notice's message-id so
//! that a notice offered twice (after a crash, see [`Notices::on_made`](crate::Notices::on_made))
//! is queued once. Articles the server refused for good move to `failed/` with the reason beside
//! them, for the operator; nothing is ever dropped unseen.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// One queued article.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// Its file name in the queue.
    pub name: String,
    /// The article, ready to post.
    pub article: Vec<u8>,
}

/// The queue folder.
#[derive(Debug)]
pub struct FeedQueue {
    dir: PathBuf,
    fsync: bool,
}

impl FeedQueue {
    /// Opens (creating) the queue under `dir`, dropping half-written entries.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let q = notices::FeedQueue::open(dir.path(), false)?;
    /// q.enqueue("<1.g@h>", b"Message-ID: <1.g@h>\r\n\r\nx\r\n")?;
    /// q.enqueue("<1.g@h>", b"Message-ID: <1.g@h>\r\n\r\nx\r\n")?; // the same notice again
    /// let pending = q.pending(10)?;
    /// assert_eq!(pending.len(), 1);
    /// q.done(&pending[0])?;
    /// assert!(q.pending(10)?.is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open(dir: &Path, fsync: bool) -> io::Result<FeedQueue> {
        let q = FeedQueue {
            dir: dir.to_owned(),
            fsync,
        };
        fs::create_dir_all(q.queue())?;
        fs::create_dir_all(q.failed())?;
        for e in fs::read_dir(q.queue())? {
            let e = e?;
            if e.file_name().to_string_lossy().starts_with(".tmp.") {
                fs::remove_file(e.path())?;
            }
        }
        Ok(q)
    }

    fn queue(&self) -> PathBuf {
        self.dir.join("queue")
    }

    fn failed(&self) -> PathBuf {
        self.dir.join("failed")
    }

    /// Adds `article` under `message_id` durably (flushed, renamed into place, folder flushed);
    /// the same message-id again replaces the entry.
    pub fn enqueue(&self, message_id: &str, article: &[u8]) -> io::Result<()> {
        let name = file_name(message_id);
        let tmp = self.queue().join(format!(".tmp.{name}"));
        let mut f = fs::File::create(&tmp)?;
        f.write_all(article)?;
        if self.fsync {
            f.sync_data()?;
        }
        drop(f);
        fs::rename(&tmp, self.queue().join(&name))?;
        if self.fsync {
            fs::File::open(self.queue())?.sync_all()?;
        }
        Ok(())
    }

    /// Up to `max` queued articles, oldest first.
    pub fn pending(&self, max: usize) -> io::Result<Vec<Queued>> {
        let mut entries = Vec::new();
        for e in fs::read_dir(self.queue())? {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let modified = e.metadata()?.modified()?;
            entries.push((modified, name));
        }
        entries.sort();
        let mut out = Vec::new();
        for (_, name) in entries.into_iter().take(max) {
            match fs::read(self.queue().join(&name)) {
                Ok(article) => out.push(Queued { name, article }),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// How many articles wait.
    pub fn len(&self) -> io::Result<usize> {
        Ok(fs::read_dir(self.queue())?
            .filter_map(Result::ok)
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .count())
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The article was posted (or the server had it): remove it.
    pub fn done(&self, q: &Queued) -> io::Result<()> {
        match fs::remove_file(self.queue().join(&q.name)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The server refused it for good: keep it in `failed/` with `reason` beside it.
    pub fn park(&self, q: &Queued, reason: &str) -> io::Result<()> {
        fs::write(
            self.failed().join(format!("{}.reason", q.name)),
            format!("{reason}\n"),
        )?;
        fs::rename(self.queue().join(&q.name), self.failed().join(&q.name))
    }
}

/// A message-id as a file name: letters, digits, `.`, `-`, `@` kept, anything else as `_xx`.
fn file_name(message_id: &str) -> String {
    let inner = message_id.trim_start_matches('<').trim_end_matches('>');
    let mut out = String::with_capacity(inner.len());
    for b in inner.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'@') {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    if out.starts_with('.') {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_and_distinct() {
        assert_eq!(file_name("<1.g@h>"), "1.g@h");
        assert_eq!(file_name("<a/b_c>"), "a_2fb_5fc");
        assert_eq!(file_name("<.x>"), "_.x");
    }

    #[test]
    fn refused_articles_are_kept_with_their_reason() {
        let dir = tempfile::tempdir().unwrap();
        let q = FeedQueue::open(dir.path(), false).unwrap();
        q.enqueue("<2@h>", b"a").unwrap();
        let p = q.pending(5).unwrap();
        q.park(&p[0], "441 no such group").unwrap();
        assert!(q.is_empty().unwrap());
        assert_eq!(
            fs::read_to_string(dir.path().join("failed/2@h.reason")).unwrap(),
            "441 no such group\n"
        );
        assert_eq!(fs::read(dir.path().join("failed/2@h")).unwrap(), b"a");
    }
}
