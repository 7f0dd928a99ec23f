//! One folder's index: UIDs, flags, mod-sequences, `\Recent`, over the Maildir's files.
//!
//! What takes the lock (`dovecot-uidlist.lock`, see `lock`): anything that writes the UID list
//! or our `buzon-index` (assigning UIDs to new files, flag changes, expunges, APPEND, COPY and
//! MOVE into the folder). What does not: delivery (SMTP links into `new/` and is noticed by the
//! next sync) and reading (a sync that finds nothing changed, by the files' and directories'
//! stamps, reads nothing more and locks nothing).
//!
//! Sessions of one process share one `Index` per folder (a registry in the store), so they see
//! each other's changes at once; another process's changes are found by the stamps.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use super::flags::{self, Flags};
use super::lock::Lock;
use super::state::State;
use super::uidlist::UidList;
use super::{Changes, FlagOp, MessageMeta, Snapshot, Status, Stored};
use crate::{FsOp, Inner, MailStore, Mailbox, StoreError};

/// One message as the index holds it.
#[derive(Debug, Clone)]
struct Entry {
    /// The file's name in `new/` or `cur/`.
    file: String,
    in_new: bool,
    /// The info letters as on disk.
    letters: String,
    flags: Flags,
    modseq: u64,
    size: u64,
    mtime: SystemTime,
}

/// What a file or directory looked like, to notice changes without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Stamp(u64, u64, i64, i64);

fn stamp(path: &Path) -> Stamp {
    fs::metadata(path)
        .map(|m| Stamp(m.ino(), m.len(), m.mtime(), m.mtime_nsec()))
        .unwrap_or_default()
}

#[derive(Debug, Default)]
struct Index {
    loaded: bool,
    list: UidList,
    keywords: Vec<String>,
    messages: BTreeMap<u32, Entry>,
    state: State,
    stamps: [Stamp; 5],
}

/// The in-memory index of one folder, shared by its handles in this process.
#[derive(Debug)]
pub(crate) struct Shared {
    dir: PathBuf,
    name: String,
    mailbox: Mailbox,
    index: Mutex<Index>,
}

/// A handle on one folder of a mailbox: cheap to clone, `Send + Sync`.
///
/// ```
/// use mailstore::{Flags, MailStore, Mailbox};
///
/// let dir = tempfile::tempdir()?;
/// let store = MailStore::open(dir.path())?;
/// let alice = Mailbox::new("example.com", "alice")?;
/// let mut d = store.begin(&[alice.clone()])?;
/// d.write_all(b"Subject: hi\r\n\r\nhello\r\n")?;
/// d.commit()?;
///
/// let inbox = store.open_folder(&alice, "INBOX")?;
/// let snap = inbox.sync(true)?; // a read-write SELECT: new/ moves to cur/
/// assert_eq!(snap.messages.len(), 1);
/// assert_eq!(snap.messages[0].uid, 1);
/// assert_eq!(snap.recent, [1]);
/// assert!(snap.uid_validity != 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Folder {
    store: MailStore,
    shared: Arc<Shared>,
}

const UIDLIST: &str = "dovecot-uidlist";
const LOCK: &str = "dovecot-uidlist.lock";
const KEYWORDS: &str = "dovecot-keywords";
const STATE: &str = "buzon-index";

impl Folder {
    pub(crate) fn new(store: MailStore, shared: Arc<Shared>) -> Folder {
        Folder { store, shared }
    }

    pub(crate) fn shared(dir: PathBuf, name: String, mailbox: Mailbox) -> Shared {
        Shared {
            dir,
            name,
            mailbox,
            index: Mutex::new(Index::default()),
        }
    }

    /// The folder's name (`INBOX`, `Archive.2024`).
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    fn inner(&self) -> &Inner {
        &self.store.inner
    }

    fn lock_index(&self) -> MutexGuard<'_, Index> {
        self.shared
            .index
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The folder's UIDVALIDITY (loading the index if needed).
    pub fn uid_validity(&self) -> u32 {
        let mut idx = self.lock_index();
        if !idx.loaded {
            let _ = self.locked(&mut idx, false, |_, _| Ok(()));
        }
        idx.list.uid_validity
    }

