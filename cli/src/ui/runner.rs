//! The page's Send and Test: runs of the `buzon send` engine on a thread of their own, their
//! state as the page sees it, and the stream of outcomes the page listens to.
//!
//! A run is one call of [`engine::run`]: Pause and Stop end it gracefully (messages in flight
//! get their replies), and Resume starts another over the same journal, so nobody is sent twice.
//! The results file is appended to across runs, and read back at start, so after a crash the
//! page shows every outcome recorded before it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context;
use mailmerge::Recipients;
use serde_json::{Value, json};

use super::lint::{self, Entry};
use super::workspace::{LastRun, Settings, TlsSetting, Workspace};
use crate::send::dispatch::{Campaign, Job, State};
use crate::send::engine::{self, Control, Ended, Observer, Plan};
use crate::send::journal::Journal;
use crate::send::report::{FailedRow, Report, Status, write_failed_csv};
use crate::send::security::{Security, SecurityArgs, TlsChoice};
use crate::settings::Runtime;

/// Where the page's run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunState {
    Idle,
    Running,
    Pausing,
    Paused,
    Stopping,
    Stopped,
    Done,
    /// A run was going when buzon went down.
    Interrupted,
}

impl RunState {
    fn as_str(self) -> &'static str {
        match self {
            RunState::Idle => "idle",
            RunState::Running => "running",
            RunState::Pausing => "pausing",
            RunState::Paused => "paused",
            RunState::Stopping => "stopping",
            RunState::Stopped => "stopped",
            RunState::Done => "done",
            RunState::Interrupted => "interrupted",
        }
    }

    fn is_going(self) -> bool {
        matches!(
            self,
            RunState::Running | RunState::Pausing | RunState::Stopping
        )
    }
}

/// One row's latest outcome.
#[derive(Debug, Clone)]
struct Outcome {
    seq: u64,
    line: u64,
    email: String,
    status: Status,
    reply: String,
}

impl Outcome {
    fn to_json(&self) -> Value {
        json!({"seq": self.seq, "line": self.line, "email": self.email,
               "status": self.status.as_str(), "reply": self.reply})
    }
}

/// What the page shows of the campaign.
struct Live {
    state: RunState,
    test: bool,
    /// Rows in the CSV, usable or not.
    total: usize,
    message: Option<String>,
    /// Latest outcome per row (line and address), by sequence number: the order they came.
    outcomes: BTreeMap<u64, Outcome>,
    /// Each row's latest outcome's sequence number.
    by_row: HashMap<(u64, String), u64>,
    seq: u64,
    control: Option<Arc<Control>>,
}

impl Live {
    fn record(&mut self, line: u64, email: &str, status: Status, reply: &str) {
        self.seq += 1;
        let outcome = Outcome {
            seq: self.seq,
            line,
            email: email.to_owned(),
            status,
            reply: reply.to_owned(),
        };
        // A row's new outcome replaces its old one and takes a new number, so `since` finds it.
        if let Some(old) = self.by_row.insert((line, email.to_owned()), self.seq) {
            self.outcomes.remove(&old);
        }
        self.outcomes.insert(self.seq, outcome);
    }

    /// The latest outcome of the row at `line` for `email`.
    fn latest(&self, line: u64, email: &str) -> Option<&Outcome> {
        let seq = self.by_row.get(&(line, email.to_owned()))?;
        self.outcomes.get(seq)
    }

    fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut c: BTreeMap<&'static str, usize> = [
            Status::Sent,
            Status::Partial,
            Status::Failed,
            Status::Deferred,
            Status::Invalid,
            Status::Skipped,
        ]
        .into_iter()
        .map(|s| (s.as_str(), 0))
        .collect();
        for o in self.outcomes.values() {
            *c.entry(o.status.as_str()).or_default() += 1;
        }
        c
    }

    /// Rows without a final outcome (deferred ones are tried again by the next run).
    fn pending(&self) -> usize {
        let settled = self
            .outcomes
            .values()
            .filter(|o| o.status != Status::Deferred)
            .count();
        self.total.saturating_sub(settled)
    }

    fn to_json(&self, with_results: bool) -> Value {
        let mut v = json!({
            "state": self.state.as_str(),
            "test": self.test,
            "total": self.total,
            "settled": self.outcomes.len(),
            "pending": self.pending(),
            "counts": self.counts(),
            "message": self.message,
            "seq": self.seq,
        });
        if with_results {
            v["results"] = self.outcomes.values().map(Outcome::to_json).collect();
        }
        v
    }
}

