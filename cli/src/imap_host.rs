//! The IMAP host: answers the IMAP core's requests from the Maildir tree the SMTP host
//! delivers into, and tells a session when its selected mailbox changed elsewhere.
//!
//! Every request that touches the disk runs as [`Work`] off the event loop; APPEND's data is
//! written to its temporary file as it arrives (page-cache writes), as SMTP's DATA is. A
//! session hears of changes through its [`Notifier`]: the folder's watch (another session's
//! STORE, EXPUNGE, COPY into it, APPEND) and, for INBOX, the delivery watch. Each notice
//! starts one sync (coalesced while one runs), whose changes go to
//! [`ServerSession::handle_changes`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use imap_core::{
    Answer, Changes, Event, FetchProgress, FlagChange, MailboxEntry, MessageInfo, MessageSource,
    Request, SelectedMailbox, ServerConfig, ServerSession, StatusInfo, Ticket,
};
use mailstore::{Folder, FolderWatch, MailStore, Mailbox, MessageFile, StoreError, Watch};
use session_api::{Completion, ConnInfo, Handler, Notifier, Service, Work};

use crate::logins::{Checked, Logins};

/// What every IMAP connection shares.
pub(crate) struct ImapService {
    pub config: Arc<ServerConfig>,
    /// The same configuration with passwords allowed over plaintext, for loopback peers when
    /// the operator asked for it (`--allow-plaintext-auth-on-loopback`).
    pub loopback_config: Option<Arc<ServerConfig>>,
    /// Whether this listener is implicit TLS.
    pub implicit_tls: bool,
    pub logins: Arc<Logins>,
    pub store: MailStore,
}

impl Service for ImapService {
    type Handler = ImapHandler;

    fn open(
        &self,
        conn: &ConnInfo,
        notifier: Notifier<ImapNotice>,
        now: Instant,
    ) -> (ServerSession, ImapHandler) {
        let config = match &self.loopback_config {
            Some(c) if conn.peer.ip().is_loopback() => c,
            _ => &self.config,
        };
        tracing::debug!(peer = %conn.peer, "IMAP connection");
        let session = ServerSession::new(config.clone(), self.implicit_tls, now);
        let handler = ImapHandler {
            store: self.store.clone(),
            logins: self.logins.clone(),
            peer: conn.peer,
            notifier,
            user: None,
            selected: None,
            generation: 0,
            appending: None,
            syncing: false,
            dirty: false,
        };
        (session, handler)
    }
}

/// What wakes an IMAP connection from elsewhere.
#[derive(Debug)]
pub(crate) enum ImapNotice {
    /// The selected mailbox changed (`generation` says which selection it was for).
    Changed { generation: u64 },
    /// A failed login's delay is over: refuse it now.
    LoginRefused(Ticket),
}

/// The mailbox a connection has selected.
struct Selected {
    folder: Folder,
    /// EXAMINE: the session claims no `\Recent`.
    read_only: bool,
    /// Dropped with the selection, which stops the notices.
    _watches: (FolderWatch, Option<Watch>),
}

/// One IMAP connection's host state.
pub(crate) struct ImapHandler {
    store: MailStore,
    logins: Arc<Logins>,
    peer: SocketAddr,
    notifier: Notifier<ImapNotice>,
    /// The logged-in user's mailbox tree.
    user: Option<Mailbox>,
    selected: Option<Selected>,
    /// Counts selections, so a sync finishing after the mailbox changed is dropped.
    generation: u64,
    /// An APPEND being written: the destination and the message, or why it failed.
    appending: Option<Result<mailstore::Appending, StoreError>>,
    /// A notice-driven sync is running; `dirty` asks for another when it ends.
    syncing: bool,
    dirty: bool,
}

type Done = Completion<ImapHandler>;

impl Handler for ImapHandler {
    type Session = ServerSession;
    type Notice = ImapNotice;

