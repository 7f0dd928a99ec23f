//! Password checks for SMTP AUTH, on the host side: off the event loop, a few at a time,
//! with the same work for unknown users, and a growing delay for sources that keep failing.

use std::collections::BinaryHeap;
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use accounts::{LiveUsers, Throttle};
use line_protocol::sasl::Credentials;
use smtp_core::Login;

/// At most this many argon2 checks run at once (each takes tens of milliseconds and 19 MiB):
/// a flood of AUTH attempts queues up instead of taking every core and the memory.
const PARALLEL_CHECKS: usize = 2;

/// What every connection shares for logins.
pub(crate) struct Logins {
    pub users: LiveUsers,
    throttle: Throttle,
    running: Mutex<usize>,
    freed: Condvar,
    delays: Delays,
}

/// The answer to a login attempt.
pub(crate) enum Checked {
    /// Good credentials of an enabled account.
    Ok(Login),
    /// Refused; answer after `delay` (zero for a first failure).
    Refused { delay: Duration },
}

impl Logins {
    pub(crate) fn new(users: LiveUsers) -> Self {
        Logins {
            users,
            throttle: Throttle::default(),
            running: Mutex::new(0),
            freed: Condvar::new(),
            delays: Delays::start(),
        }
    }

    /// Checks `credentials` from `peer`. Blocking (argon2): call it from work, not the loop.
    pub(crate) fn check(&self, credentials: &Credentials, peer: IpAddr) -> Checked {
        let users = self.users.current();
        let account = users
            .account(&credentials.user)
            .filter(|a| a.enabled)
            // Acting for another identity (PLAIN's authzid) is not offered.
            .filter(|a| {
                credentials
                    .authzid
                    .as_deref()
                    .is_none_or(|z| z.eq_ignore_ascii_case(&a.address))
            });
        let good = {
            let _slot = self.slot();
            let password = credentials.password.expose();
            match account {
                Some(a) => accounts::verify_password(a.password_hash(), password),
                // The same work, so the time taken does not tell which logins exist.
                None => accounts::verify_unknown(password),
            }
        };
        let source = peer.to_string();
        match account {
            Some(a) if good => {
                self.throttle.succeeded(&source);
                let mut send_as = vec![a.address.clone()];
                send_as.extend(a.aliases.iter().cloned());
                Checked::Ok(Login::new(a.address.clone(), send_as))
            }
            _ => {
                let delay = self.throttle.failed(&source, Instant::now());
                // The user name is logged (an operator needs it); the password never is.
                tracing::warn!(%peer, user = %credentials.user, delay_s = delay.as_secs(), "login failed");
                Checked::Refused { delay }
            }
        }
    }

    /// Runs `f` once `delay` has passed, on the delay thread (which only waits: `f` must be
    /// quick, such as waking a connection).
    pub(crate) fn after(&self, delay: Duration, f: impl FnOnce() + Send + 'static) {
        if delay.is_zero() {
            return f();
        }
        self.delays.push(Instant::now() + delay, Box::new(f));
    }

    /// Waits for one of the [`PARALLEL_CHECKS`] slots.
    fn slot(&self) -> Slot<'_> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        while *running >= PARALLEL_CHECKS {
            running = self.freed.wait(running).unwrap_or_else(|e| e.into_inner());
        }
        *running += 1;
        Slot(self)
    }
}

struct Slot<'a>(&'a Logins);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut running = self.0.running.lock().unwrap_or_else(|e| e.into_inner());
        *running -= 1;
        self.0.freed.notify_one();
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// One thread that runs jobs at their time: the delayed answers to failed logins, so that a
/// guesser waiting out its delay holds no worker thread.
struct Delays {
    queue: Arc<(Mutex<BinaryHeap<Due>>, Condvar)>,
}

struct Due {
    at: Instant,
    job: Job,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    /// Earliest first in the (max-)heap.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.at.cmp(&self.at)
    }
}

impl Delays {
    fn start() -> Delays {
        let queue: Arc<(Mutex<BinaryHeap<Due>>, Condvar)> = Arc::default();
        let q = Arc::clone(&queue);
        std::thread::Builder::new()
            .name("buzon-delays".into())
            .spawn(move || {
                let (heap, ready) = &*q;
                let mut heap = heap.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    let now = Instant::now();
                    match heap.peek() {
                        Some(due) if due.at <= now => {
                            let job = heap.pop().expect("peeked").job;
                            drop(heap);
                            job();
                            heap = q.0.lock().unwrap_or_else(|e| e.into_inner());
                        }
                        Some(due) => {
                            let wait = due.at - now;
                            heap = ready
                                .wait_timeout(heap, wait)
                                .unwrap_or_else(|e| e.into_inner())
                                .0;
                        }
                        None => heap = ready.wait(heap).unwrap_or_else(|e| e.into_inner()),
                    }
                }
            })
            .expect("start the delay thread");
        Delays { queue }
    }

    fn push(&self, at: Instant, job: Job) {
        let (heap, ready) = &*self.queue;
        heap.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Due { at, job });
        ready.notify_one();
    }
}
