//! Drives any buzon [`Session`](session_api::Session) over [smol]: async-io sockets and timers,
//! storage work on `blocking` threads. No protocol logic lives here: the adapter moves bytes,
//! time and [`Work`](session_api::Work) between the socket, the session and its
//! [`Handler`], and never looks at what the bytes mean.
//!
//! # Server and client connections
//!
//! [`serve`] (or [`run`], which starts an executor for it) accepts connections and spawns one
//! task per connection; each task opens a session and its handler through the [`Service`].
//! [`run_connections`] (or [`drive_connection`] for one connection on an executor of your own)
//! drives streams the caller has already connected, typically a client session such as an SMTP
//! sender per connection, and hands each handler back once its session is closed. Both run the
//! same per-connection loop; a client session simply writes nothing until it has read the
//! server's greeting.
//!
//! # The loop
//!
//! Every rule about a connection (when input is offered again, backpressure, the order of EOF,
//! shutdown, the linger, the order of completions, what a panic ends) lives in
//! [`conn_driver::Connection`], shared with `adapter-mio`; this crate does the sockets, the
//! timers and the blocking threads, and tells the driver what happened.
//!
//! Each connection repeats:
//!
//! 1. **Pump.** Offer the kept input to [`Session::handle_input`](session_api::Session::handle_input)
//!    and keep what it did not consume; drain
//!    [`poll_event`](session_api::Session::poll_event) into
//!    [`Handler::on_event`] (a returned `Work` is started on a
//!    `blocking` thread with [`blocking::unblock`]); drain
//!    [`poll_transmit`](session_api::Session::poll_transmit) into the output buffer. Repeat while
//!    anything moved, because answering an event can let the session consume more of the kept
//!    input (pipelined commands).
//! 2. **Wait** for the first of:
//!    - the socket being readable, only while the kept input is under
//!      [`Options::read_buffer`] and the connection is not backed up: at least
//!      [`Options::max_output`] bytes unsent *and* output added while that much was already
//!      unsent (a peer that does not read our replies stops being read, and the session is
//!      offered no input meanwhile). Much unsent output alone does not stop reading, so a
//!      client that writes a large upload at once keeps reading the peer's answers while it
//!      drains;
//!    - the socket being writable, only while output is pending. Reading and writing are
//!      awaited together, so a peer that sends a huge request without reading the replies does
//!      not deadlock against us;
//!    - the deadline from [`poll_timeout`](session_api::Session::poll_timeout)
//!      (then [`handle_timeout`](session_api::Session::handle_timeout));
//!    - the oldest running `Work` finishing (its [`Completion`](session_api::Completion) is
//!      applied; completions are applied in the order the work was started);
//!    - the server shutting down ([`handle_shutdown`](session_api::Session::handle_shutdown),
//!      once).
//!
//!    After a read of zero bytes the socket is not read again, and
//!    [`handle_eof`](session_api::Session::handle_eof) is called once no `Work` is running and
//!    the session has been offered the kept input (unless that waits for output room): what
//!    the peer sent right before its EOF, such as pipelined commands or a server's last reply,
//!    is still consumed first.
//! 3. Once [`is_closed`](session_api::Session::is_closed) is true, every byte of output is
//!    written and no `Work` is running, the write half is shut down,
//!    [`Handler::on_close`] is called and whatever the peer still
//!    sends is read and thrown away until its EOF (for at most [`Options::linger`], and only
//!    what has already arrived once the server is shutting down). That last step keeps the
//!    kernel from answering unread input with a reset, which could destroy our final reply
//!    before the peer reads it.
//!
//! The adapter has no timeouts of its own besides [`Options::linger`] and [`Options::grace`]:
//! idle and command timeouts are the session's business, through `poll_timeout`, and the one
//! that closed a session is named in [`Ended::timed_out`]. Socket errors
//! are logged at `debug` and end the connection; `on_close` is still called. A panic inside a
//! session or handler is caught, logged at `error` and ends only that connection (without
//! `on_close`: the handler may be in any state; [`run_connections`] reports it as [`Panicked`]
//! in that connection's place). A panic inside `Work` ends its connection with `on_close` and
//! an error in [`Ended::error`] (the session would wait forever for the answer), as under mio.
//!
//! Fsync and other blocking storage calls run as `Work` on `blocking`'s thread pool, so one slow
//! disk never stalls the other sessions on the executor.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use adapter_smol::{Options, Shutdown};
//! use session_api::Service;
//!
//! fn main_loop<S: Service>(service: S) -> std::io::Result<()> {
//!     let listener = std::net::TcpListener::bind("127.0.0.1:2525")?;
//!     let shutdown = Shutdown::new();
//!     let trigger = shutdown.clone();
//!     std::thread::spawn(move || {
//!         // e.g. wait for SIGTERM with signal-hook here
//!         trigger.trigger();
//!     });
//!     adapter_smol::run(listener, Arc::new(service), shutdown, Options::default())
//! }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod conn;