    /// Brings the index up to date with the disk and returns every message. With
    /// `claim_recent` (a read-write SELECT), messages in `new/` move to `cur/` and the ones no
    /// session has seen yet are returned as this caller's `\Recent`.
    pub fn sync(&self, claim_recent: bool) -> Result<Snapshot, StoreError> {
        let mut idx = self.lock_index();
        let recent = if claim_recent || self.changed(&idx) {
            self.locked(&mut idx, claim_recent, |_, r| Ok(r))?
        } else {
            Vec::new()
        };
        Ok(Snapshot {
            uid_validity: idx.list.uid_validity,
            uid_next: idx.list.next_uid,
            highest_modseq: idx.state.highest_modseq,
            messages: idx.messages.iter().map(|(u, e)| meta(*u, e)).collect(),
            recent,
        })
    }

    /// What changed after mod-sequence `since`: new and re-flagged messages, expunged UIDs.
    pub fn changes_since(&self, since: u64) -> Result<Changes, StoreError> {
        let mut idx = self.lock_index();
        if self.changed(&idx) {
            self.locked(&mut idx, false, |_, _| Ok(()))?;
        }
        let vanished = if since < idx.state.trimmed_before {
            // The records were trimmed: every UID that is not here may have gone.
            (1..idx.list.next_uid)
                .filter(|u| !idx.messages.contains_key(u))
                .collect()
        } else {
            idx.state
                .expunged
                .iter()
                .filter(|(_, m)| *m > since)
                .map(|(u, _)| *u)
                .collect()
        };
        Ok(Changes {
            changed: idx
                .messages
                .iter()
                .filter(|(_, e)| e.modseq > since)
                .map(|(u, e)| meta(*u, e))
                .collect(),
            vanished,
            uid_next: idx.list.next_uid,
            highest_modseq: idx.state.highest_modseq,
            uid_validity: idx.list.uid_validity,
        })
    }

    /// Counts for STATUS.
    pub fn status(&self) -> Result<Status, StoreError> {
        let snap = self.sync(false)?;
        let idx = self.lock_index();
        Ok(Status {
            messages: snap.messages.len() as u32,
            recent: idx.messages.range(idx.state.first_unclaimed..).count() as u32,
            uid_next: snap.uid_next,
            uid_validity: snap.uid_validity,
            unseen: snap.messages.iter().filter(|m| !m.flags.seen).count() as u32,
            highest_modseq: snap.highest_modseq,
            size: snap.messages.iter().map(|m| m.size).sum(),
        })
    }

