//! The IMAP side of the store: folders with UIDs, flags and mod-sequences, kept beside the
//! Maildir in the files Dovecot uses (`dovecot-uidlist`, `dovecot-keywords`) plus one of ours
//! (`buzon-index`), so a Maildir moves between the two with its UIDs and UIDVALIDITY intact.
//! `docs/scale.md` says what takes a lock and what does not.

mod dir_watch;
mod flags;
mod folder;
mod lock;
mod log;
mod uidlist;

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::SystemTime;

pub use flags::Flags;
pub use folder::{Appending, Folder, MessageFile};

use crate::{FsOp, Inner, MailStore, Mailbox, StoreError};

/// One message as the index knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageMeta {
    /// Its UID.
    pub uid: u32,
    /// Its mod-sequence (RFC 7162).
    pub modseq: u64,
    /// Its flags.
    pub flags: Flags,
    /// Octets.
    pub size: u64,
    /// The internal date: the file's modification time (APPEND sets it).
    pub internal_date: SystemTime,
}

/// A folder as [`Folder::sync`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Snapshot {
    /// UIDVALIDITY: never 0, fits 32 bits.
    pub uid_validity: u32,
    /// The next UID to be given.
    pub uid_next: u32,
    /// HIGHESTMODSEQ.
    pub highest_modseq: u64,
    /// Every message, ascending by UID.
    pub messages: Vec<MessageMeta>,
    /// The UIDs that are `\Recent` for the caller (only when it claimed them).
    pub recent: Vec<u32>,
}

/// What changed after a mod-sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Changes {
    /// New messages and messages whose flags changed, ascending by UID.
    pub changed: Vec<MessageMeta>,
    /// UIDs expunged.
    pub vanished: Vec<u32>,
    /// UIDs that are `\Recent` for the caller (only from
    /// [`Folder::changes_since_claiming`]).
    pub recent: Vec<u32>,
    /// The next UID.
    pub uid_next: u32,
    /// HIGHESTMODSEQ now.
    pub highest_modseq: u64,
    /// UIDVALIDITY.
    pub uid_validity: u32,
}

/// Counts for IMAP STATUS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Status {
    /// Messages.
    pub messages: u32,
    /// Messages no session has seen as `\Recent` yet.
    pub recent: u32,
    /// The next UID.
    pub uid_next: u32,
    /// UIDVALIDITY.
    pub uid_validity: u32,
    /// Messages without `\Seen`.
    pub unseen: u32,
    /// HIGHESTMODSEQ.
    pub highest_modseq: u64,
    /// Octets of all messages.
    pub size: u64,
}

/// How [`Folder::store`] changes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    /// Set the given flags.
    Add,
    /// Clear the given flags.
    Remove,
    /// Make the flags exactly these.
    Replace,
}

/// What [`Folder::store`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stored {
    /// The messages now as asked (changed or already so), with their mod-sequences.
    pub updated: Vec<MessageMeta>,
    /// UIDs left alone because they changed after UNCHANGEDSINCE.
    pub modified: Vec<u32>,
}

/// A folder, for LIST.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FolderInfo {
    /// Its name (`INBOX`, `Archive.2024`).
    pub name: String,
    /// Its special use (RFC 6154), from its name.
    pub special_use: Option<&'static str>,
    /// Whether the user subscribed to it.
    pub subscribed: bool,
}

/// What a folder watcher is called with nothing: "look again". Returning false removes it.
type FolderCallback = Box<dyn Fn() -> bool + Send + Sync>;

/// The watchers of each (mailbox, folder).
type FolderWatchers = BTreeMap<(Mailbox, String), Vec<(u64, FolderCallback)>>;