pub use conn_driver::{Ended, Panicked};

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::num::NonZeroUsize;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use async_io::{Async, Timer, block_on};
use futures_lite::future;
use session_api::{Handler, Service};
use smol::channel::{Receiver, Sender};
use smol::lock::Semaphore;
use smol::{Executor, Task};

/// Tuning for [`serve`], [`run`], [`run_connections`] and [`drive_connection`]. Start from
/// [`Options::default`].
///
/// ```
/// use std::time::Duration;
/// let opts = adapter_smol::Options {
///     grace: Duration::from_secs(5),
///     max_connections: Some(1000),
///     ..Default::default()
/// };
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Most bytes of peer input kept unconsumed per connection. While this much is kept the
    /// socket is not read (the session is waiting for a decision, or needs a longer line than it
    /// allows). Default 64 KiB; 0 is treated as 1.
    pub read_buffer: usize,
    /// While at least this many bytes of output are unsent and the output grew while that much
    /// was already unsent, the socket is not read and the session is offered no input, so a
    /// peer that does not read cannot make us buffer without bound. (Output that grows past the
    /// limit from below, such as a large upload written at once, does not stop reading until
    /// more is added on top.) Default 256 KiB; 0 is treated as 1.
    pub max_output: usize,
    /// After shutdown, how long [`serve`] waits for sessions to say goodbye and close before it
    /// drops the rest; for [`run_connections`] and [`drive_connection`], how long each
    /// connection has to close. Default 10 s.
    pub grace: Duration,
    /// Once a session is closed: how long a peer may take without progress to read the rest of
    /// the output, and then how long we wait for its EOF before dropping the socket (cut short
    /// by shutdown). Default 5 s.
    pub linger: Duration,
    /// Most sessions open at once; while at the limit no new connection is accepted (they wait
    /// in the kernel's backlog). A connection stops counting once its session is closed, even if
    /// it still lingers for the peer's EOF. `None` (the default) means no limit; `Some(0)` is
    /// treated as `Some(1)`. Only [`serve`] uses it.
    pub max_connections: Option<usize>,
    /// Executor threads started by [`run`], [`run_listeners`] and [`run_connections`] (not
    /// used by [`serve`] and [`drive_connection`]). `None` (the default) means
    /// [`std::thread::available_parallelism`]; `Some(0)` is treated as `Some(1)`.
    pub threads: Option<usize>,
    /// TLS for the connections: implicit from the first byte, or STARTTLS when the session
    /// asks for it. For a server, the listeners' own modes take its place; for connections
    /// the caller connected itself (client sessions) it is their mode, one of the
    /// `TlsMode::Client*` ones. `None` (the default): plain only.
    pub tls: Option<conn_driver::TlsMode>,
}

impl Options {
    /// What a connection needs.
    fn limits(&self) -> Arc<conn_driver::Limits> {
        Arc::new(conn_driver::Limits {
            read_buffer: self.read_buffer,
            max_output: self.max_output,
            linger: self.linger,
            grace: Some(self.grace),
        })
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            read_buffer: 64 * 1024,
            max_output: 256 * 1024,
            grace: Duration::from_secs(10),
            linger: Duration::from_secs(5),
            max_connections: None,
            threads: None,
            tls: None,
        }
    }
}

