//! Maildir++ storage with durable delivery, in a layout Dovecot reads as is.
//!
//! Layout: `<root>/<domain>/<local>/{tmp,new,cur}` is a mailbox's INBOX
//! (Dovecot: `mail_location = maildir:<root>/%d/%n`); other folders are
//! Maildir++ subdirectories `<root>/<domain>/<local>/.<Name>/`.
//!
//! Delivery follows the Maildir protocol (<https://cr.yp.to/proto/maildir.html>):
//! the message streams into a uniquely named file in `tmp/`, is `fdatasync`ed
//! (data and size), then hard-linked into `new/` of every recipient (one copy on disk for all
//! of them), each `new/` directory is `fsync`ed so the link survives a crash,
//! and only then is the `tmp/` name removed and success reported. The SMTP
//! server sends its `250` only after that (RFC 5321 6.1: once accepted, a
//! message must not be lost).
//!
//! ```
//! use mailstore::{MailStore, Mailbox};
//!
//! let dir = tempfile::tempdir()?;
//! let store = MailStore::open(dir.path())?;
//! store.clean_tmp()?; // at start-up, before any delivery
//!
//! let rcpts = [
//!     Mailbox::new("example.com", "alice")?,
//!     Mailbox::new("example.com", "bob")?,
//! ];
//! let mut d = store.begin(&rcpts)?;
//! d.write_all(b"Return-Path: <a@example.org>\r\n")?;
//! d.write_all(b"Subject: hi\r\n\r\nHello.\r\n")?;
//! let delivered = d.commit()?;
//!
//! assert_eq!(delivered.paths().len(), 2);
//! assert!(delivered.name().ends_with(",S=53"));
//! let on_disk = std::fs::read(&delivered.paths()[1])?;
//! assert!(on_disk.ends_with(b"Hello.\r\n"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod delivery;
mod error;
mod fault;
mod group_sync;
mod index;
mod mailbox;
mod name;
mod spool;
mod watch;

use std::collections::BTreeSet;
use std::fmt;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

pub use delivery::{Delivered, Delivery};
pub use error::StoreError;
pub use fault::{FaultHook, FsOp};
pub use index::{
    Appending, Changes, FlagOp, Flags, Folder, FolderInfo, FolderWatch, MessageFile, MessageMeta,
    Snapshot, Status, Stored,
};
pub use mailbox::{MAX_DOMAIN_LEN, MAX_LOCAL_LEN, Mailbox};
pub use watch::{NewMail, Watch};

/// How a [`MailStore`] behaves; pass to [`MailStore::open_with`].
///
/// ```
/// use mailstore::{MailStore, StoreOptions};
///
/// let dir = tempfile::tempdir()?;
/// let opts = StoreOptions::new().hostname("mx.example.com");
/// let store = MailStore::open_with(dir.path(), opts)?;
/// assert!(store.is_fsync());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct StoreOptions {
    hostname: Option<String>,
    fsync: bool,
    group_commit: bool,
    checkpoint_after: Duration,
    group_commit_max: u64,
    fault_hook: Option<Arc<dyn FaultHook>>,
}

impl StoreOptions {
    /// Defaults: the system host name, `fsync` on, each delivery with its own flushes, no
    /// fault hook.
    pub fn new() -> Self {
        StoreOptions {
            hostname: None,
            fsync: true,
            group_commit: false,
            checkpoint_after: Duration::from_secs(1),
            group_commit_max: 32 * 1024,
            fault_hook: None,
        }
    }

