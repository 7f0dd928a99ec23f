//! One message on its way into one or more mailboxes.
//!
//! The Maildir protocol (<https://cr.yp.to/proto/maildir.html>, "How a
//! message is delivered"): write to `tmp/<unique>`, `fsync`, link to
//! `new/<unique>`, remove the `tmp/` name. A reader only ever sees complete
//! files in `new/`, because a link appears atomically and the data was made
//! durable before it.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{FsOp, Inner, Mailbox, NewMail, StoreError, name};

/// Bodies arrive in small chunks (often a line or a DATA block); buffering
/// turns them into few large writes.
const BUF_CAPACITY: usize = 64 * 1024;

/// How often to retry `create_new` when a name exists already (it should
/// not: names are unique per host, process and counter).
const CREATE_ATTEMPTS: usize = 3;

/// A message being written; see [`MailStore::begin`](crate::MailStore::begin).
///
/// Call [`write_all`](Self::write_all) as chunks arrive, then
/// [`commit`](Self::commit). Dropping a delivery without committing removes
/// its temporary file: nothing reaches any `new/`.
///
/// `Delivery` also implements [`std::io::Write`] (so [`std::io::copy`] works);
/// the inherent methods return the richer [`StoreError`].
///
/// ```
/// use mailstore::{MailStore, Mailbox};
///
/// let dir = tempfile::tempdir()?;
/// let store = MailStore::open(dir.path())?;
/// let alice = Mailbox::new("example.com", "alice")?;
/// let mut d = store.begin(std::slice::from_ref(&alice))?;
/// d.write_all(b"Subject: never mind\r\n")?;
/// drop(d); // e.g. the client went away before the final dot
///
/// let new = store.mailbox_dir(&alice).join("new");
/// assert_eq!(std::fs::read_dir(new)?.count(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Delivery {
    store: Arc<Inner>,
    /// Mailbox directories (deduplicated); the file lives in the first's `tmp/`.
    dirs: Vec<PathBuf>,
    /// The mailbox of each of `dirs`, for the watchers.
    mailboxes: Vec<Mailbox>,
    /// The unique base name, without `,S=`.
    base: String,
    tmp_path: PathBuf,
    /// `None` once handed to `commit`.
    file: Option<BufWriter<File>>,
    size: u64,
    /// The CRC-32 of what was written, for the spool's record (with group commit only).
    crc: Option<crc32fast::Hasher>,
    /// A write failed: the file is incomplete and must never be linked.
    poisoned: bool,
    /// The tmp file is gone or no longer ours to remove.
    finished: bool,
}

/// The result of a successful [`Delivery::commit`], for logging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    name: String,
    paths: Vec<PathBuf>,
    size: u64,
}

impl Delivered {
    /// The file name in every `new/`: `<secs>.M<usec>P<pid>Q<n>.<host>,S=<size>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The message's path in each mailbox's `new/`, in recipient order.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// The message size in octets, as stored.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Delivery {
    /// Opens a new file in the first mailbox's `tmp/`. `dirs` is non-empty
    /// and every entry is an existing mailbox directory.
    pub(crate) fn start(
        store: Arc<Inner>,
        dirs: Vec<PathBuf>,
        mailboxes: Vec<Mailbox>,
    ) -> Result<Self, StoreError> {
        let tmp_dir = dirs
            .first()
            .expect("MailStore::begin refuses an empty recipient list")
            .join("tmp");
        let mut attempt = 0;
        let (base, tmp_path, file) = loop {
            let base = name::unique(store.host());
            let path = tmp_dir.join(&base);
            attempt += 1;
            match store.hooked(FsOp::CreateFile, &path, || store.create_new_raw(&path)) {
                Ok(file) => break (base, path, file),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < CREATE_ATTEMPTS => {
                    tracing::warn!(path = %path.display(), "unique name exists already; retrying");
                }
                Err(e) => return Err(StoreError::io(FsOp::CreateFile, path, e)),
            }
        };
        let crc = store.spool.is_some().then(crc32fast::Hasher::new);
        Ok(Delivery {
            crc,
            store,
            dirs,
            mailboxes,
            base,
            tmp_path,
            file: Some(BufWriter::with_capacity(BUF_CAPACITY, file)),
            size: 0,
            poisoned: false,
            finished: false,
        })
    }

    /// Appends `chunk` to the message.
    ///
    /// After an error the delivery is poisoned: further writes and
    /// [`commit`](Self::commit) fail with [`StoreError::Poisoned`]; drop it.
    pub fn write_all(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        if self.poisoned {
            return Err(self.poisoned_error());
        }
        let file = self
            .file
            .as_mut()
            .expect("the file is only taken by commit, which consumes self");
        let result = self
            .store
            .run(FsOp::Write, &self.tmp_path, || file.write_all(chunk));
        match result {
            Ok(()) => {
                self.size += chunk.len() as u64;
                if let Some(crc) = &mut self.crc {
                    crc.update(chunk);
                }
                Ok(())
            }
            Err(e) => {
                self.poisoned = true;
                Err(e)
            }
        }
    }

