//! The SMTP host: answers the server core's events with the local-domain policy and Maildir
//! storage.
//!
//! Recipients are decided at once (a pure check). Message data is written to the delivery's
//! temporary file as it arrives (page-cache writes); the commit, with its fsyncs, runs as
//! [`Work`] off the event loop, and only its success releases the 250.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use mailstore::{Delivery, MailStore, Mailbox, StoreError};
use session_api::{Completion, ConnInfo, Handler, Notifier, Service, Work};
use smtp_core::policy::LocalDomains;
use smtp_core::transcript::Recorder;
use smtp_core::{EnhancedCode, Envelope, Reply, ServerConfig, ServerEvent, ServerSession, Verdict};

use crate::logins::{Checked, Logins};
use crate::record::Recorded;

/// What every connection shares.
pub(crate) struct SmtpService {
    pub config: Arc<ServerConfig>,
    /// The same configuration with AUTH allowed over plaintext, for loopback peers when the
    /// operator asked for it (`--allow-plaintext-auth-on-loopback`).
    pub loopback_config: Option<Arc<ServerConfig>>,
    /// Accounts, when a users file is configured: recipients must be users or aliases, and
    /// AUTH checks passwords.
    pub logins: Option<Arc<Logins>>,
    pub policy: LocalDomains,
    pub store: MailStore,
    pub record_dir: Option<std::path::PathBuf>,
    pub connections: Arc<ConnectionLimits>,
}

/// Connection counts, overall and per client address. Beyond a limit a connection is greeted
/// with 421 4.7.0 and closed (RFC 5321 section 3.1 lets a server refuse service this way).
#[derive(Debug)]
pub(crate) struct ConnectionLimits {
    max_total: usize,
    max_per_ip: usize,
    open: std::sync::Mutex<(usize, BTreeMap<IpAddr, usize>)>,
}

impl ConnectionLimits {
    pub(crate) fn new(max_total: usize, max_per_ip: usize) -> Self {
        ConnectionLimits {
            max_total,
            max_per_ip,
            open: std::sync::Mutex::new((0, BTreeMap::new())),
        }
    }

    /// Counts a new connection from `ip`, or says why it is refused.
    fn admit(&self, ip: IpAddr) -> Result<(), &'static str> {
        let mut guard = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let (total, per_ip) = &mut *guard;
        if *total >= self.max_total {
            return Err("Too many connections, try again later");
        }
        let mine = per_ip.entry(ip).or_insert(0);
        if *mine >= self.max_per_ip {
            return Err("Too many connections from your address, try again later");
        }
        *mine += 1;
        *total += 1;
        Ok(())
    }

    fn release(&self, ip: IpAddr) {
        let mut guard = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let (total, per_ip) = &mut *guard;
        *total = total.saturating_sub(1);
        if let Some(n) = per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&ip);
            }
        }
    }
}

impl Service for SmtpService {
    type Handler = SmtpHandler;

    fn open(
        &self,
        conn: &ConnInfo,
        notifier: Notifier<HostNotice>,
        now: Instant,
    ) -> (Recorded, SmtpHandler) {
        let config = match &self.loopback_config {
            Some(c) if conn.peer.ip().is_loopback() => c,
            _ => &self.config,
        };
        tracing::debug!(peer = %conn.peer, "connection");
        let admitted = self.connections.admit(conn.peer.ip());
        if let Err(why) = admitted {
            tracing::info!(peer = %conn.peer, "{why}");
        }
        let recorder = self.record_dir.as_ref().map(|dir| {
            let rec = Recorder::new(config, self.policy.domains(), now);
            (rec, dir.clone())
        });
        let session = match admitted {
            Ok(()) => ServerSession::new(config.clone(), now),
            Err(why) => ServerSession::refuse(
                config.clone(),
                &Reply::new(
                    421,
                    EnhancedCode(4, 7, 0),
                    format!("{} {why}", self.config.hostname),
                ),
            ),
        };
        let session = Recorded::new(session, recorder);
        let handler = SmtpHandler {
            counted: admitted.is_ok().then(|| self.connections.clone()),
            shared: SharedRef {
                policy: self.policy.clone(),
                store: self.store.clone(),
                hostname: self.config.hostname.clone(),
                logins: self.logins.clone(),
                submission: config.auth.required,
            },
            peer: conn.peer,
            message: None,
            notifier,
        };
        (session, handler)
    }
}