    fn on_event(
        &mut self,
        session: &mut ServerSession,
        event: Event,
        now: Instant,
    ) -> Option<Work<Self>> {
        match event {
            Event::Request { ticket, request } => self.request(session, ticket, request, now),
            Event::AppendData(bytes) => {
                if let Some(Ok(a)) = &mut self.appending
                    && let Err(e) = a.write_all(&bytes)
                {
                    self.appending = Some(Err(e));
                }
                None
            }
            Event::AppendAborted => {
                // Dropping the unfinished message removes its temporary file.
                self.appending = None;
                None
            }
            Event::Deselected => {
                self.selected = None;
                self.generation += 1;
                None
            }
            Event::Violation(v) => {
                tracing::debug!(peer = %self.peer, violation = %v, "IMAP protocol violation");
                None
            }
            _ => None,
        }
    }

    fn on_notice(
        &mut self,
        session: &mut ServerSession,
        notice: ImapNotice,
        now: Instant,
    ) -> Option<Work<Self>> {
        match notice {
            ImapNotice::LoginRefused(ticket) => {
                session.answer(ticket, Answer::LoginRefused, now);
                None
            }
            ImapNotice::Changed { generation } if generation == self.generation => {
                self.start_sync(session)
            }
            ImapNotice::Changed { .. } => None,
        }
    }

    fn after_completion(
        &mut self,
        session: &mut ServerSession,
        _now: Instant,
    ) -> Option<Work<Self>> {
        if self.dirty && !self.syncing {
            self.start_sync(session)
        } else {
            None
        }
    }

    fn on_close(&mut self) {
        self.appending = None;
        self.selected = None;
    }
}

impl ImapHandler {
    /// The logged-in user; requests after login only come once there is one.
    fn user(&self) -> Option<Mailbox> {
        self.user.clone()
    }

    fn folder(&self) -> Option<Folder> {
        self.selected.as_ref().map(|s| s.folder.clone())
    }