    /// Octets written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The temporary file the message is written to.
    pub fn tmp_path(&self) -> &Path {
        &self.tmp_path
    }

    /// Makes the message durable in every recipient's `new/`, then reports
    /// where it went. Only an `Ok` means the message is stored.
    ///
    /// Steps: flush and `fdatasync` the file; hard-link it into each mailbox's
    /// `new/` as `<name>,S=<size>` (when linking is impossible, e.g. across
    /// file systems, copy it through that mailbox's `tmp/` instead); `fsync`
    /// each `new/`; remove the `tmp/` name.
    ///
    /// All or nothing, as far as possible: if any recipient fails, the links
    /// already made are removed again, so the sender's retry does not
    /// deliver a second copy to those mailboxes.
    pub fn commit(mut self) -> Result<Delivered, StoreError> {
        let file = self.finish_writing()?;
        let store = Arc::clone(&self.store);
        let tmp = self.tmp_path.clone();
        if let Some(spool) = self.spool() {
            let ticket = self.append_to(&spool, &file)?;
            drop(file);
            return self.finish_spooled(ticket);
        }
        // A large message takes its own flushes: through the spool it would be written twice,
        // and the second write costs more than the shared flush saves (docs/benchmarks.md).
        if store.fsync() {
            // The data must be on disk before any name in new/ points at it,
            // or a crash could leave a truncated message in the mailbox.
            // `fdatasync` is enough: it also writes the metadata needed to read
            // the data back (size, block map; POSIX "synchronized I/O data
            // integrity"), and skips only timestamps. It saved about 12% of the
            // rate at 8 sessions here (docs/benchmarks.md).
            store.run(FsOp::SyncFile, &tmp, || file.sync_data())?;
        }
        drop(file);

        let name = name::with_size(&self.base, self.size);
        let mut placed = Vec::with_capacity(self.dirs.len());
        if let Err(e) = self.place_all(&name, &mut placed) {
            self.roll_back(&placed);
            store.forget(&self.dirs);
            return Err(e); // Drop removes the tmp file.
        }

        // Delivered. A tmp name we fail to remove is only a leftover for
        // `clean_tmp`; reporting failure now would make the sender retry
        // and deliver every recipient a second copy.
        self.finished = true;
        if let Err(e) = store.run(FsOp::Remove, &tmp, || fs::remove_file(&tmp)) {
            tracing::warn!(error = %e, "delivered, but the tmp/ name stays");
        }
        tracing::debug!(%name, size = self.size, mailboxes = placed.len(), "delivered");
        // Durable and visible in every new/: now the watchers may look.
        self.announce(self.mailboxes.iter().zip(&placed));
        Ok(Delivered {
            name,
            paths: placed,
            size: self.size,
        })
    }

    /// Whether [`commit_then`](Self::commit_then) leaves the wait for the flush to the store:
    /// with group commit ([`StoreOptions::group_commit`]), for a message no larger than
    /// [`StoreOptions::group_commit_max`].
    ///
    /// [`StoreOptions::group_commit`]: crate::StoreOptions::group_commit
    /// [`StoreOptions::group_commit_max`]: crate::StoreOptions::group_commit_max
    pub fn shares_flush(&self) -> bool {
        self.store
            .spool
            .as_ref()
            .is_some_and(|spool| self.crc.is_some() && self.size <= spool.max_body())
    }