/// The parts of the service a handler needs (cheap clones).
struct SharedRef {
    policy: LocalDomains,
    store: MailStore,
    hostname: String,
    logins: Option<Arc<Logins>>,
    /// A submission listener's connection (AUTH required).
    submission: bool,
}

/// What wakes a connection from elsewhere.
#[derive(Debug)]
pub(crate) enum HostNotice {
    /// A failed login's delay is over: refuse it now.
    AuthRefused(smtp_core::Ticket),
    /// A message committed through the spool's shared flush is stored (or failed).
    Stored(Box<Stored>),
}

/// A message's end, answered once its storage is done.
#[derive(Debug)]
pub(crate) struct Stored {
    ticket: smtp_core::Ticket,
    id: String,
    envelope: Envelope,
    size: u64,
    result: Result<mailstore::Delivered, StoreError>,
}

/// One connection's host state.
pub(crate) struct SmtpHandler {
    shared: SharedRef,
    peer: std::net::SocketAddr,
    message: Option<Message>,
    /// Set when this connection counts towards the limits; released on close.
    counted: Option<Arc<ConnectionLimits>>,
    /// Wakes this connection (a delayed AUTH refusal).
    notifier: Notifier<HostNotice>,
}

/// A message being received.
struct Message {
    id: String,
    envelope: Envelope,
    /// `Err` once storage failed: the rest of the data is dropped and the end refused.
    delivery: Result<Delivery, StoreError>,
}

impl Handler for SmtpHandler {
    type Session = Recorded;
    type Notice = HostNotice;

    fn on_event(
        &mut self,
        session: &mut Recorded,
        event: ServerEvent,
        now: Instant,
    ) -> Option<Work<Self>> {
        match event {
            ServerEvent::Recipient { ticket, to } => {
                let verdict = match self.recipient(&to) {
                    Ok(_) => Verdict::Accept,
                    Err(reply) => {
                        tracing::info!(peer = %self.peer, %to, reply = %reply, "recipient refused");
                        Verdict::Refuse(reply)
                    }
                };
                session.decide(ticket, verdict, now);
                None
            }
            ServerEvent::MessageStart(envelope) => {
                self.message = Some(self.open_message(envelope));
                None
            }
            ServerEvent::MessageData(bytes) => {
                if let Some(Message {
                    delivery: delivery @ Ok(_),
                    ..
                }) = &mut self.message
                    && let Err(e) = delivery
                        .as_mut()
                        .map(|d| d.write_all(&bytes))
                        .unwrap_or(Ok(()))
                {
                    *delivery = Err(e);
                }
                None
            }
            ServerEvent::MessageEnd { ticket, size } => {
                let Message {
                    id,
                    envelope,
                    delivery,
                } = self.message.take()?;
                let stored = move |result| Stored {
                    ticket,
                    id,
                    envelope,
                    size,
                    result,
                };
                match delivery {
                    // The loop only appends to the spool; the store's flusher answers later,
                    // so a batch of messages shares one flush without a worker thread each.
                    Ok(delivery) if delivery.shares_flush() => {
                        let notifier = self.notifier.clone();
                        delivery.commit_then(move |result| {
                            // A connection gone by now misses its 250; the message is stored.
                            notifier.notify(HostNotice::Stored(Box::new(stored(result))));
                        });
                        None
                    }
                    delivery => Some(Work::new(move || {
                        let done = stored(delivery.and_then(Delivery::commit));
                        Completion::new(move |handler: &mut SmtpHandler, session, now| {
                            handler.answer_stored(session, done, now);
                        })
                    })),
                }
            }
            ServerEvent::MessageAborted(reason) => {
                if let Some(m) = self.message.take() {
                    tracing::info!(id = %m.id, ?reason, "message dropped");
                }
                None
            }
            ServerEvent::Violation(v) => {
                tracing::debug!(peer = %self.peer, violation = ?v, "protocol violation");
                None
            }
            ServerEvent::Auth {
                ticket,
                credentials,
            } => {
                let Some(logins) = self.shared.logins.clone() else {
                    // AUTH is offered only with accounts; refuse rather than hang.
                    session.decide(ticket, Verdict::Refuse(auth_refused()), now);
                    return None;
                };
                let peer = self.peer.ip();
                Some(Work::new(move || {
                    let checked = logins.check(&credentials, peer);
                    Completion::new(
                        move |handler: &mut SmtpHandler, session: &mut Recorded, now| match checked
                        {
                            Checked::Ok(login) => {
                                tracing::info!(peer = %handler.peer, user = %login.user, "logged in");
                                session.decide(ticket, Verdict::Login(login), now);
                            }
                            Checked::Refused { delay } if delay.is_zero() => {
                                session.decide(ticket, Verdict::Refuse(auth_refused()), now);
                            }
                            Checked::Refused { delay } => {
                                let notifier = handler.notifier.clone();
                                logins.after(delay, move || {
                                    notifier.notify(HostNotice::AuthRefused(ticket));
                                });
                            }
                        },
                    )
                }))
            }
            _ => None,
        }
    }