    /// Picks up what changed in the selected mailbox, unless a sync is already under way
    /// (then once more after it).
    fn start_sync(&mut self, session: &ServerSession) -> Option<Work<Self>> {
        let (Some(selected), Some(since)) = (&self.selected, session.synced_modseq()) else {
            return None;
        };
        let (folder, claim) = (selected.folder.clone(), !selected.read_only);
        if self.syncing {
            self.dirty = true;
            return None;
        }
        self.syncing = true;
        self.dirty = false;
        let generation = self.generation;
        Some(Work::new(move || {
            // A read-write session told first of new mail has it as \Recent (RFC 3501 2.3.2).
            let changes = if claim {
                folder.changes_since_claiming(since)
            } else {
                folder.changes_since(since)
            };
            let changes = changes.map(changes_from_store);
            Completion::new(move |h: &mut ImapHandler, s: &mut ServerSession, now| {
                h.syncing = false;
                match changes {
                    Ok(c) if generation == h.generation => s.handle_changes(c, now),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "IMAP sync failed"),
                }
            })
        }))
    }

    fn request(
        &mut self,
        session: &mut ServerSession,
        ticket: Ticket,
        request: Request,
        now: Instant,
    ) -> Option<Work<Self>> {
        let store = self.store.clone();
        let reply = move |answer: Answer| -> Done {
            Completion::new(move |_h: &mut ImapHandler, s: &mut ServerSession, now| {
                s.answer(ticket, answer, now)
            })
        };
        if let Request::Login(credentials) = request {
            let logins = self.logins.clone();
            let peer = self.peer.ip();
            return Some(Work::new(move || {
                let checked = logins.check(&credentials, peer);
                Completion::new(
                    move |h: &mut ImapHandler, s: &mut ServerSession, now| match checked {
                        Checked::Ok(login) => match user_mailbox(&login.user) {
                            Some(m) => {
                                tracing::info!(peer = %h.peer, user = %login.user, "IMAP login");
                                h.user = Some(m);
                                s.answer(ticket, Answer::LoggedIn, now);
                            }
                            None => s.answer(ticket, Answer::LoginRefused, now),
                        },
                        Checked::Refused { delay } => {
                            let notifier = h.notifier.clone();
                            h.logins.after(delay, move || {
                                notifier.notify(ImapNotice::LoginRefused(ticket));
                            });
                        }
                    },
                )
            }));
        }
        let Some(user) = self.user() else {
            // The core asks nothing else before login.
            session.answer(ticket, Answer::no(Some("SERVERBUG"), "Not logged in"), now);
            return None;
        };
        match request {
            Request::Select {
                mailbox,
                read_only,
                vanished_since,
            } => {
                self.selected = None;
                self.generation += 1;
                let generation = self.generation;
                let notifier = self.notifier.clone();
                Some(Work::new(move || {
                    let result = select(&store, &user, &mailbox, read_only, vanished_since);
                    Completion::new(move |h: &mut ImapHandler, s: &mut ServerSession, now| {
                        match result {
                            Ok((folder, selected)) => {
                                let watches =
                                    watches(&h.store, &user, &folder, notifier, generation);
                                h.selected = Some(Selected {
                                    folder,
                                    read_only,
                                    _watches: watches,
                                });
                                s.answer(ticket, Answer::Selected(Box::new(selected)), now);
                            }
                            Err(e) => s.answer(ticket, no(&e, "NONEXISTENT"), now),
                        }
                    })
                }))
            }
            Request::Create(name) => Some(Work::new(move || {
                reply(done(store.create_folder(&user, &name), "CANNOT"))
            })),
            Request::Delete(name) => Some(Work::new(move || {
                reply(done(store.delete_folder(&user, &name), "NONEXISTENT"))
            })),
            Request::Rename { from, to } => Some(Work::new(move || {
                reply(done(store.rename_folder(&user, &from, &to), "NONEXISTENT"))
            })),
            Request::Subscribe(name, on) => Some(Work::new(move || {
                reply(done(store.subscribe(&user, &name, on), "NONEXISTENT"))
            })),
            Request::List { status } => Some(Work::new(move || {
                reply(match list(&store, &user, status.is_some()) {
                    Ok(entries) => Answer::Mailboxes(entries),
                    Err(e) => no(&e, "UNAVAILABLE"),
                })
            })),
            Request::Status(name) => Some(Work::new(move || {
                let status = store
                    .open_folder(&user, &name)
                    .and_then(|f| f.status())
                    .map(status_from_store);
                reply(match status {
                    Ok(s) => Answer::Status(s),
                    Err(e) => no(&e, "NONEXISTENT"),
                })
            })),
            Request::AppendStart {
                mailbox,
                flags,
                date,
                ..
            } => {
                let started = store.open_folder(&user, &mailbox).and_then(|f| {
                    let date =
                        date.map(|d| UNIX_EPOCH + std::time::Duration::from_secs(d.max(0) as u64));
                    f.append(&flags_to_store(&flags), date)
                });
                match started {
                    Ok(a) => {
                        self.appending = Some(Ok(a));
                        session.answer(ticket, Answer::Done, now);
                    }
                    Err(e) => session.answer(ticket, no(&e, "TRYCREATE"), now),
                }
                None
            }
            Request::AppendEnd => {
                let appending = self.appending.take();
                Some(Work::new(move || {
                    reply(match appending {
                        Some(Ok(a)) => {
                            let uid_validity = a.uid_validity();
                            match a.commit() {
                                Ok(uid) => Answer::Appended { uid_validity, uid },
                                Err(e) => no(&e, "UNAVAILABLE"),
                            }
                        }
                        Some(Err(e)) => no(&e, "UNAVAILABLE"),
                        None => Answer::no(Some("SERVERBUG"), "No APPEND in progress"),
                    })
                }))
            }
            Request::Sync => {
                let (Some(folder), Some(since)) = (self.folder(), session.synced_modseq()) else {
                    session.answer(ticket, Answer::Changes(Changes::default()), now);
                    return None;
                };
                Some(Work::new(move || {
                    reply(match folder.changes_since(since) {
                        Ok(c) => Answer::Changes(changes_from_store(c)),
                        Err(e) => no(&e, "UNAVAILABLE"),
                    })
                }))
            }
            Request::Fetch(mut job) => {
                let folder = self.folder()?;
                let chunk = 256 * 1024;
                Some(Work::new(move || {
                    let seen = job.uids_to_mark_seen();
                    if !seen.is_empty() {
                        let flags = mailstore::Flags {
                            seen: true,
                            ..mailstore::Flags::default()
                        };
                        if let Ok(stored) =
                            folder.store(&seen, mailstore::FlagOp::Add, &flags, None)
                        {
                            for m in stored.updated {
                                job.update_flags(&info_from_store(m));
                            }
                        }
                    }
                    if let Some(since) = job.vanished_since()
                        && let Ok(c) = folder.changes_since(since)
                    {
                        job.set_vanished(c.vanished);
                    }
                    let mut output = Vec::new();
                    let mut source = FolderSource::new(folder);
                    job.fill(&mut source, &mut output, chunk);
                    Completion::new(move |_h: &mut ImapHandler, s: &mut ServerSession, now| {
                        s.fetch_progress(ticket, FetchProgress { output, job }, now)
                    })
                }))
            }
            Request::Search(job) => {
                let folder = self.folder()?;
                Some(Work::new(move || {
                    let uids = job.run(&mut FolderSource::new(folder));
                    reply(Answer::Searched(uids))
                }))
            }
            Request::Store {
                uids,
                op,
                flags,
                unchanged_since,
            } => {
                let folder = self.folder()?;
                Some(Work::new(move || {
                    let op = match op {
                        FlagChange::Add => mailstore::FlagOp::Add,
                        FlagChange::Remove => mailstore::FlagOp::Remove,
                        _ => mailstore::FlagOp::Replace,
                    };
                    reply(
                        match folder.store(&uids, op, &flags_to_store(&flags), unchanged_since) {
                            Ok(s) => Answer::Stored {
                                updated: s.updated.into_iter().map(info_from_store).collect(),
                                modified: s.modified,
                            },
                            Err(e) => no(&e, "UNAVAILABLE"),
                        },
                    )
                }))
            }
            Request::Copy {
                uids,
                mailbox,
                moving,
            } => {
                let folder = self.folder()?;
                Some(Work::new(move || {
                    let result = store.open_folder(&user, &mailbox).and_then(|to| {
                        let pairs = if moving {
                            folder.move_to(&uids, &to)?
                        } else {
                            folder.copy(&uids, &to)?
                        };
                        Ok((to.uid_validity(), pairs))
                    });
                    reply(match result {
                        Ok((uid_validity, pairs)) => Answer::Copied {
                            uid_validity,
                            pairs,
                        },
                        Err(e) => no(&e, "TRYCREATE"),
                    })
                }))
            }
            Request::Expunge { uids } => {
                let folder = self.folder()?;
                Some(Work::new(move || {
                    reply(match folder.expunge(uids.as_deref()) {
                        Ok(gone) => Answer::Expunged(gone),
                        Err(e) => no(&e, "UNAVAILABLE"),
                    })
                }))
            }
            Request::Login(_) => None,
            _ => {
                session.answer(ticket, Answer::no(Some("CANNOT"), "Not supported"), now);
                None
            }
        }
    }
}