    /// [`commit`](Self::commit) for an event loop: when the delivery
    /// [`shares_flush`](Self::shares_flush), appends the message to the spool here (a write
    /// to the page cache, no flush) and returns; the store's flusher thread calls `done` with
    /// the result once the shared flush has made the message durable and it is linked into
    /// every `new/`. A batch of deliveries costs one flush and holds no thread while it waits.
    ///
    /// Otherwise this is `commit` followed by `done`, and blocks for the flushes: check
    /// `shares_flush` first on a thread that must not block.
    ///
    /// ```
    /// use mailstore::{MailStore, Mailbox, StoreOptions};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = MailStore::open_with(dir.path(), StoreOptions::new().group_commit(true))?;
    /// let alice = Mailbox::new("example.com", "alice")?;
    /// let mut d = store.begin(std::slice::from_ref(&alice))?;
    /// d.write_all(b"Subject: hello\r\n\r\nHi.\r\n")?;
    /// assert!(d.shares_flush());
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// d.commit_then(move |result| tx.send(result).unwrap());
    /// let delivered = rx.recv()??; // durable, and in new/
    /// assert!(delivered.paths()[0].exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn commit_then(
        mut self,
        done: impl FnOnce(Result<Delivered, StoreError>) + Send + 'static,
    ) {
        let Some(spool) = self.spool() else {
            return done(self.commit());
        };
        let appended = self
            .finish_writing()
            .and_then(|file| self.append_to(&spool, &file));
        match appended {
            Ok(ticket) => spool.enqueue(crate::spool::Job(Box::new(move || {
                let tmp = self.tmp_path.clone();
                let finished =
                    panic::catch_unwind(AssertUnwindSafe(|| self.finish_spooled(ticket)));
                done(finished.unwrap_or_else(|_| {
                    tracing::error!("a spooled delivery panicked while it was finished");
                    Err(StoreError::io(
                        FsOp::Link,
                        tmp,
                        io::Error::other("the delivery failed unexpectedly"),
                    ))
                }))
            }))),
            // Drop removes the tmp file: nothing reaches new/.
            Err(e) => done(Err(e)),
        }
    }

    /// The spool this delivery goes through, if it [`shares_flush`](Self::shares_flush).
    fn spool(&self) -> Option<Arc<crate::spool::Spool>> {
        self.shares_flush()
            .then(|| self.store.spool.clone())
            .flatten()
    }

    /// Ends the writing: pushes the buffered bytes to the tmp file and returns it.
    fn finish_writing(&mut self) -> Result<File, StoreError> {
        if self.poisoned {
            return Err(self.poisoned_error());
        }
        let file = self
            .file
            .take()
            .expect("the file is only taken once, by a commit that consumes self");
        file.into_inner()
            .map_err(|e| StoreError::io(FsOp::Write, &self.tmp_path, e.into_error()))
    }

    /// Appends the message in `file` to the spool (group commit).
    fn append_to(
        &mut self,
        spool: &crate::spool::Spool,
        file: &File,
    ) -> Result<crate::spool::Ticket, StoreError> {
        let crc = self
            .crc
            .take()
            .expect("a delivery that shares flushes has a CRC")
            .finalize();
        let name = name::with_size(&self.base, self.size);
        spool.append(&self.store, &name, &self.dirs, file, self.size, crc)
    }

    /// The rest of a commit through the spool: once the record is durable (its flush shared
    /// with the records appended around it), links the message into each `new/`; the
    /// checkpoint makes the links durable.
    fn finish_spooled(mut self, ticket: crate::spool::Ticket) -> Result<Delivered, StoreError> {
        let store = Arc::clone(&self.store);
        let name = name::with_size(&self.base, self.size);
        // On an error the ticket is dropped (the delivery counts as failed) and Drop removes
        // the tmp file: nothing reaches new/.
        ticket.wait_durable(&store)?;

        // Durable: from here on this is a delivery, whatever the links do. A link that fails
        // is tried again by the checkpoint (and, after a crash, by the replay).
        self.finished = true;
        let mut paths = Vec::with_capacity(self.dirs.len());
        let mut linked = Vec::with_capacity(self.dirs.len());
        let mut missing = Vec::new();
        for (dir, mailbox) in self.dirs.iter().zip(&self.mailboxes) {
            let target = dir.join("new").join(&name);
            let mut result = self.place(dir, &target);
            if result.is_err() {
                // The mailbox may have been removed under us: made again, once.
                store.forget(std::slice::from_ref(dir));
                result = store
                    .ensure_mailbox(mailbox)
                    .and_then(|_| self.place(dir, &target));
            }
            match result {
                Ok(()) => linked.push((dir.clone(), mailbox.clone(), target.clone())),
                Err(e) => {
                    tracing::warn!(error = %e, "durable in the spool, not yet in new/: the checkpoint tries again");
                    missing.push((dir.clone(), mailbox.clone(), target.clone()));
                }
            }
            paths.push(target);
        }
        let touched: Vec<PathBuf> = linked.iter().map(|(d, ..)| d.clone()).collect();
        let unplaced = if missing.is_empty() {
            if let Err(e) = store.run(FsOp::Remove, &self.tmp_path, || {
                fs::remove_file(&self.tmp_path)
            }) {
                tracing::warn!(error = %e, "delivered, but the tmp/ name stays");
            }
            None
        } else {
            Some(crate::spool::Unplaced {
                tmp: self.tmp_path.clone(),
                targets: missing,
                size: self.size,
            })
        };
        ticket.finish(unplaced, &touched);
        tracing::debug!(%name, size = self.size, mailboxes = linked.len(), "delivered (spool)");
        self.announce(linked.iter().map(|(_, mailbox, path)| (mailbox, path)));
        Ok(Delivered {
            name,
            paths,
            size: self.size,
        })
    }

    /// Tells the mailboxes' watchers (IMAP IDLE, NNTP notices) about the copies now in `new/`.
    fn announce<'a>(&self, placed: impl IntoIterator<Item = (&'a Mailbox, &'a PathBuf)>) {
        for (mailbox, path) in placed {
            self.store.watchers.notify(&NewMail {
                mailbox: mailbox.clone(),
                path: path.clone(),
                size: self.size,
            });
        }
    }

    /// Links (or copies) the file into every `new/`, pushing each target to
    /// `placed` as soon as it exists, then makes the new entries durable.
    fn place_all(&self, name: &str, placed: &mut Vec<PathBuf>) -> Result<(), StoreError> {
        for dir in &self.dirs {
            let target = dir.join("new").join(name);
            self.place(dir, &target)?;
            placed.push(target);
        }
        for dir in &self.dirs {
            self.store.sync_new_dir(&dir.join("new"))?;
        }
        Ok(())
    }

    fn place(&self, mailbox_dir: &Path, target: &Path) -> Result<(), StoreError> {
        // `link`, not `rename`: it fails instead of replacing an existing
        // file (the spec: "link() ... if it fails, give up").
        let linked = self
            .store
            .hooked(FsOp::Link, target, || fs::hard_link(&self.tmp_path, target));
        match linked {
            Ok(()) => Ok(()),
            Err(e) if link_unsupported(&e) => {
                tracing::debug!(error = %e, target = %target.display(), "cannot link; copying");
                self.copy_via_tmp(mailbox_dir, target)
            }
            Err(e) => Err(StoreError::io(FsOp::Link, target, e)),
        }
    }

    /// The fallback when hard links are impossible: copy into this mailbox's
    /// own `tmp/`, `fsync`, and link from there, so `new/` still never shows
    /// a partial file.
    fn copy_via_tmp(&self, mailbox_dir: &Path, target: &Path) -> Result<(), StoreError> {
        let store = &*self.store;
        let copy = mailbox_dir.join("tmp").join(name::unique(store.host()));
        let mut out = store.run(FsOp::CreateFile, &copy, || store.create_new_raw(&copy))?;
        let result = (|| {
            store.run(FsOp::Copy, &copy, || {
                io::copy(&mut File::open(&self.tmp_path)?, &mut out)
            })?;
            if store.fsync() {
                store.run(FsOp::SyncFile, &copy, || out.sync_data())?;
            }
            store.run(FsOp::Link, target, || fs::hard_link(&copy, target))
        })();
        if let Err(e) = fs::remove_file(&copy) {
            tracing::warn!(error = %e, path = %copy.display(), "cannot remove copy from tmp/");
        }
        result
    }

    /// Best effort: a link we cannot remove means a duplicate if the sender
    /// retries, which beats losing mail (RFC 5321 6.1).
    fn roll_back(&self, placed: &[PathBuf]) {
        for path in placed {
            let removed = self
                .store
                .hooked(FsOp::Remove, path, || fs::remove_file(path));
            if let Err(e) = removed {
                tracing::warn!(error = %e, path = %path.display(), "cannot roll back a partial delivery");
            }
            if let Some(new_dir) = path.parent()
                && let Err(e) = self.store.sync_dir(new_dir)
            {
                tracing::warn!(error = %e, "cannot sync a rolled back new/");
            }
        }
    }

    fn poisoned_error(&self) -> StoreError {
        StoreError::Poisoned {
            path: self.tmp_path.clone(),
        }
    }
}

