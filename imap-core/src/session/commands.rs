//! Commands, once parsed: checked against the state, answered at once or handed to the host.

use std::time::Instant;

use line_protocol::base64;
use line_protocol::sasl::{Credentials, Exchange, Mechanism, SaslError, Step};
use session_api::Upgrade;

use super::{Mode, Pending, ServerSession, State};
use crate::event::{FlagChange, Flags, Request};
use crate::fetch::FetchJob;
use crate::mailbox_name::mailbox_name_problem;
use crate::search::{NoSource, SearchJob};
use crate::syntax::{AppendCommand, Command, CommandBody, FetchItem, SequenceSet, StoreOp};

/// How a command's state requirement failed.
enum StateError {
    NotAuthenticated,
    NotSelected,
    Authenticated,
}

impl ServerSession {
    pub(super) fn dispatch(&mut self, c: Command, now: Instant) {
        let Command { tag, body } = c;
        if let Err(e) = self.check_state(&body) {
            let text = match e {
                StateError::NotAuthenticated => "Log in first",
                StateError::NotSelected => "Select a mailbox first",
                StateError::Authenticated => "Already logged in",
            };
            self.violation(format!("wrong state for a command: {text}"));
            self.write(format!("{tag} BAD {text}"));
            return;
        }
        match body {
            CommandBody::Capability => {
                let caps = self.capabilities();
                self.write(format!("* CAPABILITY {caps}"));
                self.complete(&tag, "OK", None, "CAPABILITY completed", true);
            }
            CommandBody::Noop | CommandBody::Check => {
                let verb = if matches!(body, CommandBody::Noop) {
                    "NOOP"
                } else {
                    "CHECK"
                };
                if matches!(self.state, State::Selected(_)) {
                    self.request(
                        Request::Sync,
                        Pending::Sync {
                            tag: Some(tag),
                            verb,
                        },
                    );
                } else {
                    self.complete(&tag, "OK", None, &format!("{verb} completed"), true);
                }
            }
            CommandBody::Logout => {
                self.write("* BYE Logging out");
                self.write(format!("{tag} OK LOGOUT completed"));
                self.close();
            }
            CommandBody::StartTls => {
                if self.tls {
                    self.write(format!("{tag} BAD TLS is already active"));
                } else if !self.config.starttls {
                    self.write(format!("{tag} BAD STARTTLS is not available here"));
                } else {
                    self.write(format!("{tag} OK Begin TLS negotiation now"));
                    self.upgrade = Some(Upgrade::Tls);
                    self.upgrading = true;
                }
            }
            CommandBody::Login { user, password } => {
                if !self.login_allowed() {
                    self.write(format!(
                        "{tag} NO [PRIVACYREQUIRED] Use STARTTLS before logging in"
                    ));
                    return;
                }
                let credentials = Credentials::new(None, user, password, Mechanism::Plain);
                self.request(Request::Login(credentials), Pending::Login { tag });
            }
            CommandBody::Authenticate { mechanism, initial } => {
                self.authenticate(tag, &mechanism, initial)
            }
            CommandBody::Enable(caps) => {
                let mut enabled = Vec::new();
                for cap in caps {
                    match cap.as_str() {
                        "CONDSTORE" => {
                            self.condstore = true;
                            enabled.push("CONDSTORE");
                        }
                        "QRESYNC" => {
                            // RFC 7162 3.2.3: QRESYNC implies CONDSTORE.
                            self.condstore = true;
                            self.qresync = true;
                            enabled.push("QRESYNC");
                        }
                        _ => {}
                    }
                }
                self.write(format!(
                    "* ENABLED{}",
                    enabled.iter().map(|c| format!(" {c}")).collect::<String>()
                ));
                self.complete(&tag, "OK", None, "ENABLE completed", true);
            }
            CommandBody::Id(_) => {
                self.write(format!(
                    "* ID (\"name\" \"buzon\" \"version\" \"{}\")",
                    env!("CARGO_PKG_VERSION")
                ));
                self.complete(&tag, "OK", None, "ID completed", true);
            }
            CommandBody::Namespace => {
                self.write("* NAMESPACE ((\"\" \".\")) NIL NIL");
                self.complete(&tag, "OK", None, "NAMESPACE completed", true);
            }
            CommandBody::Select {
                mailbox,
                read_only,
                condstore,
                qresync,
            } => {
                if qresync.is_some() && !self.qresync {
                    self.write(format!("{tag} BAD Enable QRESYNC first (RFC 7162 3.2.5)"));
                    return;
                }
                if let Some(why) = mailbox_name_problem(&mailbox) {
                    self.write(format!("{tag} NO [NONEXISTENT] {why}"));
                    return;
                }
                self.condstore |= condstore;
                // RFC 3501 6.3.1: selecting closes the mailbox selected before, even if this
                // SELECT fails; RFC 7162 3.2.11 tells a QRESYNC client with [CLOSED].
                if matches!(self.state, State::Selected(_)) {
                    self.events.push_back(crate::event::Event::Deselected);
                    self.state = State::Authenticated;
                    if self.qresync {
                        self.write("* OK [CLOSED] Previous mailbox closed");
                    }
                }
                let vanished_since = qresync.as_ref().map(|q| q.mod_seq);
                self.request(
                    Request::Select {
                        mailbox: mailbox.clone(),
                        read_only,
                        vanished_since,
                    },
                    Pending::Select {
                        tag,
                        name: mailbox,
                        read_only,
                        qresync,
                    },
                );
            }
            CommandBody::Create(name) => {
                // RFC 3501 6.3.3: a trailing separator only declares intent to add children.
                let name = name
                    .strip_suffix(crate::SEPARATOR)
                    .unwrap_or(&name)
                    .to_owned();
                if name.eq_ignore_ascii_case("INBOX") {
                    self.write(format!("{tag} NO [ALREADYEXISTS] INBOX always exists"));
                } else if let Some(why) = mailbox_name_problem(&name) {
                    self.write(format!("{tag} NO [CANNOT] {why}"));
                } else {
                    self.request(
                        Request::Create(name),
                        Pending::Simple {
                            tag,
                            verb: "CREATE",
                        },
                    );
                }
            }
            CommandBody::Delete(name) => {
                if name == "INBOX" {
                    self.write(format!("{tag} NO [CANNOT] INBOX cannot be deleted"));
                } else if let Some(why) = mailbox_name_problem(&name) {
                    self.write(format!("{tag} NO [NONEXISTENT] {why}"));
                } else {
                    if self.selected().is_some_and(|(n, _)| n == name) {
                        self.events.push_back(crate::event::Event::Deselected);
                        self.state = State::Authenticated;
                    }
                    self.request(
                        Request::Delete(name),
                        Pending::Simple {
                            tag,
                            verb: "DELETE",
                        },
                    );
                }
            }
            CommandBody::Rename { from, to } => {
                if to == "INBOX" {
                    self.write(format!("{tag} NO [ALREADYEXISTS] INBOX always exists"));
                } else if let Some(why) =
                    mailbox_name_problem(&from).or_else(|| mailbox_name_problem(&to))
                {
                    self.write(format!("{tag} NO [CANNOT] {why}"));
                } else {
                    self.request(
                        Request::Rename { from, to },
                        Pending::Simple {
                            tag,
                            verb: "RENAME",
                        },
                    );
                }
            }
            CommandBody::Subscribe(name, on) => {
                if let Some(why) = mailbox_name_problem(&name) {
                    self.write(format!("{tag} NO [CANNOT] {why}"));
                } else {
                    let verb = if on { "SUBSCRIBE" } else { "UNSUBSCRIBE" };
                    self.request(Request::Subscribe(name, on), Pending::Simple { tag, verb });
                }
            }
            CommandBody::List(cmd) => {
                let wildcards: usize = cmd
                    .patterns
                    .iter()
                    .map(|p| p.matches(['*', '%']).count())
                    .max()
                    .unwrap_or(0);
                if wildcards > crate::list::MAX_WILDCARDS {
                    self.write(format!("{tag} NO [LIMIT] Too many wildcards"));
                } else if !cmd.lsub && cmd.patterns.len() == 1 && cmd.patterns[0].is_empty() {
                    // RFC 3501 6.3.8: an empty pattern asks for the separator and root.
                    self.write("* LIST (\\Noselect) \".\" \"\"");
                    self.complete(&tag, "OK", None, "LIST completed", true);
                } else {
                    self.request(
                        Request::List {
                            status: cmd.return_status.clone(),
                        },
                        Pending::List { tag, cmd },
                    );
                }
            }
            CommandBody::Status { mailbox, items } => {
                if let Some(why) = mailbox_name_problem(&mailbox) {
                    self.write(format!("{tag} NO [NONEXISTENT] {why}"));
                    return;
                }
                if items.contains(&crate::syntax::StatusItem::HighestModSeq) {
                    self.condstore = true;
                }
                self.request(
                    Request::Status(mailbox.clone()),
                    Pending::Status {
                        tag,
                        mailbox,
                        items,
                    },
                );
            }
            CommandBody::Append(_) => {
                // The framer handles APPEND before parsing; a whole APPEND line without its
                // literal is a syntax error.
                self.write(format!("{tag} BAD APPEND needs a message literal"));
            }
            CommandBody::Close => self.close_mailbox(tag, true),
            CommandBody::Unselect => self.close_mailbox(tag, false),
            CommandBody::Expunge(set) => {
                if self.selected().is_some_and(|(_, ro)| ro) {
                    self.write(format!("{tag} NO [READ-ONLY] The mailbox is read-only"));
                    return;
                }
                let uids = set.map(|s| self.resolve(&s, true));
                self.request(
                    Request::Expunge { uids },
                    Pending::Expunge { tag, close: false },
                );
            }
            CommandBody::Search(cmd) => self.search(tag, cmd),
            CommandBody::Fetch(cmd) => self.fetch_command(tag, cmd, now),
            CommandBody::Store(cmd) => {
                if self.selected().is_some_and(|(_, ro)| ro) {
                    self.write(format!("{tag} NO [READ-ONLY] The mailbox is read-only"));
                    return;
                }
                if cmd.unchanged_since.is_some() {
                    self.condstore = true;
                }
                let uids = self.resolve(&cmd.set, cmd.uid);
                let op = match cmd.op {
                    StoreOp::Add => FlagChange::Add,
                    StoreOp::Remove => FlagChange::Remove,
                    StoreOp::Replace => FlagChange::Replace,
                };
                if cmd
                    .flags
                    .iter()
                    .any(|f| matches!(f, crate::syntax::Flag::Recent))
                {
                    self.write(format!("{tag} BAD \\Recent cannot be stored"));
                    return;
                }
                let flags = Flags::from_list(&cmd.flags);
                self.request(
                    Request::Store {
                        uids,
                        op,
                        flags,
                        unchanged_since: cmd.unchanged_since,
                    },
                    Pending::Store {
                        tag,
                        uid: cmd.uid,
                        silent: cmd.silent,
                    },
                );
            }
            CommandBody::Copy {
                uid,
                set,
                mailbox,
                moving,
            } => {
                if moving && self.selected().is_some_and(|(_, ro)| ro) {
                    self.write(format!("{tag} NO [READ-ONLY] The mailbox is read-only"));
                    return;
                }
                if let Some(why) = mailbox_name_problem(&mailbox) {
                    self.write(format!("{tag} NO [TRYCREATE] {why}"));
                    return;
                }
                let uids = self.resolve(&set, uid);
                self.request(
                    Request::Copy {
                        uids: uids.clone(),
                        mailbox,
                        moving,
                    },
                    Pending::Copy { tag, moving, uids },
                );
            }
            CommandBody::Idle => {
                self.write("+ idling");
                self.mode = Mode::Idle { tag };
                self.last_poll = now;
                self.announce(true);
            }
        }
    }