/// The mailbox tree of a login (`alice@example.com`).
pub(crate) fn user_mailbox(login: &str) -> Option<Mailbox> {
    let (local, domain) = login.rsplit_once('@')?;
    Mailbox::new(&domain.to_ascii_lowercase(), local).ok()
}

fn select(
    store: &MailStore,
    user: &Mailbox,
    name: &str,
    read_only: bool,
    vanished_since: Option<u64>,
) -> Result<(Folder, SelectedMailbox), StoreError> {
    let folder = store.open_folder(user, name)?;
    let snap = folder.sync(!read_only)?;
    let vanished = match vanished_since {
        Some(since) => folder.changes_since(since)?.vanished,
        None => Vec::new(),
    };
    let mut keywords: Vec<String> = snap
        .messages
        .iter()
        .flat_map(|m| m.flags.keywords.iter().cloned())
        .collect();
    keywords.sort();
    keywords.dedup();
    let selected = SelectedMailbox {
        uid_validity: snap.uid_validity,
        uid_next: snap.uid_next,
        highest_modseq: snap.highest_modseq,
        messages: snap.messages.into_iter().map(info_from_store).collect(),
        recent: snap.recent,
        keywords,
        writable: true,
        vanished,
    };
    Ok((folder, selected))
}

/// Watches that wake this connection when its selected mailbox changes.
fn watches(
    store: &MailStore,
    user: &Mailbox,
    folder: &Folder,
    notifier: Notifier<ImapNotice>,
    generation: u64,
) -> (FolderWatch, Option<Watch>) {
    let n = notifier.clone();
    let changes = store.watch_folder(user, folder.name(), move || {
        n.notify(ImapNotice::Changed { generation })
    });
    // SMTP delivers into INBOX without going through a folder handle.
    let deliveries = folder.name().eq_ignore_ascii_case("INBOX").then(|| {
        store.watch(user, move |_| {
            notifier.notify(ImapNotice::Changed { generation })
        })
    });
    (changes, deliveries)
}

