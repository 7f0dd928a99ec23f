//! Who wants to hear of new mail in which mailbox.
//!
//! A delivery tells every watcher of each of its mailboxes once the message is durable and
//! visible in `new/`: what IMAP IDLE and the NNTP notifier wait for. Watching costs nothing
//! while no mail comes; nobody blocks a thread on it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use crate::{Inner, MailStore, Mailbox};

/// A message that became visible in a mailbox's `new/`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewMail {
    /// The mailbox it was delivered to.
    pub mailbox: Mailbox,
    /// Its file in the mailbox's `new/`.
    pub path: PathBuf,
    /// Its size in octets.
    pub size: u64,
}

/// What a watcher is called with. It runs on the thread that committed the delivery, so it
/// must be quick and must not block: queue the news and return (a
/// `session_api::Notifier::notify` is made for this). Returning false removes the watcher.
type Callback = Box<dyn Fn(&NewMail) -> bool + Send + Sync>;

/// The watchers of every mailbox.
#[derive(Default)]
pub(crate) struct Watchers {
    next_id: AtomicU64,
    by_mailbox: Mutex<BTreeMap<Mailbox, Vec<(u64, Callback)>>>,
    /// Watchers of every mailbox (the NNTP notifier).
    everywhere: Mutex<Vec<(u64, Callback)>>,
}

impl Watchers {
    fn add(&self, mailbox: Mailbox, callback: Callback) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().entry(mailbox).or_default().push((id, callback));
        id
    }

    fn add_everywhere(&self, callback: Callback) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock_everywhere().push((id, callback));
        id
    }

    fn remove_everywhere(&self, id: u64) {
        self.lock_everywhere().retain(|(i, _)| *i != id);
    }

    fn lock_everywhere(&self) -> std::sync::MutexGuard<'_, Vec<(u64, Callback)>> {
        self.everywhere
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn remove(&self, mailbox: &Mailbox, id: u64) {
        let mut map = self.lock();
        if let Some(list) = map.get_mut(mailbox) {
            list.retain(|(i, _)| *i != id);
            if list.is_empty() {
                map.remove(mailbox);
            }
        }
    }

    /// Tells the watchers of `news.mailbox`; forgets those that say they are gone.
    pub(crate) fn notify(&self, news: &NewMail) {
        {
            let mut map = self.lock();
            if let Some(list) = map.get_mut(&news.mailbox) {
                list.retain(|(_, callback)| callback(news));
                if list.is_empty() {
                    map.remove(&news.mailbox);
                }
            }
        }
        self.lock_everywhere()
            .retain(|(_, callback)| callback(news));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Mailbox, Vec<(u64, Callback)>>> {
        self.by_mailbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for Watchers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watchers")
            .field("mailboxes", &self.lock().len())
            .finish()
    }
}

/// A registered watcher; dropping it stops the watching.
#[derive(Debug)]
#[must_use = "dropping the Watch stops the watching at once"]
pub struct Watch {
    store: Weak<Inner>,
    /// The mailbox watched, or `None` for every mailbox.
    mailbox: Option<Mailbox>,
    id: u64,
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(store) = self.store.upgrade() {
            match &self.mailbox {
                Some(m) => store.watchers.remove(m, self.id),
                None => store.watchers.remove_everywhere(self.id),
            }
        }
    }
}

impl MailStore {
    /// Calls `notify` for every message that becomes visible in `mailbox`'s INBOX from now on,
    /// once it is durable, until `notify` returns false or the [`Watch`] is dropped.
    ///
    /// `notify` runs on the thread that commits the delivery: it must be quick and must not
    /// block.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use mailstore::{MailStore, Mailbox};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = MailStore::open(dir.path())?;
    /// let alice = Mailbox::new("example.com", "alice")?;
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = Arc::clone(&seen);
    /// let watch = store.watch(&alice, move |news| {
    ///     // The message is already in new/ when the watcher hears of it.
    ///     assert!(news.path.exists());
    ///     log.lock().unwrap().push(news.size);
    ///     true
    /// });
    ///
    /// let mut d = store.begin(&[alice.clone()])?;
    /// d.write_all(b"Subject: hi\r\n\r\nhello\r\n")?;
    /// d.commit()?;
    /// assert_eq!(*seen.lock().unwrap(), [22]);
    ///
    /// drop(watch);
    /// let mut d = store.begin(&[alice])?;
    /// d.write_all(b"again\r\n")?;
    /// d.commit()?;
    /// assert_eq!(seen.lock().unwrap().len(), 1, "no longer watched");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn watch(
        &self,
        mailbox: &Mailbox,
        notify: impl Fn(&NewMail) -> bool + Send + Sync + 'static,
    ) -> Watch {
        let id = self.inner.watchers.add(mailbox.clone(), Box::new(notify));
        Watch {
            store: Arc::downgrade(&self.inner),
            mailbox: Some(mailbox.clone()),
            id,
        }
    }

    /// As [`watch`](Self::watch), for every mailbox at once: what the NNTP notifier uses.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use mailstore::{MailStore, Mailbox};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = MailStore::open(dir.path())?;
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = Arc::clone(&seen);
    /// let _watch = store.watch_all(move |news| {
    ///     log.lock().unwrap().push(news.mailbox.to_string());
    ///     true
    /// });
    /// let (alice, bob) = (Mailbox::new("example.com", "alice")?, Mailbox::new("example.com", "bob")?);
    /// let mut d = store.begin(&[alice, bob])?;
    /// d.write_all(b"Subject: hi\r\n\r\nhello\r\n")?;
    /// d.commit()?;
    /// assert_eq!(*seen.lock().unwrap(), ["alice@example.com", "bob@example.com"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn watch_all(&self, notify: impl Fn(&NewMail) -> bool + Send + Sync + 'static) -> Watch {
        let id = self.inner.watchers.add_everywhere(Box::new(notify));
        Watch {
            store: Arc::downgrade(&self.inner),
            mailbox: None,
            id,
        }
    }
}