/// The open folders and their watchers, per store.
#[derive(Default)]
pub(crate) struct Registry {
    open: Mutex<BTreeMap<PathBuf, Weak<folder::Shared>>>,
    /// The folders used last, kept loaded after their last handle goes: a client that selects
    /// a big folder again, or checks another one's STATUS every few minutes, finds its index
    /// in memory instead of listing and reading the directories again.
    kept: Mutex<std::collections::VecDeque<Arc<folder::Shared>>>,
    next_id: AtomicU64,
    watchers: Mutex<FolderWatchers>,
    /// inotify, made when the first folder is watched (`None` where there is none).
    dirs: std::sync::OnceLock<Option<Arc<dir_watch::DirWatcher>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Registry")
    }
}

/// A registered folder watcher; dropping it stops the watching.
#[must_use = "dropping the FolderWatch stops the watching at once"]
pub struct FolderWatch {
    store: Weak<Inner>,
    key: (Mailbox, String),
    id: u64,
}

impl std::fmt::Debug for FolderWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FolderWatch")
            .field("folder", &self.key.1)
            .finish()
    }
}

impl Drop for FolderWatch {
    fn drop(&mut self) {
        if let Some(inner) = self.store.upgrade() {
            let mut map = inner
                .folders
                .watchers
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(list) = map.get_mut(&self.key) {
                list.retain(|(i, _)| *i != self.id);
                if list.is_empty() {
                    map.remove(&self.key);
                    if let Some(Some(dirs)) = inner.folders.dirs.get() {
                        dirs.remove(&self.key);
                    }
                }
            }
        }
    }
}

/// The special use a folder's name suggests (RFC 6154), the names clients create.
fn special_use(name: &str) -> Option<&'static str> {
    Some(match name.to_ascii_lowercase().as_str() {
        "sent" | "sent items" | "sent messages" => "\\Sent",
        "drafts" => "\\Drafts",
        "trash" | "deleted items" | "deleted messages" => "\\Trash",
        "junk" | "spam" => "\\Junk",
        "archive" | "archives" => "\\Archive",
        _ => return None,
    })
}

const SUBSCRIPTIONS: &str = "subscriptions";

/// How many recently used folders stay loaded with no handle open (see `Registry::kept`).
const KEEP_LOADED: usize = 16;

impl MailStore {
    /// Opens a folder of `mailbox` (`INBOX` is created on first use, like delivery does).
    pub fn open_folder(&self, mailbox: &Mailbox, name: &str) -> Result<Folder, StoreError> {
        let is_inbox = name.eq_ignore_ascii_case("INBOX");
        let name = if is_inbox { "INBOX" } else { name };
        let dir = self.folder_dir(mailbox, name)?;
        if is_inbox {
            self.create_mailbox(mailbox, &[])?;
        } else if !dir.join("cur").is_dir() {
            return Err(StoreError::NoSuchFolder {
                name: name.to_owned(),
            });
        }
        let mut open = self
            .inner
            .folders
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let shared = match open.get(&dir).and_then(Weak::upgrade) {
            Some(s) => s,
            None => {
                let s = Arc::new(Folder::shared(
                    self,
                    dir.clone(),
                    name.to_owned(),
                    mailbox.clone(),
                ));
                open.retain(|_, w| w.strong_count() > 0);
                open.insert(dir, Arc::downgrade(&s));
                s
            }
        };
        drop(open);
        let mut kept = self
            .inner
            .folders
            .kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        kept.retain(|k| !Arc::ptr_eq(k, &shared));
        kept.push_front(Arc::clone(&shared));
        let evicted = (kept.len() > KEEP_LOADED).then(|| kept.pop_back());
        drop(kept);
        // An evicted index may sync its log as it goes: outside the registry's locks.
        drop(evicted);
        Ok(Folder::new(self.clone(), shared))
    }