fn list(
    store: &MailStore,
    user: &Mailbox,
    with_status: bool,
) -> Result<Vec<MailboxEntry>, StoreError> {
    let mut out = Vec::new();
    for f in store.folders(user)? {
        let status = if with_status {
            store
                .open_folder(user, &f.name)
                .and_then(|folder| folder.status())
                .map(status_from_store)
                .ok()
        } else {
            None
        };
        out.push(MailboxEntry {
            name: f.name,
            special_use: f.special_use.map(str::to_owned),
            subscribed: f.subscribed,
            exists: true,
            status,
        });
    }
    Ok(out)
}

/// Reads messages of one folder for FETCH and SEARCH, keeping the last file open.
struct FolderSource {
    folder: Folder,
    open: Option<(u32, MessageFile)>,
}

impl FolderSource {
    fn new(folder: Folder) -> Self {
        FolderSource { folder, open: None }
    }
}

impl MessageSource for FolderSource {
    fn read_at(&mut self, uid: u32, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.open.as_ref().is_none_or(|(u, _)| *u != uid) {
            let file = self
                .folder
                .open_message(uid)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::NotFound, e.to_string()))?;
            self.open = Some((uid, file));
        }
        let (_, file) = self.open.as_ref().expect("opened just above");
        file.read_at(offset, buf)
    }
}

fn done(result: Result<(), StoreError>, missing_code: &str) -> Answer {
    match result {
        Ok(()) => Answer::Done,
        Err(e) => no(&e, missing_code),
    }
}

/// A storage error as the client is told it: the reason, with the response code RFC 5530
/// gives for it.
fn no(e: &StoreError, missing_code: &str) -> Answer {
    let code = if e.is_not_found() {
        missing_code
    } else if e.is_already_exists() {
        "ALREADYEXISTS"
    } else if e.is_invalid_name() {
        "CANNOT"
    } else if e.is_full() {
        "OVERQUOTA"
    } else {
        tracing::error!(error = %e, "IMAP storage error");
        "UNAVAILABLE"
    };
    Answer::no(Some(code), e.to_string())
}

fn unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

fn info_from_store(m: mailstore::MessageMeta) -> MessageInfo {
    MessageInfo {
        uid: m.uid,
        modseq: m.modseq,
        flags: flags_from_store(m.flags),
        size: m.size,
        internal_date: unix(m.internal_date),
    }
}

fn flags_from_store(f: mailstore::Flags) -> imap_core::Flags {
    imap_core::Flags {
        seen: f.seen,
        answered: f.answered,
        flagged: f.flagged,
        deleted: f.deleted,
        draft: f.draft,
        keywords: f.keywords,
    }
}

fn flags_to_store(f: &imap_core::Flags) -> mailstore::Flags {
    mailstore::Flags {
        seen: f.seen,
        answered: f.answered,
        flagged: f.flagged,
        deleted: f.deleted,
        draft: f.draft,
        keywords: f.keywords.clone(),
    }
}

fn changes_from_store(c: mailstore::Changes) -> Changes {
    Changes {
        changed: c.changed.into_iter().map(info_from_store).collect(),
        vanished: c.vanished,
        recent: c.recent,
        uid_next: c.uid_next,
        highest_modseq: c.highest_modseq,
    }
}

fn status_from_store(s: mailstore::Status) -> StatusInfo {
    StatusInfo {
        messages: s.messages,
        recent: s.recent,
        uid_next: s.uid_next,
        uid_validity: s.uid_validity,
        unseen: s.unseen,
        highest_modseq: s.highest_modseq,
        size: s.size,
    }
}
