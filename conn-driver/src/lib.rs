//! Every rule about one connection, written once for every runtime.
//!
//! A runtime adapter (`adapter-smol`, `adapter-mio`) owns a socket, its readiness, timers and
//! worker threads. Everything else about a connection lives in a [`Connection`]: the input the
//! session has not consumed yet and when to offer it again, backpressure, the order of EOF,
//! shutdown, the linger after the close, the order in which finished [`Work`] is applied, and
//! what a panic ends. It does no I/O and reads no clock: bytes, `now` and outcomes go in,
//! bytes to write, interest and work to run come out. Both runtimes behave the same because
//! this is the only copy.
//!
//! # Driving a connection
//!
//! After creating a [`Connection`] and after every `handle_*` call, an adapter:
//!
//! 1. starts each piece of work from [`poll_work`](Connection::poll_work) on a worker thread and,
//!    when it finishes, hands its result to [`handle_completion`](Connection::handle_completion)
//!    (any order: completions are applied in the order the work was started);
//! 2. shuts down the socket's write half if [`poll_half_close`](Connection::poll_half_close)
//!    says so;
//! 3. drops the socket once [`is_done`](Connection::is_done), and takes the
//!    [`outcome`](Connection::into_outcome);
//! 4. otherwise waits until: [`pending_output`](Connection::pending_output) can be written
//!    (then [`handle_written`](Connection::handle_written)); the socket is readable while
//!    [`read_room`](Connection::read_room) is not zero (then
//!    [`handle_read`](Connection::handle_read), [`handle_eof`](Connection::handle_eof) on a
//!    zero-byte read, [`handle_read_blocked`](Connection::handle_read_blocked) on `WouldBlock`);
//!    [`poll_timeout`](Connection::poll_timeout) passes (then
//!    [`handle_timeout`](Connection::handle_timeout)); the server stops (then
//!    [`handle_shutdown`](Connection::handle_shutdown)); or a socket error (then
//!    [`handle_error`](Connection::handle_error)).
//!
//! `now` must never go backwards between calls.
//!
//! ```
//! use std::time::Instant;
//! use conn_driver::{Connection, Limits};
//! use session_api::{Deadline, Handler, Session, Work};
//!
//! /// Answers each line with `ok` and closes on `quit`.
//! #[derive(Default)]
//! struct Ok { out: Vec<u8>, closed: bool }
//! impl Session for Ok {
//!     type Event = ();
//!     fn handle_input(&mut self, input: &[u8], _: Instant) -> usize {
//!         let mut used = 0;
//!         while let Some(end) = input[used..].iter().position(|&b| b == b'\n') {
//!             self.closed |= input[used..].starts_with(b"quit");
//!             used += end + 1;
//!             self.out.extend_from_slice(b"ok\r\n");
//!             if self.closed { break }
//!         }
//!         used
//!     }
//!     fn handle_eof(&mut self, _: Instant) { self.closed = true }
//!     fn handle_timeout(&mut self, _: Instant) {}
//!     fn handle_shutdown(&mut self, _: Instant) { self.closed = true }
//!     fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
//!         let n = self.out.len();
//!         out.append(&mut self.out);
//!         n
//!     }
//!     fn poll_event(&mut self) -> Option<()> { None }
//!     fn poll_timeout(&self) -> Option<Deadline> { None }
//!     fn is_closed(&self) -> bool { self.closed }
//! }
//! struct Quiet;
//! impl Handler for Quiet {
//!     type Session = Ok;
//!     type Notice = ();
//!     fn on_event(&mut self, _: &mut Ok, _: (), _: Instant) -> Option<Work<Self>> { None }
//! }
//!
//! let now = Instant::now();
//! let mut conn = Connection::new(Ok::default(), Quiet, Limits::default(), now);
//! conn.handle_read(b"a\nquit\nignored\n", now);
//! assert_eq!(conn.pending_output(), b"ok\r\nok\r\n");
//! conn.handle_written(8, now);
//! assert!(conn.poll_half_close()); // closed and flushed: shut down the write half, linger
//! conn.handle_eof(now); // the peer closed too
//! assert!(conn.is_done());
//! assert!(conn.into_outcome().unwrap().error.is_none());
//! ```
#![forbid(unsafe_code)]

mod tls;

pub use rustls;
pub use tls::{ReloadableCert, TlsConfigError, TlsMode, server_config_from_pem};