    /// Whether concurrent deliveries share their flushes through the intake spool (default
    /// `false`; without `fsync` there is nothing to share, and this is ignored).
    ///
    /// A delivery then appends its message to the spool (`<root>/.spool/`), and
    /// [`Delivery::commit`] returns once one `fdatasync` of the spool, shared with every
    /// delivery that appended meanwhile, has made it durable; the message is linked into
    /// `new/` right after, and a background checkpoint makes the Maildir copies durable
    /// before the spool forgets it. Opening replays what a crash left in the spool. One
    /// process at a time may use a store's spool (an exclusive lock), so only the server
    /// should ask for it.
    ///
    /// ```
    /// use mailstore::{MailStore, Mailbox, StoreOptions};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = MailStore::open_with(dir.path(), StoreOptions::new().group_commit(true))?;
    /// let alice = Mailbox::new("example.com", "alice")?;
    /// let mut d = store.begin(std::slice::from_ref(&alice))?;
    /// d.write_all(b"Subject: hi\r\n\r\nHello.\r\n")?;
    /// let delivered = d.commit()?; // durable: in the spool, and linked into new/
    /// assert!(delivered.paths()[0].exists());
    ///
    /// // A second process cannot take the same spool.
    /// let again = MailStore::open_with(dir.path(), StoreOptions::new().group_commit(true));
    /// assert!(again.is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn group_commit(mut self, on: bool) -> Self {
        self.group_commit = on;
        self
    }

    /// With group commit, the largest message (in octets) that goes through the spool
    /// (default 32 KiB). A larger one is flushed on its own, as without group commit: through
    /// the spool it would be written twice, and at 100 KiB that costs more than sharing the
    /// flush saves (measured in `docs/benchmarks.md`).
    pub fn group_commit_max(mut self, octets: u64) -> Self {
        self.group_commit_max = octets;
        self
    }

    /// With group commit, how long a delivery may stay in the spool before a background
    /// checkpoint (default 1 s). Longer means fewer file system syncs and a longer replay
    /// after a crash; tests use a long one to look at the spool.
    pub fn checkpoint_after(mut self, after: Duration) -> Self {
        self.checkpoint_after = after;
        self
    }

    /// The host name written into file names (the Maildir spec's uniqueness
    /// relies on it when several machines share a store). Default: the
    /// kernel's host name, or `localhost`.
    pub fn hostname(mut self, hostname: impl Into<String>) -> Self {
        self.hostname = Some(hostname.into());
        self
    }

    /// Whether to `fsync` files and directories (default `true`).
    ///
    /// `false` is an explicitly unsafe fast mode: a crash or power loss can
    /// lose messages the server already acknowledged. For tests and
    /// benchmarks only.
    pub fn fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }

    /// Installs a [`FaultHook`] consulted before every file system
    /// operation. For tests; see the [`FaultHook`] docs.
    pub fn fault_hook(mut self, hook: impl FaultHook + 'static) -> Self {
        self.fault_hook = Some(Arc::new(hook));
        self
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreOptions")
            .field("hostname", &self.hostname)
            .field("fsync", &self.fsync)
            .field("group_commit", &self.group_commit)
            .field("fault_hook", &self.fault_hook.is_some())
            .finish()
    }
}

/// A Maildir++ mail store below one root directory.
///
/// Cheap to clone and `Send + Sync`: deliveries may run on several worker
/// threads at once.
#[derive(Clone, Debug)]
pub struct MailStore {
    inner: Arc<Inner>,
}

