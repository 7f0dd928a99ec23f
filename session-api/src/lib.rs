//! The contract between buzon's protocol cores, its runtime adapters and the host.
//!
//! A **core** (`smtp-core`, later `imap-core` and `nntp-core`) is a pure state machine: bytes and
//! the current time go in, bytes, events and the next deadline come out. It implements
//! [`Session`].
//!
//! An **adapter** (`adapter-smol`, `adapter-mio`) owns sockets, timers and threads. It drives any
//! [`Session`] with the same loop and never looks inside the protocol:
//!
//! 1. read what the peer sent into a buffer, call [`Session::handle_input`] and keep the bytes it
//!    did not consume (it consumes nothing while it waits for a host decision);
//! 2. drain [`Session::poll_event`] (handing each event to the [`Handler`]) and
//!    [`Session::poll_transmit`] (writing the bytes to the peer);
//! 3. wait until the socket is readable, writable (only while output is pending), the deadline of
//!    [`Session::poll_timeout`] has passed (then call [`Session::handle_timeout`]) or a piece of
//!    [`Work`] has finished (then apply its [`Completion`], call
//!    [`Handler::after_completion`] and run any work it returns, and go back to 1 with the kept
//!    bytes).
//!
//! The **host** answers events through a [`Handler`], one per connection, made by a [`Service`].
//! Quick answers (is this recipient ours?) are given at once inside [`Handler::on_event`]. Slow
//! answers (fsync a message to disk) are returned as [`Work`], which the adapter runs off its
//! event loop; the [`Completion`] it yields is then applied to the handler and session on the
//! loop.
//!
//! # Example
//!
//! A session that answers every line with `ok`, driven by hand the way an adapter would:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use session_api::{Deadline, Session, TimerKind};
//!
//! #[derive(Default)]
//! struct Ok { out: Vec<u8>, closed: bool, idle_since: Option<Instant> }
//!
//! impl Session for Ok {
//!     type Event = ();
//!     fn handle_input(&mut self, input: &[u8], now: Instant) -> usize {
//!         // Consume whole lines only: the caller keeps the incomplete rest.
//!         let mut used = 0;
//!         while let Some(end) = input[used..].iter().position(|&b| b == b'\n') {
//!             used += end + 1;
//!             self.out.extend_from_slice(b"ok\r\n");
//!         }
//!         if used > 0 {
//!             self.idle_since = Some(now);
//!         }
//!         used
//!     }
//!     fn handle_eof(&mut self, _now: Instant) { self.closed = true }
//!     fn handle_timeout(&mut self, now: Instant) {
//!         // Early calls do nothing.
//!         if self.poll_timeout().is_some_and(|d| now >= d.at) {
//!             self.out.extend_from_slice(b"bye\r\n");
//!             self.closed = true;
//!         }
//!     }
//!     fn handle_shutdown(&mut self, _now: Instant) { self.closed = true }
//!     fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
//!         let n = self.out.len();
//!         out.append(&mut self.out);
//!         n
//!     }
//!     fn poll_event(&mut self) -> Option<()> { None }
//!     fn poll_timeout(&self) -> Option<Deadline> {
//!         // Quiet for a minute after a command: the peer is idle.
//!         let since = self.idle_since.filter(|_| !self.closed)?;
//!         Some(Deadline::new(since + Duration::from_secs(60), TimerKind::Idle))
//!     }
//!     fn is_closed(&self) -> bool { self.closed }
//! }
//!
//! let mut s = Ok::default();
//! let now = Instant::now();
//! assert_eq!(s.handle_input(b"a\r\nb", now), 3); // "b" is kept by the caller
//! let mut out = Vec::new();
//! s.poll_transmit(&mut out);
//! assert_eq!(out, b"ok\r\n");
//! let deadline = s.poll_timeout().unwrap();
//! assert_eq!(deadline.kind, TimerKind::Idle);
//! s.handle_timeout(deadline.at);
//! assert!(s.is_closed());
//! ```
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::time::Instant;

/// How much kept input an adapter offers a session at once. Adapters check their output limit
/// between offers, so a peer that pipelines many commands and never reads the replies is held
/// to about one slice's worth of replies beyond the limit.
pub const OFFER_SLICE: usize = 8 * 1024;

