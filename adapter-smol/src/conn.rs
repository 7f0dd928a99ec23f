//! One connection's task: a socket, its readiness and timers, driving the
//! [`conn_driver::Connection`] that holds every rule about it.

use std::collections::VecDeque;
use std::io::{self, Read as _};
use std::net::{Shutdown as HalfClose, SocketAddr, TcpStream};
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::time::Instant;

use async_io::{Async, Timer};
use conn_driver::{Connection, Limits, Outcome, Panicked, WorkId, WorkResult};
use futures_lite::future::{self, FutureExt};
use futures_lite::{AsyncWriteExt, StreamExt};
use session_api::{ConnInfo, Handler, Notifier, Service};
use smol::Task;
use smol::channel::Receiver;
use smol::lock::SemaphoreGuardArc;
use tracing::Instrument;

use crate::Shutdown;

/// Most bytes read from the socket at once.
const READ_CHUNK: usize = 16 * 1024;

thread_local! {
    /// Reads land here and go straight to the driver: a session waiting for its peer then holds
    /// no read buffer (an idle session cost 23 KiB when each kept a 16 KiB buffer lent to a
    /// pending read).
    static SCRATCH: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// One non-blocking read of at most `room` bytes into [`SCRATCH`]. The caller hands
/// `SCRATCH[..n]` to the driver before anything else runs on this thread.
fn read_now(stream: &Async<TcpStream>, room: usize) -> io::Result<usize> {
    SCRATCH.with_borrow_mut(|scratch| {
        stream
            .get_ref()
            .read(&mut scratch[..room.clamp(1, READ_CHUNK)])
    })
}

/// Loop turns before a connection yields to the executor. Reads and writes that succeed at once
/// never return `Pending`, so without this one busy peer could hold an executor thread.
const BUDGET: u32 = 32;

/// The task for one accepted connection. Never panics: the driver catches panics in the
/// session, the handler and their work; a panic anywhere else (opening the session) is caught
/// here, logged, and ends this connection only.
pub(crate) async fn connection<S: Service>(
    service: Arc<S>,
    stream: Async<TcpStream>,
    peer: SocketAddr,
    stop: Shutdown,
    limits: Arc<Limits>,
    tls: Option<conn_driver::TlsMode>,
    permit: Option<SemaphoreGuardArc>,
) {
    let span = tracing::debug_span!("conn", %peer);
    let task = async move {
        let local = match stream.get_ref().local_addr() {
            Ok(local) => local,
            Err(e) => {
                tracing::debug!(error = %e, "connection gone before it was opened");
                return;
            }
        };
        set_nodelay(&stream);
        let now = Instant::now();
        // The notifier is the only sender: once the connection is gone the channel is closed
        // and `notify` says so; once every notifier is dropped the loop stops listening.
        let (notices, inbox) = smol::channel::unbounded();
        let notifier = Notifier::new(move |notice| notices.try_send(notice).is_ok());
        let (session, handler) = service.open(&ConnInfo { peer, local }, notifier, now);
        drop(service);
        tracing::debug!(%local, "open");
        let mut conn = Connection::with_tls(session, handler, limits, tls, now);
        // Held while the session is open; the linger after it does not count.
        let mut permit = permit;
        drive(
            &mut conn,
            &stream,
            &stop,
            &mut permit,
            Some(Box::pin(inbox)),
        )
        .await;
        if let Err(panic) = conn.into_outcome() {
            tracing::error!(%panic, "connection dropped");
        }
    };
    if let Err(panic) = AssertUnwindSafe(task.instrument(span)).catch_unwind().await {
        let panic = Panicked::from_payload(&*panic);
        tracing::error!(%peer, %panic, "connection task panicked; connection dropped");
    }
}

/// The task for one connection the caller connected itself (see
/// [`drive_connection`](crate::drive_connection)): the same loop as [`connection`], then the
/// outcome is handed back.
///
/// `stream` is the result of registering the socket with the reactor; on `Err` the handler is
/// closed and returned with that error at once.
pub(crate) async fn outbound<H: Handler>(
    stream: io::Result<Async<TcpStream>>,
    session: H::Session,
    handler: H,
    stop: Shutdown,
    limits: Arc<Limits>,
    tls: Option<conn_driver::TlsMode>,
) -> Outcome<H> {
    let peer = match &stream {
        Ok(stream) => stream.get_ref().peer_addr().ok(),
        Err(_) => None,
    };
    let span = tracing::debug_span!("conn", peer = %DisplayPeer(peer), outbound = true);
    let task = async move {
        let mut conn = Connection::with_tls(session, handler, limits, tls, Instant::now());
        match stream {
            Ok(stream) => {
                set_nodelay(&stream);
                tracing::debug!("open");
                drive(&mut conn, &stream, &stop, &mut None, None).await;
            }
            Err(e) => {
                tracing::debug!(error = %e, "could not register the stream");
                conn.handle_error(e);
            }
        }
        conn.into_outcome()
    };
    AssertUnwindSafe(task.instrument(span))
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| {
            let panic = Panicked::from_payload(&*panic);
            tracing::error!(peer = %DisplayPeer(peer), %panic, "connection task panicked; connection dropped");
            Err(panic)
        })
}

/// Shows a peer address that may be unknown.
struct DisplayPeer(Option<SocketAddr>);

impl std::fmt::Display for DisplayPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(peer) => peer.fmt(f),
            None => f.write_str("unknown"),
        }
    }
}

/// Output is written in whole buffers; Nagle's algorithm would only delay replies.
fn set_nodelay(stream: &Async<TcpStream>) {
    if let Err(e) = stream.get_ref().set_nodelay(true) {
        tracing::debug!(error = %e, "could not set TCP_NODELAY");
    }
}