    /// Opens message `uid` for reading, as IMAP shows it: with CRLF line ends. Maildir
    /// writers such as Dovecot store bare LF (and give the CRLF size as `,W=`); such a file is
    /// converted as it is opened. A file renamed meanwhile (a flag change by another process)
    /// is found again by a fresh look at the directories.
    pub fn open_message(&self, uid: u32) -> Result<MessageFile, StoreError> {
        for attempt in 0..2 {
            let found = {
                let mut idx = self.lock_index();
                if attempt == 1 || !idx.loaded {
                    idx.stamps = Default::default();
                    self.locked(&mut idx, false, |_, _| Ok(()))?;
                }
                idx.messages.get(&uid).map(|e| (self.path_of(e), e.size))
            };
            let Some((path, size)) = found else {
                break;
            };
            match File::open(&path) {
                Ok(f) => {
                    return MessageFile::new(f, size)
                        .map_err(|e| StoreError::io(FsOp::Read, path, e));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && attempt == 0 => continue,
                Err(e) => return Err(StoreError::io(FsOp::Read, path, e)),
            }
        }
        Err(StoreError::NoSuchMessage { uid })
    }

    /// Changes flags. Messages changed since `unchanged_since` are left alone and listed in
    /// [`Stored::modified`] (RFC 7162 section 3.1.3); each changed message gets a new
    /// mod-sequence, an unchanged one keeps its own.
    pub fn store(
        &self,
        uids: &[u32],
        op: FlagOp,
        flags: &Flags,
        unchanged_since: Option<u64>,
    ) -> Result<Stored, StoreError> {
        let mut idx = self.lock_index();
        let out = self.locked(&mut idx, false, |idx, _| {
            let mut stored = Stored::default();
            for &uid in uids {
                let Some(entry) = idx.messages.get(&uid) else {
                    continue;
                };
                if unchanged_since.is_some_and(|u| entry.modseq > u) {
                    stored.modified.push(uid);
                    continue;
                }
                let new = apply(&entry.flags, op, flags);
                if new != entry.flags {
                    self.set_flags(idx, uid, new)?;
                }
                if let Some(e) = idx.messages.get(&uid) {
                    stored.updated.push(meta(uid, e));
                }
            }
            Ok(stored)
        })?;
        drop(idx);
        if !out.updated.is_empty() {
            self.store
                .notify_folder(&self.shared.mailbox, &self.shared.name);
        }
        Ok(out)
    }

    /// Renames a message's file for new flags and gives it the next mod-sequence.
    fn set_flags(&self, idx: &mut Index, uid: u32, new: Flags) -> Result<(), StoreError> {
        for k in &new.keywords {
            if !idx.keywords.contains(k) && idx.keywords.len() < flags::MAX_KEYWORDS {
                idx.keywords.push(k.clone());
                self.write_keywords(idx)?;
            }
        }
        let Some(entry) = idx.messages.get(&uid).cloned() else {
            return Ok(());
        };
        let letters = flags::render(&new, &idx.keywords, &flags::extra_letters(&entry.letters));
        let base = flags::base_name(&entry.file).to_owned();
        let file = format!("{base}:2,{letters}");
        let from = self.path_of(&entry);
        let to = self.shared.dir.join("cur").join(&file);
        self.inner()
            .run(FsOp::Rename, &from, || fs::rename(&from, &to))?;
        idx.state.highest_modseq += 1;
        let modseq = idx.state.highest_modseq;
        let kept: Vec<String> = new
            .keywords
            .iter()
            .filter(|k| idx.keywords.contains(k))
            .cloned()
            .collect();
        if let Some(e) = idx.messages.get_mut(&uid) {
            e.file = file;
            e.in_new = false;
            e.letters = letters;
            e.flags = Flags {
                keywords: kept,
                ..new
            };
            e.modseq = modseq;
        }
        Ok(())
    }

    /// Starts an APPEND: the message is written to `tmp/`, then [`Appending::commit`] files it
    /// with its flags and gives it a UID.
    pub fn append(
        &self,
        flags: &Flags,
        internal_date: Option<SystemTime>,
    ) -> Result<Appending, StoreError> {
        let tmp = self.shared.dir.join("tmp");
        if !tmp.is_dir() {
            return Err(StoreError::NoSuchFolder {
                name: self.shared.name.clone(),
            });
        }
        let base = crate::name::unique(self.inner().host());
        let path = tmp.join(&base);
        let file = self.inner().run(FsOp::CreateFile, &path, || {
            self.inner().create_new_raw(&path)
        })?;
        Ok(Appending {
            folder: self.clone(),
            file: Some(file),
            path,
            base,
            flags: flags.clone(),
            date: internal_date,
            size: 0,
            failed: false,
        })
    }

    /// Copies messages into `to`, keeping their flags; returns (source UID, new UID) pairs.
    pub fn copy(&self, uids: &[u32], to: &Folder) -> Result<Vec<(u32, u32)>, StoreError> {
        self.transfer(uids, to, false)
    }

    /// Moves messages into `to` (RFC 6851): as a copy, then the originals are expunged here.
    pub fn move_to(&self, uids: &[u32], to: &Folder) -> Result<Vec<(u32, u32)>, StoreError> {
        self.transfer(uids, to, true)
    }

    fn transfer(
        &self,
        uids: &[u32],
        to: &Folder,
        moving: bool,
    ) -> Result<Vec<(u32, u32)>, StoreError> {
        if Arc::ptr_eq(&self.shared, &to.shared) && !moving {
            // COPY into the same folder: read the sources first, then append copies.
            let files: Vec<(u32, PathBuf, Flags, SystemTime)> = {
                let mut idx = self.lock_index();
                self.locked(&mut idx, false, |idx, _| {
                    Ok(uids
                        .iter()
                        .filter_map(|u| {
                            idx.messages
                                .get(u)
                                .map(|e| (*u, self.path_of(e), e.flags.clone(), e.mtime))
                        })
                        .collect())
                })?
            };
            let mut pairs = Vec::new();
            for (uid, path, flags, mtime) in files {
                let new = to.file_copy(&path, &flags, mtime, false)?;
                pairs.push((uid, new));
            }
            self.store
                .notify_folder(&to.shared.mailbox, &to.shared.name);
            return Ok(pairs);
        }
        if Arc::ptr_eq(&self.shared, &to.shared) {
            // MOVE into the same folder changes nothing but the UIDs; do what the RFC says.
            let pairs = self.transfer(uids, to, false)?;
            self.remove(&pairs.iter().map(|p| p.0).collect::<Vec<_>>())?;
            return Ok(pairs);
        }
        let sources: Vec<(u32, PathBuf, Flags, SystemTime)> = {
            let mut idx = self.lock_index();
            self.locked(&mut idx, false, |idx, _| {
                Ok(uids
                    .iter()
                    .filter_map(|u| {
                        idx.messages
                            .get(u)
                            .map(|e| (*u, self.path_of(e), e.flags.clone(), e.mtime))
                    })
                    .collect())
            })?
        };
        let mut pairs = Vec::with_capacity(sources.len());
        for (uid, path, flags, mtime) in &sources {
            pairs.push((*uid, to.file_copy(path, flags, *mtime, moving)?));
        }
        if moving {
            let moved: Vec<u32> = pairs.iter().map(|p| p.0).collect();
            self.forget(&moved)?;
        }
        self.store
            .notify_folder(&to.shared.mailbox, &to.shared.name);
        Ok(pairs)
    }

    /// Files a message from elsewhere into this folder (`rename` to move it, else a hard link,
    /// else a copy), under the lock, and gives it the next UID.
    fn file_copy(
        &self,
        from: &Path,
        flags: &Flags,
        mtime: SystemTime,
        rename: bool,
    ) -> Result<u32, StoreError> {
        let size = fs::metadata(from)
            .map_err(|e| StoreError::io(FsOp::Read, from, e))?
            .len();
        let base = format!("{},S={size}", crate::name::unique(self.inner().host()));
        let mut idx = self.lock_index();
        self.locked(&mut idx, false, |idx, _| {
            for k in &flags.keywords {
                if !idx.keywords.contains(k) && idx.keywords.len() < flags::MAX_KEYWORDS {
                    idx.keywords.push(k.clone());
                    self.write_keywords(idx)?;
                }
            }
            let letters = flags::render(flags, &idx.keywords, "");
            let file = format!("{base}:2,{letters}");
            let to = self.shared.dir.join("cur").join(&file);
            let inner = self.inner();
            if rename {
                inner.run(FsOp::Rename, from, || fs::rename(from, &to))?;
            } else if inner
                .run(FsOp::Link, &to, || fs::hard_link(from, &to))
                .is_err()
            {
                let tmp = self.shared.dir.join("tmp").join(&base);
                inner.run(FsOp::Copy, &tmp, || fs::copy(from, &tmp))?;
                if inner.fsync() {
                    inner.run(FsOp::SyncFile, &tmp, || File::open(&tmp)?.sync_all())?;
                }
                inner.run(FsOp::Rename, &tmp, || fs::rename(&tmp, &to))?;
            }
            inner.sync_dir(&self.shared.dir.join("cur"))?;
            Ok(self.register(idx, base, file, flags, size, mtime))
        })
    }

    /// Takes a new file into the index with the next UID.
    fn register(
        &self,
        idx: &mut Index,
        base: String,
        file: String,
        flags: &Flags,
        size: u64,
        mtime: SystemTime,
    ) -> u32 {
        let uid = idx.list.next_uid;
        idx.list.next_uid += 1;
        idx.list.entries.insert(uid, (String::new(), base));
        idx.state.highest_modseq += 1;
        let letters = flags::info_letters(&file).to_owned();
        let kept: Vec<String> = flags
            .keywords
            .iter()
            .filter(|k| idx.keywords.contains(k))
            .cloned()
            .collect();
        idx.messages.insert(
            uid,
            Entry {
                file,
                in_new: false,
                letters,
                flags: Flags {
                    keywords: kept,
                    ..flags.clone()
                },
                modseq: idx.state.highest_modseq,
                size,
                mtime,
            },
        );
        uid
    }

    /// Removes the messages marked `\Deleted` (only those in `uids` if given); returns the
    /// UIDs removed.
    pub fn expunge(&self, uids: Option<&[u32]>) -> Result<Vec<u32>, StoreError> {
        let doomed: Vec<u32> = {
            let mut idx = self.lock_index();
            self.locked(&mut idx, false, |idx, _| {
                Ok(idx
                    .messages
                    .iter()
                    .filter(|(u, e)| e.flags.deleted && uids.is_none_or(|s| s.contains(u)))
                    .map(|(u, _)| *u)
                    .collect())
            })?
        };
        self.remove(&doomed)?;
        Ok(doomed)
    }

    /// Deletes the files of `uids` and records their expunge.
    fn remove(&self, uids: &[u32]) -> Result<(), StoreError> {
        if uids.is_empty() {
            return Ok(());
        }
        {
            let mut idx = self.lock_index();
            self.locked(&mut idx, false, |idx, _| {
                for uid in uids {
                    if let Some(e) = idx.messages.get(uid) {
                        let path = self.path_of(e);
                        match self
                            .inner()
                            .run(FsOp::Remove, &path, || fs::remove_file(&path))
                        {
                            Ok(()) => {}
                            Err(e)
                                if e.io_error()
                                    .is_some_and(|e| e.kind() == io::ErrorKind::NotFound) => {}
                            Err(e) => return Err(e),
                        }
                        forget_one(idx, *uid);
                    }
                }
                self.inner().sync_dir(&self.shared.dir.join("cur"))
            })?;
        }
        self.store
            .notify_folder(&self.shared.mailbox, &self.shared.name);
        Ok(())
    }

    /// Records that `uids` left the folder (their files moved away).
    fn forget(&self, uids: &[u32]) -> Result<(), StoreError> {
        {
            let mut idx = self.lock_index();
            self.locked(&mut idx, false, |idx, _| {
                for uid in uids {
                    forget_one(idx, *uid);
                }
                Ok(())
            })?;
        }
        self.store
            .notify_folder(&self.shared.mailbox, &self.shared.name);
        Ok(())
    }

    fn path_of(&self, e: &Entry) -> PathBuf {
        self.shared
            .dir
            .join(if e.in_new { "new" } else { "cur" })
            .join(&e.file)
    }

    fn paths(&self) -> [PathBuf; 5] {
        let d = &self.shared.dir;
        [
            d.join(UIDLIST),
            d.join(STATE),
            d.join(KEYWORDS),
            d.join("new"),
            d.join("cur"),
        ]
    }

    fn current_stamps(&self) -> [Stamp; 5] {
        self.paths().map(|p| stamp(&p))
    }

    /// Whether anything on disk changed since the index last looked.
    fn changed(&self, idx: &Index) -> bool {
        !idx.loaded || self.current_stamps() != idx.stamps
    }

    /// Runs `f` with the index current and the folder locked, then writes what changed.
    fn locked<T>(
        &self,
        idx: &mut Index,
        claim_recent: bool,
        f: impl FnOnce(&mut Index, Vec<u32>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let dir = &self.shared.dir;
        if !dir.join("cur").is_dir() {
            return Err(StoreError::NoSuchFolder {
                name: self.shared.name.clone(),
            });
        }
        let lock_path = dir.join(LOCK);
        let lock = Lock::acquire(&lock_path, self.inner().host())
            .map_err(|e| StoreError::io(FsOp::Lock, &lock_path, e))?;
        let before = (idx.list.clone(), idx.state.clone());
        let recent = self.refresh(idx, claim_recent)?;
        lock.refresh();
        let out = f(idx, recent);
        // Whatever `f` did on disk is recorded, even if it failed part way.
        if idx.list != before.0 {
            self.write_atomic(UIDLIST, idx.list.render().as_bytes())?;
        }
        let state = self.state_of(idx);
        if state != before.1 || !dir.join(STATE).exists() {
            idx.state = state;
            self.write_atomic(STATE, idx.state.render().as_bytes())?;
        }
        idx.stamps = self.current_stamps();
        idx.loaded = true;
        drop(lock);
        out
    }

    /// The state file's content for the index as it is.
    fn state_of(&self, idx: &Index) -> State {
        let mut s = idx.state.clone();
        s.uid_validity = idx.list.uid_validity;
        s.messages = idx
            .messages
            .iter()
            .map(|(u, e)| (*u, (e.modseq, e.letters.clone())))
            .collect();
        s.trim();
        s
    }

    /// Re-reads what changed on disk (called with the lock held).
    fn refresh(&self, idx: &mut Index, claim_recent: bool) -> Result<Vec<u32>, StoreError> {
        let dir = self.shared.dir.clone();
        let stamps = self.current_stamps();
        if !idx.loaded || stamps[0] != idx.stamps[0] {
            let text = fs::read_to_string(dir.join(UIDLIST)).unwrap_or_default();
            idx.list = match UidList::parse(&text) {
                Some(l) => l,
                None => {
                    // A new folder, or a list we cannot read: a new UIDVALIDITY, never 0 and
                    // never the one before (RFC 3501 2.3.1.1: UIDs may not be reused under it).
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(1, |d| d.as_secs() as u32)
                        .max(1);
                    let old = idx.list.uid_validity.max(idx.state.uid_validity);
                    UidList::new(if now <= old {
                        old.wrapping_add(1).max(1)
                    } else {
                        now
                    })
                }
            };
        }
        if !idx.loaded || stamps[2] != idx.stamps[2] {
            idx.keywords = flags::read_keywords(&dir.join(KEYWORDS));
        }
        let state_fresh = !idx.loaded || stamps[1] != idx.stamps[1];
        if state_fresh {
            let text = fs::read_to_string(dir.join(STATE)).unwrap_or_default();
            match State::parse(&text) {
                Some(s) if s.uid_validity == idx.list.uid_validity => idx.state = s,
                _ => {
                    let keep = idx.state.highest_modseq;
                    idx.state = State {
                        uid_validity: idx.list.uid_validity,
                        highest_modseq: keep.max(1),
                        first_unclaimed: 1,
                        ..State::default()
                    };
                }
            }
        }
        // List both directories: base name to (file, in new/).
        let mut found: BTreeMap<String, (String, bool)> = BTreeMap::new();
        for (sub, in_new) in [("cur", false), ("new", true)] {
            let d = dir.join(sub);
            let rd = self.inner().run(FsOp::ReadDir, &d, || fs::read_dir(&d))?;
            for entry in rd.flatten() {
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                if name.starts_with('.') {
                    continue;
                }
                found.insert(flags::base_name(&name).to_owned(), (name, in_new));
            }
        }
        let old = std::mem::take(&mut idx.messages);
        let mut messages = BTreeMap::new();
        let mut known = std::collections::BTreeSet::new();
        let uids: Vec<(u32, String)> = idx
            .list
            .entries
            .iter()
            .map(|(u, (_, b))| (*u, b.clone()))
            .collect();
        for (uid, base) in uids {
            match found.get(&base) {
                Some((file, in_new)) => {
                    known.insert(base.clone());
                    let letters = if *in_new {
                        String::new()
                    } else {
                        flags::info_letters(file).to_owned()
                    };
                    // The state file, when another process rewrote it, knows better than
                    // our memory; the size and date of an unchanged file need no new stat.
                    let record = state_fresh
                        .then(|| idx.state.messages.get(&uid).cloned())
                        .flatten()
                        .or_else(|| old.get(&uid).map(|e| (e.modseq, e.letters.clone())))
                        .or_else(|| idx.state.messages.get(&uid).cloned());
                    let (size, mtime) = match old.get(&uid) {
                        Some(e) if e.file == *file => (e.size, e.mtime),
                        _ => self.size_and_date(&dir, file, *in_new),
                    };
                    let modseq = match record {
                        Some((m, l)) if l == letters => m,
                        // New to us, or flags changed on disk by another program.
                        _ => {
                            idx.state.highest_modseq += 1;
                            idx.state.highest_modseq
                        }
                    };
                    messages.insert(
                        uid,
                        Entry {
                            file: file.clone(),
                            in_new: *in_new,
                            flags: flags::parse(&letters, &idx.keywords),
                            letters,
                            modseq,
                            size,
                            mtime,
                        },
                    );
                }
                None => {
                    // Gone: expunged by another program or process.
                    idx.list.entries.remove(&uid);
                    if idx.state.messages.contains_key(&uid) || old.contains_key(&uid) {
                        idx.state.highest_modseq += 1;
                        let m = idx.state.highest_modseq;
                        idx.state.expunged.push((uid, m));
                    }
                }
            }
        }
        // New files, in name order (names start with the delivery time).
        for (base, (file, in_new)) in found {
            if known.contains(&base) {
                continue;
            }
            let (size, mtime) = self.size_and_date(&dir, &file, in_new);
            let uid = idx.list.next_uid;
            idx.list.next_uid += 1;
            idx.list.entries.insert(uid, (String::new(), base));
            idx.state.highest_modseq += 1;
            let letters = if in_new {
                String::new()
            } else {
                flags::info_letters(&file).to_owned()
            };
            messages.insert(
                uid,
                Entry {
                    file,
                    in_new,
                    flags: flags::parse(&letters, &idx.keywords),
                    letters,
                    modseq: idx.state.highest_modseq,
                    size,
                    mtime,
                },
            );
        }
        idx.messages = messages;
        let mut recent = Vec::new();
        if claim_recent {
            let first = idx.state.first_unclaimed;
            recent = idx.messages.range(first..).map(|(u, _)| *u).collect();
            idx.state.first_unclaimed = idx.list.next_uid;
            // RFC 3501's \Recent done the Maildir way: what a session has seen leaves new/.
            let movers: Vec<u32> = idx
                .messages
                .iter()
                .filter(|(_, e)| e.in_new)
                .map(|(u, _)| *u)
                .collect();
            for uid in movers {
                let Some(e) = idx.messages.get(&uid) else {
                    continue;
                };
                let from = dir.join("new").join(&e.file);
                let file = format!("{}:2,", e.file);
                let to = dir.join("cur").join(&file);
                match fs::rename(&from, &to) {
                    Ok(()) => {
                        if let Some(e) = idx.messages.get_mut(&uid) {
                            e.file = file;
                            e.in_new = false;
                        }
                    }
                    // Another process moved it first; the next sync finds it in cur/.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(StoreError::io(FsOp::Rename, from, e)),
                }
            }
        }
        Ok(recent)
    }

    /// The size as IMAP counts it (CRLF line ends): Dovecot's `,W=` when the name has it, else
    /// `,S=` (buzon writes CRLF), else the file's length plus one for each bare LF; and the
    /// internal date (the file's mtime).
    fn size_and_date(&self, dir: &Path, file: &str, in_new: bool) -> (u64, SystemTime) {
        let path = dir.join(if in_new { "new" } else { "cur" }).join(file);
        let meta = fs::metadata(&path).ok();
        let field = |key: &str| {
            flags::base_name(file)
                .split(',')
                .find_map(|f| f.strip_prefix(key))
                .and_then(|s| s.parse::<u64>().ok())
        };
        let size = field("W=")
            .or_else(|| field("S="))
            .or_else(|| fs::read(&path).ok().map(|b| crlf_len(&b)))
            .or(meta.as_ref().map(|m| m.len()))
            .unwrap_or(0);
        let mtime = meta.and_then(|m| m.modified().ok()).unwrap_or(UNIX_EPOCH);
        (size, mtime)
    }

    fn write_keywords(&self, idx: &Index) -> Result<(), StoreError> {
        self.write_atomic(KEYWORDS, flags::keywords_text(&idx.keywords).as_bytes())
    }

    /// Writes a file of ours so that a crash leaves the old one or the new one, never half.
    fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let dir = &self.shared.dir;
        let path = dir.join(name);
        let tmp = dir.join(format!(
            "{name}.tmp.{}",
            crate::name::unique(self.inner().host())
        ));
        let inner = self.inner();
        let mut f = inner.run(FsOp::CreateFile, &tmp, || inner.create_new_raw(&tmp))?;
        inner.run(FsOp::Write, &tmp, || f.write_all(bytes))?;
        if inner.fsync() {
            inner.run(FsOp::SyncFile, &tmp, || f.sync_all())?;
        }
        drop(f);
        inner.run(FsOp::Rename, &path, || fs::rename(&tmp, &path))?;
        inner.sync_dir(dir)
    }
}

/// The length of `b` with every bare LF made CRLF.
fn crlf_len(b: &[u8]) -> u64 {
    let bare = memchr::memchr_iter(b'\n', b)
        .filter(|&i| i == 0 || b[i - 1] != b'\r')
        .count();
    (b.len() + bare) as u64
}

/// `b` with every bare LF made CRLF.
fn to_crlf(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len() + b.len() / 32);
    let mut prev = 0u8;
    for &c in b {
        if c == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(c);
        prev = c;
    }
    out
}

