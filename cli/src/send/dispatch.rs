//! The sending host: hands rows to client sessions as they become idle and records outcomes.
//!
//! Every connection's handler shares one [`Campaign`]: the queue of rows, the journal, the
//! results and the rate limit. A session that reports `Idle` gets the next row; one with no
//! rows left is told to QUIT. Deferred rows go to a retry list with exponential backoff and are
//! sent in a later round of connections.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mailmerge::{RenderContext, Row, Template};
use session_api::{Completion, Handler, Work};
use smtp_core::Reply;
use smtp_core::address::{parse_forward_path, parse_reverse_path};
use smtp_core::client::{ClientEvent, ClientSession, CloseReason, Failure, JobId, Message};

use super::engine::{Loader, Observer};
use super::journal::Journal;
use super::report::{Report, Status};

/// A row waiting to be sent, and how often it was tried.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub row: usize,
    pub attempt: u32,
    /// On a retry after some recipients were deferred (4xx): only these addresses.
    pub only: Option<Vec<String>>,
}

/// Everything the connections of one `buzon send` run share.
pub(crate) struct Campaign {
    pub rows: Vec<Row>,
    pub template: Template,
    pub from: Option<String>,
    /// Right-hand side of Message-IDs.
    pub id_domain: String,
    /// Reads the files the template attaches.
    pub load: Loader,
    /// Send every message to this address instead of its recipients (a test message to
    /// oneself; the headers still name the row's recipients).
    pub redirect: Option<String>,
    pub retries: u32,
    /// Hears every outcome and every line meant for the user.
    pub observer: Arc<dyn Observer>,
    pub state: Mutex<State>,
    /// Minimum spacing between message starts (`--rate`).
    pub interval: Option<Duration>,
    /// Why the run must stop: a connection could not be made secure, or the login was
    /// refused (the same for every connection).
    pub fatal: Mutex<Option<String>>,
}

/// The mutable part of a [`Campaign`].
pub(crate) struct State {
    pub queue: VecDeque<Job>,
    pub retry: Vec<(Instant, Job)>,
    pub journal: Journal,
    pub report: Report,
    next_slot: Option<Instant>,
    /// Rows started, for unique Message-IDs.
    started: u64,
}

impl State {
    pub(crate) fn new(queue: VecDeque<Job>, journal: Journal, report: Report) -> Self {
        State {
            queue,
            retry: Vec::new(),
            journal,
            report,
            next_slot: None,
            started: 0,
        }
    }
}

impl Campaign {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking handler only poisons the lock; the data stays consistent line by line.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves retries that are due into the queue; returns when the next one is due.
    pub(crate) fn release_due_retries(&self, now: Instant) -> Option<Instant> {
        let mut st = self.lock();
        let (due, later): (Vec<_>, Vec<_>) = st.retry.drain(..).partition(|(t, _)| *t <= now);
        st.retry = later;
        st.queue.extend(due.into_iter().map(|(_, j)| j));
        st.retry.iter().map(|(t, _)| *t).min()
    }

    fn outcome(&self, job: &Job, status: Status, reply: &str) {
        let row = &self.rows[job.row];
        let mut st = self.lock();
        if matches!(status, Status::Sent | Status::Partial) {
            if let Err(e) = st.journal.record(row.index, &row.email) {
                tracing::error!(error = %e, "journal write failed");
            }
        } else if matches!(status, Status::Failed | Status::Invalid) {
            st.journal.clear(row.index, &row.email);
        }
        st.report
            .record(row.line, &row.email, status, reply, Some(row));
        drop(st);
        self.observer.settled(row.line, &row.email, status, reply);
    }

    /// A line for the user.
    pub(crate) fn say(&self, line: &str) {
        self.observer.say(line);
    }
}

/// One connection's host.
pub(crate) struct SendHandler {
    campaign: Arc<Campaign>,
    /// The session said Ready: TLS and the login, if any, are done.
    ready: bool,
    in_flight: BTreeMap<JobId, InFlight>,
    /// A rate-limited start found its row unusable: feed the next one after the completion.
    wants_feed: bool,
    /// A row waits for its rate-limit slot on a worker.
    waiting_for_slot: bool,
}

/// A submitted row.
struct InFlight {
    job: Job,
    /// The envelope recipients (plain addresses), to name refused ones.
    to: Vec<String>,
    refused: Vec<String>,
    /// Recipients refused with 4xx: worth another try.
    deferred: Vec<String>,
}

impl SendHandler {
    pub(crate) fn new(campaign: Arc<Campaign>) -> Self {
        SendHandler {
            campaign,
            ready: false,
            in_flight: BTreeMap::new(),
            wants_feed: false,
            waiting_for_slot: false,
        }
    }