use std::any::Any;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use session_api::{Completion, Handler, Session, TimerKind, Upgrade, Work};
use tls::TlsTransport;

/// Rounds in a row in which a session answers events but consumes no input before the driver
/// stops re-offering the kept input. A correct session never needs more than one (an event
/// answered at once lets it consume more); the cap only keeps a misbehaving one from spinning
/// the loop forever.
const MAX_IDLE_ROUNDS: u32 = 16;

/// Once empty, an input or output buffer with more capacity than this is freed, so an idle
/// session does not keep the high-water mark of its last message.
const KEEP_CAPACITY: usize = 4 * 1024;

/// The limits of one connection. Start from [`Limits::default`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most input kept for the session (unconsumed) before the socket is no longer read.
    /// Default 64 KiB; 0 is treated as 1.
    pub read_buffer: usize,
    /// Unsent output at which a session that keeps answering stops being offered input (see
    /// [`Connection::read_room`]). Default 256 KiB; 0 is treated as 1.
    pub max_output: usize,
    /// How long a closed session's last output may wait for the peer to read it, and how long
    /// the peer's EOF is awaited after the write half is shut down. Default 5 s.
    pub linger: Duration,
    /// Once the server stops, how long the session has to close before the connection is
    /// dropped (`TimedOut`). `None` (the default) waits as long as the session takes.
    pub grace: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            read_buffer: 64 * 1024,
            max_output: 256 * 1024,
            linger: Duration::from_secs(5),
            grace: None,
        }
    }
}

/// Names one piece of work of one connection, for [`Connection::handle_completion`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkId(u64);

/// What is left of a connection that is gone, when its session and handler did not panic.
#[non_exhaustive]
pub struct Ended<H: Handler> {
    /// The handler, after [`on_close`](Handler::on_close).
    pub handler: H,
    /// The session, in whatever state it ended.
    pub session: H::Session,
    /// `None` if the session closed and all its output was written (what happened to the socket
    /// after that does not count). Otherwise why the connection ended before: a socket error,
    /// the peer not reading the last output within [`Limits::linger`] or the session still open
    /// [`Limits::grace`] after shutdown ([`TimedOut`](io::ErrorKind::TimedOut)), or a piece of
    /// [`Work`] that panicked ([`Other`](io::ErrorKind::Other)); any work still running was
    /// abandoned.
    pub error: Option<io::Error>,
    /// Which of the session's own timers closed it, if one did: the driver called
    /// [`handle_timeout`](Session::handle_timeout) once that [`Deadline`](session_api::Deadline)
    /// had passed and the session closed in that call (saying why in its protocol's words, such
    /// as SMTP's `421 4.4.2`). It does not depend on `error`: a session closed by its timer
    /// whose last reply the peer never read has both. The driver's own limits (linger, grace)
    /// are not session timers and appear only in `error`.
    pub timed_out: Option<TimerKind>,
}

impl<H: Handler> fmt::Debug for Ended<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ended")
            .field("error", &self.error)
            .field("timed_out", &self.timed_out)
            .finish_non_exhaustive()
    }
}

/// A connection's session or handler panicked. The panic was caught, logged, and ended only
/// that connection; its handler and session are dropped without
/// [`on_close`](Handler::on_close), since they may be in any state. (A panic inside
/// [`Work`] is different: the handler is intact, so it gets `on_close` and the connection ends
/// with an error in [`Ended`].)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panicked {
    message: String,
}

impl Panicked {
    /// Reads the message from a panic payload (`panic!` with a literal or a format string).
    pub fn from_payload(payload: &(dyn Any + Send)) -> Self {
        let message = if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_owned()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "(a panic payload that is not a string)".to_owned()
        };
        Panicked { message }
    }

    /// The panic's message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the session or its handler panicked: {}", self.message)
    }
}

impl std::error::Error for Panicked {}

/// How a connection ended.
pub type Outcome<H> = Result<Ended<H>, Panicked>;

/// What a piece of work yields: its completion, or the panic that ended it.
pub type WorkResult<H> = Result<Completion<H>, Panicked>;

/// Runs a piece of work on the calling thread, catching a panic: what a worker thread does.
pub fn run_work<H: Handler>(work: Work<H>) -> WorkResult<H> {
    panic::catch_unwind(AssertUnwindSafe(|| work.run()))
        .map_err(|payload| Panicked::from_payload(&*payload))
}