/// A message opened for reading, with CRLF line ends whatever the file holds.
#[derive(Debug)]
pub struct MessageFile {
    inner: Content,
}

#[derive(Debug)]
enum Content {
    /// The file is already what IMAP shows.
    File(File, u64),
    /// A file with bare LFs, converted.
    Converted(Vec<u8>),
}

impl MessageFile {
    fn new(mut f: File, size: u64) -> io::Result<MessageFile> {
        let len = f.metadata()?.len();
        if len == size {
            return Ok(MessageFile {
                inner: Content::File(f, len),
            });
        }
        let mut raw = Vec::with_capacity(len as usize);
        io::Read::read_to_end(&mut f, &mut raw)?;
        Ok(MessageFile {
            inner: Content::Converted(to_crlf(&raw)),
        })
    }

    /// Octets, with CRLF line ends.
    pub fn len(&self) -> u64 {
        match &self.inner {
            Content::File(_, n) => *n,
            Content::Converted(v) => v.len() as u64,
        }
    }

    /// Whether the message is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads from `offset` into `buf`; 0 at the end.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        match &self.inner {
            Content::File(f, _) => std::os::unix::fs::FileExt::read_at(f, buf, offset),
            Content::Converted(v) => {
                let start = (offset as usize).min(v.len());
                let n = buf.len().min(v.len() - start);
                buf[..n].copy_from_slice(&v[start..start + n]);
                Ok(n)
            }
        }
    }

    /// The whole message.
    pub fn read_all(&self) -> io::Result<Vec<u8>> {
        let mut out = vec![0; self.len() as usize];
        let mut done = 0;
        while done < out.len() {
            match self.read_at(done as u64, &mut out[done..])? {
                0 => break,
                n => done += n,
            }
        }
        out.truncate(done);
        Ok(out)
    }
}