/// A cloneable shutdown signal: [`trigger`](Shutdown::trigger) it from anywhere (a signal
/// thread, a test) and every [`wait`](Shutdown::wait) resolves.
///
/// Triggering is permanent and idempotent. Dropping every handle does not trigger it.
///
/// ```
/// let shutdown = adapter_smol::Shutdown::new();
/// let waiter = shutdown.wait();
/// let handle = shutdown.clone();
/// std::thread::spawn(move || handle.trigger()).join().unwrap();
/// futures_lite::future::block_on(waiter);
/// assert!(shutdown.is_triggered());
/// ```
#[derive(Debug, Clone)]
pub struct Shutdown {
    // Nothing is ever sent: closing the channel is the broadcast, and a closed channel stays
    // closed. Every handle keeps a sender, so dropping handles never closes it by accident.
    tx: Sender<Infallible>,
    rx: Receiver<Infallible>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A signal that has not been triggered.
    pub fn new() -> Self {
        let (tx, rx) = smol::channel::bounded(1);
        Shutdown { tx, rx }
    }

    /// Triggers the signal; every current and future [`wait`](Shutdown::wait) resolves.
    pub fn trigger(&self) {
        self.tx.close();
    }

    /// True once [`trigger`](Shutdown::trigger) has been called on any clone.
    pub fn is_triggered(&self) -> bool {
        self.tx.is_closed()
    }

    /// A future that resolves once the signal is triggered. It owns a handle, so it can be
    /// passed to [`serve`] or moved into a task.
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let this = self.clone();
        async move { this.triggered().await }
    }

    /// Like [`wait`](Shutdown::wait) without cloning the handle.
    pub(crate) async fn triggered(&self) {
        // `recv` can only fail, and only once the channel is closed.
        let _ = self.rx.recv().await;
    }
}

/// Serves connections from `listener` on `executor` until `shutdown` resolves.
///
/// Each connection gets a session and handler from [`Service::open`] and its own task (see the
/// [crate docs](crate) for its loop). When `shutdown` resolves, the listener is closed (new
/// connections are refused), every live session gets
/// [`handle_shutdown`](session_api::Session::handle_shutdown), and `serve` waits up to
/// [`Options::grace`] for them to close; any still open are then dropped (their handlers still
/// get [`on_close`](session_api::Handler::on_close)). Errors from `accept` are logged and
/// retried, so this returns `Ok` after a shutdown; it fails only if the listener is unusable.
///
/// The executor must be running on at least one thread for connections to make progress;
/// [`run`] sets that up.
///
/// ```no_run
/// use std::{net::TcpListener, sync::Arc};
/// use adapter_smol::{Options, Shutdown};
/// use smol::{Async, Executor};
///
/// fn serve_on_one_thread<S: session_api::Service>(service: S) -> std::io::Result<()> {
///     let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0))?;
///     println!("listening on {}", listener.get_ref().local_addr()?);
///     let shutdown = Shutdown::new();
///     let ex = Executor::new();
///     let service = Arc::new(service);
///     let serving = adapter_smol::serve(&ex, listener, service, shutdown.wait(), Options::default());
///     smol::block_on(ex.run(serving))
/// }
/// ```
pub async fn serve<S: Service>(
    executor: &Executor<'_>,
    listener: Async<TcpListener>,
    service: Arc<S>,
    shutdown: impl Future<Output = ()>,
    opts: Options,
) -> io::Result<()> {
    let local = listener.get_ref().local_addr()?;
    tracing::info!(%local, "serving");
    let limits = opts.limits();
    let permits = opts
        .max_connections
        .map(|n| Arc::new(Semaphore::new(n.max(1))));
    // Told to every session when `shutdown` resolves.
    let stop = Shutdown::new();
    let mut shutdown = pin!(shutdown);
    let mut tasks: Vec<Task<()>> = Vec::new();
    let mut prune_at = 64;

    loop {
        let permit = match &permits {
            Some(sem) => {
                let acquired = future::or(async { Some(sem.acquire_arc().await) }, async {
                    shutdown.as_mut().await;
                    None
                })
                .await;
                match acquired {
                    Some(permit) => Some(permit),
                    None => break,
                }
            }
            None => None,
        };
        let accepted = future::or(async { Some(listener.accept().await) }, async {
            shutdown.as_mut().await;
            None
        })
        .await;
        let Some(accepted) = accepted else { break };
        match accepted {
            Ok((stream, peer)) => {
                // Forget finished tasks now and then; amortised O(1) per connection.
                if tasks.len() >= prune_at {
                    tasks.retain(|task| !task.is_finished());
                    prune_at = (tasks.len() * 2).max(64);
                }
                let task = conn::connection(
                    Arc::clone(&service),
                    stream,
                    peer,
                    stop.clone(),
                    limits.clone(),
                    opts.tls.clone(),
                    permit,
                );
                tasks.push(executor.spawn(task));
            }
            Err(e) if conn_driver::is_transient_accept_error(&e) => {
                tracing::debug!(error = %e, "accept failed")
            }
            Err(e) => {
                // Usually out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed; retrying in 100 ms");
                let stopped = future::or(
                    async {
                        Timer::after(Duration::from_millis(100)).await;
                        false
                    },
                    async {
                        shutdown.as_mut().await;
                        true
                    },
                )
                .await;
                if stopped {
                    break;
                }
            }
        }
    }

    drop(listener);
    let mut live: VecDeque<Task<()>> = tasks.into_iter().filter(|t| !t.is_finished()).collect();
    tracing::info!(%local, connections = live.len(), "shutting down");
    stop.trigger();
    let all_closed = future::or(
        async {
            while let Some(task) = live.front_mut() {
                task.await;
                live.pop_front();
            }
            true
        },
        async {
            Timer::after(opts.grace).await;
            false
        },
    )
    .await;
    if !all_closed {
        tracing::warn!(
            connections = live.len(),
            "grace period over; dropping connections"
        );
        for task in live {
            task.cancel().await;
        }
    }
    tracing::info!(%local, "stopped");
    Ok(())
}