/// Whether an `accept` error concerns only the connection being accepted (the listener is
/// fine: accept again at once) rather than the process (out of descriptors or memory: back
/// off before accepting again).
pub fn is_transient_accept_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
            | io::ErrorKind::TimedOut
    )
}

/// Where a connection stands.
enum Phase {
    /// The session is open, or closed with output, work or EOF still to settle.
    Open,
    /// The session is over and its output written: the write half is shut down and what the
    /// peer still sends is read and dropped until its EOF or `until`. Closing with unread input
    /// would make the kernel send a reset, which can destroy our last reply before the peer
    /// reads it.
    Lingering { until: Option<Instant> },
    /// Nothing more to do: drop the socket.
    Done,
}

/// One connection's session, handler and buffers, and every rule between them and the socket.
pub struct Connection<H: Handler> {
    /// `None` once a panic poisoned them, or the outcome was taken.
    parts: Option<(H, H::Session)>,
    /// Shared by every connection of a listener: one pointer here, not a copy.
    limits: Arc<Limits>,
    phase: Phase,
    /// Input the session has not consumed yet, oldest first.
    input: Vec<u8>,
    /// Output; `output[..sent]` is already written.
    output: Vec<u8>,
    sent: usize,
    /// The session added output while at least `max_output` bytes were unsent; cleared once the
    /// unsent output is under the limit. See [`Connection::is_backed_up`].
    grew_while_full: bool,
    /// The peer's EOF has been read.
    eof: bool,
    /// `handle_eof` was called (or skipped because the session had closed already).
    eof_told: bool,
    /// `handle_shutdown` was called on the connection.
    stopping: bool,
    /// Once the session is closed with output pending: when we give up on the peer reading it.
    flush_by: Option<Instant>,
    /// After shutdown, with [`Limits::grace`]: when the connection is dropped.
    give_up_at: Option<Instant>,
    /// Number of the next work started; `applied` is the next one to apply.
    issued: u64,
    applied: u64,
    /// Completions that arrived before an earlier one of this connection.
    finished: BTreeMap<u64, WorkResult<H>>,
    /// Work to hand to the adapter.
    to_start: VecDeque<(WorkId, Work<H>)>,
    /// The write half should be shut down (once).
    half_close: bool,
    /// Octets read and dropped while lingering.
    drained: usize,
    /// `on_close` was called.
    closed_handler: bool,
    /// Why the connection ended early, if it did.
    error: Option<io::Error>,
    /// The session timer that closed the session, if one did.
    timed_out: Option<TimerKind>,
    panicked: Option<Panicked>,
    /// `Some` while the connection speaks TLS. Boxed: rustls's connection is over a kilobyte,
    /// and a plain connection should not carry that room (idle sessions are counted in KiB).
    tls: Option<Box<TlsTransport>>,
    /// The configuration for a session that asks for TLS (STARTTLS).
    starttls: Option<tls::End>,
    /// The session asked for TLS: its reply is flushed, everything the peer sends until then is
    /// dropped, then the handshake starts.
    upgrading: bool,
    /// The TLS session failed: flush the alert, then end with this error.
    fatal: Option<io::Error>,
}

impl<H: Handler> Connection<H> {
    /// A new plain connection; any output the session queued at creation (a greeting) is ready
    /// in [`pending_output`](Connection::pending_output).
    pub fn new(
        session: H::Session,
        handler: H,
        limits: impl Into<Arc<Limits>>,
        now: Instant,
    ) -> Self {
        Self::with_tls(session, handler, limits, None, now)
    }

    /// A new connection with TLS: from the first byte ([`TlsMode::Implicit`]; the session hears
    /// [`handle_tls`](Session::handle_tls) when the handshake is done, and its greeting waits
    /// for it), or when the session asks for it ([`TlsMode::StartTls`]).
    pub fn with_tls(
        session: H::Session,
        handler: H,
        limits: impl Into<Arc<Limits>>,
        tls: Option<TlsMode>,
        now: Instant,
    ) -> Self {
        let limits = limits.into();
        let mut conn = Connection {
            parts: Some((handler, session)),
            limits,
            phase: Phase::Open,
            input: Vec::new(),
            output: Vec::new(),
            sent: 0,
            grew_while_full: false,
            eof: false,
            eof_told: false,
            stopping: false,
            flush_by: None,
            give_up_at: None,
            issued: 0,
            applied: 0,
            finished: BTreeMap::new(),
            to_start: VecDeque::new(),
            half_close: false,
            drained: 0,
            closed_handler: false,
            error: None,
            timed_out: None,
            panicked: None,
            tls: None,
            starttls: None,
            upgrading: false,
            fatal: None,
        };
        match tls.map(TlsMode::into_end) {
            Some((end, false)) => conn.starttls = Some(end),
            Some((end, true)) => conn.begin_tls(end),
            None => {}
        }
        conn.settle(now);
        conn
    }

