//! Drives any buzon [`Session`](session_api::Session) over one hand-written [mio] event loop,
//! with a small pool of worker threads for blocking storage [`Work`](session_api::Work). No
//! protocol logic lives here: the adapter moves bytes, time and work between the sockets, the
//! sessions and their [`Handler`]s, and never looks at what the bytes mean.
//!
//! Two entry points share one loop: [`Server`] accepts connections on a listener and opens a
//! session for each with a [`Service`]; [`Connections`] drives streams the caller has connected
//! (client sessions), and gives their handlers back when they are done.
//!
//! # The loop
//!
//! Every rule about a connection (when input is offered again, backpressure, the order of EOF,
//! shutdown, the linger, the order of completions, what a panic ends) lives in
//! [`conn_driver::Connection`], shared with `adapter-smol`; this crate does the readiness, the
//! timers and the worker threads, and tells the driver what happened.
//!
//! [`Server::run`] (or [`Connections::run`]) owns one [`mio::Poll`] with three kinds of token:
//! the listener (a server only), a [`mio::Waker`] (rung by worker threads and by
//! [`Shutdown::trigger`]) and one per connection.
//! Connection tokens are never reused, so a late completion cannot reach a newer connection.
//! Each turn of the loop:
//!
//! 1. **Wait** in `poll` until a socket is ready, the waker rings, or the earliest deadline
//!    passes (a session's [`poll_timeout`](session_api::Session::poll_timeout), kept in an
//!    ordered set, or the shutdown grace period). The wait is zero if a connection still has
//!    budgeted reading to do (below).
//! 2. **Collect**: readiness events mark connections; finished work comes back from the workers
//!    and its [`Completion`](session_api::Completion) is applied to the handler and session
//!    (per connection in the order the work was started); expired deadlines call
//!    [`handle_timeout`](session_api::Session::handle_timeout).
//! 3. **Step** every marked connection:
//!    - write pending output until `WouldBlock`;
//!    - **pump**: offer the kept input to
//!      [`handle_input`](session_api::Session::handle_input) and keep what it did not consume;
//!      drain [`poll_event`](session_api::Session::poll_event) into
//!      [`Handler::on_event`] (returned `Work` goes to the
//!      worker pool); drain [`poll_transmit`](session_api::Session::poll_transmit) into the
//!      output buffer. Repeat while the session consumes, because an event answered at once
//!      can let it consume more of the kept input (pipelined commands);
//!    - **read** until `WouldBlock`, pumping and writing after each chunk, but at most
//!      [`Options::budget`] bytes per step so one busy peer cannot starve the others. mio is
//!      edge-triggered, so a connection stopped by the budget is stepped again on the next turn
//!      without waiting for a new edge;
//!    - **backpressure**: the socket is not read while the kept input has reached
//!      [`Options::read_buffer`] (the session waits for an answer, or wants a longer line than
//!      it allows), nor while the unsent output has reached [`Options::max_output`] and the
//!      session still added to it (the peer does not read our replies); input is not even
//!      offered in the second case. Output over the limit alone holds nothing back: a session
//!      may queue a large request of its own (a client uploading a message) and has to keep
//!      taking the peer's answers meanwhile, or a peer that answers while it reads would block
//!      writing to us, stop reading, and our output would never drain. Whatever clears the
//!      condition (a completion, a writable event) steps the connection again, and it resumes
//!      reading because its "may be readable" mark is cleared only by `WouldBlock`;
//!    - a read of zero bytes is the peer's EOF. [`handle_eof`](session_api::Session::handle_eof)
//!      is called once the session has taken all the kept input it will take (no work
//!      outstanding), so commands pipelined before the EOF are still answered;
//!    - `WRITABLE` interest is registered only while output is pending (rustls's
//!      `tlsserver-mio` example), the timer entry is moved to the session's new deadline.
//! 4. **Accept** new connections while the listener has some and [`Options::max_connections`]
//!    allows; each gets a session and handler from [`Service::open`]
//!    and is stepped at once (a greeting goes out without waiting for input). [`Connections`]
//!    has no listener: its streams are registered and stepped once before the first turn, and
//!    its loop ends when the last of them is gone.
//!
//! Once [`is_closed`](session_api::Session::is_closed) is true, all output is written and no
//! work is outstanding, the write half is shut down,
//! [`Handler::on_close`] is called, and the connection lingers:
//! what the peer still sends is read and thrown away until its EOF or [`Options::linger`]. That
//! keeps the kernel from answering unread input with a reset, which could destroy our last reply
//! before the peer reads it. A closed session whose peer stops reading its last output for
//! [`Options::linger`] is dropped.
//!
//! Socket errors are logged at `debug` and end the connection, with `on_close`. A panic in a
//! session or handler is caught, logged at `error` and ends only that connection (without
//! `on_close`: the handler may be in any state). A panic inside `Work` is caught on the worker
//! and ends that connection with `on_close` (the session would wait forever for the answer).
//! [`Connections::run`] reports each of these in the connection's entry: a [`Ended`] with
//! the error, or [`Panicked`]. A session closed by one of its own timers is not an error:
//! [`Ended::timed_out`] names the timer.
//!
//! # Shutdown
//!
//! [`Shutdown::trigger`] (from any thread) wakes the loop, which deregisters and closes the
//! listener (if any), calls [`handle_shutdown`](session_api::Session::handle_shutdown) on every
//! open session and keeps looping until every connection is gone or [`Options::grace`] has
//! passed; the rest are then dropped (their handlers still get `on_close`). Lingering stops
//! being patient: only input that already arrived is discarded. Finally the worker threads
//! finish the work already queued and are joined, and [`Server::run`] (or
//! [`Connections::run`]) returns.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use adapter_mio::{Options, Server};
//!
//! fn serve<S: session_api::Service>(service: S) -> std::io::Result<()> {
//!     let listener = std::net::TcpListener::bind("127.0.0.1:2525")?;
//!     let server = Server::new(listener, Arc::new(service), Options::default())?;
//!     let shutdown = server.shutdown_handle();
//!     std::thread::spawn(move || {
//!         // e.g. wait for SIGTERM with signal-hook here
//!         shutdown.trigger();
//!     });
//!     server.run()
//! }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod conn;
mod event_loop;
mod pool;

