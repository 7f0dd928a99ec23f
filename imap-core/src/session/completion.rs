//! The host's answers, turned into responses; and the end of each command.

use std::time::Instant;

use super::view::{Announce, View, write_flags_fetch};
use super::{Mode, Pending, ServerSession, State};
use crate::event::{Answer, Event, MessageInfo, Request, SelectedMailbox};
use crate::fetch::FetchJob;
use crate::list;
use crate::search::SearchJob;
use crate::syntax::{SearchCommand, compact_set, render};

/// What a host's run of [`FetchJob::fill`] produced: see
/// [`ServerSession::fetch_progress`].
#[derive(Debug)]
pub struct FetchProgress {
    /// The rendered responses.
    pub output: Vec<u8>,
    /// The job, to continue or (when [`FetchJob::is_done`]) to finish.
    pub job: Box<FetchJob>,
}

impl ServerSession {
    /// Gives back a [`Request::Fetch`]'s job after [`FetchJob::fill`] ran: the output goes to
    /// the client, and the session asks again (with the same ticket) until the job is done.
    pub fn fetch_progress(&mut self, ticket: crate::Ticket, progress: FetchProgress, now: Instant) {
        let Some((t, pending)) = self.waiting.take() else {
            return;
        };
        let Pending::Fetch { tag, uid, first } = pending else {
            self.waiting = Some((t, pending));
            return;
        };
        if t != ticket {
            self.waiting = Some((t, Pending::Fetch { tag, uid, first }));
            return;
        }
        self.last_input = now;
        let mut job = progress.job;
        if first {
            let vanished = job.take_vanished();
            if !vanished.is_empty() {
                self.write(format!("* VANISHED (EARLIER) {}", compact_set(&vanished)));
            }
        }
        self.out.extend_from_slice(&progress.output);
        if let State::Selected(view) = &mut self.state {
            for info in job.changed_flags() {
                view.set_flags(info);
            }
        }
        if !job.is_done() && !self.closed {
            self.fetch = Some((ticket, job));
            self.fetch_tag = Some(tag);
            self.fetch_uid = uid;
            return;
        }
        if job.had_missing() {
            self.complete(
                &tag,
                "NO",
                Some("EXPUNGEISSUED"),
                "Some of the requested messages no longer exist",
                uid,
            );
        } else {
            self.complete(&tag, "OK", None, "FETCH completed", uid);
        }
        self.after_answer();
    }

    /// Writes the announcements allowed now, then the tagged completion.
    pub(super) fn complete(
        &mut self,
        tag: &str,
        status: &str,
        code: Option<&str>,
        text: &str,
        expunge_allowed: bool,
    ) {
        self.announce(expunge_allowed);
        match code {
            Some(c) => self.write(format!("{tag} {status} [{c}] {text}")),
            None => self.write(format!("{tag} {status} {text}")),
        }
    }

    pub(super) fn announce(&mut self, expunge_allowed: bool) {
        let a = Announce {
            expunge_allowed,
            condstore: self.condstore,
            qresync: self.qresync,
        };
        if let State::Selected(view) = &mut self.state {
            view.announce(a, &mut self.out);
        }
    }

