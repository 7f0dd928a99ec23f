//! An IMAP host kept in memory: users, mailboxes and messages, answering every [`Request`] the
//! way a Maildir host does. It drives transcript replays and serves as the reference model
//! for property tests; several sessions may share one [`MemoryStore`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use crate::event::{
    Answer, Changes, Event, FlagChange, Flags, MailboxEntry, MessageInfo, Request, SelectedMailbox,
    StatusInfo,
};
use crate::fetch::MessageSource;
use crate::session::{FetchProgress, ServerSession};

/// One stored message.
#[derive(Debug, Clone)]
struct Stored {
    info: MessageInfo,
    bytes: Vec<u8>,
}

/// One mailbox.
#[derive(Debug, Clone)]
struct Folder {
    uid_validity: u32,
    uid_next: u32,
    modseq: u64,
    messages: Vec<Stored>,
    /// (uid, modseq at which it vanished).
    expunged: Vec<(u32, u64)>,
    /// UIDs not yet shown to any session as `\Recent`.
    unclaimed: BTreeSet<u32>,
}

impl Folder {
    fn new(uid_validity: u32) -> Self {
        Folder {
            uid_validity,
            uid_next: 1,
            modseq: 1,
            messages: Vec::new(),
            expunged: Vec::new(),
            unclaimed: BTreeSet::new(),
        }
    }

    fn add(&mut self, bytes: Vec<u8>, flags: Flags, date: i64) -> u32 {
        let uid = self.uid_next;
        self.uid_next += 1;
        self.modseq += 1;
        self.unclaimed.insert(uid);
        self.messages.push(Stored {
            info: MessageInfo {
                uid,
                modseq: self.modseq,
                flags,
                size: bytes.len() as u64,
                internal_date: date,
            },
            bytes,
        });
        uid
    }

    fn status(&self) -> StatusInfo {
        StatusInfo {
            messages: self.messages.len() as u32,
            recent: self.unclaimed.len() as u32,
            uid_next: self.uid_next,
            uid_validity: self.uid_validity,
            unseen: self.messages.iter().filter(|m| !m.info.flags.seen).count() as u32,
            highest_modseq: self.modseq,
            size: self.messages.iter().map(|m| m.info.size).sum(),
        }
    }
}

#[derive(Debug, Default)]
struct User {
    password: Vec<u8>,
    folders: BTreeMap<String, Folder>,
    subscribed: BTreeSet<String>,
}

#[derive(Debug, Default)]
struct Inner {
    users: BTreeMap<String, User>,
    next_validity: u32,
}

