//! Drives any buzon [`Session`](session_api::Session) over one hand-written [mio] event loop,
//! with a small pool of worker threads for blocking storage [`Work`](session_api::Work). No
//! protocol logic lives here: the adapter moves bytes, time and work between the sockets, the
//! sessions and their [`Handler`](session_api::Handler)s, and never looks at what the bytes mean.
//!
//! # The loop
//!
//! [`Server::run`] owns one [`mio::Poll`] with three kinds of token: the listener, a
//! [`mio::Waker`] (rung by worker threads and by [`Shutdown::trigger`]) and one per connection.
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
//!      [`Handler::on_event`](session_api::Handler::on_event) (returned `Work` goes to the
//!      worker pool); drain [`poll_transmit`](session_api::Session::poll_transmit) into the
//!      output buffer. Repeat while the session consumes, because an event answered at once
//!      can let it consume more of the kept input (pipelined commands);
//!    - **read** until `WouldBlock`, pumping and writing after each chunk, but at most
//!      [`Options::budget`] bytes per step so one busy peer cannot starve the others. mio is
//!      edge-triggered, so a connection stopped by the budget is stepped again on the next turn
//!      without waiting for a new edge;
//!    - **backpressure**: the socket is not read while the kept input has reached
//!      [`Options::read_buffer`] (the session waits for an answer, or wants a longer line than
//!      it allows) or the unsent output has reached [`Options::max_output`] (the peer does not
//!      read our replies); input is not even offered in the second case. Whatever clears the
//!      condition (a completion, a writable event) steps the connection again, and it resumes
//!      reading because its "may be readable" mark is cleared only by `WouldBlock`;
//!    - a read of zero bytes is the peer's EOF. [`handle_eof`](session_api::Session::handle_eof)
//!      is called once the session has taken all the kept input it will take (no work
//!      outstanding), so commands pipelined before the EOF are still answered;
//!    - `WRITABLE` interest is registered only while output is pending (rustls's
//!      `tlsserver-mio` example), the timer entry is moved to the session's new deadline.
//! 4. **Accept** new connections while the listener has some and [`Options::max_connections`]
//!    allows; each gets a session and handler from [`Service::open`]
//!    and is stepped at once (a greeting goes out without waiting for input).
//!
//! Once [`is_closed`](session_api::Session::is_closed) is true, all output is written and no
//! work is outstanding, the write half is shut down,
//! [`Handler::on_close`](session_api::Handler::on_close) is called, and the connection lingers:
//! what the peer still sends is read and thrown away until its EOF or [`Options::linger`]. That
//! keeps the kernel from answering unread input with a reset, which could destroy our last reply
//! before the peer reads it. A closed session whose peer stops reading its last output for
//! [`Options::linger`] is dropped.
//!
//! Socket errors are logged at `debug` and end the connection, with `on_close`. A panic in a
//! session or handler is caught, logged at `error` and ends only that connection (without
//! `on_close`: the handler may be in any state). A panic inside `Work` is caught on the worker
//! and ends that connection with `on_close` (the session would wait forever for the answer).
//!
//! # Shutdown
//!
//! [`Shutdown::trigger`] (from any thread) wakes the loop, which deregisters and closes the
//! listener, calls [`handle_shutdown`](session_api::Session::handle_shutdown) on every open
//! session and keeps looping until every connection is gone or [`Options::grace`] has passed;
//! the rest are then dropped (their handlers still get `on_close`). Lingering stops being
//! patient: only input that already arrived is discarded. Finally the worker threads finish the
//! work already queued and are joined, and [`Server::run`] returns.
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

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mio::{Interest, Poll, Token, Waker};
use session_api::Service;

/// The listener's token.
const LISTENER: Token = Token(0);
/// The waker's token; connection tokens follow it.
const WAKER: Token = Token(1);

/// Tuning for a [`Server`]. Start from [`Options::default`].
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
    /// I/O). Default 4; 0 is treated as 1.
    pub workers: usize,
    /// Most bytes of peer input kept unconsumed per connection. While this much is kept the
    /// socket is not read (the session is waiting for a decision, or needs a longer line than it
    /// allows). Default 64 KiB; 0 is treated as 1.
    pub read_buffer: usize,
    /// While at least this many bytes of output are unsent, the socket is not read and the
    /// session is offered no input, so a peer that does not read cannot make us buffer without
    /// bound. Default 256 KiB; 0 is treated as 1.
    pub max_output: usize,
    /// Most bytes read from one connection per loop turn, so one busy peer cannot starve the
    /// others. Default 64 KiB; 0 is treated as 1.
    pub budget: usize,
    /// After shutdown, how long [`Server::run`] waits for sessions to say goodbye and close
    /// before it drops the rest. Default 10 s.
    pub grace: Duration,
    /// Once a session is closed: how long a peer may take without progress to read the rest of
    /// the output, and then how long we wait for its EOF before dropping the socket (cut short
    /// by shutdown). Default 5 s.
    pub linger: Duration,
    /// Most sessions open at once; while at the limit no new connection is accepted (they wait
    /// in the kernel's backlog). A connection stops counting once its session is closed, even if
    /// it still lingers for the peer's EOF. `None` (the default) means no limit; `Some(0)` is
    /// treated as `Some(1)`.
    pub max_connections: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            workers: 4,
            read_buffer: 64 * 1024,
            max_output: 256 * 1024,
            budget: 64 * 1024,
            grace: Duration::from_secs(10),
            linger: Duration::from_secs(5),
            max_connections: None,
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

/// Stops a [`Server`]: [`trigger`](Shutdown::trigger) it from any thread (a signal thread, a
/// test).
///
/// Triggering is permanent and idempotent; triggering before [`Server::run`] is called makes
/// `run` shut down at once. Dropping every handle does not trigger it.
#[derive(Clone)]
pub struct Shutdown {
    shared: Arc<Shared>,
}

impl Shutdown {
    /// Asks the server to shut down (see the [crate docs](crate#shutdown)) and wakes its loop.
    /// Returns at once; [`Server::run`] returns when the shutdown is complete.
    pub fn trigger(&self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Err(e) = self.shared.waker.wake() {
            // Only fails once the loop is gone, and then there is nothing left to stop.
            tracing::debug!(error = %e, "could not wake the event loop");
        }
    }

    /// True once [`trigger`](Shutdown::trigger) has been called on any clone.
    pub fn is_triggered(&self) -> bool {
        self.shared.is_triggered()
    }
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}

/// A server for one listener: serves every connection with a session from its [`Service`] on
/// one mio event loop, in the thread that calls [`run`](Server::run).
pub struct Server<S: Service> {
    poll: Poll,
    listener: mio::net::TcpListener,
    local: SocketAddr,
    service: Arc<S>,
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
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        let mut listener = mio::net::TcpListener::from_std(listener);
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        Ok(Server {
            poll,
            listener,
            local,
            service,
            shared: Arc::new(Shared {
                stop: AtomicBool::new(false),
                waker,
            }),
            opts,
        })
    }

    /// A handle that stops this server from any thread.
    pub fn shutdown_handle(&self) -> Shutdown {
        Shutdown {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The address the listener is bound to (useful after binding port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
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
            listener,
            local,
            service,
            shared,
            opts,
        } = self;
        event_loop::EventLoop::new(poll, listener, local, service, shared, &opts)?.run()
    }
}

impl<S: Service> fmt::Debug for Server<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local", &self.local)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}