/// The campaign's live state, shared by the page's requests and the run's thread.
pub(crate) struct Hub {
    live: Mutex<Live>,
    changed: event_listener::Event,
}

impl Hub {
    /// The state found in the folder: the outcomes recorded so far and how the last run ended.
    pub(crate) fn load(ws: &Workspace, recipients: Option<&Recipients>) -> Hub {
        let mut live = Live {
            state: RunState::Idle,
            test: false,
            total: recipients.map_or(0, |r| r.rows.len() + r.skipped.len()),
            message: None,
            outcomes: BTreeMap::new(),
            by_row: HashMap::new(),
            seq: 0,
            control: None,
        };
        reload_results(&mut live, &ws.results_path());
        live.state = match ws.last_run() {
            LastRun::None if live.outcomes.is_empty() => RunState::Idle,
            LastRun::None | LastRun::Running => RunState::Interrupted,
            LastRun::Paused => RunState::Paused,
            LastRun::Stopped => RunState::Stopped,
            LastRun::Done => RunState::Done,
        };
        if live.state == RunState::Interrupted {
            live.message = Some(
                "The last run stopped before it finished (buzon or the computer went down). \
                 Resume sends only the rows not yet sent."
                    .into(),
            );
        }
        Hub {
            live: Mutex::new(live),
            changed: event_listener::Event::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut Live)) {
        f(&mut self.lock());
        self.changed.notify(usize::MAX);
    }

    /// The `campaign` object of the state.
    pub(crate) fn to_json(&self) -> Value {
        self.lock().to_json(true)
    }

    /// What a listener has not seen: the campaign (without results) and the outcomes after
    /// `since`; and a listener to wait on for the next change, made before reading so that no
    /// change is missed.
    pub(crate) fn since(&self, since: u64) -> (Value, Vec<Value>, event_listener::EventListener) {
        let listener = self.changed.listen();
        let live = self.lock();
        let new = live
            .outcomes
            .range(since.saturating_add(1)..)
            .map(|(_, o)| o.to_json())
            .collect();
        (live.to_json(false), new, listener)
    }

    /// A new CSV: a new campaign.
    pub(crate) fn reset(&self, total: usize) {
        self.update(|l| {
            l.state = RunState::Idle;
            l.test = false;
            l.total = total;
            l.message = None;
            l.outcomes.clear();
            l.by_row.clear();
        });
    }

    pub(crate) fn is_going(&self) -> bool {
        self.lock().state.is_going()
    }

    /// Pause (or, with `stop`, Stop): ends the run after the messages in flight.
    pub(crate) fn halt(&self, ws: &Workspace, stop: bool) {
        self.update(|l| {
            let going = l.state.is_going();
            if let Some(c) = l.control.as_ref().filter(|_| going) {
                c.stop();
                l.state = if stop {
                    RunState::Stopping
                } else {
                    RunState::Pausing
                };
            } else if stop && matches!(l.state, RunState::Paused | RunState::Interrupted) {
                // Stopping a paused campaign just ends it.
                l.state = RunState::Stopped;
                ws.set_last_run(LastRun::Stopped);
            }
        });
    }

    /// Ends a run going on, and waits for it (buzon ui is closing).
    pub(crate) fn shut_down(&self) {
        let control = self.lock().control.clone();
        if let Some(c) = control {
            c.stop();
        }
        let mut listener = self.changed.listen();
        while self.is_going() {
            event_listener::Listener::wait(listener);
            listener = self.changed.listen();
        }
    }
}

impl Observer for Hub {
    fn settled(&self, line: u64, email: &str, status: Status, reply: &str) {
        self.update(|l| l.record(line, email, status, reply));
    }

    fn say(&self, line: &str) {
        let line = line.to_owned();
        self.update(|l| l.message = Some(line));
    }
}

