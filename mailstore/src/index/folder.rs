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

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use super::flags::{self, Flags};
use super::lock::Lock;
use super::log::{self, CEILING_STEP, Record, State};
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

/// How recent a change must be for its stamp not to be trusted. A directory's mtime moves in
/// steps of the kernel's coarse clock (a few milliseconds), so a file added in the same step
/// as the last change leaves the stamp as it was; and a file added between our listing and
/// our stat would be counted as seen. A stamp this close to now is taken as "unknown", so the
/// next look lists again (git's "racy timestamp" rule).
const RACY: std::time::Duration = std::time::Duration::from_millis(100);

/// `stamps` with those of files changed within [`RACY`] of `now` replaced by the unknown
/// stamp.
fn distrust_recent(mut stamps: [Stamp; 5], now: SystemTime) -> [Stamp; 5] {
    let cutoff = now
        .checked_sub(RACY)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i128);
    for s in &mut stamps {
        let at = i128::from(s.2) * 1_000_000_000 + i128::from(s.3);
        if *s != Stamp::default() && at >= cutoff {
            *s = Stamp::default();
        }
    }
    stamps
}

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
    /// The log replayed, with this process's records applied as they are made.
    state: State,
    stamps: [Stamp; 5],
    /// How much of each of our two files we have read (or written).
    log: FileExtent,
    uidlist: FileExtent,
    /// Log records made under the current lock, not yet written.
    pending: Vec<Record>,
    /// UIDs given under the current lock, not yet appended to the UID list.
    new_uids: Vec<u32>,
    /// UID list entries on disk whose messages are gone (cleared when it is rewritten).
    uidlist_stale: usize,
    /// The UID list or the log must be written whole (new, unreadable, or an old version).
    rewrite_uidlist: bool,
    rewrite_log: bool,
}

/// Where a file of ours stood when we last read or wrote it: appends go on from there.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct FileExtent {
    ino: u64,
    len: u64,
    lines: usize,
}

impl Index {
    /// Makes a log record and applies it.
    fn record(&mut self, rec: Record) {
        self.state.apply(&rec);
        self.pending.push(rec);
    }

    fn next_modseq(&mut self) -> u64 {
        self.state.highest_modseq += 1;
        self.state.highest_modseq
    }

    /// Records the message's current letters at a new mod-sequence.
    fn record_message(&mut self, uid: u32, letters: &str) -> u64 {
        let modseq = self.next_modseq();
        self.record(Record::Message {
            uid,
            modseq,
            letters: letters.to_owned(),
        });
        modseq
    }

    fn record_expunge(&mut self, uid: u32) {
        let modseq = self.next_modseq();
        self.record(Record::Expunged { uid, modseq });
    }

    /// Gives `base` the next UID.
    fn assign_uid(&mut self, base: String) -> u32 {
        let uid = self.list.next_uid;
        self.list.next_uid += 1;
        self.list.entries.insert(uid, (String::new(), base));
        self.new_uids.push(uid);
        uid
    }
}

/// The in-memory index of one folder, shared by its handles in this process.
#[derive(Debug)]
pub(crate) struct Shared {
    dir: PathBuf,
    name: String,
    mailbox: Mailbox,
    index: Mutex<Index>,
    fsync: bool,
    host: String,
}

impl Drop for Shared {
    /// The last handle on the folder went: if records were appended since the log was last
    /// synced, sync it and say so (`s`), so the next load need not jump to the ceiling. Skipped
    /// when another holder has the lock: the jump is safe, only not needed.
    fn drop(&mut self) {
        let idx = self.index.get_mut().unwrap_or_else(PoisonError::into_inner);
        if !idx.state.dirty || idx.log.len == 0 {
            return;
        }
        let Some(_lock) = Lock::try_acquire(&self.dir.join(LOCK), &self.host) else {
            return;
        };
        let path = self.dir.join(STATE);
        let Ok(mut f) = fs::OpenOptions::new().append(true).open(&path) else {
            return;
        };
        let known = f
            .metadata()
            .is_ok_and(|m| m.ino() == idx.log.ino && m.len() == idx.log.len);
        if known && (!self.fsync || f.sync_data().is_ok()) {
            let _ = f.write_all(b"s\n");
        }
    }
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