    fn on_notice(
        &mut self,
        session: &mut Recorded,
        notice: HostNotice,
        now: Instant,
    ) -> Option<Work<Self>> {
        match notice {
            HostNotice::AuthRefused(ticket) => {
                session.decide(ticket, Verdict::Refuse(auth_refused()), now);
            }
            HostNotice::Stored(done) => self.answer_stored(session, *done, now),
        }
        None
    }

    fn on_close(&mut self) {
        // Dropping an unfinished delivery removes its temporary file.
        self.message = None;
        if let Some(limits) = self.counted.take() {
            limits.release(self.peer.ip());
        }
    }
}

impl SmtpHandler {
    /// Answers a message's end with its storage's result: 250 only once it is stored.
    fn answer_stored(&self, session: &mut Recorded, done: Stored, now: Instant) {
        let Stored {
            ticket,
            id,
            envelope,
            size,
            result,
        } = done;
        let verdict = match result {
            Ok(delivered) => {
                let to: Vec<String> = envelope
                    .recipients
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                tracing::info!(
                    %id,
                    peer = %self.peer,
                    from = %envelope.from,
                    to = %to.join(","),
                    size,
                    file = %delivered.name(),
                    "message accepted"
                );
                Verdict::AcceptAs(id)
            }
            Err(e) => {
                tracing::error!(%id, error = %e, "delivery failed");
                Verdict::Refuse(storage_failure(&e))
            }
        };
        session.decide(ticket, verdict, now);
    }

    /// Opens storage for a message and writes the trace headers (RFC 5321 section 4.4).
    fn open_message(&self, envelope: Envelope) -> Message {
        let id = next_id();
        let delivery = self.mailboxes(&envelope).and_then(|boxes| {
            let mut d = self.shared.store.begin(&boxes)?;
            let date = time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc2822)
                .unwrap_or_default();
            let peer_ip = self.peer.ip().to_string();
            let received = smtp_core::trace::received(&smtp_core::trace::ReceivedInfo::new(
                &envelope,
                &peer_ip,
                &self.shared.hostname,
                &id,
                &date,
            ));
            d.write_all(smtp_core::trace::return_path(&envelope.from).as_bytes())?;
            d.write_all(received.as_bytes())?;
            Ok(d)
        });
        if let Err(e) = &delivery {
            tracing::error!(%id, error = %e, "cannot start delivery");
        }
        Message {
            id,
            envelope,
            delivery,
        }
    }

    /// Where mail for `to` goes: a local domain's mailbox, and with accounts the mailbox of
    /// the user or alias it names (`550 5.1.1` for any other address, at RCPT time).
    fn recipient(&self, to: &smtp_core::address::ForwardPath) -> Result<(String, String), Reply> {
        let r = self.shared.policy.check(to).map_err(|refusal| {
            let local = match to {
                smtp_core::address::ForwardPath::Mailbox(m) => {
                    let domain = m.domain().to_lowercase();
                    self.shared.policy.domains().contains(&domain)
                }
                _ => true,
            };
            if self.shared.submission && !local {
                // Said plainly, so a user's client shows why (no outbound queue yet).
                Reply::new(
                    550,
                    EnhancedCode(5, 7, 1),
                    "Relaying is not supported: buzon delivers only to its own domains",
                )
            } else {
                refusal
            }
        })?;
        let Some(logins) = &self.shared.logins else {
            return Ok((r.domain, r.local));
        };
        let users = logins.users.current();
        if !logins.users.is_configured() {
            // No users file (yet): any local part of a local domain has a mailbox.
            return Ok((r.domain, r.local));
        }
        let address = format!("{}@{}", r.local, r.domain);
        match users.resolve(&address) {
            Some(account) => {
                let (local, domain) = account
                    .address
                    .rsplit_once('@')
                    .expect("the users file holds addresses");
                Ok((domain.to_owned(), local.to_owned()))
            }
            None => Err(Reply::new(
                550,
                EnhancedCode(5, 1, 1),
                format!("{to}: no such user here"),
            )),
        }
    }

    /// The mailboxes of the accepted recipients (already checked at RCPT).
    fn mailboxes(&self, envelope: &Envelope) -> Result<Vec<Mailbox>, StoreError> {
        envelope
            .recipients
            .iter()
            .filter_map(|to| self.recipient(to).ok())
            .map(|(domain, local)| Mailbox::new(&domain, &local))
            .collect()
    }
}