/// Reads the outcomes of earlier runs from a results file (a torn last line is skipped).
fn reload_results(live: &mut Live, path: &Path) {
    let Ok(mut reader) = csv::Reader::from_path(path) else {
        return;
    };
    for record in reader.records().flatten() {
        let (Some(line), Some(email), Some(status), Some(reply)) =
            (record.get(0), record.get(1), record.get(2), record.get(3))
        else {
            continue;
        };
        if let (Ok(line), Ok(status)) = (line.parse(), status.parse()) {
            live.record(line, email, status, reply);
        }
    }
}

/// The password, held in memory only.
#[derive(Default, Clone)]
pub(crate) struct Password(Option<String>);

impl Password {
    pub(crate) fn new(p: &str) -> Password {
        Password((!p.is_empty()).then(|| p.to_owned()))
    }

    pub(crate) fn is_set(&self) -> bool {
        self.0.is_some()
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Password(..)"
        } else {
            "Password(none)"
        })
    }
}

/// What a run needs from the process: the options of `buzon ui` that are not on the page.
pub(crate) struct Options {
    pub helo: String,
    pub runtime: Runtime,
    pub ca_file: Option<std::path::PathBuf>,
}

/// The connection settings of a run: the real server, or test mode's.
pub(crate) fn plan(
    settings: &Settings,
    password: &Password,
    options: &Options,
    test_mode: bool,
) -> Result<Plan, String> {
    let s = &settings.server;
    let (server, server_name, security) = if test_mode {
        let addr = super::simulator::address()
            .map_err(|e| format!("cannot start test mode's server: {e}"))?;
        let security = Security {
            starttls: smtp_core::client::StartTls::Never,
            tls: None,
            login: None,
            describe: "plain",
        };
        (addr, "test mode's server".to_owned(), security)
    } else {
        let name = if s.host.contains(':') {
            format!("[{}]:{}", s.host, s.port)
        } else {
            format!("{}:{}", s.host, s.port)
        };
        let addr = crate::send::resolve(&name)
            .map_err(|_| format!("cannot find the server {:?}: check the host name", s.host))?;
        let tls = match s.tls {
            TlsSetting::Auto => None,
            TlsSetting::Starttls => Some(TlsChoice::Starttls),
            TlsSetting::Implicit => Some(TlsChoice::Implicit),
            TlsSetting::None => Some(TlsChoice::None),
        };
        let user = (!s.user.trim().is_empty()).then(|| s.user.trim().to_owned());
        if user.is_some() && !password.is_set() {
            return Err(format!(
                "a user ({}) is set but no password: type the password in Server (it is kept in memory only, so it is asked again after buzon restarts)",
                s.user.trim()
            ));
        }
        if user.is_some() && s.tls == TlsSetting::None {
            return Err(
                "a password is never sent without TLS: choose a TLS mode, or remove the user"
                    .into(),
            );
        }
        let args = SecurityArgs::new(tls, user, options.ca_file.clone(), s.insecure);
        let security = args
            .resolve_with(&s.host, password.0.clone())
            .map_err(|e| format!("{e:#}"))?;
        (addr, name, security)
    };
    Ok(Plan {
        server,
        server_name,
        security,
        helo: options.helo.clone(),
        concurrency: settings.sending.concurrency,
        retries: settings.sending.retries,
        runtime: options.runtime,
    })
}