    /// Whether the connection speaks TLS now.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The session, while the connection has it (not after a panic).
    pub fn session(&self) -> Option<&H::Session> {
        self.parts.as_ref().map(|(_, s)| s)
    }

    /// The handler, while the connection has it (not after a panic).
    pub fn handler(&self) -> Option<&H> {
        self.parts.as_ref().map(|(h, _)| h)
    }

    // ---- inputs -------------------------------------------------------------------------

    /// Bytes read from the socket; at most [`read_room`](Connection::read_room) of them.
    pub fn handle_read(&mut self, data: &[u8], now: Instant) {
        match self.phase {
            Phase::Open => {
                if self.upgrading {
                    // Sent after STARTTLS but before our answer to it could be read: injected
                    // plaintext, never a command (RFC 3207 section 4.2).
                    tracing::debug!(octets = data.len(), "dropped input sent before TLS began");
                } else if let Some(tls) = &mut self.tls {
                    match tls.read(data, &mut self.input) {
                        Ok(closed) => self.eof |= closed,
                        Err(e) => {
                            tracing::debug!(error = %e, "TLS failed");
                            self.fatal = Some(e);
                        }
                    }
                    tls.drain(&mut self.output);
                    if let Some(info) = tls.take_established() {
                        tracing::debug!(version = %info.version, cipher = %info.cipher, "TLS established");
                        self.with_parts(|_, session| session.handle_tls(&info, now));
                    }
                } else {
                    self.input.extend_from_slice(data);
                }
                self.settle(now);
            }
            Phase::Lingering { .. } => {
                // A peer still sending this much after the close is not finishing a pipelined
                // group; let the reset come now rather than read it for `linger`.
                self.drained += data.len();
                if self.drained > session_api::LINGER_DRAIN_MAX {
                    self.phase = Phase::Done;
                }
            }
            Phase::Done => {}
        }
    }

    /// The peer closed its sending side (a read returned zero bytes).
    pub fn handle_eof(&mut self, now: Instant) {
        match self.phase {
            Phase::Open => {
                self.eof = true;
                self.settle(now);
            }
            Phase::Lingering { .. } => self.phase = Phase::Done,
            Phase::Done => {}
        }
    }

    /// A read found nothing more to read for now (`WouldBlock`). After shutdown, a lingering
    /// connection stops here: only input that already arrived is dropped, so stopping the server
    /// is not held up by idle peers.
    pub fn handle_read_blocked(&mut self, _now: Instant) {
        if self.stopping && matches!(self.phase, Phase::Lingering { .. }) {
            self.phase = Phase::Done;
        }
    }

    /// `n` bytes from the start of [`pending_output`](Connection::pending_output) were written.
    pub fn handle_written(&mut self, n: usize, now: Instant) {
        let n = n.min(self.pending());
        if n == 0 {
            return;
        }
        self.sent += n;
        if self.sent == self.output.len() {
            self.output.clear();
            self.sent = 0;
            if self.output.capacity() > KEEP_CAPACITY {
                self.output = Vec::new();
            }
        } else if self.sent >= self.pending() {
            // Reclaim written output once it is at least half the buffer: amortised O(1) per
            // byte, and the buffer stays bounded while a slow peer never quite catches up.
            self.output.drain(..self.sent);
            self.sent = 0;
        }
        if self.flush_by.is_some() {
            // The peer is reading: give it the full linger again.
            self.flush_by = now.checked_add(self.limits.linger);
        }
        self.settle(now);
    }

