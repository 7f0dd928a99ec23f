//! The sending engine shared by `buzon send` and `buzon ui`: rounds of connections over the
//! chosen runtime until every row of a [`Campaign`] is settled, the run is stopped, or the
//! server cannot be used.
//!
//! The engine knows nothing of terminals or web pages: outcomes and messages for the user go to
//! an [`Observer`], and a [`Control`] stops the run from another thread (Ctrl-C for the
//! command, the Pause and Stop buttons for the page). A stop is graceful: messages in flight get
//! their replies and are journalled, so a later run with the same journal sends nobody twice.

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use smtp_core::client::{ClientConfig, ClientSession};

use super::dispatch::{self, Campaign, SendHandler};
use super::report::Status;
use super::security::Security;
use crate::settings::Runtime;

/// Hears what a run does.
pub(crate) trait Observer: Send + Sync {
    /// A row's outcome is known (it is in the results file already).
    fn settled(&self, line: u64, email: &str, status: Status, reply: &str);
    /// A line meant for the user (a retry, a connection problem).
    fn say(&self, line: &str);
}

/// Reads a file the template attaches, by the name the template (or a CSV cell) gives.
pub(crate) type Loader = Box<dyn Fn(&str) -> std::io::Result<Vec<u8>> + Send + Sync>;

/// Where and how a run sends.
pub(crate) struct Plan {
    pub server: SocketAddr,
    /// The server as the user wrote it, for messages.
    pub server_name: String,
    pub security: Security,
    pub helo: String,
    pub concurrency: usize,
    pub retries: u32,
    pub runtime: Runtime,
}

/// Stops a run from another thread.
#[derive(Default)]
pub(crate) struct Control {
    stopped: AtomicBool,
    /// How to stop the round of connections running now, if any (set by [`drive`]).
    stop_round: Mutex<Option<Box<dyn Fn() + Send>>>,
}

impl Control {
    /// Asks the run to end: no new message starts, those in flight finish.
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        if let Some(stop) = self
            .stop_round
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            stop();
        }
    }

    /// Whether [`stop`](Self::stop) was called.
    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    fn set_round(&self, stop: Option<Box<dyn Fn() + Send>>) {
        *self.stop_round.lock().unwrap_or_else(|e| e.into_inner()) = stop;
        // A stop that came while no round was running must still end the next one.
        if self.is_stopped() {
            self.stop();
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Every row has its outcome.
    Finished,
    /// [`Control::stop`] was called; some rows may be left.
    Stopped,
    /// Every connection would fare the same (a refused login, no TLS where it is required): the
    /// run stopped with this reason, the rows left unsent.
    Unusable(String),
    /// No connection could be made, after the retries: the run stopped with this reason.
    Unreachable(String),
}

/// Runs `campaign` until it ends; the journal is synced before returning.
pub(crate) fn run(
    campaign: &Arc<Campaign>,
    plan: &Plan,
    control: &Control,
) -> anyhow::Result<Ended> {
    let ended = rounds(campaign, plan, control);
    campaign.lock().journal.sync()?;
    ended
}

fn rounds(campaign: &Arc<Campaign>, plan: &Plan, control: &Control) -> anyhow::Result<Ended> {
    let mut failed_connects = 0;
    while !control.is_stopped() {
        let next_retry = campaign.release_due_retries(Instant::now());
        let queued = campaign.lock().queue.len();
        if queued == 0 {
            match next_retry {
                Some(at) => {
                    sleep_unless_stopped(at.saturating_duration_since(Instant::now()), control);
                    continue;
                }
                None => return Ok(Ended::Finished),
            }
        }
        let wanted = plan.concurrency.min(queued);
        let mut conns = Vec::with_capacity(wanted);
        let mut last_error = None;
        for _ in 0..wanted {
            match TcpStream::connect_timeout(&plan.server, Duration::from_secs(10)) {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    let mut config = ClientConfig::new(plan.helo.clone());
                    config.pipelining = true;
                    config.starttls = plan.security.starttls;
                    config.login = plan.security.login.clone();
                    let session = ClientSession::new(config, Instant::now());
                    conns.push((stream, session, SendHandler::new(campaign.clone())));
                }
                Err(e) => last_error = Some(e),
            }
        }
        if conns.is_empty() {
            failed_connects += 1;
            let e = last_error.expect("no connection means an error");
            if failed_connects > plan.retries {
                return Ok(Ended::Unreachable(format!(
                    "cannot connect to {}: {e}",
                    plan.server_name
                )));
            }
            campaign.say(&format!(
                "cannot connect to {}: {e}; retrying",
                plan.server_name
            ));
            sleep_unless_stopped(Duration::from_secs(1 << failed_connects.min(5)), control);
            continue;
        }
        failed_connects = 0;
        drive(plan.runtime, conns, control, plan.security.tls.clone())?;
        if let Some(why) = campaign.fatal() {
            return Ok(Ended::Unusable(format!(
                "{}: {why} ({})",
                plan.server_name, plan.security.describe
            )));
        }
    }
    Ok(Ended::Stopped)
}

/// Waits `wait`, ending early (in steps of a tenth of a second) once the run is stopped.
fn sleep_unless_stopped(wait: Duration, control: &Control) {
    let until = Instant::now() + wait;
    while !control.is_stopped() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// Runs one round of connections on the chosen runtime until they all close.
fn drive(
    runtime: Runtime,
    conns: Vec<(TcpStream, ClientSession, SendHandler)>,
    control: &Control,
    tls: Option<conn_driver::TlsMode>,
) -> anyhow::Result<()> {
    match runtime {
        Runtime::Smol => {
            let shutdown = adapter_smol::Shutdown::new();
            let trigger = shutdown.clone();
            control.set_round(Some(Box::new(move || trigger.trigger())));
            // One executor thread, like the mio loop: a row is a few microseconds of work
            // between system calls, and a second thread only adds cross-thread wake-ups (10,000
            // rows at concurrency 8 to smtp-sink: about 22,000 msgs/s with one, 17,000-19,000
            // with two).
            let opts = adapter_smol::Options {
                threads: Some(1),
                tls,
                ..Default::default()
            };
            let ended = adapter_smol::run_connections(conns, shutdown, opts);
            control.set_round(None);
            dispatch::note_setup_failures(ended.context("smol runtime")?.into_iter().flatten());
        }
        Runtime::Mio => {
            let opts = adapter_mio::Options {
                tls,
                ..Default::default()
            };
            let driver = adapter_mio::Connections::new(conns, opts).context("mio runtime")?;
            let trigger = driver.shutdown_handle();
            control.set_round(Some(Box::new(move || trigger.trigger())));
            let ended = driver.run();
            control.set_round(None);
            dispatch::note_setup_failures(ended.context("mio runtime")?.into_iter().flatten());
        }
    }
    Ok(())
}