fn forget_one(idx: &mut Index, uid: u32) {
    if idx.messages.remove(&uid).is_some() {
        idx.list.entries.remove(&uid);
        idx.state.highest_modseq += 1;
        let m = idx.state.highest_modseq;
        idx.state.expunged.push((uid, m));
    }
}

fn meta(uid: u32, e: &Entry) -> MessageMeta {
    MessageMeta {
        uid,
        modseq: e.modseq,
        flags: e.flags.clone(),
        size: e.size,
        internal_date: e.mtime,
    }
}

fn apply(old: &Flags, op: FlagOp, f: &Flags) -> Flags {
    let mut n = old.clone();
    let set = |n: &mut Flags, on: bool| {
        for (mine, theirs) in [
            (&mut n.seen, f.seen),
            (&mut n.answered, f.answered),
            (&mut n.flagged, f.flagged),
            (&mut n.deleted, f.deleted),
            (&mut n.draft, f.draft),
        ] {
            if theirs {
                *mine = on;
            }
        }
    };
    match op {
        FlagOp::Replace => n = f.clone(),
        FlagOp::Add => {
            set(&mut n, true);
            n.keywords.extend(f.keywords.iter().cloned());
        }
        FlagOp::Remove => {
            set(&mut n, false);
            n.keywords.retain(|k| !f.keywords.contains(k));
        }
    }
    n.keywords.sort();
    n.keywords.dedup();
    n
}