pub use conn_driver::{Ended, Panicked};

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mio::{Interest, Poll, Token, Waker};
use session_api::{Handler, Service};

/// The waker's token; the listeners' tokens follow it, then the connections'.
const WAKER: Token = Token(0);

/// Tuning for a [`Server`] or [`Connections`]. Start from [`Options::default`].
///
/// ```
/// use std::time::Duration;
/// let opts = adapter_mio::Options {
///     workers: 8,
///     grace: Duration::from_secs(5),
///     max_connections: Some(1000),
///     ..Default::default()
/// };
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Worker threads that run blocking [`Work`](session_api::Work) (fsync and other storage
    /// I/O). Default 16; 0 is treated as 1. Workers mostly wait for the disk, not for a CPU, so
    /// there should be about as many as deliveries that finish at once: with 4, eight sessions
    /// queued behind each other's fsyncs and the rate dropped by about 10%.
    pub workers: usize,
    /// Most bytes of peer input kept unconsumed per connection. While this much is kept the
    /// socket is not read (the session is waiting for a decision, or needs a longer line than it
    /// allows). Default 64 KiB; 0 is treated as 1.
    pub read_buffer: usize,
    /// Once at least this many bytes of output are unsent and the session still adds to them,
    /// the socket is not read and the session is offered no input until they drop below it, so
    /// a peer that does not read cannot make us buffer without bound (see the
    /// [crate docs](crate#the-loop)). Default 256 KiB; 0 is treated as 1.
    pub max_output: usize,
    /// Most bytes read from one connection per loop turn, so one busy peer cannot starve the
    /// others. Default 64 KiB; 0 is treated as 1.
    pub budget: usize,
    /// After shutdown, how long [`Server::run`] (or [`Connections::run`]) waits for sessions to
    /// say goodbye and close before it drops the rest. Default 10 s.
    pub grace: Duration,
    /// Once a session is closed: how long a peer may take without progress to read the rest of
    /// the output, and then how long we wait for its EOF before dropping the socket (cut short
    /// by shutdown). Default 5 s.
    pub linger: Duration,
    /// Most sessions open at once; while at the limit no new connection is accepted (they wait
    /// in the kernel's backlog). A connection stops counting once its session is closed, even if
    /// it still lingers for the peer's EOF. `None` (the default) means no limit; `Some(0)` is
    /// treated as `Some(1)`. Ignored by [`Connections`], which drives every stream it is given.
    pub max_connections: Option<usize>,
    /// TLS for the connections: implicit from the first byte, or STARTTLS when the session
    /// asks for it. For a server, the listeners' own modes take its place; for connections
    /// the caller connected itself (client sessions) it is their mode, one of the
    /// `TlsMode::Client*` ones. `None` (the default): plain only.
    pub tls: Option<conn_driver::TlsMode>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            workers: 16,
            read_buffer: 64 * 1024,
            max_output: 256 * 1024,
            budget: 64 * 1024,
            grace: Duration::from_secs(10),
            linger: Duration::from_secs(5),
            max_connections: None,
            tls: None,
        }
    }
}