impl MailStore {
    /// Opens (creating if missing) the store at `root`, with default options.
    ///
    /// Fails with [`StoreError::RootUnusable`] unless `root` is, or can be
    /// made, a directory in which a file can be created and removed: better
    /// to refuse to start than to accept mail that cannot be stored.
    ///
    /// ```
    /// use mailstore::{MailStore, StoreError};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let file = dir.path().join("not-a-dir");
    /// std::fs::write(&file, b"")?;
    /// let err = MailStore::open(file.join("mail")).unwrap_err();
    /// assert!(matches!(err, StoreError::RootUnusable { .. }));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(root: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(root, StoreOptions::new())
    }

    /// Opens (creating if missing) the store at `root` with `options`.
    pub fn open_with(root: impl AsRef<Path>, options: StoreOptions) -> Result<Self, StoreError> {
        let given = root.as_ref();
        let unusable = |source| StoreError::RootUnusable {
            path: given.to_owned(),
            source,
        };
        // Absolute, so a later change of working directory cannot move the
        // store under our feet.
        let root = std::path::absolute(given).map_err(unusable)?;
        let hostname = options.hostname.unwrap_or_else(name::default_hostname);
        let mut inner = Inner {
            root,
            host: name::escape_host(&hostname),
            fsync: options.fsync,
            hook: options.fault_hook,
            known: Mutex::new(BTreeSet::new()),
            dir_syncs: group_sync::DirSyncs::default(),
            watchers: watch::Watchers::default(),
            folders: index::Registry::default(),
            spool: None,
            spool_lock: None,
        };
        inner
            .hooked(FsOp::CreateDir, &inner.root, || {
                fs::create_dir_all(&inner.root)
            })
            .map_err(unusable)?;
        // Probe: a leading dot can never collide with a domain directory
        // (see `Mailbox::new`).
        let probe = inner
            .root
            .join(format!(".buzon-probe.{}", name::unique(&inner.host)));
        inner
            .hooked(FsOp::CreateFile, &probe, || inner.create_new_raw(&probe))
            .map_err(unusable)?;
        inner
            .hooked(FsOp::Remove, &probe, || fs::remove_file(&probe))
            .map_err(unusable)?;
        if options.group_commit && inner.fsync {
            let (lock, recovered) = spool::recover(&inner)?;
            inner.spool_lock = Some(lock);
            inner.spool = Some(Arc::new(spool::Spool::open(
                &inner,
                recovered.next_id,
                options.checkpoint_after,
                options.group_commit_max,
            )?));
        }
        tracing::debug!(root = %inner.root.display(), fsync = inner.fsync, "mail store opened");
        let inner = Arc::new(inner);
        if let Some(spool) = &inner.spool {
            spool::Spool::start_checkpoints(spool, &inner);
            spool::Spool::start_flusher(spool, &inner);
        }
        Ok(MailStore { inner })
    }

    /// Whether deliveries share flushes through the intake spool (see
    /// [`StoreOptions::group_commit`]).
    pub fn is_group_commit(&self) -> bool {
        self.inner.spool.is_some()
    }

    /// Makes every delivery committed so far durable in its Maildir and empties the intake
    /// spool (it runs on its own every second, and before any message is removed or moved).
    /// Nothing to do without group commit. For a clean shutdown, and for tests.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        match &self.inner.spool {
            Some(spool) => spool.checkpoint(&self.inner),
            None => Ok(()),
        }
    }

    /// The absolute root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Whether files and directories are `fsync`ed (see [`StoreOptions::fsync`]).
    pub fn is_fsync(&self) -> bool {
        self.inner.fsync
    }

    /// The directory of `mailbox`'s INBOX (it may not exist yet).
    pub fn mailbox_dir(&self, mailbox: &Mailbox) -> PathBuf {
        mailbox.dir(&self.inner.root)
    }

    /// The directory of Maildir++ folder `folder` of `mailbox` (it may not
    /// exist yet).
    ///
    /// `INBOX` (any case) is the mailbox directory itself; any other name `N`
    /// maps to `.N`, with `.` separating hierarchy levels. The name is taken
    /// as stored on disk (IMAP's modified UTF-7 is the caller's business).
    ///
    /// ```
    /// use mailstore::{MailStore, Mailbox};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = MailStore::open(dir.path())?;
    /// let alice = Mailbox::new("example.com", "alice")?;
    /// let archive = store.folder_dir(&alice, "Archive.2024")?;
    /// assert!(archive.ends_with("example.com/alice/.Archive.2024"));
    /// assert!(store.folder_dir(&alice, "../bob").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn folder_dir(&self, mailbox: &Mailbox, folder: &str) -> Result<PathBuf, StoreError> {
        mailbox::folder_dir(self.mailbox_dir(mailbox), folder)
    }

    /// Creates `mailbox`'s INBOX and the Maildir++ `folders` (each with
    /// `cur`, `new` and `tmp`, and a `maildirfolder` marker as Maildir++
    /// asks), durably; what exists already is kept as it is. For a new
    /// account: `["Sent", "Drafts", "Trash", "Junk"]`.
    ///
    /// ```
    /// use mailstore::{MailStore, Mailbox};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = MailStore::open(dir.path())?;
    /// let alice = Mailbox::new("example.com", "alice")?;
    /// store.create_mailbox(&alice, &["Sent", "Trash"])?;
    /// assert!(dir.path().join("example.com/alice/new").is_dir());
    /// assert!(dir.path().join("example.com/alice/.Sent/cur").is_dir());
    /// assert!(dir.path().join("example.com/alice/.Trash/maildirfolder").is_file());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_mailbox(&self, mailbox: &Mailbox, folders: &[&str]) -> Result<(), StoreError> {
        let inbox = self.inner.ensure_mailbox(mailbox)?;
        for folder in folders {
            let dir = self.folder_dir(mailbox, folder)?;
            let mut created = self.inner.mkdir(&dir)?;
            for sub in ["tmp", "new", "cur"] {
                created |= self.inner.mkdir(&dir.join(sub))?;
            }
            let marker = dir.join("maildirfolder");
            if !marker.exists() {
                drop(
                    self.inner
                        .create_new_raw(&marker)
                        .map_err(|e| StoreError::io(FsOp::CreateFile, &marker, e))?,
                );
                created = true;
            }
            if created {
                self.inner.sync_dir(&dir)?;
                self.inner.sync_dir(&inbox)?;
            }
        }
        Ok(())
    }

    /// Starts a delivery of one message to `recipients` (duplicates are
    /// delivered once).
    ///
    /// Creates missing mailbox directories (and makes them durable), then
    /// opens a new file in the first recipient's `tmp/`. Write the message
    /// with [`Delivery::write_all`], then [`Delivery::commit`]; dropping the
    /// delivery instead removes the file and delivers nothing.
    pub fn begin(&self, recipients: &[Mailbox]) -> Result<Delivery, StoreError> {
        if recipients.is_empty() {
            return Err(StoreError::NoRecipients);
        }
        // Linking the same name twice into one new/ would fail (EEXIST), and
        // one copy per mailbox is what the recipient wants anyway.
        let mut seen = BTreeSet::new();
        let mut dirs = Vec::with_capacity(recipients.len());
        let mut mailboxes = Vec::with_capacity(recipients.len());
        for m in recipients {
            if seen.insert(m) {
                dirs.push(self.inner.ensure_mailbox(m)?);
                mailboxes.push(m.clone());
            }
        }
        Delivery::start(Arc::clone(&self.inner), dirs.clone(), mailboxes).inspect_err(|_| {
            self.inner.forget(&dirs);
        })
    }

    /// Removes every file left in the `tmp/` directories of every mailbox
    /// and Maildir++ folder, and returns how many were removed.
    ///
    /// Files in `tmp/` are deliveries that never finished (a crash or power
    /// loss mid-delivery); nothing in `new/` or `cur/` is touched. Call this
    /// at start-up, before any delivery begins: it would also remove the
    /// files of deliveries in progress. If another program (Dovecot's LDA,
    /// IMAP APPEND) writes into the same store, use
    /// [`clean_tmp_older_than`](Self::clean_tmp_older_than) instead.
    pub fn clean_tmp(&self) -> Result<usize, StoreError> {
        self.clean_tmp_before(None)
    }

    /// Like [`clean_tmp`](Self::clean_tmp), but only removes files last
    /// modified at least `age` ago. The Maildir spec suggests 36 hours for
    /// stores shared with other writers.
    pub fn clean_tmp_older_than(&self, age: Duration) -> Result<usize, StoreError> {
        match SystemTime::now().checked_sub(age) {
            Some(cutoff) => self.clean_tmp_before(Some(cutoff)),
            None => Ok(0), // older than the clock can express: none
        }
    }

    /// Every mailbox that has a directory under the root, in no set order: what a
    /// notifier starting up catches up on.
    pub fn mailboxes(&self) -> Result<Vec<Mailbox>, StoreError> {
        let inner = &*self.inner;
        let mut out = Vec::new();
        for domain in inner.subdirs(&inner.root)? {
            let Some(d) = domain.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            for mailbox in inner.subdirs(&domain)? {
                let Some(l) = mailbox.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                // A Maildir has cur/; the root's other folders (tls/) are not mailboxes.
                if let Ok(m) = Mailbox::new(d, l)
                    && mailbox.join("cur").is_dir()
                {
                    out.push(m);
                }
            }
        }
        Ok(out)
    }

    /// Removes files in `tmp/` modified before `cutoff`, or all when `None`.
    fn clean_tmp_before(&self, cutoff: Option<SystemTime>) -> Result<usize, StoreError> {
        let inner = &*self.inner;
        let mut removed = 0;
        for domain in inner.subdirs(&inner.root)? {
            if name_starts_with_dot(&domain) {
                continue; // not a domain (see `Mailbox::new`)
            }
            for mailbox in inner.subdirs(&domain)? {
                removed += inner.clean_dir(&mailbox.join("tmp"), cutoff)?;
                for folder in inner.subdirs(&mailbox)? {
                    if name_starts_with_dot(&folder) {
                        removed += inner.clean_dir(&folder.join("tmp"), cutoff)?;
                    }
                }
            }
        }
        if removed > 0 {
            tracing::info!(removed, "removed unfinished deliveries from tmp/");
        }
        Ok(removed)
    }
}