    fn check_state(&self, body: &CommandBody) -> Result<(), StateError> {
        use CommandBody as C;
        let authenticated = matches!(self.state, State::Authenticated | State::Selected(_));
        let selected = matches!(self.state, State::Selected(_));
        match body {
            C::Capability | C::Noop | C::Logout | C::Id(_) => Ok(()),
            C::StartTls | C::Login { .. } | C::Authenticate { .. } => {
                if authenticated {
                    Err(StateError::Authenticated)
                } else {
                    Ok(())
                }
            }
            C::Check
            | C::Close
            | C::Unselect
            | C::Expunge(_)
            | C::Search(_)
            | C::Fetch(_)
            | C::Store(_)
            | C::Copy { .. } => {
                if selected {
                    Ok(())
                } else if authenticated {
                    Err(StateError::NotSelected)
                } else {
                    Err(StateError::NotAuthenticated)
                }
            }
            _ => {
                if authenticated {
                    Ok(())
                } else {
                    Err(StateError::NotAuthenticated)
                }
            }
        }
    }

    fn authenticate(&mut self, tag: String, mechanism: &str, initial: Option<Vec<u8>>) {
        let Some(mech) = Mechanism::parse(mechanism).filter(|m| *m == Mechanism::Plain) else {
            self.write(format!(
                "{tag} NO [CANNOT] Unsupported authentication mechanism"
            ));
            return;
        };
        if !self.login_allowed() {
            self.write(format!(
                "{tag} NO [PRIVACYREQUIRED] Use STARTTLS before logging in"
            ));
            return;
        }
        let (exchange, step) = Exchange::start(mech, initial.as_deref());
        self.sasl_step(tag, exchange, step);
    }

