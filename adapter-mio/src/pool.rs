//! Worker threads that run [`Work`] off the event loop and hand the [`Completion`]s back.

use std::io;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use conn_driver::{WorkId, WorkResult};
use mio::{Token, Waker};
use session_api::{Handler, Work};

/// A piece of work for the pool, tagged with where its result goes.
struct Job<H: Handler> {
    token: Token,
    id: WorkId,
    work: Work<H>,
}

/// A finished piece of work: `Err` if it panicked.
pub(crate) struct Done<H: Handler> {
    /// The connection that started the work.
    pub(crate) token: Token,
    /// The connection's name for the work.
    pub(crate) id: WorkId,
    /// The completion, or `Err` if the work panicked.
    pub(crate) result: WorkResult<H>,
}

/// A fixed set of worker threads sharing one job queue.
///
/// Each finished job is sent back over a channel and the event loop is woken through its
/// [`Waker`]. Dropping the pool (or calling [`Pool::join`]) closes the queue: the workers finish
/// the jobs already queued, then exit.
pub(crate) struct Pool<H: Handler> {
    jobs: Option<Sender<Job<H>>>,
    done: Receiver<Done<H>>,
    threads: Vec<JoinHandle<()>>,
}

impl<H: Handler> Pool<H> {
    /// Starts `workers` threads (at least one).
    pub(crate) fn start(workers: usize, waker: Arc<Waker>) -> io::Result<Self> {
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job<H>>();
        let (done_tx, done_rx) = mpsc::channel::<Done<H>>();
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        let mut pool = Pool {
            jobs: Some(jobs_tx),
            done: done_rx,
            threads: Vec::new(),
        };
        for i in 0..workers.max(1) {
            let jobs_rx = Arc::clone(&jobs_rx);
            let done_tx = done_tx.clone();
            let waker = Arc::clone(&waker);
            let thread = std::thread::Builder::new()
                .name(format!("buzon-mio-work-{i}"))
                .spawn(move || worker(&jobs_rx, &done_tx, &waker));
            match thread {
                Ok(thread) => pool.threads.push(thread),
                Err(e) => {
                    // Stops the threads already started.
                    pool.join();
                    return Err(e);
                }
            }
        }
        Ok(pool)
    }

    /// Queues `work`; gives it back if the workers are gone (only after [`Pool::join`]).
    pub(crate) fn submit(&self, token: Token, id: WorkId, work: Work<H>) -> Result<(), Work<H>> {
        match &self.jobs {
            Some(jobs) => jobs
                .send(Job { token, id, work })
                .map_err(|mpsc::SendError(job)| job.work),
            None => Err(work),
        }
    }

    /// The next finished job, without blocking.
    pub(crate) fn try_done(&self) -> Option<Done<H>> {
        self.done.try_recv().ok()
    }

    /// Closes the queue and waits for the workers to finish the jobs already queued.
    pub(crate) fn join(&mut self) {
        self.jobs = None;
        for thread in self.threads.drain(..) {
            // Workers catch the panics of the work they run; a join error cannot happen.
            let _ = thread.join();
        }
    }
}

impl<H: Handler> Drop for Pool<H> {
    fn drop(&mut self) {
        self.join();
    }
}

/// One worker thread: takes jobs until the queue is closed and empty.
fn worker<H: Handler>(jobs: &Mutex<Receiver<Job<H>>>, done: &Sender<Done<H>>, waker: &Waker) {
    loop {
        // The lock is held only while waiting for a job, never while running one. `recv` does
        // not panic, so the mutex is never poisoned in practice; take it anyway if it is.
        let job = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(Job { token, id, work }) = job else {
            return;
        };
        let result = conn_driver::run_work(work);
        if done.send(Done { token, id, result }).is_err() {
            // The event loop is gone (its grace period ran out); nobody wants the result.
            continue;
        }
        if let Err(e) = waker.wake() {
            tracing::warn!(error = %e, "could not wake the event loop");
        }
    }
}