/// Offers the start of `input` to `session`, at most [`OFFER_SLICE`] bytes (the whole buffer only
/// if the slice was not enough for the session to consume anything); returns the bytes
/// consumed, never more than `input.len()` whatever the session claims.
///
/// Adapters call this and check their output limit between calls.
pub fn offer_input<S: Session + ?Sized>(session: &mut S, input: &[u8], now: Instant) -> usize {
    let slice = input.len().min(OFFER_SLICE);
    let mut used = session.handle_input(&input[..slice], now);
    if used == 0 && slice < input.len() {
        used = session.handle_input(input, now);
    }
    used.min(input.len())
}

/// After a session closes, adapters read and drop what the peer still sends (closing with unread
/// input would reset the connection and could destroy the last reply), but at most this much.
pub const LINGER_DRAIN_MAX: usize = 256 * 1024;

/// A sans-IO protocol session: one connection's worth of protocol state.
///
/// # The methods, by class
///
/// - **Inputs** (`handle_*`): [`handle_input`](Session::handle_input) (bytes),
///   [`handle_eof`](Session::handle_eof), [`handle_timeout`](Session::handle_timeout),
///   [`handle_shutdown`](Session::handle_shutdown), [`handle_tls`](Session::handle_tls). Each
///   takes `now`, which never goes backwards from one call to the next.
/// - **Outputs** (`poll_*`): [`poll_transmit`](Session::poll_transmit) (bytes for the peer),
///   [`poll_event`](Session::poll_event) (questions for the host),
///   [`poll_timeout`](Session::poll_timeout) (the next deadline, and which timer it is),
///   [`poll_upgrade`](Session::poll_upgrade) (a transport change).
/// - **Getters**: [`is_closed`](Session::is_closed), [`wants_input`](Session::wants_input).
///
/// # The order
///
/// After any input, drain `poll_event` (answering each event, which may be an input of its own
/// kind such as SMTP's `decide`) and `poll_transmit` until both are empty, check `poll_upgrade`,
/// then wait for the next input or for `poll_timeout`. Once `is_closed` is true, flush the
/// remaining output and close the connection. `conn_driver::Connection` does all of this; a
/// session written for this contract needs nothing else.
///
/// # The rules a session keeps
///
/// - **Consume incrementally.** `handle_input` takes what it can use now and returns how much;
///   the caller keeps the rest and offers it again with anything newer appended. A session must
///   make progress on any prefix of its input: an IMAP literal or an NNTP article can be larger
///   than the caller's read buffer, so a session that waits for "the whole thing" before
///   consuming anything would wait forever.
/// - **Re-offer.** Returning 0 means "not now": an incomplete line, or a question the host has
///   not answered. The caller offers the same bytes again after the next event is answered, and
///   stops offering after a few rounds in which events are answered but nothing is consumed.
/// - **EOF comes last.** `handle_eof` is called only after every byte before the EOF has been
///   offered and no host answer is outstanding, so a reply to a command pipelined right before
///   the close is still produced.
/// - **No input while waiting.** While `wants_input` is false the caller does not read, so a
///   peer cannot make the caller buffer input the session will not take.
/// - **Timeouts may come early.** `handle_timeout` before the deadline, or twice, does nothing.
pub trait Session {
    /// What the session asks of its host.
    type Event;

    /// Offers bytes from the peer; returns how many were consumed (the caller must keep the
    /// rest).
    ///
    /// The caller keeps the rest and offers it again, with anything newer appended, after the
    /// next event has been answered. A session consumes nothing while it waits for a decision.
    #[must_use = "the bytes not consumed must be kept and offered again"]
    fn handle_input(&mut self, input: &[u8], now: Instant) -> usize;

    /// The peer closed its sending side.
    fn handle_eof(&mut self, now: Instant);

    /// Called when the deadline of [`poll_timeout`](Session::poll_timeout) has passed. Early or
    /// repeated calls do nothing.
    fn handle_timeout(&mut self, now: Instant);