    /// Gives an idle session its next row (after the rate limit's wait, if any), or says QUIT.
    fn feed(&mut self, session: &mut ClientSession, now: Instant) -> Option<Work<Self>> {
        loop {
            let c = self.campaign.clone();
            let mut st = c.lock();
            let Some(job) = st.queue.pop_front() else {
                drop(st);
                session.quit();
                return None;
            };
            // The slot is reserved now, so connections waiting at once never collide.
            let start_at = match c.interval {
                Some(interval) => {
                    let slot = st.next_slot.unwrap_or(now).max(now);
                    st.next_slot = Some(slot + interval);
                    slot
                }
                None => now,
            };
            st.started += 1;
            let serial = st.started;
            drop(st);
            if start_at > now {
                return Some(Work::new(move || {
                    std::thread::sleep(start_at.saturating_duration_since(Instant::now()));
                    Completion::new(move |h: &mut SendHandler, s: &mut ClientSession, _now| {
                        h.waiting_for_slot = false;
                        if !h.start(s, job, serial) {
                            h.wants_feed = true;
                        }
                    })
                }));
            }
            if self.start(session, job, serial) {
                return None;
            }
        }
    }

    /// Renders and submits one row; false if the row could not be rendered (recorded as
    /// invalid), so the caller moves on to the next.
    fn start(&mut self, session: &mut ClientSession, job: Job, serial: u64) -> bool {
        match self.render(&job, serial) {
            Ok(message) => {
                let row = &self.campaign.rows[job.row];
                self.campaign.lock().journal.start(row.index, &row.email);
                let to = message
                    .recipients
                    .iter()
                    .map(|r| r.to_string().trim_matches(['<', '>']).to_owned())
                    .collect();
                let id = session.submit(message);
                self.in_flight.insert(
                    id,
                    InFlight {
                        job,
                        to,
                        refused: Vec::new(),
                        deferred: Vec::new(),
                    },
                );
                true
            }
            Err(e) => {
                self.campaign.outcome(&job, Status::Invalid, &e);
                false
            }
        }
    }