/// Why the wait in [`drive`] ended.
enum Wake<H: Handler> {
    Stop,
    Work(WorkResult<H>),
    Timer,
    Wrote(io::Result<usize>),
    /// `n` bytes were read into [`SCRATCH`].
    Read(io::Result<usize>),
    /// A read found nothing (reported only after shutdown, when a lingering connection stops
    /// at that point).
    Blocked,
    Notice(H::Notice),
    /// Every notifier of the connection is gone.
    NoNotifiers,
}

/// Runs `conn` on `stream` until it is done: the adapter's whole job is to wait for the socket,
/// the timer, the work and the shutdown signal, and tell the driver.
async fn drive<H: Handler>(
    conn: &mut Connection<H>,
    stream: &Async<TcpStream>,
    stop: &Shutdown,
    permit: &mut Option<SemaphoreGuardArc>,
    mut inbox: Option<Pin<Box<Receiver<H::Notice>>>>,
) {
    // Work running on blocking threads, in the order it was started: the driver applies
    // completions in that order anyway, so waiting for the oldest loses nothing.
    let mut works: VecDeque<(WorkId, Task<WorkResult<H>>)> = VecDeque::new();
    let mut stopping = false;
    let mut timer = Timer::never();
    let mut armed: Option<Instant> = None;
    let mut budget = BUDGET;
    // One wait for the whole connection: a fresh one per turn would touch the channel shared
    // by every connection on every wake.
    let mut stop_wait = pin!(stop.triggered());
    loop {
        while let Some((id, work)) = conn.poll_work() {
            works.push_back((id, blocking::unblock(move || conn_driver::run_work(work))));
        }
        if conn.poll_half_close()
            && let Err(e) = stream.get_ref().shutdown(HalfClose::Write)
        {
            tracing::debug!(error = %e, "shutdown of the write half failed");
        }
        if !conn.is_open() {
            permit.take();
        }
        if conn.is_done() {
            return;
        }
        let deadline = conn.poll_timeout();
        if deadline != armed {
            if let Some(at) = deadline {
                timer.set_at(at);
            }
            armed = deadline;
        }
        let room = conn.read_room();

        let wake = {
            let output = conn.pending_output();
            let timer = &mut timer;
            let stop_wait = stop_wait.as_mut();
            let stop_f = async {
                if stopping {
                    future::pending().await
                } else {
                    stop_wait.await;
                    Wake::Stop
                }
            };
            let work_f = async {
                match works.front_mut() {
                    Some((_, task)) => Wake::Work(task.await),
                    None => future::pending().await,
                }
            };
            let timer_f = async {
                if armed.is_some() {
                    timer.await;
                    Wake::Timer
                } else {
                    future::pending().await
                }
            };
            // Writing and reading are awaited together: a peer that sends a large request
            // without reading our replies must not deadlock us (GUIDE pitfall 10).
            let write_f = async {
                if output.is_empty() {
                    future::pending().await
                } else {
                    let mut writer = stream;
                    Wake::Wrote(writer.write(output).await)
                }
            };
            // Try to read at once; if nothing is there yet, wait for readiness with no buffer
            // lent out (see `SCRATCH`). A read happens only in the poll that returns it, so
            // bytes are never read by a branch that another one beat.
            let read_f = async {
                if room == 0 {
                    return future::pending().await;
                }
                loop {
                    match read_now(stream, room) {
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            if stopping {
                                break Wake::Blocked;
                            }
                            if let Err(e) = stream.readable().await {
                                break Wake::Read(Err(e));
                            }
                        }
                        result => break Wake::Read(result),
                    }
                }
            };
            // Polled as a stream, the receiver keeps its listener between turns: no allocation
            // per wake (`recv()` would make a new one each time).
            let notice_f = async {
                match inbox.as_mut() {
                    Some(inbox) => match inbox.next().await {
                        Some(notice) => Wake::Notice(notice),
                        None => Wake::NoNotifiers,
                    },
                    None => future::pending().await,
                }
            };
            stop_f
                .or(work_f)
                .or(notice_f)
                .or(timer_f)
                .or(write_f)
                .or(read_f)
                .await
        };

        let now = Instant::now();
        match wake {
            Wake::Stop => {
                stopping = true;
                conn.handle_shutdown(now);
            }
            Wake::Work(result) => {
                let (id, _) = works
                    .pop_front()
                    .expect("the work branch awaited the front task");
                conn.handle_completion(id, result, now);
            }
            Wake::Timer => {
                // A fired timer is spent; re-arm on the next turn.
                armed = None;
                conn.handle_timeout(now);
            }
            Wake::Wrote(Ok(0)) => conn.handle_error(io::ErrorKind::WriteZero.into()),
            Wake::Wrote(Ok(n)) => conn.handle_written(n, now),
            Wake::Read(Ok(0)) => conn.handle_eof(now),
            Wake::Read(Ok(n)) => {
                SCRATCH.with_borrow(|scratch| conn.handle_read(&scratch[..n], now))
            }
            Wake::Blocked => conn.handle_read_blocked(now),
            Wake::Notice(notice) => conn.handle_notice(notice, now),
            Wake::NoNotifiers => inbox = None,
            Wake::Read(Err(e)) | Wake::Wrote(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Wake::Read(Err(e)) | Wake::Wrote(Err(e)) => conn.handle_error(e),
        }

        budget -= 1;
        if budget == 0 {
            budget = BUDGET;
            future::yield_now().await;
        }
    }
}