    pub(super) fn apply(&mut self, pending: Pending, answer: Answer, _now: Instant) {
        // A NO is the same for every request but a login or an APPEND under way.
        if let Answer::No { code, text } = &answer {
            let code = code.clone();
            let text = text.clone();
            match pending {
                Pending::AppendStart {
                    tag,
                    size,
                    non_sync,
                } => {
                    let reply = match &code {
                        Some(c) => format!("{tag} NO [{c}] {text}"),
                        None => format!("{tag} NO {text}"),
                    };
                    self.refuse_literal(size, non_sync, reply);
                }
                Pending::Sync { tag: None, .. } => {}
                Pending::Login { tag }
                | Pending::Select { tag, .. }
                | Pending::Simple { tag, .. }
                | Pending::List { tag, .. }
                | Pending::Status { tag, .. }
                | Pending::AppendEnd { tag }
                | Pending::Sync { tag: Some(tag), .. }
                | Pending::Fetch { tag, .. }
                | Pending::Search { tag, .. }
                | Pending::Store { tag, .. }
                | Pending::Copy { tag, .. }
                | Pending::Expunge { tag, .. } => {
                    self.complete(&tag, "NO", code.as_deref(), &text, false);
                }
            }
            return;
        }
        match (pending, answer) {
            (Pending::Login { tag }, Answer::LoggedIn) => {
                self.state = State::Authenticated;
                let caps = self.capabilities();
                self.write(format!("{tag} OK [CAPABILITY {caps}] Logged in"));
            }
            (Pending::Login { tag }, Answer::LoginRefused) => {
                self.write(format!(
                    "{tag} NO [AUTHENTICATIONFAILED] Authentication failed"
                ));
            }
            (
                Pending::Select {
                    tag,
                    name,
                    read_only,
                    qresync,
                },
                Answer::Selected(m),
            ) => {
                self.selected_mailbox(tag, name, read_only, qresync, *m);
            }
            (Pending::Simple { tag, verb }, Answer::Done) => {
                self.complete(&tag, "OK", None, &format!("{verb} completed"), true);
            }
            (Pending::List { tag, cmd }, Answer::Mailboxes(entries)) => {
                let verb = if cmd.lsub { "LSUB" } else { "LIST" };
                let parents = list::implied_parents(&entries);
                for l in list::select(&cmd, &entries, &parents) {
                    let name = render::astring(l.name);
                    self.write(format!(
                        "* {verb} ({}) \".\" {name}",
                        l.attributes.join(" ")
                    ));
                    if let (Some(items), Some(entry)) = (&cmd.return_status, l.entry)
                        && let Some(status) = &entry.status
                        && entry.exists
                    {
                        let mut line = format!("* STATUS {name} ").into_bytes();
                        status.write(items, &mut line);
                        self.write(line);
                    }
                }
                self.complete(&tag, "OK", None, &format!("{verb} completed"), true);
            }
            (
                Pending::Status {
                    tag,
                    mailbox,
                    items,
                },
                Answer::Status(status),
            ) => {
                let mut line = format!("* STATUS {} ", render::astring(&mailbox)).into_bytes();
                status.write(&items, &mut line);
                self.write(line);
                self.complete(&tag, "OK", None, "STATUS completed", true);
            }
            (
                Pending::AppendStart {
                    tag,
                    size,
                    non_sync,
                },
                Answer::Done,
            ) => {
                if !non_sync {
                    self.write("+ Ready for the message");
                }
                if size == 0 {
                    self.mode = Mode::AfterAppend { tag };
                } else {
                    self.mode = Mode::AppendData {
                        remaining: size,
                        tag,
                    };
                }
            }
            (Pending::AppendEnd { tag }, Answer::Appended { uid_validity, uid }) => {
                self.complete(
                    &tag,
                    "OK",
                    Some(&format!("APPENDUID {uid_validity} {uid}")),
                    "APPEND completed",
                    true,
                );
            }
            (Pending::Sync { tag, verb }, Answer::Changes(changes)) => {
                if let State::Selected(view) = &mut self.state {
                    view.absorb(changes);
                }
                match tag {
                    Some(tag) => {
                        self.complete(&tag, "OK", None, &format!("{verb} completed"), true)
                    }
                    // An IDLE poll: announce at once.
                    None => self.announce(true),
                }
            }
            (Pending::Search { tag, cmd }, Answer::Searched(uids)) => {
                // The job went to the host; rebuild what the answer needs from the view.
                let State::Selected(view) = &self.state else {
                    return;
                };
                let job = SearchJob::new(
                    cmd.key.clone(),
                    view.len(),
                    view.last_uid(),
                    Vec::new(),
                    Vec::new(),
                );
                let mut job = job;
                for (i, m) in view.messages.iter().enumerate() {
                    if uids.binary_search(&m.uid).is_ok() {
                        job.push(i as u32 + 1, m.clone(), false);
                    }
                }
                self.searched(tag, cmd, &job, uids);
            }
            (Pending::Store { tag, uid, silent }, Answer::Stored { updated, modified }) => {
                self.stored(tag, uid, silent, updated, modified);
            }
            (
                Pending::Copy { tag, moving, uids },
                Answer::Copied {
                    uid_validity,
                    pairs,
                },
            ) => {
                let code = (!pairs.is_empty()).then(|| {
                    let src: Vec<u32> = pairs.iter().map(|p| p.0).collect();
                    let dst: Vec<u32> = pairs.iter().map(|p| p.1).collect();
                    format!(
                        "COPYUID {uid_validity} {} {}",
                        compact_set(&src),
                        compact_set(&dst)
                    )
                });
                if moving {
                    // RFC 6851 section 4.3: COPYUID in an untagged OK, then the expunges.
                    if let Some(c) = &code {
                        self.write(format!("* OK [{c}] Moved"));
                    }
                    if let State::Selected(view) = &mut self.state {
                        view.expunged(&uids);
                    }
                    self.complete(&tag, "OK", None, "MOVE completed", true);
                } else {
                    self.complete(&tag, "OK", code.as_deref(), "COPY completed", true);
                }
            }
            (Pending::Expunge { tag, close }, Answer::Expunged(uids)) => {
                if close {
                    self.events.push_back(Event::Deselected);
                    self.state = State::Authenticated;
                    self.write(format!("{tag} OK CLOSE completed"));
                } else {
                    if let State::Selected(view) = &mut self.state {
                        view.expunged(&uids);
                    }
                    self.complete(&tag, "OK", None, "EXPUNGE completed", true);
                }
            }
            (pending, answer) => {
                // The embedding program answered with the wrong kind: do not leave the client
                // hanging.
                let tag = pending_tag(&pending);
                self.violation(format!("host answered {pending:?} with {answer:?}"));
                if let Some(tag) = tag {
                    self.write(format!("{tag} NO [SERVERBUG] Internal error"));
                }
            }
        }
    }