/// One listening socket for [`run_listeners`], with the service its connections get and their
/// TLS. The service's type is erased here, so listeners of different protocols (SMTP, IMAP,
/// NNTP) share one executor; each connection's task is still compiled for its own protocol.
pub struct Listener {
    socket: TcpListener,
    tls: Option<conn_driver::TlsMode>,
    service: Box<dyn ServeListener>,
}

impl Listener {
    /// `socket` (made non-blocking when served), its connections opened by `service`, with
    /// `tls` (implicit, or STARTTLS; `None`: plain).
    pub fn new<S: Service>(
        socket: TcpListener,
        service: Arc<S>,
        tls: Option<conn_driver::TlsMode>,
    ) -> Self {
        Listener {
            socket,
            tls,
            service: Box::new(service),
        }
    }
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("local", &self.socket.local_addr().ok())
            .field("tls", &self.tls.as_ref().map(|_| ".."))
            .finish_non_exhaustive()
    }
}

/// [`serve`] for a service whose type the caller no longer knows.
trait ServeListener: Send {
    fn serve<'a>(
        self: Box<Self>,
        executor: &'a Executor<'_>,
        socket: Async<TcpListener>,
        shutdown: Shutdown,
        opts: Options,
    ) -> std::pin::Pin<Box<dyn Future<Output = io::Result<()>> + 'a>>;
}

impl<S: Service> ServeListener for Arc<S> {
    fn serve<'a>(
        self: Box<Self>,
        executor: &'a Executor<'_>,
        socket: Async<TcpListener>,
        shutdown: Shutdown,
        opts: Options,
    ) -> std::pin::Pin<Box<dyn Future<Output = io::Result<()>> + 'a>> {
        Box::pin(serve(executor, socket, *self, shutdown.wait(), opts))
    }
}