/// Starts (or resumes) a run on a thread of its own; the error is for the page (`409` when a
/// run is going, else `422`).
pub(crate) fn start(
    hub: &Arc<Hub>,
    ws: &Arc<Workspace>,
    settings: &Settings,
    password: &Password,
    options: &Options,
) -> Result<(), (u16, String)> {
    if hub.is_going() {
        return Err((409, "a run is going already: pause or stop it first".into()));
    }
    let unusable = |e: String| (422, e);
    let (bytes, _) = ws
        .csv()
        .map_err(|e| unusable(format!("{e:#}")))?
        .ok_or_else(|| unusable("no recipients yet: upload a CSV in Recipients".into()))?;
    let recipients = lint::read_csv(&bytes).map_err(unusable)?;
    let template = lint::template(settings, Some(&recipients)).map_err(unusable)?;
    let test = settings.sending.test_mode;
    let plan = plan(settings, password, options, test).map_err(unusable)?;
    let interval = match settings.sending.rate.trim() {
        "" => None,
        rate => Some(crate::send::parse_rate(rate).map_err(|e| unusable(format!("{e:#}")))?),
    };

    let (journal_path, results_path) = if test {
        let dir = ws
            .fresh_test_dir()
            .map_err(|e| unusable(format!("{e:#}")))?;
        (dir.join("journal"), dir.join("results.csv"))
    } else {
        (ws.journal_path(), ws.results_path())
    };
    let columns = crate::send::output_columns(&recipients);
    let journal = Journal::open(&journal_path).map_err(|e| unusable(format!("{e:#}")))?;
    let mut report =
        Report::append(&results_path, &columns).map_err(|e| unusable(format!("{e:#}")))?;

    // Start from the outcomes recorded so far (none in test mode, which starts afresh).
    let entries = lint::entries(&recipients);
    let mut earlier = Live {
        state: RunState::Idle,
        test,
        total: entries.len(),
        message: None,
        outcomes: BTreeMap::new(),
        by_row: HashMap::new(),
        seq: 0,
        control: None,
    };
    reload_results(&mut earlier, &results_path);
    let settled = |live: &Live, e: &Entry| {
        live.latest(e.line, &e.email)
            .is_some_and(|o| o.status != Status::Deferred)
    };
    let mut queue = VecDeque::new();
    for e in &entries {
        if settled(&earlier, e) {
            continue;
        }
        let duplicate = lint::duplicate_of(e);
        match (e.row, duplicate) {
            (Some(row), None) => {
                if !journal.is_done(row.index, &row.email) {
                    let index = recipients
                        .rows
                        .iter()
                        .position(|r| std::ptr::eq(r, row))
                        .expect("the entry's row is one of the rows");
                    queue.push_back(Job {
                        row: index,
                        attempt: 0,
                        only: None,
                    });
                }
            }
            (Some(_), Some(why)) => {
                report.record(e.line, &e.email, Status::Skipped, &why, None);
                earlier.record(e.line, &e.email, Status::Skipped, &why);
            }
            (None, _) => {
                let reason = e.problems.join("; ");
                report.record(e.line, &e.email, Status::Skipped, &reason, None);
                earlier.record(e.line, &e.email, Status::Skipped, &reason);
            }
        }
    }
    if journal.uncertain() > 0 {
        earlier.message = Some(format!(
            "{} row(s) were being sent when the last run went down: they are sent again, and may arrive twice",
            journal.uncertain()
        ));
    }
    let nothing_left = queue.is_empty();
    let control = Arc::new(Control::default());
    {
        let mut l = hub.lock();
        earlier.seq = earlier.seq.max(l.seq);
        earlier.state = if nothing_left {
            RunState::Done
        } else {
            RunState::Running
        };
        earlier.control = Some(control.clone());
        if nothing_left && earlier.message.is_none() {
            earlier.message =
                Some("Every row has its outcome already: nothing is left to send.".into());
        }
        *l = earlier;
    }
    hub.changed.notify(usize::MAX);
    if nothing_left {
        if !test {
            ws.set_last_run(LastRun::Done);
        }
        return Ok(());
    }
    if !test {
        ws.set_last_run(LastRun::Running);
    }

    let campaign = Arc::new(Campaign {
        rows: recipients.rows,
        template,
        from: None,
        id_domain: options.helo.clone(),
        load: lint::attachment_loader(ws.attachments_dir()),
        redirect: None,
        retries: settings.sending.retries,
        observer: hub.clone(),
        state: Mutex::new(State::new(queue, journal, report)),
        interval,
        fatal: Mutex::new(None),
    });
    let (hub, ws) = (hub.clone(), ws.clone());
    std::thread::Builder::new()
        .name("ui-send".into())
        .spawn(move || {
            let ended = engine::run(&campaign, &plan, &control);
            let queued = {
                let st = campaign.lock();
                st.queue.len() + st.retry.len()
            };
            hub.update(|l| {
                let (state, message) = match ended {
                    Ok(Ended::Finished) => (RunState::Done, None),
                    Ok(Ended::Stopped) if l.state == RunState::Stopping => (
                        RunState::Stopped,
                        Some(format!("Stopped: {queued} row(s) were not sent. Resume sends them.")),
                    ),
                    Ok(Ended::Stopped) => (
                        RunState::Paused,
                        Some(format!("Paused: {queued} row(s) wait. Resume sends them.")),
                    ),
                    Ok(Ended::Unusable(why) | Ended::Unreachable(why)) => (
                        RunState::Stopped,
                        Some(format!("The server cannot be used: {why}. Nothing more was sent; fix it in Server, then Resume.")),
                    ),
                    Err(e) => (
                        RunState::Stopped,
                        Some(format!("The run stopped: {e:#}. Resume tries again.")),
                    ),
                };
                l.state = state;
                if message.is_some() {
                    l.message = message;
                } else if l.pending() > 0 {
                    l.message = Some(format!(
                        "Finished; {} row(s) were only deferred by the server: Send again later to retry them.",
                        l.pending()
                    ));
                } else {
                    l.message = Some(finished_words(&l.counts()));
                }
                l.control = None;
                if !l.test {
                    ws.set_last_run(match state {
                        RunState::Done => LastRun::Done,
                        RunState::Paused => LastRun::Paused,
                        _ => LastRun::Stopped,
                    });
                }
            });
        })
        .context("cannot start the sending thread")
        .map_err(|e| (500, format!("{e:#}")))?;
    Ok(())
}