fn name_starts_with_dot(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.as_encoded_bytes().starts_with(b"."))
}

/// The state shared by a store and its deliveries.
pub(crate) struct Inner {
    root: PathBuf,
    /// Already escaped for file names.
    host: String,
    fsync: bool,
    hook: Option<Arc<dyn FaultHook>>,
    /// Serialises directory creation: a delivery that finds a directory
    /// another thread just created must not link into it before that thread
    /// has `fsync`ed the parent, or a crash could lose the whole mailbox.
    /// Mailbox directories known to exist durably. Creating them is then skipped (five
    /// `mkdir` calls per delivery otherwise); an entry is forgotten when a delivery into it
    /// fails, so a vanished mailbox is made again on the next delivery.
    known: Mutex<BTreeSet<PathBuf>>,
    /// Lets concurrent deliveries into one `new/` share its fsync.
    dir_syncs: group_sync::DirSyncs,
    /// Who hears of new mail in which mailbox.
    pub(crate) watchers: watch::Watchers,
    /// Open IMAP folders and their watchers.
    pub(crate) folders: index::Registry,
    /// Group commit (see [`StoreOptions::group_commit`]).
    pub(crate) spool: Option<Arc<spool::Spool>>,
    /// Held (an exclusive `flock`) while the spool is in use: a second server on the same
    /// store would otherwise replay, or remove, the first one's segments.
    spool_lock: Option<File>,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inner")
            .field("root", &self.root)
            .field("host", &self.host)
            .field("fsync", &self.fsync)
            .field("fault_hook", &self.hook.is_some())
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// Runs `f` unless the fault hook fails `op` on `path` first.
    pub(crate) fn hooked<T>(
        &self,
        op: FsOp,
        path: &Path,
        f: impl FnOnce() -> io::Result<T>,
    ) -> io::Result<T> {
        if let Some(hook) = &self.hook {
            hook.check(op, path)?;
        }
        f()
    }