    fn selected_mailbox(
        &mut self,
        tag: String,
        name: String,
        read_only: bool,
        qresync: Option<crate::syntax::QresyncParams>,
        m: SelectedMailbox,
    ) {
        let vanished = m.vanished.clone();
        let view = View::new(name, read_only, m);
        let mut flags = String::from("\\Answered \\Flagged \\Deleted \\Seen \\Draft");
        for k in &view.keywords {
            flags.push(' ');
            flags.push_str(k);
        }
        self.write(format!("* FLAGS ({flags})"));
        if view.read_only {
            self.write("* OK [PERMANENTFLAGS ()] Read-only mailbox");
        } else {
            self.write(format!(
                "* OK [PERMANENTFLAGS ({flags} \\*)] Flags permitted"
            ));
        }
        self.write(format!("* {} EXISTS", view.len()));
        let recent = view
            .messages
            .iter()
            .filter(|m| view.is_recent(m.uid))
            .count();
        self.write(format!("* {recent} RECENT"));
        if let Some(seq) = view.messages.iter().position(|m| !m.flags.seen) {
            self.write(format!("* OK [UNSEEN {}] First unseen", seq + 1));
        }
        self.write(format!(
            "* OK [UIDVALIDITY {}] UIDs valid",
            view.uid_validity
        ));
        self.write(format!(
            "* OK [UIDNEXT {}] Predicted next UID",
            view.uid_next
        ));
        // RFC 7162 3.1.2.1: every SELECT of a server with CONDSTORE says HIGHESTMODSEQ.
        self.write(format!(
            "* OK [HIGHESTMODSEQ {}] Highest",
            view.highest_modseq
        ));
        if let Some(q) = qresync.filter(|q| q.uid_validity == view.uid_validity) {
            // RFC 7162 3.2.5.2: what vanished, then what changed, since the client's point.
            let known = |uid: u32| {
                q.known_uids
                    .as_ref()
                    .is_none_or(|k| k.contains(uid, u32::MAX, &[]))
            };
            let gone: Vec<u32> = vanished.into_iter().filter(|u| known(*u)).collect();
            if !gone.is_empty() {
                self.write(format!("* VANISHED (EARLIER) {}", compact_set(&gone)));
            }
            for (i, msg) in view.messages.iter().enumerate() {
                if msg.modseq > q.mod_seq && known(msg.uid) {
                    write_flags_fetch(
                        i as u32 + 1,
                        msg,
                        view.is_recent(msg.uid),
                        true,
                        true,
                        &mut self.out,
                    );
                }
            }
        }
        let access = if view.read_only {
            "READ-ONLY"
        } else {
            "READ-WRITE"
        };
        let verb = if read_only { "EXAMINE" } else { "SELECT" };
        self.state = State::Selected(Box::new(view));
        self.write(format!("{tag} OK [{access}] {verb} completed"));
    }