/// State shared between the loop and its [`Shutdown`] handles.
struct Shared {
    stop: AtomicBool,
    waker: Arc<Waker>,
}

impl Shared {
    fn is_triggered(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

/// Stops a [`Server`] or [`Connections`]: [`trigger`](Shutdown::trigger) it from any thread (a
/// signal thread, a test).
///
/// Triggering is permanent and idempotent; triggering before `run` is called makes `run` shut
/// down at once. Dropping every handle does not trigger it.
#[derive(Clone)]
pub struct Shutdown {
    /// The loops it stops: one, or each loop of a [`Servers`].
    targets: Arc<[Arc<Shared>]>,
}

impl Shutdown {
    /// Asks the loop to shut down (see the [crate docs](crate#shutdown)) and wakes it. Returns
    /// at once; [`Server::run`] (or [`Connections::run`]) returns when the shutdown is complete.
    pub fn trigger(&self) {
        for shared in self.targets.iter() {
            shared.stop.store(true, Ordering::Release);
            if let Err(e) = shared.waker.wake() {
                // Only fails once the loop is gone, and then there is nothing left to stop.
                tracing::debug!(error = %e, "could not wake the event loop");
            }
        }
    }

    /// True once [`trigger`](Shutdown::trigger) has been called on any clone.
    pub fn is_triggered(&self) -> bool {
        self.targets.iter().all(|s| s.is_triggered())
    }

    fn of(shared: &Arc<Shared>) -> Shutdown {
        Shutdown {
            targets: Arc::new([Arc::clone(shared)]),
        }
    }
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}

/// One listening socket of a [`Server`], with the service its connections get and their TLS.
pub struct Listener<S: Service> {
    /// The socket (made non-blocking by the server).
    pub socket: std::net::TcpListener,
    /// Opens a session and handler for each connection.
    pub service: Arc<S>,
    /// TLS for this listener's connections (implicit, or STARTTLS); `None`: plain.
    pub tls: Option<conn_driver::TlsMode>,
}

/// A server for one or more listeners: serves every connection with a session from its
/// listener's [`Service`] on one mio event loop, in the thread that calls
/// [`run`](Server::run).
pub struct Server<S: Service> {
    poll: Poll,
    listeners: Vec<(
        mio::net::TcpListener,
        SocketAddr,
        Arc<S>,
        Option<conn_driver::TlsMode>,
    )>,
    shared: Arc<Shared>,
    opts: Options,
}

impl<S: Service> Server<S> {
    /// Prepares a server on `listener` (made non-blocking here): creates the poll, registers the
    /// listener and the waker. Nothing is accepted before [`run`](Server::run); connections that
    /// arrive earlier wait in the backlog.
    pub fn new(
        listener: std::net::TcpListener,
        service: Arc<S>,
        opts: Options,
    ) -> io::Result<Self> {
        let tls = opts.tls.clone();
        Self::with_listeners(
            vec![Listener {
                socket: listener,
                service,
                tls,
            }],
            opts,
        )
    }

    /// Prepares a server on several listeners, served by one event loop (several SMTP ports,
    /// say, each with its own TLS mode and service). [`Options::tls`] is not used: each
    /// listener says its own.
    pub fn with_listeners(listeners: Vec<Listener<S>>, opts: Options) -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut registered = Vec::with_capacity(listeners.len());
        for (i, l) in listeners.into_iter().enumerate() {
            l.socket.set_nonblocking(true)?;
            let local = l.socket.local_addr()?;
            let mut socket = mio::net::TcpListener::from_std(l.socket);
            poll.registry().register(
                &mut socket,
                event_loop::listener_token(i),
                Interest::READABLE,
            )?;
            registered.push((socket, local, l.service, l.tls));
        }
        Ok(Server {
            poll,
            listeners: registered,
            shared: Arc::new(Shared {
                stop: AtomicBool::new(false),
                waker,
            }),
            opts,
        })
    }

    /// A handle that stops this server from any thread.
    pub fn shutdown_handle(&self) -> Shutdown {
        Shutdown::of(&self.shared)
    }

    /// The address the first listener is bound to (useful after binding port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listeners
            .first()
            .map(|(_, local, _, _)| *local)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the server has no listener"))
    }