    /// [`hooked`](Self::hooked), with the error carrying `op` and `path`.
    pub(crate) fn run<T>(
        &self,
        op: FsOp,
        path: &Path,
        f: impl FnOnce() -> io::Result<T>,
    ) -> Result<T, StoreError> {
        self.hooked(op, path, f)
            .map_err(|e| StoreError::io(op, path, e))
    }

    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    pub(crate) fn fsync(&self) -> bool {
        self.fsync
    }

    /// Before a message leaves a mailbox (expunged, moved): the spool must not hold it any
    /// more, or a replay after a crash would deliver it again.
    pub(crate) fn settle(&self) -> Result<(), StoreError> {
        match &self.spool {
            Some(spool) => spool.settle(self),
            None => Ok(()),
        }
    }

    /// Creates a new file, never replacing an existing one. Mail is private:
    /// owner-only permissions (the umask may only remove more).
    pub(crate) fn create_new_raw(&self, path: &Path) -> io::Result<File> {
        let mut opts = fs::OpenOptions::new();
        // Readable too: the spool copies a message from its file.
        opts.read(true).write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        opts.open(path)
    }

    /// `fsync`s a directory so entries just created in it survive a crash
    /// (on Linux, `fsync` of a file does not make its directory entry
    /// durable). A no-op when `fsync` is off.
    pub(crate) fn sync_dir(&self, dir: &Path) -> Result<(), StoreError> {
        if !self.fsync {
            return Ok(());
        }
        self.run(FsOp::SyncDir, dir, || File::open(dir)?.sync_all())
    }