    pub(super) fn sasl_line(&mut self, tag: String, mut exchange: Exchange, line: &[u8]) {
        let step = exchange.respond(line);
        self.sasl_step(tag, exchange, step);
    }

    fn sasl_step(&mut self, tag: String, exchange: Exchange, step: Step) {
        match step {
            Step::Challenge(c) => {
                self.write(format!("+ {}", base64::encode(&c)));
                self.mode = Mode::Sasl { tag, exchange };
            }
            Step::Done(credentials) => {
                self.request(Request::Login(credentials), Pending::Login { tag })
            }
            // RFC 3501 6.2.2: a cancelled exchange is answered BAD, as is a response that is
            // not base64.
            Step::Failed(SaslError::Cancelled) => {
                self.write(format!("{tag} BAD Authentication cancelled"))
            }
            Step::Failed(SaslError::BadBase64) => {
                self.write(format!("{tag} BAD The response is not base64"))
            }
            Step::Failed(e) => self.write(format!("{tag} NO [AUTHENTICATIONFAILED] {e}")),
        }
    }

    /// APPEND, once its message literal is announced.
    pub(super) fn append(&mut self, tag: String, a: AppendCommand) {
        let not_authenticated = matches!(self.state, State::NotAuthenticated);
        let refusal = if not_authenticated {
            Some(format!("{tag} BAD Log in first"))
        } else if let Some(why) = mailbox_name_problem(&a.mailbox) {
            Some(format!("{tag} NO [TRYCREATE] {why}"))
        } else if a.size > self.config.append_limit {
            Some(format!(
                "{tag} NO [TOOBIG] The message is larger than APPENDLIMIT={}",
                self.config.append_limit
            ))
        } else {
            None
        };
        if let Some(reply) = refusal {
            self.refuse_literal(a.size, a.non_sync, reply);
            return;
        }
        let flags = Flags::from_list(&a.flags);
        self.request(
            Request::AppendStart {
                mailbox: a.mailbox,
                flags,
                date: a.date,
                size: a.size,
            },
            Pending::AppendStart {
                tag,
                size: a.size,
                non_sync: a.non_sync,
            },
        );
    }