    /// The deadline of [`poll_timeout`](Connection::poll_timeout) has passed. Early or repeated
    /// calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Lingering { until } => {
                if until.is_some_and(|until| now >= until) {
                    self.phase = Phase::Done;
                }
                return;
            }
            Phase::Done => return,
            Phase::Open => {}
        }
        if self.give_up_at.is_some_and(|at| now >= at) {
            self.fail(io::Error::new(
                io::ErrorKind::TimedOut,
                "the session did not close within the grace period after shutdown",
            ));
            return;
        }
        if self.flush_by.is_some_and(|at| now >= at) {
            self.fail(io::Error::new(
                io::ErrorKind::TimedOut,
                "peer did not read the last output in time",
            ));
            return;
        }
        let fired = self.with_parts(|_, session| {
            let due = session
                .poll_timeout()
                .filter(|d| now >= d.at && !session.is_closed());
            session.handle_timeout(now);
            due.filter(|_| session.is_closed()).map(|d| d.kind)
        });
        if let Some(kind) = fired.flatten() {
            tracing::debug!(timer = %kind, "session closed by its timer");
            self.timed_out = Some(kind);
        }
        self.settle(now);
    }

    /// The server is stopping. The session is told once, finishes what is in flight and says
    /// goodbye in its protocol's words; a lingering connection only drops what already arrived.
    pub fn handle_shutdown(&mut self, now: Instant) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        if let Phase::Open = self.phase {
            self.give_up_at = self.limits.grace.and_then(|grace| now.checked_add(grace));
            self.with_parts(|_, session| session.handle_shutdown(now));
            self.settle(now);
        }
    }

    /// A piece of work from [`poll_work`](Connection::poll_work) finished (`Err`: it
    /// panicked). Completions are applied in the order the work was started, so a fast second
    /// piece waits for a slow first one. A panicked piece ends the connection: its session waits
    /// for an answer that will never come.
    pub fn handle_completion(&mut self, id: WorkId, result: WorkResult<H>, now: Instant) {
        if !matches!(self.phase, Phase::Open) || id.0 < self.applied {
            return;
        }
        self.finished.insert(id.0, result);
        while let Some(result) = self.finished.remove(&self.applied) {
            self.applied += 1;
            match result {
                Ok(completion) => {
                    let follow_up = self.with_parts(|handler, session| {
                        completion.apply(handler, session, now);
                        handler.after_completion(session, now)
                    });
                    if let Some(work) = follow_up.flatten() {
                        self.start(work);
                    }
                }
                Err(panic) => {
                    tracing::error!(%panic, "work panicked; connection dropped");
                    self.fail(io::Error::other(format!(
                        "work panicked: {}",
                        panic.message()
                    )));
                    return;
                }
            }
        }
        self.settle(now);
    }

    /// A notice from the connection's [`Notifier`](session_api::Notifier) arrived: the handler
    /// hears it (and may answer on the session, or start work). Ignored once the session is
    /// over.
    pub fn handle_notice(&mut self, notice: H::Notice, now: Instant) {
        if !matches!(self.phase, Phase::Open) {
            return;
        }
        let work = self.with_parts(|handler, session| handler.on_notice(session, notice, now));
        if let Some(work) = work.flatten() {
            self.start(work);
        }
        self.settle(now);
    }

    /// Reading or writing the socket failed: the connection ends with that error.
    pub fn handle_error(&mut self, error: io::Error) {
        match self.phase {
            Phase::Open => self.fail(error),
            Phase::Lingering { .. } => self.phase = Phase::Done,
            Phase::Done => {}
        }
    }

    // ---- outputs ------------------------------------------------------------------------

    /// Bytes to write to the socket, oldest first.
    pub fn pending_output(&self) -> &[u8] {
        &self.output[self.sent..]
    }

    /// How many bytes may be read from the socket now; 0 means "do not read" (then do not wait
    /// for readability either).
    ///
    /// Zero while the kept input has reached [`Limits::read_buffer`] (the session wants a longer
    /// line than it allows), while the session [wants no input](Session::wants_input) (it waits
    /// for an answer), after the peer's EOF, once the session is closed, and while
    /// [backed up](Connection::is_backed_up). Between STARTTLS and the handshake the peer is
    /// read, and what it sent is dropped.
    pub fn read_room(&self) -> usize {
        match self.phase {
            Phase::Open => {
                let wants = self.parts.as_ref().is_some_and(|(_, s)| s.wants_input());
                let handshaking = self.tls.as_ref().is_some_and(|t| t.is_handshaking());
                if self.upgrading {
                    // Read (and drop) what the peer sends before the handshake.
                    self.read_buffer()
                } else if handshaking && !self.eof && self.fatal.is_none() {
                    // The handshake is the transport's business: read it whatever the session
                    // wants (it hears of TLS only once the handshake is done).
                    self.read_buffer()
                } else if self.eof || !wants || self.fatal.is_some() || self.is_backed_up() {
                    0
                } else {
                    // With TLS, one record may carry up to 16 KiB more plaintext than this.
                    self.read_buffer().saturating_sub(self.input.len())
                }
            }
            // Lingering ends once more than the drain limit was read.
            Phase::Lingering { .. } => session_api::LINGER_DRAIN_MAX + 1 - self.drained,
            Phase::Done => 0,
        }
    }

    /// Output backpressure: true while the unsent output has reached [`Limits::max_output`] and
    /// the session added to it after it got there. Input is then neither offered nor read, so a
    /// peer that does not read our answers cannot make us buffer more of them.
    ///
    /// Output over the limit alone holds nothing back: a session may queue a large request of
    /// its own (a client uploading a message) and must keep taking the peer's answers meanwhile,
    /// or a peer that answers while it reads would block on writing to us, stop reading, and our
    /// output would never drain.
    pub fn is_backed_up(&self) -> bool {
        self.grew_while_full && self.pending() >= self.max_output()
    }

    /// When [`handle_timeout`](Connection::handle_timeout) should next be called: the session's
    /// deadline, the linger, or the grace period after shutdown. Only the instant: which timer
    /// it was matters once it closes the session, and then [`Ended::timed_out`] says.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Open => [
                self.parts
                    .as_ref()
                    .and_then(|(_, s)| s.poll_timeout())
                    .map(|d| d.at),
                self.flush_by,
                self.give_up_at,
            ]
            .into_iter()
            .flatten()
            .min(),
            Phase::Lingering { until } => until,
            Phase::Done => None,
        }
    }

    /// The next piece of work to run off the event loop, with the id to report it under.
    #[must_use = "work that is not run leaves the session waiting forever"]
    pub fn poll_work(&mut self) -> Option<(WorkId, Work<H>)> {
        self.to_start.pop_front()
    }

    /// True once: the session is over and its output written, so shut down the socket's write
    /// half now and keep reading (and handing the bytes to
    /// [`handle_read`](Connection::handle_read), which drops them) until EOF.
    pub fn poll_half_close(&mut self) -> bool {
        std::mem::take(&mut self.half_close)
    }

    /// True while the session has not closed and is not lingering: it counts against
    /// connection limits.
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open)
    }

    /// True once the socket can be dropped.
    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    /// How the connection ended. Call it once [`is_done`](Connection::is_done); earlier, the
    /// connection is cut short here (its handler still gets `on_close`) with a `TimedOut` error,
    /// as when a runtime drops connections left at the end of a shutdown.
    pub fn into_outcome(mut self) -> Outcome<H> {
        if let Some(panic) = self.panicked.take() {
            return Err(panic);
        }
        if !self.is_done() {
            self.fail(io::Error::new(
                io::ErrorKind::TimedOut,
                "the connection was dropped before it finished",
            ));
        }
        self.close_handler();
        match self.parts.take() {
            Some((handler, session)) => Ok(Ended {
                handler,
                session,
                error: self.error.take(),
                timed_out: self.timed_out,
            }),
            None => Err(self.panicked.take().unwrap_or_else(|| Panicked {
                message: "on_close panicked".to_owned(),
            })),
        }
    }

    // ---- internals ----------------------------------------------------------------------

    fn pending(&self) -> usize {
        self.output.len() - self.sent
    }

    /// [`Limits::read_buffer`], at least 1.
    fn read_buffer(&self) -> usize {
        self.limits.read_buffer.max(1)
    }

    /// [`Limits::max_output`], at least 1.
    fn max_output(&self) -> usize {
        self.limits.max_output.max(1)
    }

    fn has_work(&self) -> bool {
        self.issued != self.applied
    }

    /// Runs `f` on the handler and session, catching a panic: a panic poisons them and ends
    /// the connection without `on_close`.
    fn with_parts<T>(&mut self, f: impl FnOnce(&mut H, &mut H::Session) -> T) -> Option<T> {
        let (handler, session) = self.parts.as_mut()?;
        match panic::catch_unwind(AssertUnwindSafe(|| f(handler, session))) {
            Ok(value) => Some(value),
            Err(payload) => {
                let panic = Panicked::from_payload(&*payload);
                tracing::error!(%panic, "connection dropped");
                self.parts = None;
                self.panicked = Some(panic);
                self.phase = Phase::Done;
                None
            }
        }
    }

    fn start(&mut self, work: Work<H>) {
        let id = WorkId(self.issued);
        self.issued += 1;
        self.to_start.push_back((id, work));
    }

    /// Ends the connection early with `error`; the handler gets `on_close`.
    fn fail(&mut self, error: io::Error) {
        if self.error.is_none() {
            tracing::debug!(%error, "connection dropped");
            self.error = Some(error);
        }
        self.to_start.clear();
        self.finished.clear();
        self.close_handler();
        self.phase = Phase::Done;
    }

    /// Calls `Handler::on_close` once; a panic there is caught and poisons the parts.
    fn close_handler(&mut self) {
        if self.closed_handler {
            return;
        }
        self.closed_handler = true;
        self.with_parts(|handler, _| handler.on_close());
    }

    /// Moves everything along as far as it goes: pump, EOF, the close.
    fn settle(&mut self, now: Instant) {
        if !matches!(self.phase, Phase::Open) {
            return;
        }
        if self.fatal.is_some() {
            // Only the alert is sent; then the connection ends.
            if self.pending() == 0
                && let Some(error) = self.fatal.take()
            {
                self.fail(error);
            }
            return;
        }
        if self.upgrading && self.pending() == 0 {
            self.start_tls();
        }
        self.pump(now);
        // A client asks for TLS after reading the server's yes, with nothing of its own left
        // to send: the handshake starts now, not at the next event.
        if self.upgrading && self.pending() == 0 {
            self.start_tls();
        }
        // EOF comes after every byte before it: deliver it only once the session has taken all
        // of the kept input it will take, i.e. no answer is outstanding and the last pump was
        // not held back by unsent output. Commands pipelined right before the EOF are answered.
        if self.eof
            && !self.eof_told
            && !self.has_work()
            && (self.input.is_empty() || !self.is_backed_up())
        {
            self.eof_told = true;
            let open = self.parts.as_ref().is_some_and(|(_, s)| !s.is_closed());
            if open {
                self.with_parts(|_, session| session.handle_eof(now));
                self.pump(now);
            }
        }
        if !matches!(self.phase, Phase::Open) {
            return;
        }
        let Some((_, session)) = self.parts.as_ref() else {
            return;
        };
        if !session.is_closed() {
            self.flush_by = None;
            return;
        }
        if self.pending() > 0 {
            if self.flush_by.is_none() {
                self.flush_by = now.checked_add(self.limits.linger);
            }
            return;
        }
        if self.has_work() {
            return;
        }
        if let Some(tls) = &mut self.tls
            && tls.close()
        {
            // End the TLS session properly before the TCP one: readers treat a TCP close
            // without close_notify as a possible truncation.
            tls.drain(&mut self.output);
            if self.pending() > 0 {
                self.flush_by = now.checked_add(self.limits.linger);
                return;
            }
        }
        // Closed, flushed, nothing running: shut down the write half and linger.
        tracing::debug!("closed");
        self.close_handler();
        if self.parts.is_none() {
            return;
        }
        self.input = Vec::new();
        self.output = Vec::new();
        self.sent = 0;
        self.flush_by = None;
        self.half_close = true;
        self.phase = if self.eof {
            Phase::Done
        } else {
            Phase::Lingering {
                until: now.checked_add(self.limits.linger),
            }
        };
    }

    /// The session's answer to its STARTTLS has been written: from here on the bytes are TLS.
    fn start_tls(&mut self) {
        self.upgrading = false;
        let Some(config) = self.starttls.take() else {
            self.fail(io::Error::new(
                io::ErrorKind::Unsupported,
                "the session asked for TLS, but the listener has no certificate",
            ));
            return;
        };
        self.begin_tls(config);
    }

    /// Switches to TLS now; a client's first flight (its ClientHello) is queued at once.
    fn begin_tls(&mut self, end: tls::End) {
        match TlsTransport::new(end) {
            Ok(mut transport) => {
                transport.drain(&mut self.output);
                self.tls = Some(Box::new(transport));
            }
            Err(e) => self.fail(e),
        }
    }

    /// Offers kept input, answers events (queuing any work), collects output; repeats while
    /// the session consumes, since an event answered at once can let it consume more.
    fn pump(&mut self, now: Instant) {
        let mut idle_rounds = 0;
        if self.pending() < self.max_output() {
            self.grew_while_full = false;
        }
        loop {
            let offer = !self.input.is_empty() && !self.is_backed_up() && !self.upgrading;
            let full = self.pending() >= self.max_output();
            let Some(Round {
                consumed,
                works,
                added,
                answered,
                upgrade,
            }) = self.round(offer, now)
            else {
                return;
            };
            if upgrade == Some(Upgrade::Tls) && self.tls.is_none() && !self.upgrading {
                self.upgrading = true;
                if !self.input.is_empty() {
                    // Pipelined after STARTTLS: injected plaintext (CVE-2011-0411).
                    tracing::debug!(
                        octets = self.input.len(),
                        "dropped input pipelined after STARTTLS"
                    );
                    self.input = Vec::new();
                }
            }
            if consumed > 0 && !self.upgrading {
                self.input.drain(..consumed);
                if self.input.is_empty() && self.input.capacity() > KEEP_CAPACITY {
                    self.input = Vec::new();
                }
            }
            for work in works {
                self.start(work);
            }
            if full && added > 0 {
                self.grew_while_full = true;
            } else if !full {
                self.grew_while_full = false;
            }
            if self.upgrading {
                break;
            }
            if consumed > 0 {
                idle_rounds = 0;
            } else if answered && !self.input.is_empty() && idle_rounds < MAX_IDLE_ROUNDS {
                idle_rounds += 1;
            } else {
                break;
            }
        }
    }

    /// One round of [`pump`](Connection::pump) inside the panic boundary: offer the kept input
    /// (if `offer`), answer every event, collect output; `None` after a panic.
    fn round(&mut self, offer: bool, now: Instant) -> Option<Round<H>> {
        // What the peer has yet to take, counted before the buffers move.
        let backlog = self.pending() + self.tls.as_ref().map_or(0, |t| t.plain.len());
        // The buffers are moved out for the round, so the closure can borrow them beside the
        // handler and session, and put back after.
        let input = std::mem::take(&mut self.input);
        // With TLS the session's output is plaintext on its way to the transport.
        let mut output = if let Some(tls) = &mut self.tls {
            std::mem::take(&mut tls.plain)
        } else {
            std::mem::take(&mut self.output)
        };
        let result = self.with_parts(|handler, session| {
            session.handle_output_backlog(backlog);
            let mut consumed = 0;
            if offer && !session.is_closed() {
                consumed = session_api::offer_input(session, &input, now);
            }
            let mut works = Vec::new();
            let mut answered = false;
            while let Some(event) = session.poll_event() {
                answered = true;
                if let Some(work) = handler.on_event(session, event, now) {
                    works.push(work);
                }
            }
            let before = output.len();
            // The length, not the returned count: a session that misreports cannot fool us.
            session.poll_transmit(&mut output);
            Round {
                consumed,
                works,
                added: output.len() - before,
                answered,
                upgrade: session.poll_upgrade(),
            }
        });
        self.input = input;
        match &mut self.tls {
            Some(tls) => {
                tls.write(&output);
                output.clear();
                tls.plain = output;
                tls.drain(&mut self.output);
            }
            None => self.output = output,
        }
        result
    }
}

/// What one round of offering input and answering events did.
struct Round<H: Handler> {
    /// Bytes of input consumed.
    consumed: usize,
    /// Work the handler started.
    works: Vec<Work<H>>,
    /// Bytes of output added.
    added: usize,
    /// Whether any event was answered.
    answered: bool,
    /// A transport change the session asked for.
    upgrade: Option<Upgrade>,
}

impl<H: Handler> Drop for Connection<H> {
    /// A connection dropped before its outcome was taken (a runtime cancelling it at the end of
    /// a shutdown, say) still tells its handler. Skipped while unwinding, where a second panic
    /// would abort the process.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.close_handler();
        }
    }
}

impl<H: Handler> fmt::Debug for Connection<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match self.phase {
            Phase::Open => "open",
            Phase::Lingering { .. } => "lingering",
            Phase::Done => "done",
        };
        f.debug_struct("Connection")
            .field("phase", &phase)
            .field("input", &self.input.len())
            .field("pending_output", &self.pending())
            .field("work", &(self.issued - self.applied))
            .finish_non_exhaustive()
    }
}