    /// The folders of `mailbox`: INBOX first, then by name.
    pub fn folders(&self, mailbox: &Mailbox) -> Result<Vec<FolderInfo>, StoreError> {
        let root = self.mailbox_dir(mailbox);
        let subscribed = self.subscriptions(mailbox);
        let mut names = vec!["INBOX".to_owned()];
        if let Ok(rd) = fs::read_dir(&root) {
            let mut others: Vec<String> = rd
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter_map(|n| n.strip_prefix('.').map(str::to_owned))
                .filter(|n| {
                    !n.is_empty()
                        && self
                            .folder_dir(mailbox, n)
                            .is_ok_and(|d| d.join("cur").is_dir())
                })
                .collect();
            others.sort();
            names.extend(others);
        }
        Ok(names
            .into_iter()
            .map(|name| FolderInfo {
                special_use: special_use(&name),
                subscribed: subscribed.contains(&name),
                name,
            })
            .collect())
    }

    /// Creates a folder (Maildir++: `.<name>` with `cur`, `new`, `tmp` and `maildirfolder`).
    pub fn create_folder(&self, mailbox: &Mailbox, name: &str) -> Result<(), StoreError> {
        let dir = self.folder_dir(mailbox, name)?;
        if name.eq_ignore_ascii_case("INBOX") || dir.exists() {
            return Err(StoreError::FolderExists {
                name: name.to_owned(),
            });
        }
        self.create_mailbox(mailbox, &[name])
    }

    /// Deletes a folder and its messages (RFC 3501 6.3.4); INBOX cannot be deleted.
    pub fn delete_folder(&self, mailbox: &Mailbox, name: &str) -> Result<(), StoreError> {
        if name.eq_ignore_ascii_case("INBOX") {
            return Err(StoreError::InvalidFolder {
                name: name.to_owned(),
                reason: "INBOX cannot be deleted",
            });
        }
        let dir = self.folder_dir(mailbox, name)?;
        if !dir.join("cur").is_dir() {
            return Err(StoreError::NoSuchFolder {
                name: name.to_owned(),
            });
        }
        // Renamed away first, so no one delivers into a half-deleted folder.
        let doomed = dir.with_file_name(format!(".{name}.deleting.{}", std::process::id()));
        self.inner
            .run(FsOp::Rename, &dir, || fs::rename(&dir, &doomed))?;
        self.inner
            .run(FsOp::Remove, &doomed, || fs::remove_dir_all(&doomed))?;
        self.inner.sync_dir(&self.mailbox_dir(mailbox))?;
        self.notify_folder(mailbox, name);
        Ok(())
    }

    /// Renames a folder and the folders below it (RFC 3501 6.3.5). Renaming INBOX moves its
    /// messages into a new folder `to` and leaves INBOX, empty.
    pub fn rename_folder(&self, mailbox: &Mailbox, from: &str, to: &str) -> Result<(), StoreError> {
        let target = self.folder_dir(mailbox, to)?;
        if to.eq_ignore_ascii_case("INBOX") || target.exists() {
            return Err(StoreError::FolderExists {
                name: to.to_owned(),
            });
        }
        if from.eq_ignore_ascii_case("INBOX") {
            self.create_folder(mailbox, to)?;
            let inbox = self.open_folder(mailbox, "INBOX")?;
            let dest = self.open_folder(mailbox, to)?;
            let uids: Vec<u32> = inbox.sync(false)?.messages.iter().map(|m| m.uid).collect();
            inbox.move_to(&uids, &dest)?;
            return Ok(());
        }
        let source = self.folder_dir(mailbox, from)?;
        if !source.join("cur").is_dir() {
            return Err(StoreError::NoSuchFolder {
                name: from.to_owned(),
            });
        }
        let root = self.mailbox_dir(mailbox);
        let prefix = format!("{from}.");
        let mut moves = vec![(from.to_owned(), to.to_owned())];
        if let Ok(rd) = fs::read_dir(&root) {
            for e in rd.flatten() {
                if let Some(child) = e.file_name().to_str().and_then(|n| n.strip_prefix('.'))
                    && let Some(rest) = child.strip_prefix(&prefix)
                {
                    moves.push((child.to_owned(), format!("{to}.{rest}")));
                }
            }
        }
        for (a, b) in &moves {
            let (da, db) = (self.folder_dir(mailbox, a)?, self.folder_dir(mailbox, b)?);
            self.inner.run(FsOp::Rename, &da, || fs::rename(&da, &db))?;
            // Handles on the old name go stale: drop them from the registry.
            let mut open = self
                .inner
                .folders
                .open
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            open.remove(&da);
        }
        self.inner.sync_dir(&root)?;
        for (a, _) in &moves {
            self.notify_folder(mailbox, a);
        }
        Ok(())
    }

