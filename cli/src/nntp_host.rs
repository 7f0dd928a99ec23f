//! The NNTP host: answers the NNTP core's requests from the notices of the logged-in user's
//! mailbox. Every request that touches the disk runs as [`Work`] off the event loop; a user
//! sees only its own group, whatever name or message-id it asks for.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use mailstore::Mailbox;
use nntp_core::syntax::year_of;
use nntp_core::{Answer, Event, Request, ServerConfig, ServerSession, Ticket};
use notices::{Notices, group_of};
use session_api::{Completion, ConnInfo, Handler, Notifier, Service, Work};

use crate::imap_host::user_mailbox;
use crate::logins::{Checked, Logins};

/// What every NNTP connection shares.
pub(crate) struct NntpService {
    pub config: Arc<ServerConfig>,
    /// The same configuration with passwords allowed over plaintext, for loopback peers when
    /// the operator asked for it (`--allow-plaintext-auth-on-loopback`).
    pub loopback_config: Option<Arc<ServerConfig>>,
    /// Whether this listener is implicit TLS (NNTPS).
    pub implicit_tls: bool,
    pub logins: Arc<Logins>,
    pub notices: Arc<Notices>,
}

impl Service for NntpService {
    type Handler = NntpHandler;

    fn open(
        &self,
        conn: &ConnInfo,
        notifier: Notifier<NntpNotice>,
        now: Instant,
    ) -> (ServerSession, NntpHandler) {
        let config = match &self.loopback_config {
            Some(c) if conn.peer.ip().is_loopback() => c,
            _ => &self.config,
        };
        tracing::debug!(peer = %conn.peer, "NNTP connection");
        let session = ServerSession::new(config.clone(), self.implicit_tls, now);
        let handler = NntpHandler {
            logins: self.logins.clone(),
            notices: self.notices.clone(),
            peer: conn.peer,
            notifier,
            user: None,
        };
        (session, handler)
    }
}

/// What wakes an NNTP connection from elsewhere.
#[derive(Debug)]
pub(crate) enum NntpNotice {
    /// A failed login's delay is over: refuse it now.
    LoginRefused(Ticket),
}

/// One NNTP connection's host state.
pub(crate) struct NntpHandler {
    logins: Arc<Logins>,
    notices: Arc<Notices>,
    peer: SocketAddr,
    notifier: Notifier<NntpNotice>,
    /// The logged-in user's mailbox.
    user: Option<Mailbox>,
}

impl Handler for NntpHandler {
    type Session = ServerSession;
    type Notice = NntpNotice;

    fn on_event(
        &mut self,
        session: &mut ServerSession,
        event: Event,
        now: Instant,
    ) -> Option<Work<Self>> {
        match event {
            Event::Request { ticket, request } => self.request(session, ticket, request, now),
            Event::Violation(v) => {
                tracing::debug!(peer = %self.peer, violation = %v, "NNTP protocol violation");
                None
            }
            _ => None,
        }
    }

    fn on_notice(
        &mut self,
        session: &mut ServerSession,
        notice: NntpNotice,
        now: Instant,
    ) -> Option<Work<Self>> {
        let NntpNotice::LoginRefused(ticket) = notice;
        session.answer(ticket, Answer::LoginRefused, now);
        None
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl NntpHandler {
    fn request(
        &mut self,
        session: &mut ServerSession,
        ticket: Ticket,
        request: Request,
        now: Instant,
    ) -> Option<Work<Self>> {
        let reply = move |answer: Answer| -> Completion<NntpHandler> {
            Completion::new(move |_h: &mut NntpHandler, s: &mut ServerSession, now| {
                s.answer(ticket, answer, now)
            })
        };
        match request {
            Request::Login(credentials) => {
                let logins = self.logins.clone();
                let peer = self.peer.ip();
                return Some(Work::new(move || {
                    let checked = logins.check(&credentials, peer);
                    Completion::new(move |h: &mut NntpHandler, s: &mut ServerSession, now| {
                        match checked {
                            Checked::Ok(login) => match user_mailbox(&login.user) {
                                Some(m) => {
                                    tracing::info!(peer = %h.peer, user = %login.user, "NNTP login");
                                    h.user = Some(m);
                                    s.answer(ticket, Answer::LoggedIn, now);
                                }
                                None => s.answer(ticket, Answer::LoginRefused, now),
                            },
                            Checked::Refused { delay } => {
                                let notifier = h.notifier.clone();
                                h.logins.after(delay, move || {
                                    notifier.notify(NntpNotice::LoginRefused(ticket));
                                });
                            }
                        }
                    })
                }));
            }
            Request::Date => {
                session.answer(ticket, Answer::Date(unix_now()), now);
                return None;
            }
            _ => {}
        }
        let Some(user) = self.user.clone() else {
            // The core asks nothing else before a login.
            session.answer(ticket, Answer::Failed("Not logged in".into()), now);
            return None;
        };
        // What is in memory is answered here at once; the rest (and anything that may touch
        // the disk or wait for the notifier) goes off the loop.
        let now_answer = match &request {
            Request::Articles { group, first, last } if *group == group_of(&user) => self
                .notices
                .articles_now(&user, *first, *last)
                .map(Answer::Articles),
            Request::ByMessageId(id) => self
                .notices
                .by_message_id_now(&user, id)
                .map(|a| Answer::Articles(a.into_iter().collect())),
            _ => None,
        };
        if let Some(answer) = now_answer {
            session.answer(ticket, answer, now);
            return None;
        }
        let notices = self.notices.clone();
        let failed = move |e: notices::NoticeError| {
            tracing::warn!(error = %e, "NNTP: notices unavailable");
            Answer::Failed("Notices are unavailable now; try again later".into())
        };
        Some(Work::new(move || {
            let answer = match request {
                Request::Groups { created_since } => match notices.group(&user) {
                    Ok(view) => {
                        let since = created_since.map(|d| d.unix_seconds(year_of(unix_now())));
                        let fresh = since.is_none_or(|s| view.info.created >= s);
                        Answer::Groups(if fresh { vec![view.info] } else { Vec::new() })
                    }
                    Err(e) => failed(e),
                },
                Request::Group(name) if name == group_of(&user) => match notices.group(&user) {
                    Ok(view) => Answer::Group(Some(Box::new(view))),
                    Err(e) => failed(e),
                },
                // Another user's group, or none: as if it did not exist.
                Request::Group(_) => Answer::Group(None),
                Request::Articles { group, first, last } if group == group_of(&user) => {
                    match notices.articles(&user, first, last) {
                        Ok(a) => Answer::Articles(a),
                        Err(e) => failed(e),
                    }
                }
                Request::Articles { .. } => Answer::Articles(Vec::new()),
                Request::ByMessageId(id) => match notices.by_message_id(&user, &id) {
                    Ok(a) => Answer::Articles(a.into_iter().collect()),
                    Err(e) => failed(e),
                },
                Request::NewNews { since } => {
                    let since = since.unix_seconds(year_of(unix_now()));
                    match notices.made_since(&user, since) {
                        Ok(ids) => {
                            let group = group_of(&user);
                            Answer::MessageIds(
                                ids.into_iter().map(|id| (group.clone(), id)).collect(),
                            )
                        }
                        Err(e) => failed(e),
                    }
                }
                _ => Answer::Failed("Not supported".into()),
            };
            reply(answer)
        }))
    }
}