/// A message being appended: see [`Folder::append`]. Dropping it before
/// [`commit`](Appending::commit) removes the file.
#[derive(Debug)]
pub struct Appending {
    folder: Folder,
    file: Option<File>,
    path: PathBuf,
    base: String,
    flags: Flags,
    date: Option<SystemTime>,
    size: u64,
    failed: bool,
}

impl Appending {
    /// Appends bytes of the message.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        if self.failed {
            return Err(StoreError::Poisoned {
                path: self.path.clone(),
            });
        }
        let inner = self.folder.inner();
        let Some(file) = &mut self.file else {
            return Err(StoreError::Poisoned {
                path: self.path.clone(),
            });
        };
        let r = inner.run(FsOp::Write, &self.path, || file.write_all(bytes));
        self.failed = r.is_err();
        self.size += bytes.len() as u64;
        r
    }

    /// The destination folder's UIDVALIDITY, for APPENDUID.
    pub fn uid_validity(&self) -> u32 {
        self.folder.uid_validity()
    }

    /// Makes the message durable (with the store's fsync setting), files it in `cur/` with its
    /// flags and returns its UID.
    pub fn commit(mut self) -> Result<u32, StoreError> {
        if self.failed {
            return Err(StoreError::Poisoned {
                path: self.path.clone(),
            });
        }
        let file = self.file.take().ok_or(StoreError::Poisoned {
            path: self.path.clone(),
        })?;
        let inner = self.folder.inner();
        if let Some(date) = self.date {
            let _ = file.set_modified(date);
        }
        if inner.fsync() {
            inner.run(FsOp::SyncFile, &self.path, || file.sync_all())?;
        }
        drop(file);
        let base = format!("{},S={}", self.base, self.size);
        let folder = self.folder.clone();
        let mtime = fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .unwrap_or(UNIX_EPOCH);
        let size = self.size;
        let flags = self.flags.clone();
        let path = self.path.clone();
        let uid = {
            let mut idx = folder.lock_index();
            folder.locked(&mut idx, false, |idx, _| {
                for k in &flags.keywords {
                    if !idx.keywords.contains(k) && idx.keywords.len() < flags::MAX_KEYWORDS {
                        idx.keywords.push(k.clone());
                        folder.write_keywords(idx)?;
                    }
                }
                let letters = flags::render(&flags, &idx.keywords, "");
                let file = format!("{base}:2,{letters}");
                let to = folder.shared.dir.join("cur").join(&file);
                inner.run(FsOp::Rename, &path, || fs::rename(&path, &to))?;
                inner.sync_dir(&folder.shared.dir.join("cur"))?;
                Ok(folder.register(idx, base.clone(), file, &flags, size, mtime))
            })?
        };
        self.path = PathBuf::new();
        folder
            .store
            .notify_folder(&folder.shared.mailbox, &folder.shared.name);
        Ok(uid)
    }
}

impl Drop for Appending {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}