    /// Subscribes to a folder (or not): the `subscriptions` file in the mailbox's root, one
    /// name per line, which Dovecot reads too.
    pub fn subscribe(&self, mailbox: &Mailbox, name: &str, on: bool) -> Result<(), StoreError> {
        let name = if name.eq_ignore_ascii_case("INBOX") {
            "INBOX"
        } else {
            name
        };
        self.folder_dir(mailbox, name)?;
        let mut subs = self.subscriptions(mailbox);
        subs.retain(|s| s != name);
        if on {
            subs.push(name.to_owned());
        }
        subs.sort();
        let root = self
            .create_mailbox(mailbox, &[])
            .map(|()| self.mailbox_dir(mailbox))?;
        let text: String = subs.iter().map(|s| format!("{s}\n")).collect();
        let path = root.join(SUBSCRIPTIONS);
        let tmp = root.join(format!(
            ".{SUBSCRIPTIONS}.{}",
            crate::name::unique(self.inner.host())
        ));
        self.inner
            .run(FsOp::Write, &tmp, || fs::write(&tmp, &text))?;
        self.inner
            .run(FsOp::Rename, &path, || fs::rename(&tmp, &path))?;
        self.inner.sync_dir(&root)
    }

    /// The names `mailbox` subscribed to.
    pub fn subscriptions(&self, mailbox: &Mailbox) -> Vec<String> {
        let path = self.mailbox_dir(mailbox).join(SUBSCRIPTIONS);
        let text = fs::read_to_string(path).unwrap_or_default();
        text.lines()
            // Dovecot 2.x writes a version line "V\t2" and may separate levels with tabs.
            .filter(|l| !l.is_empty() && !l.starts_with("V\t"))
            .map(|l| l.replace('\t', "."))
            .collect()
    }

    /// Calls `notify` after every change made to the folder through any [`Folder`] handle of
    /// this store (a STORE, EXPUNGE, APPEND, COPY or MOVE into it), until it returns false or
    /// the [`FolderWatch`] is dropped. Deliveries into INBOX are told by
    /// [`MailStore::watch`](crate::MailStore::watch).
    pub fn watch_folder(
        &self,
        mailbox: &Mailbox,
        folder: &str,
        notify: impl Fn() -> bool + Send + Sync + 'static,
    ) -> FolderWatch {
        let key = (mailbox.clone(), folder_key(folder));
        let id = self.inner.folders.next_id.fetch_add(1, Ordering::Relaxed);
        let mut map = self
            .inner
            .folders
            .watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let list = map.entry(key.clone()).or_default();
        list.push((id, Box::new(notify)));
        if list.len() == 1
            && let Ok(dir) = self.folder_dir(mailbox, &key.1)
            && let Some(dirs) = self
                .inner
                .folders
                .dirs
                .get_or_init(dir_watch::DirWatcher::new)
        {
            dirs.add(&Arc::downgrade(&self.inner), &key, &dir);
        }
        drop(map);
        FolderWatch {
            store: Arc::downgrade(&self.inner),
            key,
            id,
        }
    }

    pub(crate) fn notify_folder(&self, mailbox: &Mailbox, folder: &str) {
        let key = (mailbox.clone(), folder_key(folder));
        let mut map = self
            .inner
            .folders
            .watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(list) = map.get_mut(&key) {
            list.retain(|(_, f)| f());
            if list.is_empty() {
                map.remove(&key);
            }
        }
    }
}

fn folder_key(name: &str) -> String {
    if name.eq_ignore_ascii_case("INBOX") {
        "INBOX".to_owned()
    } else {
        name.to_owned()
    }
}
