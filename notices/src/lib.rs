//! New-mail notices: every message delivered to a mailbox's INBOX yields one news article in
//! that mailbox's own group (`buzon.mail.<domain>.<local>`), which any news reader shows. A
//! notice goes away when its mail is read (`\Seen`), marked `\Deleted` or expunged over IMAP, so
//! a reader's unread count follows the mailbox. Articles are numbered, never renumbered, and
//! kept under the mailbox (`buzon-news/`, see the `book` module), so numbering survives
//! restarts; old ones expire by count and by age.
//!
//! The notices are derived from the INBOX's index, not from delivery events: a
//! [`reconcile`](Notices::reconcile) reads what changed since the last one (by mod-sequence)
//! and brings the group in line. Deliveries only wake the [`watch`](Notices::watch) thread,
//! which reconciles off the delivery path, so mail never waits for the notifier and a notice
//! missed by a crash is made by the next reconcile.
//!
//! ```
//! use mailstore::{MailStore, Mailbox};
//! use notices::{NoticeOptions, Notices};
//!
//! let dir = tempfile::tempdir()?;
//! let store = MailStore::open(dir.path())?;
//! let alice = Mailbox::new("example.com", "alice")?;
//! let mut d = store.begin(&[alice.clone()])?;
//! d.write_all(b"From: bob@example.org\r\nSubject: Lunch\r\n\r\nAt noon?\r\n")?;
//! d.commit()?;
//!
//! let notices = Notices::new(store, NoticeOptions::new("mx.example.com"));
//! let group = notices.group(&alice)?;
//! assert_eq!((group.info.name.as_str(), group.info.count), ("buzon.mail.example-com.alice", 1));
//! let article = &notices.articles(&alice, 1, 1)?[0];
//! assert_eq!(article.header("Subject").as_deref(), Some("New mail from bob@example.org: Lunch"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]

mod book;
mod encode;
mod feed_queue;
mod render;

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, SystemTime};

use mailstore::{MailStore, Mailbox, StoreError};
use nntp_core::{Article, GroupInfo, GroupView};

use book::{Book, unix};
pub use encode::{clean_text, encode_words};
pub use feed_queue::{FeedQueue, Queued};
pub use render::{MailFacts, Origin, Placement, READ_AT_MOST, message_id, notice_article};

/// How notices are made and kept.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NoticeOptions {
    /// The server's name: in `Path`, `Message-ID` and the IMAP URL.
    pub hostname: String,
    /// The IMAP server's host and port, for the URL in each notice; none if IMAP is off.
    pub imap: Option<(String, u16)>,
    /// Notices kept per group; older ones expire first.
    pub keep: usize,
    /// Notices older than this expire.
    pub max_age: Duration,
    /// Flush notices to the device before counting them (off only for tests and for the
    /// `--unsafe-no-fsync` comparison).
    pub fsync: bool,
}

impl NoticeOptions {
    /// Defaults: a thousand notices per group, thirty days, flushed.
    pub fn new(hostname: impl Into<String>) -> Self {
        NoticeOptions {
            hostname: hostname.into(),
            imap: None,
            keep: 1000,
            max_age: Duration::from_secs(30 * 24 * 3600),
            fsync: true,
        }
    }
}

/// Why notices could not be read or brought up to date.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NoticeError {
    /// The mail store failed (reading the INBOX's index or a message).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The notices' own files failed.
    #[error("notices of {mailbox}: {source}")]
    Io {
        /// Whose.
        mailbox: String,
        /// What failed.
        source: io::Error,
    },
}

/// A notice just made: what the external feed posts.
#[derive(Debug, Clone)]
pub struct Posted {
    /// Whose.
    pub mailbox: Mailbox,
    /// Its group.
    pub group: String,
    /// The article.
    pub article: Arc<Article>,
}

/// What one reconcile did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// Numbers of the notices made.
    pub added: Vec<u64>,
    /// How many were withdrawn (mail read or deleted) or expired.
    pub removed: usize,
}

type Listener = Box<dyn Fn(&Posted) -> io::Result<()> + Send + Sync>;

/// Every mailbox's notices.
pub struct Notices {
    store: MailStore,
    options: NoticeOptions,
    books: Mutex<HashMap<Mailbox, Arc<Mutex<Book>>>>,
    listeners: Mutex<Vec<Listener>>,
}

impl std::fmt::Debug for Notices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notices")
            .field("hostname", &self.options.hostname)
            .finish_non_exhaustive()
    }
}