    /// The addresses of every listener, in the order given.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .map(|(_, local, _, _)| *local)
            .collect()
    }

    /// Runs the event loop on the calling thread until a [`Shutdown`] has been triggered and
    /// every connection is gone (or the grace period is over), then joins the worker threads.
    ///
    /// Errors only if the worker threads cannot be started or polling itself fails; accept and
    /// connection errors are logged and handled. Connections still open when it returns with an
    /// error are dropped (their handlers get `on_close`).
    pub fn run(self) -> io::Result<()> {
        let Server {
            poll,
            listeners,
            shared,
            opts,
        } = self;
        let listeners = listeners
            .into_iter()
            .map(|(socket, local, service, tls)| event_loop::Listener {
                socket,
                local,
                service: service as Arc<dyn Service<Handler = S::Handler>>,
                tls,
                // The listener may already hold connections from before it was registered.
                accept_ready: true,
                accept_after: None,
            })
            .collect();
        event_loop::EventLoop::new(poll, listeners, shared, &opts)?.serve()
    }
}

impl<S: Service> fmt::Debug for Server<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local", &self.local_addrs())
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

/// Servers of different protocols in one process: each [`Server`] keeps its own event loop
/// (connections of one handler type, so the hot path stays monomorphic: see
/// `docs/architecture.md` for the measurement), on its own thread, all stopped by one
/// [`Shutdown`].
///
/// ```no_run
/// use std::sync::Arc;
/// use adapter_mio::{Options, Server, Servers};
///
/// fn two_protocols<A, B>(smtp: Arc<A>, imap: Arc<B>) -> std::io::Result<()>
/// where
///     A: session_api::Service,
///     B: session_api::Service,
/// {
///     let bind = std::net::TcpListener::bind;
///     let mut servers = Servers::default();
///     servers.add(Server::new(bind("127.0.0.1:2525")?, smtp, Options::default())?);
///     servers.add(Server::new(bind("127.0.0.1:1430")?, imap, Options::default())?);
///     let stop = servers.shutdown_handle(); // for the signal thread
///     servers.run()
/// }
/// ```
#[derive(Default)]
pub struct Servers {
    loops: Vec<Box<dyn FnOnce() -> io::Result<()> + Send>>,
    shared: Vec<Arc<Shared>>,
    addrs: Vec<SocketAddr>,
}