    /// The server is stopping: the session should finish what is in flight, say goodbye in its
    /// protocol's words and close.
    fn handle_shutdown(&mut self, now: Instant);

    /// Appends bytes to send to the peer to `out`; returns how many were appended.
    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize;

    /// The next event for the host, if any.
    fn poll_event(&mut self) -> Option<Self::Event>;

    /// When [`handle_timeout`](Session::handle_timeout) should next be called, and which of the
    /// session's timers that is; `None` while no timer runs (the session is closed, or the peer
    /// waits for the host's answer and is not to blame for the silence).
    ///
    /// The deadline may move after any input, as a session rearms its timers; callers ask
    /// again after each one. The [`kind`](Deadline::kind) does not change what the caller does
    /// (call `handle_timeout` at [`at`](Deadline::at), nothing more): it says why, so that a
    /// connection ended by a timer can be reported as such.
    fn poll_timeout(&self) -> Option<Deadline>;

    /// True once the session will consume no more input: flush the output, then close.
    fn is_closed(&self) -> bool;

    /// False while the session would consume nothing whatever arrived (it waits for the host's
    /// answer, or for a transport change): the caller then stops reading at once instead of
    /// filling its buffer. The default is "until closed".
    fn wants_input(&self) -> bool {
        !self.is_closed()
    }

    /// A change of transport the session asks for, right after the line that asked for it
    /// (STARTTLS): `Some` once. The session has consumed input exactly through that line and
    /// queued its reply, and takes no input until [`handle_tls`](Session::handle_tls). The
    /// driver then flushes the reply, throws away any input the peer sent after the line
    /// (RFC 3207 section 4.2; CVE-2011-0411 was a server that kept it), runs the handshake and
    /// tells the session. The default asks for nothing.
    fn poll_upgrade(&mut self) -> Option<Upgrade> {
        None
    }

    /// How much output the caller holds that the peer has not yet taken, told before each
    /// round of input and events. A session that produces large output on its own (an IMAP
    /// FETCH of a big message) asks its host for the next piece only while this is small, so
    /// a slow reader costs a bounded buffer. The default ignores it.
    fn handle_output_backlog(&mut self, _unsent: usize) {}

    /// The transport is TLS from now on: after an [`Upgrade::Tls`], or at the start of an
    /// implicit-TLS connection (then before any input). The default ignores it.
    fn handle_tls(&mut self, _info: &TlsInfo, _now: Instant) {}
}

/// When a [`Session`] wants [`handle_timeout`](Session::handle_timeout), and why: what
/// [`poll_timeout`](Session::poll_timeout) returns.
///
/// ```
/// use std::time::{Duration, Instant};
/// use session_api::{Deadline, TimerKind};
///
/// let now = Instant::now();
/// let d = Deadline::new(now + Duration::from_secs(300), TimerKind::Idle);
/// assert_eq!((d.at, d.kind), (now + Duration::from_secs(300), TimerKind::Idle));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Deadline {
    /// When the timer fires: call `handle_timeout` at or after this instant.
    pub at: Instant,
    /// Which timer it is.
    pub kind: TimerKind,
}

impl Deadline {
    /// The timer `kind` firing at `at`.
    pub fn new(at: Instant, kind: TimerKind) -> Self {
        Deadline { at, kind }
    }
}

/// Which of a session's timers a [`Deadline`] belongs to, in words common to SMTP, IMAP and
/// NNTP, servers and clients. A core may keep finer timers of its own and map them onto these.
///
/// [`Display`](std::fmt::Display) gives a short lower-case phrase for logs: "idle",
/// "data transfer".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimerKind {
    /// A client waiting for the server's greeting: SMTP's 220 (RFC 5321 section 4.5.3.2.1,
    /// 5 minutes), IMAP's and NNTP's first response.
    Greeting,
    /// A server waiting for the peer's next command: RFC 5321 section 4.5.3.2.7 (at least
    /// 5 minutes), IMAP's autologout timer (RFC 9051 section 5.4: at least 30 minutes once
    /// authenticated).
    Idle,
    /// In the middle of data the peer is sending, between one block of it and the next: an
    /// SMTP message after DATA or inside a BDAT chunk (RFC 5321 section 4.5.3.2.5, 3 minutes
    /// per block, which the server applies to what it receives), an IMAP literal, an NNTP
    /// article.
    Transfer,
    /// A client waiting for the reply to a command it sent: RFC 5321 sections 4.5.3.2.2
    /// to 4.5.3.2.4 (MAIL, RCPT, DATA) and 4.5.3.2.6 (the reply after the data, 10 minutes).
    Reply,
}