    fn render(&self, job: &Job, serial: u64) -> Result<Message, String> {
        let c = &self.campaign;
        let row = &c.rows[job.row];
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let ctx = RenderContext {
            from: c.from.clone(),
            date: now.as_secs() as i64,
            message_id: format!(
                "<{}.{}.{}.{}@{}>",
                now.as_secs(),
                std::process::id(),
                row.index,
                serial,
                c.id_domain
            ),
        };
        let r = c
            .template
            .render(row, &ctx, &*c.load)
            .map_err(|e| e.to_string())?;
        let from = parse_reverse_path(&format!("<{}>", r.from))
            .map_err(|_| format!("bad sender address {:?}", r.from))?
            .0;
        let redirected;
        let wanted = match &c.redirect {
            Some(to) => {
                redirected = [to.clone()];
                &redirected[..]
            }
            None => &r.recipients[..],
        };
        let recipients = wanted
            .iter()
            .filter(|a| job.only.as_ref().is_none_or(|only| only.contains(a)))
            .map(|a| {
                parse_forward_path(&format!("<{a}>"))
                    .map(|(p, _)| p)
                    .map_err(|_| format!("bad recipient address {a:?}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Message::new(from, recipients, r.message))
    }

    /// Retries a transient failure or records the outcome; `detail` replaces the generic
    /// description (the refused recipients' replies).
    fn failed(&mut self, job: Job, failure: Failure, detail: Option<String>) {
        let c = &self.campaign;
        if matches!(failure, Failure::NotSent) {
            let row = &c.rows[job.row];
            let mut st = c.lock();
            st.journal.clear(row.index, &row.email);
            st.queue.push_front(job);
            return;
        }
        let text = detail.unwrap_or_else(|| describe(&failure));
        if !failure.is_permanent() && job.attempt < c.retries {
            // Exponential backoff: 1 s, 2 s, 4 s... capped at a minute.
            let delay =
                Duration::from_secs(1u64 << job.attempt.min(6)).min(Duration::from_secs(60));
            let retry = Job {
                attempt: job.attempt + 1,
                ..job.clone()
            };
            c.lock().retry.push((Instant::now() + delay, retry));
            tracing::debug!(row = job.row, attempt = job.attempt, %text, "deferred, will retry");
            return;
        }
        let status = if failure.is_permanent() {
            Status::Failed
        } else {
            Status::Deferred
        };
        c.outcome(&job, status, &text);
    }

    /// Retries the deferred recipients of a row that was otherwise delivered, if tries are
    /// left; returns whether it will.
    fn retry_deferred(&self, job: &Job, deferred: Vec<String>) -> bool {
        if deferred.is_empty() || job.attempt >= self.campaign.retries {
            return false;
        }
        let delay = Duration::from_secs(1u64 << job.attempt.min(6)).min(Duration::from_secs(60));
        let retry = Job {
            row: job.row,
            attempt: job.attempt + 1,
            only: Some(deferred),
        };
        self.campaign
            .lock()
            .retry
            .push((Instant::now() + delay, retry));
        true
    }
}

fn one_line(r: &Reply) -> String {
    r.to_string().replace("\r\n", " ").replace('\n', " ")
}

fn describe(f: &Failure) -> String {
    match f {
        Failure::Refused(r) => one_line(r),
        Failure::NoRecipientAccepted { .. } => "every recipient was refused".into(),
        Failure::Unsupported(why) => (*why).into(),
        Failure::ConnectionLost => "connection lost".into(),
        Failure::Timeout => "server timed out".into(),
        Failure::Protocol(why) => format!("protocol error: {why}"),
        Failure::NotSent => "not sent".into(),
        other => format!("{other:?}"),
    }
}

impl Handler for SendHandler {
    type Session = ClientSession;
    type Notice = ();

    fn on_event(
        &mut self,
        session: &mut ClientSession,
        event: ClientEvent,
        now: Instant,
    ) -> Option<Work<Self>> {
        match event {
            // Ready is always followed by Idle when nothing is queued: feeding on both would
            // take two rows for one connection. While a rate-limited start is pending, the
            // connection has its row already.
            ClientEvent::Idle if !self.waiting_for_slot => {
                let work = self.feed(session, now);
                self.waiting_for_slot = work.is_some();
                return work;
            }
            ClientEvent::Recipient { job, index, reply } => {
                if !reply.is_positive()
                    && let Some(f) = self.in_flight.get_mut(&job)
                {
                    let to = f.to.get(index).cloned().unwrap_or_default();
                    f.refused.push(format!("{to}: {}", one_line(&reply)));
                    if reply.is_transient() {
                        f.deferred.push(to);
                    }
                }
            }
            ClientEvent::Delivered { job, reply } => {
                if let Some(f) = self.in_flight.remove(&job) {
                    let (status, mut text) = if f.refused.is_empty() {
                        (Status::Sent, one_line(&reply))
                    } else {
                        let refused = f.refused.join("; ");
                        (
                            Status::Partial,
                            format!("{}; refused {refused}", one_line(&reply)),
                        )
                    };
                    let permanently_refused = f.refused.len() - f.deferred.len();
                    if permanently_refused > 0 {
                        self.campaign.lock().report.tally.refused_recipients += permanently_refused;
                    }
                    if self.retry_deferred(&f.job, f.deferred) {
                        text.push_str("; deferred recipients will be tried again");
                    }
                    self.campaign.outcome(&f.job, status, &text);
                }
            }
            ClientEvent::Failed { job, failure } => {
                if let Some(f) = self.in_flight.remove(&job) {
                    let detail = match &failure {
                        Failure::NoRecipientAccepted { .. } => Some(f.refused.join("; ")),
                        _ => None,
                    };
                    self.failed(f.job, failure, detail);
                }
            }
            ClientEvent::Greeting(r) if !r.is_positive() => {
                tracing::warn!(reply = %one_line(&r), "server refused the connection");
            }
            ClientEvent::Ready(_) => self.ready = true,
            ClientEvent::Closed(reason) => {
                tracing::debug!(?reason, "connection closed");
                let why = match reason {
                    CloseReason::AuthFailed(r) => Some(format!("login refused: {}", one_line(&r))),
                    CloseReason::StartTlsRefused(r) => {
                        Some(format!("STARTTLS refused: {}", one_line(&r)))
                    }
                    CloseReason::Insecure(why) => Some(why.to_owned()),
                    _ => None,
                };
                if let Some(why) = why {
                    self.campaign.set_fatal(why);
                }
            }
            _ => {}
        }
        None
    }

    fn after_completion(
        &mut self,
        session: &mut ClientSession,
        now: Instant,
    ) -> Option<Work<Self>> {
        if std::mem::take(&mut self.wants_feed) {
            let work = self.feed(session, now);
            self.waiting_for_slot = work.is_some();
            work
        } else {
            None
        }
    }

    fn on_close(&mut self) {
        // Rows handed to this connection whose outcome never came are tried again.
        let jobs: Vec<Job> = std::mem::take(&mut self.in_flight)
            .into_values()
            .map(|f| f.job)
            .collect();
        for job in jobs {
            self.failed(job, Failure::ConnectionLost, None);
        }
    }
}

impl Campaign {
    /// Stops the run with `why` (the first reason wins).
    pub(crate) fn set_fatal(&self, why: String) {
        let mut fatal = self.fatal.lock().unwrap_or_else(|e| e.into_inner());
        fatal.get_or_insert(why);
    }

    /// Why the run must stop, if it must.
    pub(crate) fn fatal(&self) -> Option<String> {
        self.fatal.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A connection that ended in error before it was ready failed its TLS handshake (a
/// certificate that does not verify, a server that does not speak TLS): that stops the run.
pub(crate) fn note_setup_failures(ended: impl Iterator<Item = conn_driver::Ended<SendHandler>>) {
    for e in ended {
        if let Some(error) = &e.error
            && !e.handler.ready
            && error.kind() == std::io::ErrorKind::InvalidData
        {
            e.handler
                .campaign
                .set_fatal(format!("TLS handshake failed: {error}"));
        }
    }
}