impl Servers {
    /// Adds a server; it starts with [`run`](Servers::run).
    pub fn add<S: Service>(&mut self, server: Server<S>) -> &mut Self {
        self.shared.push(Arc::clone(&server.shared));
        self.addrs.extend(server.local_addrs());
        self.loops.push(Box::new(move || server.run()));
        self
    }

    /// A handle that stops every server added so far.
    pub fn shutdown_handle(&self) -> Shutdown {
        Shutdown {
            targets: self.shared.iter().cloned().collect(),
        }
    }

    /// The addresses of every listener of every server, in the order added.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Runs every server, the first on the calling thread and each other on a thread of its
    /// own, until all have returned. If one fails, the others are stopped and the first error
    /// is returned.
    pub fn run(self) -> io::Result<()> {
        let stop_all = self.shutdown_handle();
        let mut loops = self.loops.into_iter();
        let Some(first) = loops.next() else {
            return Ok(());
        };
        std::thread::scope(|scope| {
            let others: Vec<_> = loops
                .enumerate()
                .map(|(i, run)| {
                    let stop_all = stop_all.clone();
                    std::thread::Builder::new()
                        .name(format!("buzon-loop-{}", i + 1))
                        .spawn_scoped(scope, move || {
                            let result = run();
                            if result.is_err() {
                                stop_all.trigger();
                            }
                            result
                        })
                })
                .collect::<io::Result<_>>()
                .inspect_err(|_| stop_all.trigger())?;
            let mut result = first();
            if result.is_err() {
                stop_all.trigger();
            }
            for t in others {
                let other = t
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("an event loop thread panicked")));
                result = result.and(other);
            }
            result
        })
    }
}

impl fmt::Debug for Servers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Servers")
            .field("local", &self.addrs)
            .finish_non_exhaustive()
    }
}

/// Outbound connections: drives streams the caller has already connected (a client session for
/// each, typically waiting for the peer's greeting) on one mio event loop, in the thread that
/// calls [`run`](Connections::run), exactly as a [`Server`] drives the connections it accepts.
///
/// Give the streams to [`new`](Connections::new), or add them later with
/// [`push`](Connections::push) (or [`Extend`]); connecting them, and handling connect errors, is
/// the caller's business. [`run`](Connections::run) sets them non-blocking, drives every session
/// until it is closed and gives back each handler and session, in the order they were added, so
/// the caller can read what they collected.
///
/// Everything described in the [crate docs](crate) applies: the same loop, budgets,
/// backpressure, deadlines, worker pool for [`Work`](session_api::Work), lingering and
/// [shutdown](crate#shutdown) (a [`Shutdown`] from
/// [`shutdown_handle`](Connections::shutdown_handle) makes every session hear
/// [`handle_shutdown`](session_api::Session::handle_shutdown), and [`Options::grace`] applies).
/// [`Options::max_connections`] is ignored: every stream given is driven at once.
///
/// # Example
///
/// ```no_run
/// use std::net::TcpStream;
/// use adapter_mio::{Connections, Options};
/// use session_api::Handler;
///
/// /// Connects to every address, drives the sessions and returns the handlers of those that
/// /// finished cleanly.
/// fn send_all<H: Handler>(
///     jobs: Vec<(&str, H::Session, H)>,
/// ) -> std::io::Result<Vec<H>> {
///     let mut streams = Vec::new();
///     for (addr, session, handler) in jobs {
///         // Connect errors are ours to handle; here they end everything.
///         streams.push((TcpStream::connect(addr)?, session, handler));
///     }
///     let conns = Connections::new(streams, Options::default())?;
///     let shutdown = conns.shutdown_handle();
///     std::thread::spawn(move || {
///         // e.g. wait for SIGINT with signal-hook here
///         shutdown.trigger();
///     });
///     let mut handlers = Vec::new();
///     for (i, outcome) in conns.run()?.into_iter().enumerate() {
///         match outcome {
///             Ok(done) if done.error.is_none() => handlers.push(done.handler),
///             Ok(done) => eprintln!("connection {i} failed: {:?}", done.error),
///             Err(panicked) => eprintln!("connection {i}: {panicked}"),
///         }
///     }
///     Ok(handlers)
/// }
/// ```
pub struct Connections<H: Handler> {
    poll: Poll,
    streams: Vec<(std::net::TcpStream, H::Session, H)>,
    shared: Arc<Shared>,
    opts: Options,
}