/// Runs [`serve`] for every listener on one new executor with [`Options::threads`] threads
/// (this one included), and blocks until all of them return, i.e. until `shutdown` is
/// triggered and their sessions are closed. Each listener has its own service (of any
/// protocol), its own TLS mode (replacing [`Options::tls`]) and its own
/// [`Options::max_connections`].
///
/// ```no_run
/// use std::sync::Arc;
/// use adapter_smol::{Listener, Options, Shutdown};
///
/// fn two_protocols<A, B>(smtp: Arc<A>, imap: Arc<B>) -> std::io::Result<()>
/// where
///     A: session_api::Service,
///     B: session_api::Service,
/// {
///     let listeners = vec![
///         Listener::new(std::net::TcpListener::bind("127.0.0.1:2525")?, smtp, None),
///         Listener::new(std::net::TcpListener::bind("127.0.0.1:1430")?, imap, None),
///     ];
///     adapter_smol::run_listeners(listeners, Shutdown::new(), Options::default())
/// }
/// ```
pub fn run_listeners(
    listeners: Vec<Listener>,
    shutdown: Shutdown,
    opts: Options,
) -> io::Result<()> {
    let mut prepared = Vec::with_capacity(listeners.len());
    for l in listeners {
        let own = Options {
            tls: l.tls,
            ..opts.clone()
        };
        prepared.push((Async::new(l.socket)?, l.service, own));
    }
    let executor = Executor::new();
    let mut all: std::pin::Pin<Box<dyn Future<Output = io::Result<()>> + '_>> =
        Box::pin(async { Ok(()) });
    for (socket, service, own) in prepared {
        let one = service.serve(&executor, socket, shutdown.clone(), own);
        all = Box::pin(async move {
            let (a, b) = future::zip(all, one).await;
            a.and(b)
        });
    }
    block_on_threads(&executor, &opts, all)
}

/// Runs [`serve`] on a new executor with [`Options::threads`] threads (this one included) and
/// blocks until it returns, i.e. until `shutdown` is triggered and the sessions are closed.
///
/// The listener is made non-blocking here.
///
/// ```no_run
/// use std::sync::Arc;
/// use adapter_smol::{Options, Shutdown};
///
/// fn start<S: session_api::Service>(service: S) -> std::io::Result<()> {
///     let listener = std::net::TcpListener::bind("0.0.0.0:25")?;
///     let shutdown = Shutdown::new();
///     // Hand `shutdown.clone()` to the signal thread, which calls `trigger()`.
///     let opts = Options { threads: Some(4), ..Options::default() };
///     adapter_smol::run(listener, Arc::new(service), shutdown, opts)
/// }
/// ```
pub fn run<S: Service>(
    listener: TcpListener,
    service: Arc<S>,
    shutdown: Shutdown,
    opts: Options,
) -> io::Result<()> {
    let listener = Async::new(listener)?;
    let executor = Executor::new();
    block_on_threads(
        &executor,
        &opts,
        serve(&executor, listener, service, shutdown.wait(), opts.clone()),
    )
}

/// Drives one stream the caller has already connected (typically an outbound client
/// connection) with `session` and `handler`, through the same loop as the connections of
/// [`serve`] (see the [crate docs](crate)), and hands the handler back once the session is
/// closed.
///
/// A client session usually writes nothing until it has read the server's greeting; the loop
/// does not care who speaks first. When the session is closed and its output written, the write
/// half is shut down, [`on_close`](session_api::Handler::on_close) is called, and the peer's EOF
/// is awaited for at most [`Options::linger`] before the future resolves; a socket error ends
/// the connection at once (reported in [`Ended::error`], the handler still comes back).
///
/// Once `shutdown` is triggered the session gets
/// [`handle_shutdown`](session_api::Session::handle_shutdown) and has [`Options::grace`] to
/// close; after that the connection is dropped and the handler returned with a `TimedOut`
/// error. A panic in the session, handler or their work is caught and returned as
/// [`Panicked`]. Of the options, `read_buffer`, `max_output`, `linger` and `grace` apply.
///
/// The future owns everything it needs (`'static`), so it can be spawned on any executor.
/// Dropping it drops the connection (the handler still gets `on_close`).
///
/// ```no_run
/// use std::net::TcpStream;
/// use adapter_smol::{Options, Shutdown};
/// use session_api::Handler;
/// use smol::Async;
///
/// async fn send<H: Handler>(session: H::Session, handler: H) -> std::io::Result<H> {
///     let stream = Async::<TcpStream>::connect(([127, 0, 0, 1], 2525)).await?;
///     let shutdown = Shutdown::new();
///     let ended = adapter_smol::drive_connection(stream, session, handler, &shutdown, &Options::default())
///         .await
///         .map_err(std::io::Error::other)?;
///     match ended.error {
///         None => Ok(ended.handler),
///         Some(e) => Err(e), // a real caller would still look at `ended.handler`
///     }
/// }
/// ```
pub fn drive_connection<H: Handler>(
    stream: Async<TcpStream>,
    session: H::Session,
    handler: H,
    shutdown: &Shutdown,
    opts: &Options,
) -> impl Future<Output = Result<Ended<H>, Panicked>> + Send + use<H> {
    conn::outbound(
        Ok(stream),
        session,
        handler,
        shutdown.clone(),
        opts.limits(),
        opts.tls.clone(),
    )
}