    pub(crate) fn shared(
        store: &MailStore,
        dir: PathBuf,
        name: String,
        mailbox: Mailbox,
    ) -> Shared {
        Shared {
            dir,
            name,
            mailbox,
            index: Mutex::new(Index::default()),
            fsync: store.inner.fsync(),
            host: store.inner.host().to_owned(),
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
        self.changes(since, false)
    }

    /// As [`changes_since`](Self::changes_since), for a session that has the folder selected
    /// read-write: messages that arrived since and that no session has seen become this
    /// caller's `\Recent` ([`Changes::recent`]; RFC 3501 section 2.3.2: the first session
    /// told of a message) and move from `new/` to `cur/`, as a read-write SELECT does.
    pub fn changes_since_claiming(&self, since: u64) -> Result<Changes, StoreError> {
        self.changes(since, true)
    }

    fn changes(&self, since: u64, claim: bool) -> Result<Changes, StoreError> {
        let mut idx = self.lock_index();
        let unclaimed = claim
            && idx
                .messages
                .range(idx.state.first_unclaimed..)
                .next()
                .is_some();
        let mut recent = Vec::new();
        if self.changed(&idx) || unclaimed {
            recent = self.locked(&mut idx, claim, |_, r| Ok(r))?;
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
            recent,
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
        let modseq = idx.record_message(uid, &letters);
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
        if moving {
            // Moved away, a message the spool still holds would come back on a replay.
            self.inner().settle()?;
        }
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
        let uid = idx.assign_uid(base);
        let letters = flags::info_letters(&file).to_owned();
        let modseq = idx.record_message(uid, &letters);
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
                modseq,
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
        // Expunged, a message the spool still holds would come back on a replay.
        self.inner().settle()?;
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
        let out = self.refresh(idx, claim_recent).and_then(|recent| {
            lock.refresh();
            f(idx, recent)
        });
        // Whatever was done on disk is recorded, even if `f` failed part way.
        let written = self.write_uidlist(idx).and_then(|()| self.write_log(idx));
        if written.is_err() {
            // Memory may now be ahead of the disk: read everything again next time.
            idx.loaded = false;
            idx.pending.clear();
            idx.new_uids.clear();
        } else {
            idx.stamps = distrust_recent(self.current_stamps(), SystemTime::now());
            idx.loaded = true;
        }
        drop(lock);
        written?;
        out
    }

    /// Brings the UID list on disk up to the index: new UIDs are appended (as Dovecot does),
    /// the whole list is rewritten when it is new or holds many entries of gone messages.
    fn write_uidlist(&self, idx: &mut Index) -> Result<(), StoreError> {
        let stale_limit = 128 + idx.list.entries.len() / 4;
        if idx.rewrite_uidlist || idx.uidlist_stale > stale_limit {
            let text = idx.list.render();
            self.write_atomic(UIDLIST, text.as_bytes())?;
            idx.uidlist = self.extent(UIDLIST, text.len() as u64);
            idx.rewrite_uidlist = false;
            idx.uidlist_stale = 0;
            idx.new_uids.clear();
            return Ok(());
        }
        if idx.new_uids.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for uid in std::mem::take(&mut idx.new_uids) {
            if let Some((_, base)) = idx.list.entries.get(&uid) {
                text.push_str(&format!("{uid} :{base}\n"));
            }
        }
        let path = self.shared.dir.join(UIDLIST);
        let extent = idx.uidlist;
        // UIDs handed out must survive a crash (a client keeps them): this write is synced.
        match self.append_to(&path, extent, text.as_bytes(), true)? {
            Some(len) => idx.uidlist.len = len,
            None => {
                // Not where we left it (a torn line, or changed without the lock).
                let text = idx.list.render();
                self.write_atomic(UIDLIST, text.as_bytes())?;
                idx.uidlist = self.extent(UIDLIST, text.len() as u64);
            }
        }
        Ok(())
    }

    /// Appends the records made under this lock to the log (see `log` for why only a new
    /// ceiling is synced), or rewrites it when it has grown well past the folder.
    fn write_log(&self, idx: &mut Index) -> Result<(), StoreError> {
        let live = idx.state.messages.len() + idx.state.expunged.len();
        if idx.rewrite_log || idx.log.lines > 2 * live + 1024 {
            idx.state.trim();
            idx.state.ceiling = idx.state.highest_modseq;
            let text = idx.state.render();
            self.write_atomic(STATE, text.as_bytes())?;
            idx.state.dirty = false;
            idx.log = self.extent(STATE, text.len() as u64);
            idx.log.lines = text.lines().count();
            idx.rewrite_log = false;
            idx.pending.clear();
            return Ok(());
        }
        if idx.pending.is_empty() {
            return Ok(());
        }
        let mut records = std::mem::take(&mut idx.pending);
        let new_ceiling = idx.state.highest_modseq > idx.state.ceiling;
        if new_ceiling {
            let c = Record::Ceiling(idx.state.highest_modseq + CEILING_STEP);
            idx.state.apply(&c);
            records.push(c);
        }
        let text = log::render_records(&records);
        let path = self.shared.dir.join(STATE);
        match self.append_to(&path, idx.log, text.as_bytes(), new_ceiling)? {
            Some(len) => {
                idx.log.len = len;
                idx.log.lines += records.len();
            }
            None => {
                idx.rewrite_log = true;
                return self.write_log(idx);
            }
        }
        Ok(())
    }

    /// Appends `bytes` to a file of ours that should be as `known` says; `None` if it is not
    /// (then the caller rewrites it). A torn last line, left by a writer that crashed, is cut
    /// off first. Returns the new length.
    fn append_to(
        &self,
        path: &Path,
        known: FileExtent,
        bytes: &[u8],
        sync: bool,
    ) -> Result<Option<u64>, StoreError> {
        let inner = self.inner();
        let mut f = match fs::OpenOptions::new().append(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io(FsOp::Write, path, e)),
        };
        let meta = f
            .metadata()
            .map_err(|e| StoreError::io(FsOp::Read, path, e))?;
        if meta.ino() != known.ino || meta.len() < known.len || known.len == 0 {
            return Ok(None);
        }
        if meta.len() > known.len {
            inner.run(FsOp::Write, path, || f.set_len(known.len))?;
        }
        inner.run(FsOp::Write, path, || f.write_all(bytes))?;
        if sync && inner.fsync() {
            inner.run(FsOp::SyncFile, path, || f.sync_data())?;
        }
        Ok(Some(known.len + bytes.len() as u64))
    }

    /// The extent of a file just written whole.
    fn extent(&self, name: &str, len: u64) -> FileExtent {
        let ino = fs::metadata(self.shared.dir.join(name)).map_or(0, |m| m.ino());
        FileExtent { ino, len, lines: 0 }
    }

    /// Reads the UID list again when it changed (another process, or Dovecot, wrote it).
    fn read_uidlist(&self, idx: &mut Index) {
        let path = self.shared.dir.join(UIDLIST);
        let bytes = fs::read(&path).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        idx.uidlist_stale = 0;
        match UidList::parse(&text) {
            Some(l) => {
                let ino = fs::metadata(&path).map_or(0, |m| m.ino());
                // Appending after a line without its newline would corrupt both.
                let whole = bytes.last() == Some(&b'\n');
                idx.uidlist = FileExtent {
                    ino,
                    len: if whole { bytes.len() as u64 } else { 0 },
                    lines: 0,
                };
                idx.list = l;
            }
            None => {
                // A new folder, or a list we cannot read: a new UIDVALIDITY, never 0 and
                // never the one before (RFC 3501 2.3.1.1: UIDs may not be reused under it).
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(1, |d| d.as_secs() as u32)
                    .max(1);
                let old = idx.list.uid_validity.max(idx.state.uid_validity);
                idx.list = UidList::new(if now <= old {
                    old.wrapping_add(1).max(1)
                } else {
                    now
                });
                idx.rewrite_uidlist = true;
            }
        }
    }

    /// Reads what was appended to the log since we last looked, or all of it when it was
    /// rewritten; starts a new one when it is missing or belongs to another UIDVALIDITY.
    fn read_log(&self, idx: &mut Index) -> Result<(), StoreError> {
        let path = self.shared.dir.join(STATE);
        let uid_validity = idx.list.uid_validity;
        let first_load = !idx.loaded;
        let mut file = match File::open(&path) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(StoreError::io(FsOp::Read, &path, e)),
        };
        if let Some(f) = &mut file {
            let meta = f
                .metadata()
                .map_err(|e| StoreError::io(FsOp::Read, &path, e))?;
            let same = meta.ino() == idx.log.ino && meta.len() >= idx.log.len && idx.log.len > 0;
            if same && idx.state.uid_validity == uid_validity && !first_load {
                let mut tail = Vec::new();
                io::Seek::seek(f, io::SeekFrom::Start(idx.log.len))
                    .and_then(|_| io::Read::read_to_end(f, &mut tail))
                    .map_err(|e| StoreError::io(FsOp::Read, &path, e))?;
                let (taken, lines) = log::replay(&mut idx.state, &tail);
                idx.log.len += taken as u64;
                idx.log.lines += lines;
                return Ok(());
            }
            let mut bytes = Vec::new();
            io::Read::read_to_end(f, &mut bytes)
                .map_err(|e| StoreError::io(FsOp::Read, &path, e))?;
            if let Some((state, taken, lines, current)) = log::parse(&bytes)
                && state.uid_validity == uid_validity
            {
                let jumped = state.dirty && state.ceiling > state.highest_modseq;
                idx.state = state;
                idx.log = FileExtent {
                    ino: meta.ino(),
                    len: taken as u64,
                    lines,
                };
                idx.rewrite_log = !current;
                if jumped {
                    // Records after the last ceiling may have been lost in a crash: go on
                    // from the ceiling, so no client sees HIGHESTMODSEQ go back.
                    let c = idx.state.ceiling;
                    idx.record(Record::Highest(c));
                }
                return Ok(());
            }
        }
        // Without our log, mod-sequences start again above any we gave out (RFC 7162 3.1.1
        // asks that they never go back), and every message gets one.
        let keep = idx.state.highest_modseq;
        idx.state = State::new(uid_validity, keep.max(1));
        idx.log = FileExtent::default();
        idx.rewrite_log = true;
        Ok(())
    }