impl std::fmt::Display for TimerKind {
    /// ```
    /// assert_eq!(session_api::TimerKind::Transfer.to_string(), "data transfer");
    /// ```
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TimerKind::Greeting => "greeting",
            TimerKind::Idle => "idle",
            TimerKind::Transfer => "data transfer",
            TimerKind::Reply => "reply",
        })
    }
}

/// A transport change a [`Session`] can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Upgrade {
    /// Start TLS on this connection (STARTTLS in SMTP, IMAP, NNTP).
    Tls,
}

/// What a TLS handshake settled, for the session (and its `Received:` header).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsInfo {
    /// `TLSv1.3` or `TLSv1.2`.
    pub version: String,
    /// The cipher suite, by its IANA name (`TLS13_AES_256_GCM_SHA384`).
    pub cipher: String,
    /// The server name the client asked for (SNI), if any.
    pub server_name: Option<String>,
}

impl TlsInfo {
    /// Describes a finished handshake.
    ///
    /// ```
    /// let info = session_api::TlsInfo::new("TLSv1.3", "TLS13_AES_128_GCM_SHA256", None);
    /// assert_eq!(info.version, "TLSv1.3");
    /// ```
    pub fn new(
        version: impl Into<String>,
        cipher: impl Into<String>,
        server_name: Option<String>,
    ) -> Self {
        TlsInfo {
            version: version.into(),
            cipher: cipher.into(),
            server_name,
        }
    }
}

/// The host's side of one connection: answers a session's events.
pub trait Handler: Send + Sized + 'static {
    /// The session this handler answers.
    type Session: Session + Send + 'static;

    /// What the rest of the host can tell this connection through its [`Notifier`]: server
    /// push, such as a message stored in a mailbox this connection watches (IMAP IDLE, an NNTP
    /// notice). `()` for a protocol that needs none.
    type Notice: Send + 'static;

    /// Answers one event. A quick answer is given directly on `session`; a slow one (disk I/O)
    /// is returned as [`Work`] for the adapter to run off its event loop.
    fn on_event(
        &mut self,
        session: &mut Self::Session,
        event: <Self::Session as Session>::Event,
        now: Instant,
    ) -> Option<Work<Self>>;

    /// A notice sent through this connection's [`Notifier`] arrived. It is delivered on the
    /// connection's own loop, between its other inputs, so the handler may answer on the
    /// session at once (an untagged `EXISTS` during IDLE) or return [`Work`]. The default
    /// ignores it.
    fn on_notice(
        &mut self,
        _session: &mut Self::Session,
        _notice: Self::Notice,
        _now: Instant,
    ) -> Option<Work<Self>> {
        None
    }

    /// Called after each [`Completion`] has been applied, so a handler whose completion found
    /// more to do (a next step that is itself slow) can start it. A completion cannot return
    /// work itself because it runs inside the adapter's bookkeeping.
    fn after_completion(
        &mut self,
        _session: &mut Self::Session,
        _now: Instant,
    ) -> Option<Work<Self>> {
        None
    }

    /// The connection is gone (closed by either side). Any state still open is dropped here.
    fn on_close(&mut self) {}
}

/// Makes a session and its handler for each accepted connection.
pub trait Service: Send + Sync + 'static {
    /// The handler type; its session type is the protocol this service speaks.
    type Handler: Handler;

    /// Called for every accepted connection. `notifier` wakes this connection with a notice
    /// from anywhere (another connection's delivery, another thread); keep it where the
    /// notices come from, such as a registry of who watches which mailbox.
    fn open(
        &self,
        conn: &ConnInfo,
        notifier: Notifier<<Self::Handler as Handler>::Notice>,
        now: Instant,
    ) -> (<Self::Handler as Handler>::Session, Self::Handler);
}