impl<H: Handler> Connections<H> {
    /// Prepares connected streams, each with its session and handler, in the order
    /// [`run`](Connections::run) gives them back; more can be added with
    /// [`push`](Connections::push). Creates the poll and its waker, so that a
    /// [`shutdown_handle`](Connections::shutdown_handle) works before and during `run`.
    ///
    /// The streams may still be blocking: `run` makes them non-blocking (and sets
    /// `TCP_NODELAY`). Nothing happens on them before `run`.
    pub fn new(
        streams: impl IntoIterator<Item = (std::net::TcpStream, H::Session, H)>,
        opts: Options,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        Ok(Connections {
            poll,
            streams: streams.into_iter().collect(),
            shared: Arc::new(Shared {
                stop: AtomicBool::new(false),
                waker,
            }),
            opts,
        })
    }

    /// Adds a connected stream (blocking or not) with its session and handler; returns its
    /// index in what [`run`](Connections::run) returns.
    pub fn push(&mut self, stream: std::net::TcpStream, session: H::Session, handler: H) -> usize {
        self.streams.push((stream, session, handler));
        self.streams.len() - 1
    }

    /// How many streams have been added.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    /// True if no stream has been added.
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// A handle that shuts these connections down from any thread.
    pub fn shutdown_handle(&self) -> Shutdown {
        Shutdown::of(&self.shared)
    }

    /// Runs the event loop on the calling thread until every connection is gone, then joins the
    /// worker threads. Returns one entry per stream, in the order they were added:
    ///
    /// - `Ok(`[`Ended`]`)` with the handler and the session. The handler has had
    ///   [`on_close`](session_api::Handler::on_close). [`Ended::error`] is `None` if the
    ///   session closed and its output was written, and says why otherwise.
    /// - `Err(`[`Panicked`]`)` if the session or the handler panicked (including in
    ///   `on_close`): both were dropped, since they may be in any state.
    ///
    /// A connection is gone once its session is closed, its output written and the peer's EOF
    /// read (waiting at most [`Options::linger`] for it), or once it failed. After a
    /// [`Shutdown`], the connections still open when [`Options::grace`] ends are dropped; their
    /// entries carry a [`TimedOut`](io::ErrorKind::TimedOut) error.
    ///
    /// Errors only if the worker threads cannot be started (then nothing has run, and the
    /// handlers are dropped without `on_close`) or polling itself fails (then the connections
    /// are dropped, their handlers after `on_close`).
    pub fn run(self) -> io::Result<Vec<Result<Ended<H>, Panicked>>> {
        let Connections {
            poll,
            streams,
            shared,
            opts,
        } = self;
        event_loop::EventLoop::new(poll, Vec::new(), shared, &opts)?.drive_all(streams)
    }
}

impl<H: Handler> Extend<(std::net::TcpStream, H::Session, H)> for Connections<H> {
    fn extend<I: IntoIterator<Item = (std::net::TcpStream, H::Session, H)>>(&mut self, iter: I) {
        self.streams.extend(iter);
    }
}

impl<H: Handler> fmt::Debug for Connections<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connections")
            .field("len", &self.streams.len())
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}