/// What a finished run says: all sent, or how many rows to fix and where they are.
fn finished_words(counts: &BTreeMap<&'static str, usize>) -> String {
    let not_sent: usize = ["failed", "invalid", "skipped", "partial"]
        .iter()
        .filter_map(|k| counts.get(k))
        .sum();
    if not_sent == 0 {
        "Finished: every message was sent.".into()
    } else {
        format!(
            "Finished. {not_sent} row(s) did not reach everyone: their reasons are in the table. \
             \"Download the rows to send again\" gives them as a CSV: fix it, choose it as the \
             recipients, and send."
        )
    }
}

/// Sends row `n` to `to` only, through the configured server (or test mode's); the answer of
/// `POST /api/test-send`.
pub(crate) fn test_send(
    ws: &Workspace,
    settings: &Settings,
    password: &Password,
    options: &Options,
    n: usize,
    to: &str,
) -> Value {
    let failed = |reply: String, meaning: &str| json!({"ok": false, "to": to, "reply": reply, "meaning": meaning, "server": Value::Null});
    let to = to.trim();
    if let Err(why) = mailmerge::check_mailbox(to) {
        return failed(
            format!("{to:?} is not an email address: {why}"),
            "Give your own address in \"Your address\".",
        );
    }
    let prepared = (|| -> Result<_, String> {
        let (bytes, _) = ws
            .csv()
            .map_err(|e| format!("{e:#}"))?
            .ok_or("no recipients yet: upload a CSV in Recipients")?;
        let recipients = lint::read_csv(&bytes)?;
        let template = lint::template(settings, Some(&recipients))?;
        let entries = lint::entries(&recipients);
        let e = entries
            .iter()
            .find(|e| e.n == n)
            .ok_or_else(|| format!("there is no row {n}: the CSV has {} rows", entries.len()))?;
        let row = e
            .row
            .ok_or_else(|| format!("row {n} cannot be sent: {}", e.problems.join("; ")))?;
        let index = recipients
            .rows
            .iter()
            .position(|r| std::ptr::eq(r, row))
            .expect("the entry's row is one of the rows");
        let plan = plan(settings, password, options, settings.sending.test_mode)?;
        Ok((recipients.rows, template, index, plan))
    })();
    let (rows, template, index, plan) = match prepared {
        Ok(p) => p,
        Err(why) => return failed(why, "Fix this first; nothing was sent."),
    };
    let dir = ws.dir().join("test-send");
    let _ = std::fs::remove_dir_all(&dir);
    let opened = std::fs::create_dir_all(&dir)
        .map_err(anyhow::Error::from)
        .and_then(|()| {
            Ok((
                Journal::open(&dir.join("journal"))?,
                Report::create(&dir.join("results.csv"), &[])?,
            ))
        });
    let (journal, report) = match opened {
        Ok(o) => o,
        Err(e) => return failed(format!("{e:#}"), "buzon cannot write in its folder."),
    };
    let heard = Arc::new(Heard::default());
    let campaign = Arc::new(Campaign {
        rows,
        template,
        from: None,
        id_domain: options.helo.clone(),
        load: lint::attachment_loader(ws.attachments_dir()),
        redirect: Some(to.to_owned()),
        retries: 0,
        observer: heard.clone(),
        state: Mutex::new(State::new(
            VecDeque::from([Job {
                row: index,
                attempt: 0,
                only: None,
            }]),
            journal,
            report,
        )),
        interval: None,
        fatal: Mutex::new(None),
    });
    let server = plan.server_name.clone();
    let ended = engine::run(&campaign, &plan, &Control::default());
    let outcome = heard.0.lock().unwrap_or_else(|e| e.into_inner()).take();
    match (ended, outcome) {
        (Ok(_), Some((Status::Sent | Status::Partial, reply))) => {
            json!({"ok": true, "to": to, "reply": reply, "server": server})
        }
        (Ok(_), Some((status, reply))) => {
            let meaning = super::words::meaning(status, &reply);
            json!({"ok": false, "to": to, "reply": reply, "meaning": meaning, "server": server})
        }
        (Ok(Ended::Unusable(why) | Ended::Unreachable(why)), None) => {
            json!({"ok": false, "to": to, "reply": why, "meaning": super::words::unusable(&why), "server": server})
        }
        (Ok(_), None) => {
            json!({"ok": false, "to": to, "reply": "no answer", "meaning": "The connection ended before the server answered: try again.", "server": server})
        }
        (Err(e), _) => {
            json!({"ok": false, "to": to, "reply": format!("{e:#}"), "meaning": "The send could not be made.", "server": server})
        }
    }
}