/// Errors after which copying may still work: the file system cannot link
/// here (`EXDEV` across mounts, `EPERM` where hard links are unsupported or
/// restricted, `EMLINK`, `EOPNOTSUPP`).
fn link_unsupported(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::CrossesDevices
            | io::ErrorKind::PermissionDenied
            | io::ErrorKind::TooManyLinks
            | io::ErrorKind::Unsupported
    )
}

impl Drop for Delivery {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // Close before removing; unfinished mail must not linger in tmp/.
        drop(self.file.take());
        let tmp = &self.tmp_path;
        match self
            .store
            .hooked(FsOp::Remove, tmp, || fs::remove_file(tmp))
        {
            Ok(()) => tracing::debug!(path = %tmp.display(), "abandoned delivery removed"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(error = %e, path = %tmp.display(), "cannot remove abandoned delivery")
            }
        }
    }
}

impl Write for Delivery {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Delivery::write_all(self, buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        Ok(Delivery::write_all(self, buf)?)
    }

    /// Pushes buffered bytes to the file (not to disk: that is `commit`'s job).
    fn flush(&mut self) -> io::Result<()> {
        if self.poisoned {
            return Err(self.poisoned_error().into());
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        let result = file.flush();
        // The buffered bytes may be partly written: never commit this file.
        self.poisoned = result.is_err();
        result
    }
}