/// Users and their mailboxes, shared by the sessions of a test.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a user with an INBOX.
    pub fn add_user(&self, user: &str, password: &str) {
        let mut inner = self.lock();
        inner.next_validity += 1;
        let v = 1000 + inner.next_validity;
        let mut u = User {
            password: password.as_bytes().to_vec(),
            ..User::default()
        };
        u.folders.insert("INBOX".into(), Folder::new(v));
        u.subscribed.insert("INBOX".into());
        inner.users.insert(user.into(), u);
    }

    /// Creates a mailbox; false if it exists or the user does not.
    pub fn create(&self, user: &str, name: &str) -> bool {
        let mut inner = self.lock();
        inner.next_validity += 1;
        let v = 1000 + inner.next_validity;
        match inner.users.get_mut(user) {
            Some(u) if !u.folders.contains_key(name) => {
                u.folders.insert(name.into(), Folder::new(v));
                true
            }
            _ => false,
        }
    }

    /// Delivers a message (as SMTP would); returns its UID.
    pub fn deliver(&self, user: &str, mailbox: &str, bytes: &[u8], flags: Flags) -> Option<u32> {
        self.with_folder(user, mailbox, |f| {
            f.add(bytes.to_vec(), flags, 1_700_000_000)
        })
    }

    /// Runs `f` on a user's mailbox, if both exist.
    fn with_folder<T>(
        &self,
        user: &str,
        mailbox: &str,
        f: impl FnOnce(&mut Folder) -> T,
    ) -> Option<T> {
        let mut inner = self.lock();
        inner
            .users
            .get_mut(user)
            .and_then(|u| u.folders.get_mut(mailbox))
            .map(f)
    }

    /// Another session's STORE: message `uid` gets exactly `flags` and a new mod-sequence.
    pub fn set_flags(&self, user: &str, mailbox: &str, uid: u32, flags: Flags) -> bool {
        self.with_folder(user, mailbox, |f| {
            let Some(m) = f.messages.iter_mut().find(|m| m.info.uid == uid) else {
                return false;
            };
            f.modseq += 1;
            m.info.flags = flags;
            m.info.modseq = f.modseq;
            true
        })
        .unwrap_or(false)
    }

    /// Another session's EXPUNGE of message `uid`.
    pub fn expunge(&self, user: &str, mailbox: &str, uid: u32) -> bool {
        self.with_folder(user, mailbox, |f| {
            let before = f.messages.len();
            f.messages.retain(|m| m.info.uid != uid);
            if f.messages.len() == before {
                return false;
            }
            f.modseq += 1;
            f.expunged.push((uid, f.modseq));
            f.unclaimed.remove(&uid);
            true
        })
        .unwrap_or(false)
    }

    /// The mailbox's messages as (uid, flags), for assertions.
    pub fn messages(&self, user: &str, mailbox: &str) -> Vec<(u32, Flags)> {
        let inner = self.lock();
        inner
            .users
            .get(user)
            .and_then(|u| u.folders.get(mailbox))
            .map(|f| {
                f.messages
                    .iter()
                    .map(|m| (m.info.uid, m.info.flags.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The changes after `since` in a mailbox. With `claim` (a read-write session), messages
    /// no session has seen yet become its `\Recent`, as the Maildir host does.
    pub fn changes(&self, user: &str, mailbox: &str, since: u64, claim: bool) -> Changes {
        self.with_folder(user, mailbox, |f| Changes {
            recent: if claim {
                std::mem::take(&mut f.unclaimed).into_iter().collect()
            } else {
                Vec::new()
            },
            changed: f
                .messages
                .iter()
                .filter(|m| m.info.modseq > since)
                .map(|m| m.info.clone())
                .collect(),
            vanished: f
                .expunged
                .iter()
                .filter(|(_, m)| *m > since)
                .map(|(u, _)| *u)
                .collect(),
            uid_next: f.uid_next,
            highest_modseq: f.modseq,
        })
        .unwrap_or_default()
    }
}

/// One connection's host over a [`MemoryStore`].
#[derive(Debug)]
pub struct MemoryHost {
    store: MemoryStore,
    user: Option<String>,
    pending_user: Option<String>,
    selected: Option<String>,
    read_only: bool,
    append: Option<(String, Flags, Option<i64>, Vec<u8>)>,
}

impl MemoryHost {
    /// A host for one connection.
    pub fn new(store: MemoryStore) -> Self {
        MemoryHost {
            store,
            user: None,
            pending_user: None,
            selected: None,
            read_only: false,
            append: None,
        }
    }

    /// The store this host serves.
    pub fn store(&self) -> &MemoryStore {
        &self.store
    }

    /// The user logged in, if any.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The selected mailbox's changes after the session's sync point (what a notice makes a
    /// real host compute), to hand to [`ServerSession::handle_changes`].
    pub fn changes_for(&self, session: &ServerSession) -> Option<Changes> {
        let since = session.synced_modseq()?;
        Some(self.store.changes(
            self.user.as_deref()?,
            self.selected.as_deref()?,
            since,
            !self.read_only,
        ))
    }

    /// Answers every pending event of `session`; returns a description of each for a log.
    pub fn answer_all(
        &mut self,
        session: &mut ServerSession,
        now: std::time::Instant,
    ) -> Vec<String> {
        let mut log = Vec::new();
        while let Some(event) = session_api::Session::poll_event(session) {
            log.push(describe(&event));
            self.handle(session, event, now);
        }
        log
    }

    fn handle(&mut self, session: &mut ServerSession, event: Event, now: std::time::Instant) {
        match event {
            Event::Request { ticket, request } => {
                if let Request::Fetch(mut job) = request {
                    let (user, mailbox) = (
                        self.user.clone().unwrap_or_default(),
                        self.selected.clone().unwrap_or_default(),
                    );
                    let seen = job.uids_to_mark_seen();
                    if !seen.is_empty() {
                        let flags = Flags {
                            seen: true,
                            ..Flags::default()
                        };
                        for info in self
                            .store_flags(&user, &mailbox, &seen, FlagChange::Add, &flags, None)
                            .0
                        {
                            job.update_flags(&info);
                        }
                    }
                    if let Some(since) = job.vanished_since() {
                        job.set_vanished(
                            self.store.changes(&user, &mailbox, since, false).vanished,
                        );
                    }
                    let mut out = Vec::new();
                    let mut source = Source {
                        store: self.store.clone(),
                        user,
                        mailbox,
                    };
                    job.fill(&mut source, &mut out, usize::MAX);
                    session.fetch_progress(ticket, FetchProgress { output: out, job }, now);
                    return;
                }
                if let Request::Sync = request {
                    let changes = self.changes_for(session).unwrap_or_default();
                    session.answer(ticket, Answer::Changes(changes), now);
                    return;
                }
                let answer = self.request(request);
                session.answer(ticket, answer, now);
            }
            Event::AppendData(bytes) => {
                if let Some(a) = &mut self.append {
                    a.3.extend_from_slice(&bytes);
                }
            }
            Event::AppendAborted => self.append = None,
            Event::Deselected => self.selected = None,
            Event::Violation(_) => {}
        }
    }

    fn with_user<T>(&self, f: impl FnOnce(&mut User) -> T) -> Option<T> {
        let mut inner = self.store.lock();
        inner.users.get_mut(self.user.as_deref()?).map(f)
    }

    fn store_flags(
        &self,
        user: &str,
        mailbox: &str,
        uids: &[u32],
        op: FlagChange,
        flags: &Flags,
        unchanged_since: Option<u64>,
    ) -> (Vec<MessageInfo>, Vec<u32>) {
        let mut inner = self.store.lock();
        let Some(f) = inner
            .users
            .get_mut(user)
            .and_then(|u| u.folders.get_mut(mailbox))
        else {
            return (Vec::new(), Vec::new());
        };
        let (mut updated, mut modified) = (Vec::new(), Vec::new());
        for m in &mut f.messages {
            if !uids.contains(&m.info.uid) {
                continue;
            }
            if unchanged_since.is_some_and(|u| m.info.modseq > u) {
                modified.push(m.info.uid);
                continue;
            }
            let new = apply_flags(&m.info.flags, op, flags);
            if new != m.info.flags {
                f.modseq += 1;
                m.info.flags = new;
                m.info.modseq = f.modseq;
            }
            updated.push(m.info.clone());
        }
        (updated, modified)
    }

    fn request(&mut self, request: Request) -> Answer {
        let no = |code: &str, text: &str| Answer::no(Some(code), text);
        match request {
            Request::Login(c) => {
                let ok = self
                    .store
                    .lock()
                    .users
                    .get(&c.user)
                    .is_some_and(|u| u.password == c.password.expose());
                if ok {
                    self.user = Some(c.user);
                    Answer::LoggedIn
                } else {
                    self.pending_user = None;
                    Answer::LoginRefused
                }
            }
            Request::Select {
                mailbox,
                read_only,
                vanished_since,
            } => {
                let r = self.with_user(|u| {
                    let f = u.folders.get_mut(&mailbox)?;
                    let recent: Vec<u32> = if read_only {
                        Vec::new()
                    } else {
                        std::mem::take(&mut f.unclaimed).into_iter().collect()
                    };
                    let keywords: BTreeSet<String> = f
                        .messages
                        .iter()
                        .flat_map(|m| m.info.flags.keywords.clone())
                        .collect();
                    Some(SelectedMailbox {
                        uid_validity: f.uid_validity,
                        uid_next: f.uid_next,
                        highest_modseq: f.modseq,
                        messages: f.messages.iter().map(|m| m.info.clone()).collect(),
                        recent,
                        keywords: keywords.into_iter().collect(),
                        writable: true,
                        vanished: vanished_since
                            .map(|s| {
                                f.expunged
                                    .iter()
                                    .filter(|(_, m)| *m > s)
                                    .map(|(u, _)| *u)
                                    .collect()
                            })
                            .unwrap_or_default(),
                    })
                });
                match r.flatten() {
                    Some(m) => {
                        self.selected = Some(mailbox);
                        self.read_only = read_only;
                        Answer::Selected(Box::new(m))
                    }
                    None => no("NONEXISTENT", "No such mailbox"),
                }
            }
            Request::Create(name) => {
                let user = self.user.clone().unwrap_or_default();
                if self.store.create(&user, &name) {
                    Answer::Done
                } else {
                    no("ALREADYEXISTS", "Mailbox exists")
                }
            }
            Request::Delete(name) => match self.with_user(|u| u.folders.remove(&name)).flatten() {
                Some(_) => Answer::Done,
                None => no("NONEXISTENT", "No such mailbox"),
            },
            Request::Rename { from, to } => {
                let r = self.with_user(|u| {
                    if u.folders.contains_key(&to) {
                        return Err("ALREADYEXISTS");
                    }
                    if from == "INBOX" {
                        // RFC 3501 6.3.5: the messages move, INBOX stays, empty.
                        let inbox = u.folders.get_mut("INBOX").ok_or("NONEXISTENT")?;
                        let mut moved = Folder::new(inbox.uid_validity + 7919);
                        for m in std::mem::take(&mut inbox.messages) {
                            moved.add(m.bytes, m.info.flags, m.info.internal_date);
                        }
                        u.folders.insert(to.clone(), moved);
                        return Ok(());
                    }
                    let f = u.folders.remove(&from).ok_or("NONEXISTENT")?;
                    u.folders.insert(to.clone(), f);
                    Ok(())
                });
                match r {
                    Some(Ok(())) => Answer::Done,
                    Some(Err(code)) => no(code, "Cannot rename"),
                    None => no("NONEXISTENT", "No such mailbox"),
                }
            }
            Request::Subscribe(name, on) => {
                self.with_user(|u| {
                    if on {
                        u.subscribed.insert(name);
                    } else {
                        u.subscribed.remove(&name);
                    }
                });
                Answer::Done
            }
            Request::List { status } => {
                let entries = self
                    .with_user(|u| {
                        let mut names: BTreeSet<String> = u.folders.keys().cloned().collect();
                        names.extend(u.subscribed.iter().cloned());
                        let mut v: Vec<MailboxEntry> = names
                            .into_iter()
                            .map(|name| MailboxEntry {
                                special_use: special_use(&name),
                                subscribed: u.subscribed.contains(&name),
                                exists: u.folders.contains_key(&name),
                                status: status
                                    .as_ref()
                                    .and_then(|_| u.folders.get(&name).map(Folder::status)),
                                name,
                            })
                            .collect();
                        // INBOX first, as clients expect.
                        v.sort_by_key(|e| (e.name != "INBOX", e.name.clone()));
                        v
                    })
                    .unwrap_or_default();
                Answer::Mailboxes(entries)
            }
            Request::Status(name) => match self
                .with_user(|u| u.folders.get(&name).map(Folder::status))
                .flatten()
            {
                Some(s) => Answer::Status(s),
                None => no("NONEXISTENT", "No such mailbox"),
            },
            Request::AppendStart {
                mailbox,
                flags,
                date,
                ..
            } => {
                if self.with_user(|u| u.folders.contains_key(&mailbox)) != Some(true) {
                    return no("TRYCREATE", "No such mailbox");
                }
                self.append = Some((mailbox, flags, date, Vec::new()));
                Answer::Done
            }
            Request::AppendEnd => {
                let Some((mailbox, flags, date, bytes)) = self.append.take() else {
                    return no("SERVERBUG", "No APPEND in progress");
                };
                let r = self.with_user(|u| {
                    let f = u.folders.get_mut(&mailbox)?;
                    Some((
                        f.uid_validity,
                        f.add(bytes, flags, date.unwrap_or(1_700_000_000)),
                    ))
                });
                match r.flatten() {
                    Some((uid_validity, uid)) => Answer::Appended { uid_validity, uid },
                    None => no("TRYCREATE", "No such mailbox"),
                }
            }
            Request::Sync => Answer::Changes(Changes::default()),
            Request::Search(job) => {
                let mut source = Source {
                    store: self.store.clone(),
                    user: self.user.clone().unwrap_or_default(),
                    mailbox: self.selected.clone().unwrap_or_default(),
                };
                Answer::Searched(job.run(&mut source))
            }
            Request::Store {
                uids,
                op,
                flags,
                unchanged_since,
            } => {
                let user = self.user.clone().unwrap_or_default();
                let mailbox = self.selected.clone().unwrap_or_default();
                let (updated, modified) =
                    self.store_flags(&user, &mailbox, &uids, op, &flags, unchanged_since);
                Answer::Stored { updated, modified }
            }
            Request::Copy {
                uids,
                mailbox,
                moving,
            } => {
                let source = self.selected.clone().unwrap_or_default();
                let r = self.with_user(|u| {
                    if !u.folders.contains_key(&mailbox) {
                        return None;
                    }
                    let src: Vec<Stored> = u
                        .folders
                        .get(&source)?
                        .messages
                        .iter()
                        .filter(|m| uids.contains(&m.info.uid))
                        .cloned()
                        .collect();
                    let dst = u.folders.get_mut(&mailbox)?;
                    let pairs: Vec<(u32, u32)> = src
                        .iter()
                        .map(|m| {
                            (
                                m.info.uid,
                                dst.add(
                                    m.bytes.clone(),
                                    m.info.flags.clone(),
                                    m.info.internal_date,
                                ),
                            )
                        })
                        .collect();
                    let validity = dst.uid_validity;
                    if moving {
                        let f = u.folders.get_mut(&source)?;
                        for (uid, _) in &pairs {
                            f.modseq += 1;
                            f.expunged.push((*uid, f.modseq));
                        }
                        f.messages
                            .retain(|m| !pairs.iter().any(|p| p.0 == m.info.uid));
                    }
                    Some((validity, pairs))
                });
                match r.flatten() {
                    Some((uid_validity, pairs)) => Answer::Copied {
                        uid_validity,
                        pairs,
                    },
                    None => no("TRYCREATE", "No such mailbox"),
                }
            }
            Request::Expunge { uids } => {
                let source = self.selected.clone().unwrap_or_default();
                let gone = self
                    .with_user(|u| {
                        let f = u.folders.get_mut(&source)?;
                        let gone: Vec<u32> = f
                            .messages
                            .iter()
                            .filter(|m| {
                                m.info.flags.deleted
                                    && uids.as_ref().is_none_or(|s| s.contains(&m.info.uid))
                            })
                            .map(|m| m.info.uid)
                            .collect();
                        for uid in &gone {
                            f.modseq += 1;
                            f.expunged.push((*uid, f.modseq));
                        }
                        f.messages.retain(|m| !gone.contains(&m.info.uid));
                        Some(gone)
                    })
                    .flatten()
                    .unwrap_or_default();
                Answer::Expunged(gone)
            }
            Request::Fetch(_) => no("SERVERBUG", "unreachable"),
        }
    }
}

fn apply_flags(old: &Flags, op: FlagChange, f: &Flags) -> Flags {
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
        FlagChange::Replace => n = f.clone(),
        FlagChange::Add => {
            set(&mut n, true);
            for k in &f.keywords {
                if !n.keywords.contains(k) {
                    n.keywords.push(k.clone());
                }
            }
            n.keywords.sort();
        }
        FlagChange::Remove => {
            set(&mut n, false);
            n.keywords.retain(|k| !f.keywords.contains(k));
        }
    }
    n
}

fn special_use(name: &str) -> Option<String> {
    let u = match name {
        "Sent" => "\\Sent",
        "Drafts" => "\\Drafts",
        "Trash" => "\\Trash",
        "Junk" => "\\Junk",
        "Archive" => "\\Archive",
        _ => return None,
    };
    Some(u.into())
}

/// Reads messages from the store for fetch and search jobs.
struct Source {
    store: MemoryStore,
    user: String,
    mailbox: String,
}

impl MessageSource for Source {
    fn read_at(&mut self, uid: u32, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let inner = self.store.lock();
        let m = inner
            .users
            .get(&self.user)
            .and_then(|u| u.folders.get(&self.mailbox))
            .and_then(|f| f.messages.iter().find(|m| m.info.uid == uid))
            .ok_or(std::io::ErrorKind::NotFound)?;
        let start = (offset as usize).min(m.bytes.len());
        let n = buf.len().min(m.bytes.len() - start);
        buf[..n].copy_from_slice(&m.bytes[start..start + n]);
        Ok(n)
    }
}

/// A one-line description of an event, for logs and snapshots; never a password.
pub fn describe(event: &Event) -> String {
    match event {
        Event::Request { request, .. } => match request {
            Request::Login(c) => format!("login {}", c.user),
            Request::Select {
                mailbox,
                read_only,
                vanished_since,
            } => {
                format!(
                    "select {mailbox}{}{}",
                    if *read_only { " read-only" } else { "" },
                    vanished_since
                        .map(|v| format!(" vanished-since {v}"))
                        .unwrap_or_default()
                )
            }
            Request::Create(n) => format!("create {n}"),
            Request::Delete(n) => format!("delete {n}"),
            Request::Rename { from, to } => format!("rename {from} {to}"),
            Request::Subscribe(n, on) => {
                format!("{} {n}", if *on { "subscribe" } else { "unsubscribe" })
            }
            Request::List { status } => {
                format!("list{}", if status.is_some() { " with status" } else { "" })
            }
            Request::Status(n) => format!("status {n}"),
            Request::AppendStart { mailbox, size, .. } => {
                format!("append to {mailbox}, {size} octets")
            }
            Request::AppendEnd => "append end".into(),
            Request::Sync => "sync".into(),
            Request::Fetch(job) => format!("fetch uids {:?}", job.uids().collect::<Vec<_>>()),
            Request::Search(_) => "search".into(),
            Request::Store { uids, op, .. } => format!("store {op:?} on {uids:?}"),
            Request::Copy {
                uids,
                mailbox,
                moving,
            } => format!(
                "{} {uids:?} to {mailbox}",
                if *moving { "move" } else { "copy" }
            ),
            Request::Expunge { uids } => format!("expunge {uids:?}"),
        },
        Event::AppendData(b) => format!("append data, {} octets", b.len()),
        Event::AppendAborted => "append aborted".into(),
        Event::Deselected => "deselected".into(),
        Event::Violation(v) => format!("violation: {v}"),
    }
}