/// Drives already-connected streams, each with its session and handler, on a new executor with
/// [`Options::threads`] threads (this one included), and blocks until every connection has
/// ended. Returns one result per connection, in input order, so the caller can read what each
/// handler collected.
///
/// Each connection runs as in [`drive_connection`]: the handler comes back in [`Ended`] after
/// the session closed (or the socket failed, or the grace period after `shutdown` ran out,
/// see [`Ended::error`]); a connection whose session, handler or work panicked yields
/// [`Panicked`] in its place and takes no other connection down. Connecting is the caller's
/// business. The streams are made non-blocking here. [`Options::max_connections`] is not used:
/// every stream given is driven at once.
///
/// `Err` only if the executor threads could not be started.
///
/// ```no_run
/// use std::net::TcpStream;
/// use adapter_smol::{Options, Shutdown};
/// use session_api::Handler;
///
/// /// One connection per job batch, all to the same relay; `open` makes a client session and
/// /// its handler (which feeds the session its jobs and records their results).
/// fn send_all<H: Handler>(
///     batches: usize,
///     open: impl Fn(usize) -> (H::Session, H),
/// ) -> std::io::Result<Vec<H>> {
///     let mut conns = Vec::new();
///     for i in 0..batches {
///         let stream = TcpStream::connect("127.0.0.1:25")?;
///         let (session, handler) = open(i);
///         conns.push((stream, session, handler));
///     }
///     let shutdown = Shutdown::new(); // hand a clone to a signal thread to stop early
///     let mut handlers = Vec::new();
///     for (i, result) in adapter_smol::run_connections(conns, shutdown, Options::default())?
///         .into_iter()
///         .enumerate()
///     {
///         match result {
///             Ok(ended) => {
///                 if let Some(e) = &ended.error {
///                     eprintln!("batch {i}: connection ended early: {e}");
///                 }
///                 handlers.push(ended.handler);
///             }
///             Err(panic) => eprintln!("batch {i}: {panic}; its results are lost"),
///         }
///     }
///     Ok(handlers)
/// }
/// ```
pub fn run_connections<H: Handler>(
    conns: Vec<(TcpStream, H::Session, H)>,
    shutdown: Shutdown,
    opts: Options,
) -> io::Result<Vec<Result<Ended<H>, Panicked>>> {
    let executor = Executor::new();
    let limits = opts.limits();
    let tasks: Vec<Task<Result<Ended<H>, Panicked>>> = conns
        .into_iter()
        .map(|(stream, session, handler)| {
            executor.spawn(conn::outbound(
                Async::new(stream),
                session,
                handler,
                shutdown.clone(),
                limits.clone(),
                opts.tls.clone(),
            ))
        })
        .collect();
    block_on_threads(&executor, &opts, async {
        let mut ended = Vec::with_capacity(tasks.len());
        for task in tasks {
            ended.push(task.await);
        }
        Ok(ended)
    })
}

/// Runs `main` on `executor` with [`Options::threads`] threads (this one included) and blocks
/// until it returns; the other threads are stopped and joined however it ends.
fn block_on_threads<T>(
    executor: &Executor<'_>,
    opts: &Options,
    main: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    let threads = match opts.threads {
        Some(n) => n.max(1),
        None => std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
    };
    let done = Shutdown::new();

    /// Stops the worker threads however `run` exits, or the scope would never join them.
    struct StopWorkers<'a>(&'a Shutdown);
    impl Drop for StopWorkers<'_> {
        fn drop(&mut self) {
            self.0.trigger();
        }
    }

    std::thread::scope(|scope| {
        let _stop_workers = StopWorkers(&done);
        for i in 1..threads {
            std::thread::Builder::new()
                .name(format!("buzon-smol-{i}"))
                .spawn_scoped(scope, || block_on(executor.run(done.triggered())))?;
        }
        block_on(executor.run(main))
    })
}