    pub(super) fn searched(
        &mut self,
        tag: String,
        cmd: SearchCommand,
        job: &SearchJob,
        uids: Vec<u32>,
    ) {
        let State::Selected(view) = &mut self.state else {
            return;
        };
        let numbers: Vec<u32> = if cmd.uid {
            uids.clone()
        } else {
            uids.iter().filter_map(|u| view.seq_of(*u)).collect()
        };
        let modseq = job
            .uses_modseq()
            .then(|| job.highest_modseq(&uids))
            .filter(|m| *m > 0);
        match cmd.ret {
            None => {
                let mut line = String::from("* SEARCH");
                for n in &numbers {
                    line.push_str(&format!(" {n}"));
                }
                if let Some(m) = modseq.filter(|_| !numbers.is_empty()) {
                    line.push_str(&format!(" (MODSEQ {m})"));
                }
                self.write(line);
            }
            Some(r) => {
                if r.save {
                    view.saved = uids.clone();
                }
                // RFC 5182 section 2.1: SAVE alone gives no ESEARCH response.
                if r.min || r.max || r.all || r.count {
                    let mut line = format!("* ESEARCH (TAG {})", render::quoted(&tag));
                    if cmd.uid {
                        line.push_str(" UID");
                    }
                    if r.min
                        && let Some(n) = numbers.first()
                    {
                        line.push_str(&format!(" MIN {n}"));
                    }
                    if r.max
                        && let Some(n) = numbers.last()
                    {
                        line.push_str(&format!(" MAX {n}"));
                    }
                    if r.all && !numbers.is_empty() {
                        line.push_str(&format!(" ALL {}", compact_set(&numbers)));
                    }
                    if r.count {
                        line.push_str(&format!(" COUNT {}", numbers.len()));
                    }
                    if let Some(m) = modseq.filter(|_| !numbers.is_empty()) {
                        line.push_str(&format!(" MODSEQ {m}"));
                    }
                    self.write(line);
                }
            }
        }
        self.complete(&tag, "OK", None, "SEARCH completed", cmd.uid);
    }

    fn stored(
        &mut self,
        tag: String,
        uid: bool,
        silent: bool,
        updated: Vec<MessageInfo>,
        modified: Vec<u32>,
    ) {
        let (condstore, qresync) = (self.condstore, self.qresync);
        let State::Selected(view) = &mut self.state else {
            return;
        };
        let mut out = Vec::new();
        for info in &updated {
            view.set_flags(info);
            // RFC 7162 3.1.3: with CONDSTORE the FETCH goes out even for .SILENT.
            if silent && !condstore {
                continue;
            }
            if let Some(seq) = view.seq_of(info.uid)
                && let Some(m) = view.get(seq)
            {
                write_flags_fetch(
                    seq,
                    m,
                    view.is_recent(info.uid),
                    condstore,
                    uid || qresync,
                    &mut out,
                );
            }
        }
        let modified: Vec<u32> = if uid {
            modified
        } else {
            modified.iter().filter_map(|u| view.seq_of(*u)).collect()
        };
        self.out.extend_from_slice(&out);
        if modified.is_empty() {
            self.complete(&tag, "OK", None, "STORE completed", uid);
        } else {
            let code = format!("MODIFIED {}", compact_set(&modified));
            self.complete(
                &tag,
                "OK",
                Some(&code),
                "Conditional STORE failed for some messages",
                uid,
            );
        }
    }
}

fn pending_tag(p: &Pending) -> Option<String> {
    match p {
        Pending::Login { tag }
        | Pending::Select { tag, .. }
        | Pending::Simple { tag, .. }
        | Pending::List { tag, .. }
        | Pending::Status { tag, .. }
        | Pending::AppendStart { tag, .. }
        | Pending::AppendEnd { tag }
        | Pending::Fetch { tag, .. }
        | Pending::Search { tag, .. }
        | Pending::Store { tag, .. }
        | Pending::Copy { tag, .. }
        | Pending::Expunge { tag, .. } => Some(tag.clone()),
        Pending::Sync { tag, .. } => tag.clone(),
    }
}

#[allow(dead_code)]
fn _assert_send(r: Request) -> impl Send {
    r
}