/// The group of `mailbox`'s notices.
///
/// ```
/// let m = mailstore::Mailbox::new("example.com", "alice").unwrap();
/// assert_eq!(notices::group_of(&m), "buzon.mail.example-com.alice");
/// ```
pub fn group_of(mailbox: &Mailbox) -> String {
    nntp_core::notice_group(mailbox.domain(), mailbox.local())
}

impl Notices {
    /// Notices over `store`.
    pub fn new(store: MailStore, options: NoticeOptions) -> Arc<Notices> {
        Arc::new(Notices {
            store,
            options,
            books: Mutex::new(HashMap::new()),
            listeners: Mutex::new(Vec::new()),
        })
    }

    /// How notices are made here.
    pub fn options(&self) -> &NoticeOptions {
        &self.options
    }

    /// Calls `f` for every notice made from now on, before it is stored (from the thread that
    /// makes it). An error from `f` stops the reconcile before the notice is stored, so it is
    /// tried again later: what `f` keeps durably (the external feed's queue) never misses a
    /// notice. After a crash between the two, the same notice (same number and message-id) is
    /// offered again, so `f` must take a repeat as the same notice.
    pub fn on_made(&self, f: impl Fn(&Posted) -> io::Result<()> + Send + Sync + 'static) {
        self.listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Box::new(f));
    }

    fn book(&self, mailbox: &Mailbox) -> Result<Arc<Mutex<Book>>, NoticeError> {
        let mut books = self.books.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(b) = books.get(mailbox) {
            return Ok(Arc::clone(b));
        }
        let dir = self.store.mailbox_dir(mailbox).join("buzon-news");
        let book = Book::open(dir, self.options.fsync, unix(SystemTime::now()))
            .map_err(|e| io_error(mailbox, e))?;
        let book = Arc::new(Mutex::new(book));
        books.insert(mailbox.clone(), Arc::clone(&book));
        Ok(book)
    }

    /// Brings `mailbox`'s group in line with its INBOX: a notice for each message that
    /// arrived since the last reconcile and is neither `\Seen` nor `\Deleted`, none any more
    /// for those read, deleted or expunged since, and the expired ones gone.
    pub fn reconcile(&self, mailbox: &Mailbox) -> Result<Reconciled, NoticeError> {
        let book = self.book(mailbox)?;
        let mut book = book.lock().unwrap_or_else(PoisonError::into_inner);
        let folder = self.store.open_folder(mailbox, "INBOX")?;
        let mut done = Reconciled::default();
        let mut since = book.modseq;
        let changes = folder.changes_since(since)?;
        if changes.uid_validity != book.uid_validity {
            // A new INBOX (or the first look at it): the old notices name messages that are
            // no longer there, and every message is new to this book.
            if book.uid_validity != 0 {
                let numbers: Vec<u64> = book.entries.keys().copied().collect();
                for n in numbers {
                    done.removed +=
                        usize::from(book.withdraw(n).map_err(|e| io_error(mailbox, e))?);
                }
            }
            book.uid_validity = changes.uid_validity;
            book.last_uid = 0;
            since = 0;
        }
        let changes = if since == book.modseq {
            changes
        } else {
            folder.changes_since(since)?
        };
        let now = unix(SystemTime::now());
        let oldest = now.saturating_sub(self.options.max_age.as_secs() as i64);
        let mut fresh = Vec::new();
        for m in &changes.changed {
            let wanted = !m.flags.seen && !m.flags.deleted;
            if m.uid > book.last_uid {
                if wanted && unix(m.internal_date) >= oldest {
                    fresh.push(m.clone());
                } else {
                    book.last_uid = m.uid;
                }
            } else if !wanted && let Some(n) = book.number_of(m.uid) {
                done.removed += usize::from(book.withdraw(n).map_err(|e| io_error(mailbox, e))?);
            }
        }
        for uid in &changes.vanished {
            if let Some(n) = book.number_of(*uid) {
                done.removed += usize::from(book.withdraw(n).map_err(|e| io_error(mailbox, e))?);
            }
        }
        // Only the newest `keep` can stay: the others would expire at once.
        fresh.sort_by_key(|m| m.uid);
        let skip = fresh.len().saturating_sub(self.options.keep);
        let group = group_of(mailbox);
        let user = mailbox.to_string();
        for m in &fresh[skip..] {
            let head = match read_head(&folder, m.uid) {
                Ok(h) => h,
                // Expunged since the index was read: the next reconcile sees it gone.
                Err(NoticeError::Store(e)) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            };
            let facts = MailFacts::read(&head, &self.options.hostname);
            let origin = Origin {
                user: &user,
                folder: "INBOX",
                uid_validity: changes.uid_validity,
                uid: m.uid,
                size: m.size,
                imap: self.options.imap.as_ref().map(|(h, p)| (h.as_str(), *p)),
            };
            let number = book.next;
            let text = notice_article(
                &facts,
                &origin,
                &Placement {
                    group: &group,
                    number,
                    hostname: &self.options.hostname,
                    arrived: now,
                },
            );
            let made = Posted {
                mailbox: mailbox.clone(),
                group: group.clone(),
                article: Arc::new(Article::new(number, text)),
            };
            for l in self
                .listeners
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
            {
                l(&made).map_err(|e| io_error(mailbox, e))?;
            }
            book.add(changes.uid_validity, m.uid, now, &made.article)
                .map_err(|e| io_error(mailbox, e))?;
            done.added.push(number);
        }
        if let Some(last) = fresh.last() {
            book.last_uid = book.last_uid.max(last.uid);
        }
        done.removed += self
            .expire(&mut book, now)
            .map_err(|e| io_error(mailbox, e))?;
        book.modseq = changes.highest_modseq;
        if !done.added.is_empty() || done.removed > 0 || !book.exists() || since != book.modseq {
            book.save().map_err(|e| io_error(mailbox, e))?;
        }
        Ok(done)
    }

    /// Removes the notices beyond the count limit and those past the age limit.
    fn expire(&self, book: &mut Book, now: i64) -> io::Result<usize> {
        let oldest = now.saturating_sub(self.options.max_age.as_secs() as i64);
        let excess = book.entries.len().saturating_sub(self.options.keep);
        let doomed: Vec<u64> = book
            .entries
            .iter()
            .enumerate()
            .filter(|(i, (_, e))| *i < excess || e.made < oldest)
            .map(|(_, (n, _))| *n)
            .collect();
        let mut removed = 0;
        for n in doomed {
            removed += usize::from(book.withdraw(n)?);
        }
        Ok(removed)
    }

    /// `mailbox`'s group, brought up to date first, with its article numbers.
    pub fn group(&self, mailbox: &Mailbox) -> Result<GroupView, NoticeError> {
        self.reconcile(mailbox)?;
        let book = self.book(mailbox)?;
        let book = book.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(GroupView {
            info: GroupInfo {
                name: group_of(mailbox),
                low: book.low(),
                high: book.high(),
                count: book.entries.len() as u64,
                created: book.created,
                creator: self.options.hostname.clone(),
                description: format!("New mail for {mailbox}"),
            },
            numbers: book.entries.keys().copied().collect(),
        })
    }

    /// The notices of `mailbox` numbered `first..=last`, ascending.
    pub fn articles(
        &self,
        mailbox: &Mailbox,
        first: u64,
        last: u64,
    ) -> Result<Vec<Arc<Article>>, NoticeError> {
        let book = self.book(mailbox)?;
        let mut book = book.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = Vec::new();
        let numbers: Vec<u64> = book.entries.range(first..=last).map(|(n, _)| *n).collect();
        for n in numbers {
            if let Some(a) = book.article(n).map_err(|e| io_error(mailbox, e))? {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// The notice of `mailbox` with message-id `id`, if there is one. The number is read from
    /// the id (`<n.group@host>`), then the article's own id is checked.
    pub fn by_message_id(
        &self,
        mailbox: &Mailbox,
        id: &str,
    ) -> Result<Option<Arc<Article>>, NoticeError> {
        let Some(n) = number_in_id(&group_of(mailbox), id) else {
            return Ok(None);
        };
        Ok(self
            .articles(mailbox, n, n)?
            .into_iter()
            .find(|a| a.message_id().as_deref() == Some(id)))
    }

    /// As [`articles`](Self::articles), but only if it can be answered at once from memory:
    /// `None` when an article is not in memory yet or the group is busy (being brought up to
    /// date). For a host that answers on its event loop and sends the rest off it.
    pub fn articles_now(
        &self,
        mailbox: &Mailbox,
        first: u64,
        last: u64,
    ) -> Option<Vec<Arc<Article>>> {
        let book = self.books.try_lock().ok()?.get(mailbox).cloned()?;
        let book = book.try_lock().ok()?;
        book.cached(first, last)
    }

    /// As [`by_message_id`](Self::by_message_id), from memory only (see
    /// [`articles_now`](Self::articles_now)); `Some(None)` when there is no such notice.
    pub fn by_message_id_now(&self, mailbox: &Mailbox, id: &str) -> Option<Option<Arc<Article>>> {
        let Some(n) = number_in_id(&group_of(mailbox), id) else {
            return Some(None);
        };
        let found = self.articles_now(mailbox, n, n)?;
        Some(
            found
                .into_iter()
                .find(|a| a.message_id().as_deref() == Some(id)),
        )
    }

    /// Message-ids of `mailbox`'s notices made at or after `since` (Unix seconds).
    pub fn made_since(&self, mailbox: &Mailbox, since: i64) -> Result<Vec<String>, NoticeError> {
        let numbers: Vec<u64> = {
            let book = self.book(mailbox)?;
            let book = book.lock().unwrap_or_else(PoisonError::into_inner);
            book.entries
                .iter()
                .filter(|(_, e)| e.made >= since)
                .map(|(n, _)| *n)
                .collect()
        };
        let mut ids = Vec::new();
        for n in numbers {
            ids.extend(
                self.articles(mailbox, n, n)?
                    .first()
                    .and_then(|a| a.message_id()),
            );
        }
        Ok(ids)
    }

    /// Starts the notifier: a thread that reconciles every mailbox once (catching up on what
    /// arrived while buzon was stopped), then each mailbox a delivery touches. Deliveries only
    /// queue the mailbox's name, so they never wait for it; a failed reconcile is logged and
    /// tried again at the next delivery or read. Stops when the returned handle is dropped.
    pub fn watch(self: &Arc<Self>) -> io::Result<Watching> {
        let (tx, rx) = mpsc::channel::<Mailbox>();
        let watch = self.store.watch_all(move |news| {
            // The receiver is gone once the thread has stopped: then stop watching.
            tx.send(news.mailbox.clone()).is_ok()
        });
        let me = Arc::clone(self);
        let thread = std::thread::Builder::new()
            .name("buzon-notices".into())
            .spawn(move || {
                match me.store.mailboxes() {
                    Ok(all) => {
                        for m in all {
                            me.reconcile_logged(&m);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "notices: cannot list the mailboxes"),
                }
                while let Ok(first) = rx.recv() {
                    // A burst of deliveries to one mailbox costs one reconcile.
                    let mut due = vec![first];
                    while let Ok(m) = rx.try_recv() {
                        if !due.contains(&m) {
                            due.push(m);
                        }
                    }
                    for m in due {
                        me.reconcile_logged(&m);
                    }
                }
            })?;
        Ok(Watching {
            _watch: watch,
            _thread: thread,
        })
    }

    fn reconcile_logged(&self, mailbox: &Mailbox) {
        match self.reconcile(mailbox) {
            Ok(r) if !r.added.is_empty() || r.removed > 0 => {
                tracing::debug!(%mailbox, added = r.added.len(), removed = r.removed, "notices updated");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(%mailbox, error = %e, "notices: cannot update; will retry"),
        }
    }
}

/// The running notifier; dropping it stops the watching (the thread ends after its current
/// reconcile).
#[derive(Debug)]
pub struct Watching {
    _watch: mailstore::Watch,
    _thread: std::thread::JoinHandle<()>,
}

/// The article number in a notice's message-id (`<n.group@host>`), if the id is of `group`.
fn number_in_id(group: &str, id: &str) -> Option<u64> {
    id.strip_prefix('<')
        .and_then(|rest| rest.split_once('.'))
        .filter(|(_, rest)| rest.strip_prefix(group).is_some_and(|r| r.starts_with('@')))
        .and_then(|(n, _)| n.parse::<u64>().ok())
}

fn io_error(mailbox: &Mailbox, source: io::Error) -> NoticeError {
    NoticeError::Io {
        mailbox: mailbox.to_string(),
        source,
    }
}

/// The start of message `uid`: enough to write its notice.
fn read_head(folder: &mailstore::Folder, uid: u32) -> Result<Vec<u8>, NoticeError> {
    let file = folder.open_message(uid)?;
    let mut buf = vec![0; (file.len() as usize).min(READ_AT_MOST)];
    let mut got = 0;
    while got < buf.len() {
        let n = file
            .read_at(got as u64, &mut buf[got..])
            .map_err(|source| NoticeError::Io {
                mailbox: format!("message {uid}"),
                source,
            })?;
        if n == 0 {
            break;
        }
        got += n;
    }
    buf.truncate(got);
    Ok(buf)
}