/// RFC 4954 section 6: the same answer for a wrong password and an unknown user.
fn auth_refused() -> Reply {
    Reply::new(
        535,
        EnhancedCode(5, 7, 8),
        "Authentication credentials invalid",
    )
}

/// 452 4.3.1 when the disk is full, else 451 4.3.0 (RFC 3463 section 3.4).
fn storage_failure(e: &StoreError) -> Reply {
    if e.is_full() {
        Reply::new(
            452,
            EnhancedCode(4, 3, 1),
            "Insufficient system storage, try again later",
        )
    } else {
        Reply::new(
            451,
            EnhancedCode(4, 3, 0),
            "Local error in processing, try again later",
        )
    }
}

/// A message id unique within this host: microseconds since the epoch and a counter.
fn next_id() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{micros:X}{:04X}", seq & 0xFFFF)
}

#[cfg(test)]
mod tests {
    //! Storage faults injected through `mailstore`'s hook: the client gets 452 4.3.1 (disk full)
    //! or 451 4.3.0 (anything else), never 250, nothing reaches `new/`, and the next message is
    //! accepted once the fault is gone.

    use std::path::Path;
    use std::sync::atomic::{AtomicU8, Ordering};

    use mailstore::{FaultHook, FsOp, StoreOptions};
    use session_api::Session;

    use super::*;

    /// 0: no fault; 1: the disk is full at fsync; 2: an I/O error at link; 3: the folder vanishes.
    #[derive(Default)]
    struct Faults(AtomicU8);

    impl FaultHook for Faults {
        fn check(&self, op: FsOp, path: &Path) -> std::io::Result<()> {
            match (self.0.load(Ordering::SeqCst), op) {
                (1, FsOp::SyncFile) => Err(std::io::Error::from_raw_os_error(28)), // ENOSPC
                (2, FsOp::Link) => Err(std::io::Error::from_raw_os_error(5)),      // EIO
                // The same, at the intake spool (group commit).
                (4, FsOp::Write) if path.to_string_lossy().contains("/.spool/") => {
                    Err(std::io::Error::from_raw_os_error(28))
                }
                (5, FsOp::SyncFile) if path.to_string_lossy().contains("/.spool/") => {
                    Err(std::io::Error::from_raw_os_error(5))
                }
                (3, FsOp::CreateFile) => {
                    // The storage folder is removed under our feet.
                    let _ = std::fs::remove_dir_all(path.parent().and_then(Path::parent).unwrap());
                    Ok(())
                }
                _ => Ok(()),
            }
        }
    }

