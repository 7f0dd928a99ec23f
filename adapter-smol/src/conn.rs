//! One connection's task: the loop described in the crate docs.

use std::collections::VecDeque;
use std::io::{self, Read as _};
use std::net::{Shutdown as HalfClose, SocketAddr, TcpStream};
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::future::{self, FutureExt};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use session_api::{Completion, ConnInfo, Handler, Service, Session};
use smol::Task;
use smol::lock::SemaphoreGuardArc;
use tracing::Instrument;

use crate::{Ended, Panicked, Shutdown};

/// Most bytes read from the socket at once (also the most the input buffer grows per read).
const READ_CHUNK: usize = 16 * 1024;

/// Once empty, a connection's input or output buffer with more capacity than this is freed, so
/// an idle session does not keep the high-water mark of its last message.
const KEEP_CAPACITY: usize = 4 * 1024;

thread_local! {
    /// Reads land here first and only the bytes read are copied into the connection's input:
    /// a session waiting for its peer then holds no read buffer (an idle session cost 23 KiB
    /// when each kept a 16 KiB buffer lent to a pending read).
    static SCRATCH: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// One non-blocking read of at most `room` bytes, appended to `input`.
fn read_now(stream: &Async<TcpStream>, input: &mut Vec<u8>, room: usize) -> io::Result<usize> {
    SCRATCH.with_borrow_mut(|scratch| {
        let n = stream
            .get_ref()
            .read(&mut scratch[..room.clamp(1, READ_CHUNK)])?;
        input.extend_from_slice(&scratch[..n]);
        Ok(n)
    })
}

/// Loop turns before a connection yields to the executor. Reads and writes that succeed at once
/// never return `Pending`, so without this one busy peer could hold an executor thread.
const BUDGET: u32 = 32;

/// The parts of [`Options`](crate::Options) a connection needs, already normalised.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) read_buffer: usize,
    pub(crate) max_output: usize,
    pub(crate) linger: Duration,
}

/// The task for one accepted connection. Never panics: a panic in the session, the handler or
/// their work is caught here, logged, and ends this connection only.
pub(crate) async fn connection<S: Service>(
    service: Arc<S>,
    stream: Async<TcpStream>,
    peer: SocketAddr,
    stop: Shutdown,
    limits: Limits,
    permit: Option<SemaphoreGuardArc>,
) {
    let span = tracing::debug_span!("conn", %peer);
    let task = async move {
        // Held while the session is open; the lingering drain after it does not count.
        let permit = permit;
        let local = match stream.get_ref().local_addr() {
            Ok(local) => local,
            Err(e) => {
                tracing::debug!(error = %e, "connection gone before it was opened");
                return;
            }
        };
        set_nodelay(&stream);
        let (session, handler) = service.open(&ConnInfo { peer, local }, Instant::now());
        drop(service);
        tracing::debug!(%local, "open");

        let mut driver = Driver::<S::Handler>::new(handler, session);
        let result = driver.run(&stream, &stop, &limits).await;
        // Nothing of the session is needed for the drain: free it first.
        drop(driver);
        drop(permit);
        if result.is_ok() {
            drain_until_eof(&stream, limits.linger, &stop).await;
        }
    };
    if let Err(panic) = AssertUnwindSafe(task.instrument(span)).catch_unwind().await {
        let panic = Panicked::new(&*panic);
        tracing::error!(%peer, %panic, "connection task panicked; connection dropped");
    }
}

