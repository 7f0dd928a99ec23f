//! Password checks for SMTP AUTH, on the host side: off the event loop, a few at a time,
//! with the same work for unknown users, and a growing delay for sources that keep failing.

use std::collections::BinaryHeap;
use std::net::IpAddr;
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

use accounts::{LiveUsers, Throttle};
use line_protocol::sasl::{Credentials, Secret};
use smtp_core::Login;

/// At most this many argon2 checks run at once (each takes tens of milliseconds and 19 MiB):
/// a flood of AUTH attempts queues up instead of taking every core and the memory. They run on
/// threads of their own: the allocator keeps a freed 19 MiB block in the arena of the thread
/// that used it, so checks spread over every worker thread would keep that much per worker
/// (measured: 280 MB resident after 20 IMAP logins on the mio runtime's 16 workers).
const PARALLEL_CHECKS: usize = 2;

/// What every connection shares for logins.
pub(crate) struct Logins {
    pub users: LiveUsers,
    throttle: Throttle,
    hashers: Hashers,
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
            hashers: Hashers::start(),
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
        // An unknown login does the same work, so the time taken does not tell which exist.
        let good = self.hashers.verify(
            account.map(|a| a.password_hash().to_owned()),
            Secret::new(credentials.password.expose().to_vec()),
        );
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
}

/// A password check for a [`Hashers`] thread: the stored hash (none for an unknown login),
/// the password, and where to send the answer.
type Check = (Option<String>, Secret, mpsc::Sender<bool>);

/// The [`PARALLEL_CHECKS`] threads that run argon2.
struct Hashers {
    jobs: Mutex<mpsc::Sender<Check>>,
}

impl Hashers {
    fn start() -> Hashers {
        let (tx, rx) = mpsc::channel::<Check>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..PARALLEL_CHECKS {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("buzon-argon2-{i}"))
                .spawn(move || {
                    loop {
                        let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok((hash, password, reply)) = job else {
                            break;
                        };
                        let good = match &hash {
                            Some(h) => accounts::verify_password(h, password.expose()),
                            None => accounts::verify_unknown(password.expose()),
                        };
                        let _ = reply.send(good);
                    }
                })
                .expect("start a password-check thread");
        }
        Hashers {
            jobs: Mutex::new(tx),
        }
    }

    /// Checks `password` against `hash` on a hashing thread, waiting for the answer.
    fn verify(&self, hash: Option<String>, password: Secret) -> bool {
        let (reply, answer) = mpsc::channel();
        let sent = self
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send((hash, password, reply));
        sent.is_ok() && answer.recv().unwrap_or(false)
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