    /// Runs one SMTP transaction through the real host, doing the adapter's job by hand.
    fn transaction(service: &SmtpService, user: &str) -> String {
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let conn = ConnInfo {
            peer: "127.0.0.1:40000".parse().unwrap(),
            local: "127.0.0.1:25".parse().unwrap(),
        };
        // Notices (a message stored through the spool's shared flush) come from the store's
        // flusher thread, as they would to an adapter's loop.
        let (notices, inbox) = std::sync::mpsc::channel();
        let notifier = Notifier::new(move |n| notices.send(n).is_ok());
        let (mut session, mut handler) = service.open(&conn, notifier, now);
        let input = format!(
            "EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<{user}@example.com>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n"
        );
        let mut kept = input.into_bytes();
        let mut out = Vec::new();
        while !session.is_closed() {
            let used = session.handle_input(&kept, now);
            kept.drain(..used);
            while let Some(ev) = session.poll_event() {
                if let Some(work) = handler.on_event(&mut session, ev, now) {
                    work.run().apply(&mut handler, &mut session, now);
                }
            }
            session.poll_transmit(&mut out);
            if used == 0 && !session.is_closed() {
                // Nothing more to read: the session waits for a notice.
                let notice = inbox
                    .recv_timeout(std::time::Duration::from_secs(10))
                    .expect("the store answers every message");
                if let Some(work) = handler.on_notice(&mut session, notice, now) {
                    work.run().apply(&mut handler, &mut session, now);
                }
            }
        }
        handler.on_close();
        String::from_utf8(out).unwrap()
    }

    fn count_new(root: &Path, user: &str) -> usize {
        std::fs::read_dir(root.join("example.com").join(user).join("new"))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// The delivery path tells the mailbox's watchers (IMAP IDLE, NNTP notices) once the
    /// message is stored: after the fsyncs, before the 250.
    #[test]
    fn a_stored_message_is_announced_to_its_mailbox_watchers() {
        let dir = tempfile::tempdir().unwrap();
        let store = MailStore::open(dir.path().join("mail")).unwrap();
        let service = SmtpService {
            config: Arc::new(ServerConfig::new("mx.test")),
            policy: LocalDomains::new(["example.com"]),
            store: store.clone(),
            record_dir: None,
            connections: Arc::new(ConnectionLimits::new(10, 10)),
            loopback_config: None,
            logins: None,
        };
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let alice = Mailbox::new("example.com", "alice").unwrap();
        let _watch = store.watch(&alice, move |news| {
            log.lock()
                .unwrap()
                .push((news.mailbox.to_string(), news.path.exists()));
            true
        });
        let out = transaction(&service, "bob");
        assert!(out.contains("250 2.0.0 Ok: queued as "), "{out}");
        assert!(
            seen.lock().unwrap().is_empty(),
            "bob's mail is not alice's news"
        );
        let out = transaction(&service, "alice");
        assert!(out.contains("250 2.0.0 Ok: queued as "), "{out}");
        assert_eq!(
            *seen.lock().unwrap(),
            [("alice@example.com".to_owned(), true)]
        );
    }

    #[test]
    fn storage_faults_give_4xx_and_the_server_recovers() {
        faults_give_4xx(
            false,
            &[
                (1, "full", "452 4.3.1 "),
                (2, "eio", "451 4.3.0 "),
                (3, "gone", "451 4.3.0 "),
            ],
        );
    }

    #[test]
    fn spool_faults_give_4xx_to_their_messages_and_the_server_recovers() {
        faults_give_4xx(true, &[(4, "full", "452 4.3.1 "), (5, "eio", "451 4.3.0 ")]);
    }

    fn faults_give_4xx(group_commit: bool, cases: &[(u8, &str, &str)]) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("mail");
        let faults = Arc::new(Faults::default());
        let store = MailStore::open_with(
            &root,
            StoreOptions::new()
                .group_commit(group_commit)
                .fault_hook(faults.clone()),
        )
        .unwrap();
        assert_eq!(store.is_group_commit(), group_commit);
        let service = SmtpService {
            config: Arc::new(ServerConfig::new("mx.test")),
            policy: LocalDomains::new(["example.com"]),
            store,
            record_dir: None,
            connections: Arc::new(ConnectionLimits::new(10, 10)),
            loopback_config: None,
            logins: None,
        };
        for &(fault, user, expected) in cases {
            faults.0.store(fault, Ordering::SeqCst);
            let out = transaction(&service, user);
            assert!(out.contains(expected), "fault {fault}: {out}");
            assert!(
                !out.contains("250 2.0.0 Ok: queued"),
                "fault {fault}: {out}"
            );
            assert_eq!(count_new(&root, user), 0, "fault {fault}");
            faults.0.store(0, Ordering::SeqCst);
            let out = transaction(&service, user);
            assert!(
                out.contains("250 2.0.0 Ok: queued as "),
                "after fault {fault}: {out}"
            );
            assert_eq!(count_new(&root, user), 1, "after fault {fault}");
        }
    }
}