/// Hears the one outcome of a test message.
#[derive(Default)]
struct Heard(Mutex<Option<(Status, String)>>);

impl Observer for Heard {
    fn settled(&self, _line: u64, _email: &str, status: Status, reply: &str) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((status, reply.to_owned()));
    }

    fn say(&self, _line: &str) {}
}

/// The failed-rows download: every row to fix, with the CSV's columns and the reason; after
/// Stop, the rows never sent too.
pub(crate) fn failed_csv(hub: &Hub, recipients: Option<&Recipients>) -> anyhow::Result<Vec<u8>> {
    let Some(r) = recipients else {
        return Ok(b"email,error\n".to_vec());
    };
    let columns = crate::send::output_columns(r);
    let entries = lint::entries(r);
    let live = hub.lock();
    let mut rows = Vec::new();
    for e in &entries {
        let latest = live.latest(e.line, &e.email);
        let reason = match latest {
            // A repeated address is not a row to fix: sending it again would send twice.
            Some(o) if o.status.needs_fixing() && lint::duplicate_of(e).is_none() => {
                o.reply.clone()
            }
            Some(_) => continue,
            None if live.state == RunState::Stopped => "not sent: the run was stopped".into(),
            None => continue,
        };
        let row = match (e.row, r.skipped.iter().find(|s| s.line == e.line)) {
            (Some(row), _) => FailedRow::of_row(row, &columns, &reason),
            (None, Some(bad)) => FailedRow {
                reason,
                ..FailedRow::of_skipped(bad)
            },
            (None, None) => continue,
        };
        rows.push(row);
    }
    drop(live);
    let mut out = Vec::new();
    write_failed_csv(&mut out, &columns, &rows)?;
    Ok(out)
}

/// The results download: the file of the run shown (the campaign's, or test mode's).
pub(crate) fn results_csv(hub: &Hub, ws: &Workspace) -> Vec<u8> {
    let path = if hub.lock().test {
        ws.dir().join("test").join("results.csv")
    } else {
        ws.results_path()
    };
    std::fs::read(path).unwrap_or_else(|_| b"line,email,status,reply\n".to_vec())
}