    /// Like [`sync_dir`](Self::sync_dir) for a `new/` that just got a link, sharing one fsync
    /// with concurrent deliveries into the same mailbox (see `group_sync`).
    pub(crate) fn sync_new_dir(&self, dir: &Path) -> Result<(), StoreError> {
        if !self.fsync {
            return Ok(());
        }
        self.dir_syncs.sync(dir, || self.sync_dir(dir))
    }

    /// Creates `dir` (owner-only); `Ok(true)` if it was created now,
    /// `Ok(false)` if it already existed.
    fn mkdir(&self, dir: &Path) -> Result<bool, StoreError> {
        let mut builder = fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        match self.hooked(FsOp::CreateDir, dir, || builder.create(dir)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(StoreError::io(FsOp::CreateDir, dir, e)),
        }
    }

    /// Makes sure `mailbox`'s INBOX exists durably; returns its directory.
    fn ensure_mailbox(&self, mailbox: &Mailbox) -> Result<PathBuf, StoreError> {
        let domain_dir = self.root.join(mailbox.domain());
        let dir = mailbox.dir(&self.root);
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        if known.contains(&dir) {
            return Ok(dir);
        }
        // Each new entry is made durable by syncing the directory holding it.
        if self.mkdir(&domain_dir)? {
            self.sync_dir(&self.root)?;
        }
        if self.mkdir(&dir)? {
            self.sync_dir(&domain_dir)?;
        }
        let mut created = false;
        for sub in ["tmp", "new", "cur"] {
            created |= self.mkdir(&dir.join(sub))?;
        }
        if created {
            self.sync_dir(&dir)?;
        }
        known.insert(dir.clone());
        Ok(dir)
    }

    /// Forgets that these mailbox directories exist (a delivery into them failed).
    pub(crate) fn forget(&self, dirs: &[PathBuf]) {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        for d in dirs {
            known.remove(d);
        }
    }

    /// The subdirectories of `dir` (not following symlinks: a link planted
    /// in the store must not lead cleaning outside it). A missing `dir` has
    /// none: it may vanish while we look.
    fn subdirs(&self, dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
        let mut out = Vec::new();
        for entry in self.read_dir(dir)? {
            let entry = entry.map_err(|e| StoreError::io(FsOp::ReadDir, dir, e))?;
            let ty = entry
                .file_type()
                .map_err(|e| StoreError::io(FsOp::ReadDir, entry.path(), e))?;
            if ty.is_dir() {
                out.push(entry.path());
            }
        }
        Ok(out)
    }

    fn read_dir(&self, dir: &Path) -> Result<Vec<io::Result<fs::DirEntry>>, StoreError> {
        match self.hooked(FsOp::ReadDir, dir, || fs::read_dir(dir)) {
            Ok(rd) => Ok(rd.collect()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(StoreError::io(FsOp::ReadDir, dir, e)),
        }
    }

    /// Removes non-directory entries of `tmp` last modified before `cutoff`
    /// (all of them when `cutoff` is `None`).
    fn clean_dir(&self, tmp: &Path, cutoff: Option<SystemTime>) -> Result<usize, StoreError> {
        let mut removed = 0;
        for entry in self.read_dir(tmp)? {
            let entry = entry.map_err(|e| StoreError::io(FsOp::ReadDir, tmp, e))?;
            let path = entry.path();
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::io(FsOp::ReadDir, path, e)),
            };
            if meta.is_dir() {
                continue;
            }
            if let Some(cutoff) = cutoff {
                // A file with an unreadable or future mtime counts as fresh.
                if meta.modified().map_or(true, |m| m > cutoff) {
                    continue;
                }
            }
            match self.hooked(FsOp::Remove, &path, || fs::remove_file(&path)) {
                Ok(()) => {
                    tracing::debug!(path = %path.display(), "removed leftover from tmp/");
                    removed += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io(FsOp::Remove, path, e)),
            }
        }
        Ok(removed)
    }
}