/// The task for one connection the caller connected itself (see
/// [`drive_connection`](crate::drive_connection)): the same [`Driver`] and closing steps as
/// [`connection`], then the handler is handed back. Once `stop` is triggered the connection has
/// `grace` to close; after that it is dropped and the handler returned with a `TimedOut` error.
///
/// `stream` is the result of registering the socket with the reactor; on `Err` the handler is
/// closed and returned with that error at once.
pub(crate) async fn outbound<H: Handler>(
    stream: io::Result<Async<TcpStream>>,
    session: H::Session,
    handler: H,
    stop: Shutdown,
    limits: Limits,
    grace: Duration,
) -> Result<Ended<H>, Panicked> {
    let peer = match &stream {
        Ok(stream) => stream.get_ref().peer_addr().ok(),
        Err(_) => None,
    };
    let span = tracing::debug_span!("conn", peer = %DisplayPeer(peer), outbound = true);
    let task = async move {
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "could not register the stream");
                let mut handler = handler;
                drop(session);
                handler.on_close();
                return Ended {
                    handler,
                    error: Some(e),
                };
            }
        };
        set_nodelay(&stream);
        tracing::debug!("open");
        let mut driver = Driver::new(handler, session);
        // Set once the loop is over; still `None` if the grace period cut it short.
        let mut result = None;
        future::or(
            async {
                let r = driver.run(&stream, &stop, &limits).await;
                let drain = r.is_ok();
                result = Some(r);
                if drain {
                    drain_until_eof(&stream, limits.linger, &stop).await;
                }
            },
            async {
                stop.triggered().await;
                Timer::after(grace).await;
            },
        )
        .await;
        let error = match result {
            Some(r) => r.err(),
            None => {
                tracing::warn!("grace period over; connection dropped");
                Some(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the session did not close within the grace period after shutdown",
                ))
            }
        };
        Ended {
            handler: driver.into_handler(),
            error,
        }
    };
    AssertUnwindSafe(task.instrument(span))
        .catch_unwind()
        .await
        .map_err(|panic| {
            let panic = Panicked::new(&*panic);
            tracing::error!(peer = %DisplayPeer(peer), %panic, "connection task panicked; connection dropped");
            panic
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

/// Reads and discards what the peer still sends until its EOF, an error or `limit` is over.
///
/// Closing a socket with unread input makes the kernel send a reset, and a reset can destroy
/// data we sent but the peer has not read yet (our last reply). Once the server is shutting
/// down we only take what has already arrived, so `serve` is not held up by idle peers.
async fn drain_until_eof(stream: &Async<TcpStream>, limit: Duration, stop: &Shutdown) {
    let end = Instant::now().checked_add(limit);
    let mut sink = [0u8; 4096];
    let drain = async {
        let mut reader = stream;
        let mut budget = BUDGET;
        let mut drained = 0;
        loop {
            match reader.read(&mut sink).await {
                Ok(0) => return,
                // A peer still sending this much after the close is not finishing a pipelined
                // group; let the reset come now rather than read it for `linger`.
                Ok(n) if drained + n > session_api::LINGER_DRAIN_MAX => return,
                Ok(n) => drained += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
            if end.is_some_and(|end| Instant::now() >= end) {
                return;
            }
            budget -= 1;
            if budget == 0 {
                budget = BUDGET;
                future::yield_now().await;
            }
        }
    };
    let stopped = future::or(
        async {
            drain.await;
            false
        },
        future::or(
            async {
                Timer::after(limit).await;
                false
            },
            async {
                stop.triggered().await;
                true
            },
        ),
    )
    .await;
    if stopped {
        // The socket is non-blocking: read what is already there, at most a bounded amount.
        let mut reader = stream.get_ref();
        for _ in 0..256 {
            match reader.read(&mut sink) {
                Ok(n) if n > 0 => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                _ => break,
            }
        }
    }
}

/// Why the wait in [`Driver::drive`] ended.
enum Wake<H: Handler> {
    Stop,
    Work(Completion<H>),
    Timer,
    Wrote(io::Result<usize>),
    Read(io::Result<usize>),
}

/// A session, its handler and the buffers between them and the socket.
struct Driver<H: Handler> {
    /// `None` only once [`into_handler`](Driver::into_handler) has taken it.
    handler: Option<H>,
    session: H::Session,
    /// Input the session has not consumed yet, oldest first.
    input: Vec<u8>,
    /// Output; `output[..sent]` is already written.
    output: Vec<u8>,
    sent: usize,
    /// Work running on blocking threads, in the order it was started; completions are applied
    /// in that order.
    works: VecDeque<Task<Completion<H>>>,
    /// `Handler::on_close` has been called.
    closed: bool,
    /// Output was added while at least `max_output` bytes were already unsent (see
    /// [`backed_up`](Driver::backed_up)). Cleared once the unsent output is under the limit.
    grew_while_full: bool,
}

impl<H: Handler> Driver<H> {
    fn new(handler: H, session: H::Session) -> Self {
        Driver {
            handler: Some(handler),
            session,
            input: Vec::new(),
            output: Vec::new(),
            sent: 0,
            works: VecDeque::new(),
            closed: false,
            grew_while_full: false,
        }
    }

    /// Backpressure: true while at least `max_output` bytes are unsent *and* output was added
    /// while that much was already unsent. Then the socket is not read and the session is
    /// offered no input, so a peer that sends requests without reading the replies cannot make
    /// us buffer without bound.
    ///
    /// A large amount of output alone does not stop reading: a client session that writes a
    /// 10 MiB upload at once must keep reading the peer's answers (an echo, say) while the upload
    /// drains, or both sides block on write. Reading stops only once the output *grows* while
    /// full, which is what answering a peer that does not read looks like.
    fn backed_up(&self, limits: &Limits) -> bool {
        self.grew_while_full && self.pending() >= limits.max_output
    }

    /// Forgets [`grew_while_full`](Driver::grew_while_full) once the output is under the limit.
    fn note_output_room(&mut self, limits: &Limits) {
        if self.pending() < limits.max_output {
            self.grew_while_full = false;
        }
    }

    /// Bytes of output not yet written.
    fn pending(&self) -> usize {
        self.output.len() - self.sent
    }

    fn handler(&mut self) -> &mut H {
        self.handler
            .as_mut()
            .expect("the handler is only taken by `into_handler`, which consumes the driver")
    }

    /// Calls `Handler::on_close` once.
    fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            self.handler().on_close();
        }
    }

    /// Calls `Handler::on_close` if that has not happened yet and gives the handler back. Work
    /// still running is abandoned: its completion is never applied.
    fn into_handler(mut self) -> H {
        self.close();
        self.handler
            .take()
            .expect("the handler is only taken here, and this consumes the driver")
    }

    /// The whole connection up to the lingering drain: [`drive`](Driver::drive), then, if the
    /// session closed with its output written (`Ok`), shut down the write half; either way call
    /// `Handler::on_close`. After `Ok` the caller should
    /// [`drain_until_eof`]; after `Err` the socket is broken and should just be dropped.
    async fn run(
        &mut self,
        stream: &Async<TcpStream>,
        stop: &Shutdown,
        limits: &Limits,
    ) -> io::Result<()> {
        let result = self.drive(stream, stop, limits).await;
        match &result {
            Ok(()) => {
                if let Err(e) = stream.get_ref().shutdown(HalfClose::Write) {
                    tracing::debug!(error = %e, "shutdown of the write half failed");
                }
                tracing::debug!("closed");
            }
            Err(e) => tracing::debug!(error = %e, "connection dropped"),
        }
        self.close();
        result
    }

    /// Step 1 of the loop: offer kept input, answer events, collect output; repeat while
    /// anything moved, since an answered event can let the session consume more input.
    fn pump(&mut self, limits: &Limits, now: Instant) {
        // Reclaim written output once it is at least half the buffer: amortised O(1) per byte,
        // and the buffer stays bounded even when the peer reads slowly but never fully catches up.
        if self.sent > 0 && self.sent >= self.pending() {
            self.output.drain(..self.sent);
            self.sent = 0;
        }
        self.note_output_room(limits);
        loop {
            let mut moved = false;
            if !self.input.is_empty() && !self.backed_up(limits) && !self.session.is_closed() {
                // A slice at a time, so the output limit is checked between slices: 64 KiB of
                // pipelined commands can produce far more than 64 KiB of replies.
                let used = session_api::offer_input(&mut self.session, &self.input, now);
                if used > 0 {
                    self.input.drain(..used);
                    if self.input.is_empty() && self.input.capacity() > KEEP_CAPACITY {
                        self.input = Vec::new();
                    }
                    moved = true;
                }
            }
            while let Some(event) = self.session.poll_event() {
                moved = true;
                let Driver {
                    handler, session, ..
                } = &mut *self;
                let handler = handler
                    .as_mut()
                    .expect("the handler is taken only at the end");
                if let Some(work) = handler.on_event(session, event, now) {
                    self.works.push_back(blocking::unblock(move || work.run()));
                }
            }
            let full = self.pending() >= limits.max_output;
            let added = self.session.poll_transmit(&mut self.output);
            if full && added > 0 {
                self.grew_while_full = true;
            }
            if !moved {
                break;
            }
        }
    }

    /// Runs the loop until the session is closed with its output written (`Ok`) or the socket
    /// fails (`Err`). Either way the caller then calls [`close`](Driver::close) (as
    /// [`run`](Driver::run) does).
    async fn drive(
        &mut self,
        stream: &Async<TcpStream>,
        stop: &Shutdown,
        limits: &Limits,
    ) -> io::Result<()> {
        // The peer's EOF has been read; `handle_eof` is called only once the session has had
        // every chance to consume the input before it (see below).
        let mut eof = false;
        let mut eof_told = false;
        let mut stopping = false;
        let mut timer = Timer::never();
        let mut armed: Option<Instant> = None;
        // Once the session is closed with output pending: when we give up on the peer reading it.
        let mut flush_by: Option<Instant> = None;
        let mut budget = BUDGET;
        // One wait for the whole connection: a fresh one per turn would touch the channel
        // shared by every connection on every wake.
        let mut stop_wait = pin!(stop.triggered());
        let mut now = Instant::now();
        loop {
            self.pump(limits, now);

            // EOF comes after the input the peer sent before it: tell the session only once no
            // work is running (its completion may let the session consume kept input) and the
            // kept input is not just waiting for output room. A reply the peer pipelined right
            // before closing (a client's `221` after a `250` still being decided) is thus read.
            if eof
                && !eof_told
                && !self.session.is_closed()
                && self.works.is_empty()
                && (self.input.is_empty() || !self.backed_up(limits))
            {
                eof_told = true;
                self.session.handle_eof(now);
                continue;
            }

            let closed = self.session.is_closed();
            if closed && self.pending() == 0 && self.works.is_empty() {
                return Ok(());
            }
            if closed && self.pending() > 0 {
                if flush_by.is_none() {
                    flush_by = now.checked_add(limits.linger);
                }
            } else {
                flush_by = None;
            }
            let deadline = match (self.session.poll_timeout(), flush_by) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if deadline != armed {
                if let Some(at) = deadline {
                    timer.set_at(at);
                }
                armed = deadline;
            }

            // Backpressure: read only while there is room for input and the peer keeps up.
            let can_read =
                !eof && !closed && self.input.len() < limits.read_buffer && !self.backed_up(limits);
            let room = limits.read_buffer.saturating_sub(self.input.len());

            let wake = {
                let Driver {
                    input,
                    output,
                    sent,
                    works,
                    ..
                } = &mut *self;
                let sent = *sent;
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
                        Some(task) => Wake::Work(task.await),
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
                    if sent < output.len() {
                        let mut writer = stream;
                        Wake::Wrote(writer.write(&output[sent..]).await)
                    } else {
                        future::pending().await
                    }
                };
                // Try to read at once; if nothing is there yet, wait for readiness with no
                // buffer lent out (see `SCRATCH`). A read happens only in the poll that returns
                // it, so bytes are never read by a branch that another one beat.
                let read_f = async {
                    if can_read {
                        loop {
                            match read_now(stream, input, room) {
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                    if let Err(e) = stream.readable().await {
                                        break Wake::Read(Err(e));
                                    }
                                }
                                result => break Wake::Read(result),
                            }
                        }
                    } else {
                        future::pending().await
                    }
                };
                future::or(
                    stop_f,
                    future::or(work_f, future::or(timer_f, future::or(write_f, read_f))),
                )
                .await
            };

            now = Instant::now();
            match wake {
                Wake::Stop => {
                    stopping = true;
                    self.session.handle_shutdown(now);
                }
                Wake::Work(completion) => {
                    self.works.pop_front();
                    let Driver {
                        handler, session, ..
                    } = &mut *self;
                    let handler = handler
                        .as_mut()
                        .expect("the handler is taken only at the end");
                    completion.apply(handler, session, now);
                    if let Some(work) = handler.after_completion(session, now) {
                        self.works.push_back(blocking::unblock(move || work.run()));
                    }
                }
                Wake::Timer => {
                    // A fired timer is spent; re-arm on the next turn.
                    armed = None;
                    if flush_by.is_some_and(|at| now >= at) {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "peer did not read the last output in time",
                        ));
                    }
                    self.session.handle_timeout(now);
                }
                Wake::Wrote(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Wake::Wrote(Ok(n)) => {
                    self.sent += n;
                    if self.sent == self.output.len() {
                        self.output.clear();
                        if self.output.capacity() > KEEP_CAPACITY {
                            self.output = Vec::new();
                        }
                        self.sent = 0;
                    }
                    self.note_output_room(limits);
                    if flush_by.is_some() {
                        flush_by = now.checked_add(limits.linger);
                    }
                }
                Wake::Read(Ok(0)) => eof = true,
                Wake::Read(Ok(_)) => {}
                Wake::Read(Err(e)) | Wake::Wrote(Err(e))
                    if e.kind() == io::ErrorKind::Interrupted => {}
                Wake::Read(Err(e)) | Wake::Wrote(Err(e)) => return Err(e),
            }

            budget -= 1;
            if budget == 0 {
                budget = BUDGET;
                future::yield_now().await;
            }
        }
    }
}

impl<H: Handler> Drop for Driver<H> {
    /// Covers the task being cancelled (grace period over): the handler still hears about it.
    /// Skipped while unwinding, where a second panic would abort the process, and once
    /// [`into_handler`](Driver::into_handler) has taken the handler (it closed it first).
    fn drop(&mut self) {
        if !std::thread::panicking() && self.handler.is_some() {
            self.close();
        }
    }
}