    fn close_mailbox(&mut self, tag: String, expunge: bool) {
        let writable = self.selected().is_some_and(|(_, ro)| !ro);
        if expunge && writable {
            // RFC 3501 6.4.2: CLOSE expunges silently.
            self.request(
                Request::Expunge { uids: None },
                Pending::Expunge { tag, close: true },
            );
            return;
        }
        self.events.push_back(crate::event::Event::Deselected);
        self.state = State::Authenticated;
        let verb = if expunge {
            "CLOSE completed"
        } else {
            "UNSELECT completed"
        };
        self.write(format!("{tag} OK {verb}"));
    }

    /// The UIDs a set names in the selected mailbox: by sequence number or by UID.
    pub(super) fn resolve(&self, set: &SequenceSet, uid: bool) -> Vec<u32> {
        let State::Selected(view) = &self.state else {
            return Vec::new();
        };
        if uid {
            let last = view.last_uid();
            match set {
                SequenceSet::Saved => view
                    .saved
                    .iter()
                    .copied()
                    .filter(|u| view.seq_of(*u).is_some())
                    .collect(),
                _ => view
                    .messages
                    .iter()
                    .map(|m| m.uid)
                    .filter(|&u| set.contains(u, last, &[]))
                    .collect(),
            }
        } else {
            let saved_seqs: Vec<u32> = view.saved.iter().filter_map(|u| view.seq_of(*u)).collect();
            set.resolve(view.len(), &saved_seqs)
                .into_iter()
                .filter_map(|seq| view.get(seq).map(|m| m.uid))
                .collect()
        }
    }