    /// Re-reads what changed on disk (called with the lock held).
    fn refresh(&self, idx: &mut Index, claim_recent: bool) -> Result<Vec<u32>, StoreError> {
        let dir = self.shared.dir.clone();
        let stamps = self.current_stamps();
        let uidlist_changed = !idx.loaded || stamps[0] != idx.stamps[0];
        if uidlist_changed {
            self.read_uidlist(idx);
        }
        if !idx.loaded || stamps[2] != idx.stamps[2] {
            idx.keywords = flags::read_keywords(&dir.join(KEYWORDS));
        }
        if uidlist_changed
            || stamps[1] != idx.stamps[1]
            || idx.state.uid_validity != idx.list.uid_validity
        {
            self.read_log(idx)?;
        }
        // List both directories: base name to (file, in new/, its entry). Entries are kept so
        // that the files that need a stat get it relative to the open directory.
        let mut found: HashMap<String, (String, bool, fs::DirEntry)> = HashMap::new();
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
                found.insert(flags::base_name(&name).to_owned(), (name, in_new, entry));
            }
        }
        let mut old = std::mem::take(&mut idx.messages);
        // Built in UID order (the list's, then new UIDs), so the map is built in one pass.
        let mut messages = Vec::with_capacity(idx.list.entries.len() + found.len());
        let mut gone = Vec::new();
        for (&uid, (_, base)) in &idx.list.entries {
            match found.remove(base) {
                Some((file, in_new, entry)) => {
                    let (size, mtime) = match old.remove(&uid) {
                        Some(e) if e.file == file => (e.size, e.mtime),
                        _ => size_and_date(&file, &entry),
                    };
                    messages.push((uid, (file, in_new, size, mtime)));
                }
                None => gone.push(uid),
            }
        }
        for uid in gone {
            // Gone: expunged by another program or process (its entry stays on disk until
            // the list is rewritten).
            idx.list.entries.remove(&uid);
            idx.uidlist_stale += 1;
            if idx.state.messages.contains_key(&uid) {
                idx.record_expunge(uid);
            }
        }
        // New files, in name order (names start with the delivery time).
        let mut new_files: Vec<(String, (String, bool, fs::DirEntry))> =
            found.into_iter().collect();
        new_files.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (base, (file, in_new, entry)) in new_files {
            let (size, mtime) = size_and_date(&file, &entry);
            let uid = idx.assign_uid(base);
            messages.push((uid, (file, in_new, size, mtime)));
        }
        let listed: std::collections::HashSet<u32> = messages.iter().map(|m| m.0).collect();
        // Messages the log knows that are no longer listed (a rewrite of the UID list by
        // another program dropped them) went too.
        let unlisted: Vec<u32> = idx
            .state
            .messages
            .keys()
            .filter(|u| !listed.contains(u))
            .copied()
            .collect();
        for uid in unlisted {
            idx.record_expunge(uid);
        }
        let mut entries = Vec::with_capacity(messages.len());
        for (uid, (file, in_new, size, mtime)) in messages {
            let letters = if in_new {
                String::new()
            } else {
                flags::info_letters(&file).to_owned()
            };
            let modseq = match idx.state.messages.get(&uid) {
                Some((m, l)) if *l == letters => *m,
                // New to the log, or flags changed on disk by another program.
                _ => idx.record_message(uid, &letters),
            };
            entries.push((
                uid,
                Entry {
                    file,
                    in_new,
                    flags: flags::parse(&letters, &idx.keywords),
                    letters,
                    modseq,
                    size,
                    mtime,
                },
            ));
        }
        idx.messages = entries.into_iter().collect();
        let mut recent = Vec::new();
        if claim_recent {
            let first = idx.state.first_unclaimed;
            recent = idx.messages.range(first..).map(|(u, _)| *u).collect();
            if idx.list.next_uid > first {
                let next = idx.list.next_uid;
                idx.record(Record::Unclaimed(next));
            }
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
/// The size as IMAP counts it (CRLF line ends): Dovecot's `,W=` when the name has it, else
/// `,S=` (buzon writes CRLF), else the file's length plus one for each bare LF; and the
/// internal date (the file's mtime).
fn size_and_date(file: &str, entry: &fs::DirEntry) -> (u64, SystemTime) {
    let meta = entry.metadata().ok();
    let field = |key: &str| {
        flags::base_name(file)
            .split(',')
            .find_map(|f| f.strip_prefix(key))
            .and_then(|s| s.parse::<u64>().ok())
    };
    let size = field("W=")
        .or_else(|| field("S="))
        .or_else(|| fs::read(entry.path()).ok().map(|b| crlf_len(&b)))
        .or(meta.as_ref().map(|m| m.len()))
        .unwrap_or(0);
    let mtime = meta.and_then(|m| m.modified().ok()).unwrap_or(UNIX_EPOCH);
    (size, mtime)
}

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
        idx.uidlist_stale += 1;
        idx.record_expunge(uid);
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
