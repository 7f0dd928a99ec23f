//! Hears other programs change a watched folder: a local delivery agent dropping mail into
//! `new/`, mutt or Dovecot renaming files in `cur/`, a second `buzon serve` on the same tree.
//! Changes made through this store are told to watchers directly; this covers the rest.
//!
//! On Linux, one inotify descriptor per store and one thread that blocks on it, only while
//! some folder is watched. Elsewhere, or when the kernel refuses more watches
//! (`fs.inotify.max_user_watches`), nothing is heard here and IMAP's IDLE poll finds such
//! changes within its interval.

use crate::Mailbox;

/// The folder a watch is for: (mailbox, folder key), as in the registry.
pub(crate) type Key = (Mailbox, String);

#[cfg(target_os = "linux")]
mod imp {
    use std::collections::BTreeMap;
    use std::mem::MaybeUninit;
    use std::os::fd::OwnedFd;
    use std::path::Path;
    use std::sync::{Arc, Mutex, PoisonError, Weak};

    use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};

    use super::Key;
    use crate::{Inner, MailStore};

    #[derive(Default)]
    struct Watches {
        by_wd: BTreeMap<i32, Key>,
        by_key: BTreeMap<Key, Vec<i32>>,
        reading: bool,
    }

    /// The store's inotify descriptor and what each watch is for.
    pub(crate) struct DirWatcher {
        fd: Arc<OwnedFd>,
        watches: Mutex<Watches>,
    }

    impl DirWatcher {
        pub(crate) fn new() -> Option<Arc<DirWatcher>> {
            match inotify::init(CreateFlags::CLOEXEC) {
                Ok(fd) => Some(Arc::new(DirWatcher {
                    fd: Arc::new(fd),
                    watches: Mutex::new(Watches::default()),
                })),
                Err(e) => {
                    tracing::info!(error = %e, "no inotify: other programs' changes are found by polling");
                    None
                }
            }
        }

        fn lock(&self) -> std::sync::MutexGuard<'_, Watches> {
            self.watches.lock().unwrap_or_else(PoisonError::into_inner)
        }

        /// Watches `dir`'s `new/` and `cur/` for `key` (a no-op if already watched).
        pub(crate) fn add(self: &Arc<Self>, store: &Weak<Inner>, key: &Key, dir: &Path) {
            let mut w = self.lock();
            if w.by_key.contains_key(key) {
                return;
            }
            let flags = WatchFlags::CREATE
                | WatchFlags::MOVED_TO
                | WatchFlags::MOVED_FROM
                | WatchFlags::DELETE
                | WatchFlags::ONLYDIR;
            let mut wds = Vec::new();
            for sub in ["new", "cur"] {
                match inotify::add_watch(&*self.fd, dir.join(sub), flags) {
                    Ok(wd) => wds.push(wd),
                    Err(e) => {
                        tracing::debug!(error = %e, dir = %dir.display(), "inotify watch refused; polling finds changes");
                    }
                }
            }
            for wd in &wds {
                w.by_wd.insert(*wd, key.clone());
            }
            w.by_key.insert(key.clone(), wds);
            if !w.reading && !w.by_wd.is_empty() {
                w.reading = true;
                let me = Arc::downgrade(self);
                let fd = Arc::clone(&self.fd);
                let store = store.clone();
                let spawned = std::thread::Builder::new()
                    .name("buzon-inotify".into())
                    .spawn(move || read_loop(&fd, &me, &store));
                if spawned.is_err() {
                    w.reading = false;
                }
            }
        }

        /// Stops watching `key`'s directories.
        pub(crate) fn remove(&self, key: &Key) {
            let mut w = self.lock();
            for wd in w.by_key.remove(key).unwrap_or_default() {
                w.by_wd.remove(&wd);
                // The kernel answers with IN_IGNORED, which wakes the reader to see if it
                // should stop.
                let _ = inotify::remove_watch(&*self.fd, wd);
            }
        }
    }

    impl Drop for DirWatcher {
        /// The store is gone: removing the watches wakes the reader, which then stops.
        fn drop(&mut self) {
            let w = self
                .watches
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner);
            for wd in w.by_wd.keys() {
                let _ = inotify::remove_watch(&*self.fd, *wd);
            }
        }
    }

    /// The reader thread: blocks on the descriptor and wakes the watchers of each folder
    /// that had events, once per burst. It stops when nothing is watched any more, or the
    /// store or its watcher is gone.
    fn read_loop(fd: &OwnedFd, watcher: &Weak<DirWatcher>, store: &Weak<Inner>) {
        let mut buf = [MaybeUninit::uninit(); 4096];
        let mut reader = inotify::Reader::new(fd, &mut buf);
        loop {
            let mut wds = Vec::new();
            let failed = loop {
                match reader.next() {
                    Ok(ev) => {
                        if !ev.events().contains(ReadFlags::IGNORED) {
                            wds.push(ev.wd());
                        }
                    }
                    Err(e) if e == rustix::io::Errno::INTR => continue,
                    Err(e) => break Some(e),
                }
                if reader.is_buffer_empty() {
                    break None;
                }
            };
            let Some(me) = watcher.upgrade() else {
                return;
            };
            let keys: Vec<Key> = {
                let mut w = me.lock();
                if failed.is_some() || w.by_wd.is_empty() {
                    w.reading = false;
                    if let Some(e) = failed {
                        tracing::warn!(error = %e, "inotify read failed; polling finds changes");
                    }
                    return;
                }
                let mut keys: Vec<Key> = wds
                    .iter()
                    .filter_map(|wd| w.by_wd.get(wd).cloned())
                    .collect();
                keys.sort();
                keys.dedup();
                keys
            };
            drop(me);
            let Some(inner) = store.upgrade() else {
                return;
            };
            let store = MailStore { inner };
            for (mailbox, folder) in keys {
                store.notify_folder(&mailbox, &folder);
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::path::Path;
    use std::sync::{Arc, Weak};

    use super::Key;
    use crate::Inner;

    /// Without inotify, nothing here; the IDLE poll finds other programs' changes.
    pub(crate) struct DirWatcher;

    impl DirWatcher {
        pub(crate) fn new() -> Option<Arc<DirWatcher>> {
            None
        }
        pub(crate) fn add(self: &Arc<Self>, _: &Weak<Inner>, _: &Key, _: &Path) {}
        pub(crate) fn remove(&self, _: &Key) {}
    }
}

pub(crate) use imp::DirWatcher;