    fn search(&mut self, tag: String, cmd: crate::syntax::SearchCommand) {
        let State::Selected(view) = &self.state else {
            return;
        };
        let saved_seqs: Vec<u32> = view.saved.iter().filter_map(|u| view.seq_of(*u)).collect();
        let mut job = SearchJob::new(
            cmd.key.clone(),
            view.len(),
            view.last_uid(),
            view.saved.clone(),
            saved_seqs,
        );
        for (i, m) in view.messages.iter().enumerate() {
            if !view.is_expunged(m.uid) {
                job.push(i as u32 + 1, m.clone(), view.is_recent(m.uid));
            }
        }
        if job.uses_modseq() {
            self.condstore = true;
        }
        if job.reads_messages() {
            self.request(Request::Search(Box::new(job)), Pending::Search { tag, cmd });
        } else {
            let uids = job.run(&mut NoSource);
            self.searched(tag, cmd, &job, uids);
        }
    }

    fn fetch_command(&mut self, tag: String, cmd: crate::syntax::FetchCommand, _now: Instant) {
        if cmd.items.contains(&FetchItem::ModSeq) {
            self.condstore = true;
        }
        if cmd.vanished && !self.qresync {
            self.write(format!("{tag} BAD Enable QRESYNC first (RFC 7162 3.2.6)"));
            return;
        }
        let uids = self.resolve(&cmd.set, cmd.uid);
        let State::Selected(view) = &self.state else {
            return;
        };
        let mark_seen = !view.read_only && cmd.items.iter().any(FetchItem::sets_seen);
        let mut job = FetchJob::new(cmd.items.clone(), cmd.uid, self.condstore, mark_seen);
        for uid in &uids {
            let Some(seq) = view.seq_of(*uid) else {
                continue;
            };
            let Some(m) = view.get(seq) else { continue };
            if cmd.changed_since.is_some_and(|since| m.modseq <= since) {
                continue;
            }
            job.push(seq, m.clone(), view.is_recent(*uid));
        }
        if cmd.vanished
            && let Some(since) = cmd.changed_since
        {
            job.set_vanished_since(since);
        }
        let needs_host = mark_seen
            || cmd.vanished
            || cmd.items.iter().any(|i| {
                !matches!(
                    i,
                    FetchItem::Flags
                        | FetchItem::Uid
                        | FetchItem::ModSeq
                        | FetchItem::Rfc822Size
                        | FetchItem::InternalDate
                )
            });
        if needs_host {
            self.request(
                Request::Fetch(Box::new(job)),
                Pending::Fetch {
                    tag,
                    uid: cmd.uid,
                    first: true,
                },
            );
        } else {
            let mut out = Vec::new();
            while !job.fill(&mut NoSource, &mut out, usize::MAX) {}
            self.out.extend_from_slice(&out);
            // RFC 3501 7.4.1: no EXPUNGE while answering FETCH; UID FETCH may.
            self.complete(&tag, "OK", None, "FETCH completed", cmd.uid);
        }
    }
}