/// Wakes one connection with a notice, from any thread: cheap to clone, never blocks, and
/// harmless after the connection is gone.
///
/// The runtime adapter makes one per connection and hands it to [`Service::open`]; the notice
/// reaches [`Handler::on_notice`] on the connection's own loop. Nothing waits on a worker
/// thread for it, so a notice can be awaited indefinitely (IMAP IDLE) and costs nothing while
/// none comes.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use session_api::Notifier;
///
/// let inbox = Arc::new(Mutex::new(Vec::new()));
/// let sink = Arc::clone(&inbox);
/// let notifier = Notifier::new(move |n: u32| {
///     sink.lock().unwrap().push(n);
///     true
/// });
/// let copy = notifier.clone();
/// assert!(std::thread::spawn(move || copy.notify(7)).join().unwrap());
/// assert_eq!(*inbox.lock().unwrap(), [7]);
/// assert!(!Notifier::<u32>::detached().notify(1));
/// ```
pub struct Notifier<N> {
    deliver: std::sync::Arc<dyn Fn(N) -> bool + Send + Sync>,
}

impl<N> Notifier<N> {
    /// A notifier that hands each notice to `deliver`, which queues it for the connection,
    /// wakes the connection's loop and says whether the connection is still there. Adapters
    /// call this; hosts only [`notify`](Notifier::notify).
    pub fn new(deliver: impl Fn(N) -> bool + Send + Sync + 'static) -> Self {
        Notifier {
            deliver: std::sync::Arc::new(deliver),
        }
    }

    /// A notifier that reaches no connection (`notify` always returns false): for connections
    /// nobody can push to, and for tests.
    pub fn detached() -> Self {
        Notifier::new(|_| false)
    }

    /// Sends `notice` to the connection. Returns false once the connection is gone; the
    /// caller should then forget this notifier.
    pub fn notify(&self, notice: N) -> bool {
        (self.deliver)(notice)
    }
}

impl<N> Clone for Notifier<N> {
    fn clone(&self) -> Self {
        Notifier {
            deliver: std::sync::Arc::clone(&self.deliver),
        }
    }
}

impl<N> std::fmt::Debug for Notifier<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Notifier")
    }
}

/// Addresses of an accepted connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnInfo {
    /// The peer's address.
    pub peer: SocketAddr,
    /// Our address the peer connected to.
    pub local: SocketAddr,
}

/// Blocking work (typically storage I/O) that must not run on an event loop.
///
/// The adapter runs it on a worker thread; the [`Completion`] it returns is applied on the loop.
#[must_use = "work that is never run leaves its session waiting for an answer"]
pub struct Work<H: Handler>(Box<dyn FnOnce() -> Completion<H> + Send>);

/// The result of [`Work`], applied to the handler and its session back on the event loop.
#[must_use = "a completion that is never applied leaves its session waiting for an answer"]
pub struct Completion<H: Handler>(Box<ApplyFn<H>>);

/// What a [`Completion`] runs on the event loop.
type ApplyFn<H> = dyn FnOnce(&mut H, &mut <H as Handler>::Session, Instant) + Send;

impl<H: Handler> Work<H> {
    /// Wraps a blocking closure.
    pub fn new(f: impl FnOnce() -> Completion<H> + Send + 'static) -> Self {
        Work(Box::new(f))
    }

    /// Runs the blocking part; call this on a worker thread.
    pub fn run(self) -> Completion<H> {
        (self.0)()
    }
}

impl<H: Handler> Completion<H> {
    /// Wraps what to do on the event loop once the work is done.
    pub fn new(f: impl FnOnce(&mut H, &mut H::Session, Instant) + Send + 'static) -> Self {
        Completion(Box::new(f))
    }

    /// Applies the result; call this on the event loop, then feed the session its kept input.
    pub fn apply(self, handler: &mut H, session: &mut H::Session, now: Instant) {
        (self.0)(handler, session, now)
    }
}

impl<H: Handler> std::fmt::Debug for Work<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Work")
    }
}

impl<H: Handler> std::fmt::Debug for Completion<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Completion")
    }
}
