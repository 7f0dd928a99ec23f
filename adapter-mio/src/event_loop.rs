//! The event loop behind [`Server::run`](crate::Server::run) and
//! [`Connections::run`](crate::Connections::run).

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use session_api::{ConnInfo, Handler, Service};

use crate::conn::{Conn, Ctx, Limits, Status};
use crate::pool::{Done, Pool};
use crate::{Finished, LISTENER, Panicked, Shared, WAKER};

/// Most bytes read from a socket in one call.
const READ_CHUNK: usize = 16 * 1024;

/// How long to wait before accepting again after an accept error that is not about one
/// connection (usually out of file descriptors), instead of spinning on it.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Readiness events taken per `poll`.
const EVENTS: usize = 1024;

/// What becomes of one connection given to [`Connections`](crate::Connections).
pub(crate) type Outcome<H> = Result<Finished<H>, Panicked>;

/// A listening socket and the service that opens its connections' sessions.
pub(crate) struct Listener<H: Handler> {
    pub(crate) socket: TcpListener,
    pub(crate) local: SocketAddr,
    pub(crate) service: Arc<dyn Service<Handler = H>>,
}

/// How a connection leaves the loop.
enum End {
    /// Its session closed and its output was written (it may have lingered since).
    Done,
    /// Cut short; `on_close` is called unless the session had closed already.
    Failed(io::Error),
    /// The session or handler panicked: no `on_close`, and the handler is not given back.
    Panicked,
}

/// Everything the loop owns.
pub(crate) struct EventLoop<H: Handler> {
    poll: Poll,
    /// Accepted connections come from here (a [`Server`](crate::Server)); `None` for
    /// [`Connections`](crate::Connections), and once shutdown began. The loop ends once it is
    /// `None` and no connection is left.
    listener: Option<Listener<H>>,
    shared: Arc<Shared>,
    limits: Limits,
    grace: Duration,
    max_connections: Option<usize>,
    pool: Pool<H>,
    conns: HashMap<Token, Conn<H>>,
    /// One entry per connection given to [`Connections`](crate::Connections), filled in when it
    /// leaves the loop.
    outcomes: Vec<Option<Outcome<H>>>,
    /// Connections whose session is still open (not lingering), for `max_connections`.
    open_sessions: usize,
    next_token: usize,
    /// Every connection's armed deadline; the first entry bounds the `poll` timeout.
    timers: BTreeSet<(Instant, Token)>,
    /// Connections to step again without waiting for a new edge (their read budget ran out).
    again: Vec<Token>,
    /// Connections may be waiting in the listener's backlog (no `WouldBlock` seen since the
    /// last edge).
    accept_ready: bool,
    /// After an accept error: not before this instant.
    accept_after: Option<Instant>,
    /// Set once shutdown began: when the grace period ends.
    stop_by: Option<Instant>,
    scratch: Vec<u8>,
}

impl<H: Handler> EventLoop<H> {
    /// Prepares the loop and starts the worker threads. The listener, if any, is registered
    /// under [`LISTENER`] already.
    pub(crate) fn new(
        poll: Poll,
        listener: Option<Listener<H>>,
        shared: Arc<Shared>,
        opts: &crate::Options,
    ) -> io::Result<Self> {
        let limits = Limits {
            read_buffer: opts.read_buffer.max(1),
            max_output: opts.max_output.max(1),
            budget: opts.budget.max(1),
            linger: opts.linger,
        };
        let pool = Pool::start(opts.workers, Arc::clone(&shared.waker))?;
        Ok(EventLoop {
            poll,
            listener,
            shared,
            scratch: vec![0; READ_CHUNK.min(limits.budget)],
            limits,
            grace: opts.grace,
            max_connections: opts.max_connections.map(|n| n.max(1)),
            pool,
            conns: HashMap::new(),
            outcomes: Vec::new(),
            open_sessions: 0,
            next_token: WAKER.0 + 1,
            timers: BTreeSet::new(),
            again: Vec::new(),
            // The listener may already hold connections from before it was registered.
            accept_ready: true,
            accept_after: None,
            stop_by: None,
        })
    }

    /// Serves the listener until shutdown has completed; then joins the workers.
    pub(crate) fn serve(self) -> io::Result<()> {
        let Some(local) = self.listener.as_ref().map(|l| l.local) else {
            return self.run().map(drop);
        };
        tracing::info!(%local, "serving");
        let result = self.run().map(drop);
        tracing::info!(%local, "stopped");
        result
    }

    /// Drives connected streams until every one is gone; then joins the workers. Returns what
    /// became of each, in input order.
    pub(crate) fn drive_all(
        mut self,
        streams: Vec<(std::net::TcpStream, H::Session, H)>,
    ) -> io::Result<Vec<Outcome<H>>> {
        tracing::debug!(connections = streams.len(), "driving connections");
        self.outcomes = streams.iter().map(|_| None).collect();
        for (slot, (stream, session, handler)) in streams.into_iter().enumerate() {
            self.adopt(slot, stream, session, handler);
        }
        let outcomes = self.run()?;
        tracing::debug!(connections = outcomes.len(), "connections done");
        Ok(outcomes
            .into_iter()
            // `remove` and `adopt` fill in every entry, and `run` removes every connection.
            .map(|outcome| outcome.expect("every connection has an outcome"))
            .collect())
    }

    /// Runs the loop; then drops the connections left (their handlers get `on_close`) and joins
    /// the workers.
    fn run(mut self) -> io::Result<Vec<Option<Outcome<H>>>> {
        let result = self.run_loop();
        // Whatever ended the loop, every handler hears that its connection is gone.
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        if !tokens.is_empty() {
            tracing::warn!(connections = tokens.len(), "dropping connections");
        }
        for token in tokens {
            let why = match &result {
                Ok(()) => io::Error::new(
                    io::ErrorKind::TimedOut,
                    "still open when the shutdown grace period ended",
                ),
                Err(e) => io::Error::new(e.kind(), format!("the event loop failed: {e}")),
            };
            self.remove(token, End::Failed(why));
        }
        // Work already queued still runs (it may be storing a message); its results are dropped.
        self.pool.join();
        result.map(|()| std::mem::take(&mut self.outcomes))
    }

    fn run_loop(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS);
        let mut todo: Vec<Token> = Vec::new();
        loop {
            let now = Instant::now();
            if self.stop_by.is_none() && self.shared.is_triggered() {
                self.begin_shutdown(now);
            }
            if self.listener.is_none() && self.conns.is_empty() {
                return Ok(());
            }
            if self.stop_by.is_some_and(|stop_by| now >= stop_by) {
                tracing::warn!(
                    connections = self.conns.len(),
                    "grace period over; dropping connections"
                );
                return Ok(());
            }

            let timeout = if self.again.is_empty() {
                self.next_deadline()
                    .map(|at| at.saturating_duration_since(now))
            } else {
                Some(Duration::ZERO)
            };
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let now = Instant::now();

            todo.clear();
            todo.append(&mut self.again);
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_ready = true,
                    // Completions are collected below and the stop flag at the top.
                    WAKER => {}
                    token => {
                        if let Some(conn) = self.conns.get_mut(&token) {
                            conn.on_ready(event);
                            todo.push(token);
                        }
                    }
                }
            }

            while let Some(done) = self.pool.try_done() {
                self.complete(done, now, &mut todo);
            }

            while let Some(&(at, token)) = self.timers.first() {
                if at > now {
                    break;
                }
                self.timers.pop_first();
                self.fire_timer(token, now, &mut todo);
            }

            todo.sort_unstable();
            todo.dedup();
            for &token in &todo {
                self.drive(token, now);
            }

            self.accept(now);
        }
    }

    /// The earliest instant the loop must wake up without any event.
    fn next_deadline(&self) -> Option<Instant> {
        let timer = self.timers.first().map(|&(at, _)| at);
        let accept = self.accept_after.filter(|_| self.accept_ready);
        [timer, accept, self.stop_by].into_iter().flatten().min()
    }

    /// Stops accepting, tells every session, and starts the grace period.
    fn begin_shutdown(&mut self, now: Instant) {
        tracing::info!(connections = self.conns.len(), "shutting down");
        if let Some(mut listener) = self.listener.take()
            && let Err(e) = self.poll.registry().deregister(&mut listener.socket)
        {
            tracing::debug!(error = %e, "deregistering the listener failed");
        }
        self.stop_by = Some(now.checked_add(self.grace).unwrap_or(now));
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        for token in tokens {
            let Some(conn) = self.conns.get_mut(&token) else {
                continue;
            };
            if conn.is_lingering() {
                // Take what already arrived and go; idle peers must not hold up the shutdown.
                self.remove(token, End::Done);
                continue;
            }
            let told = panic::catch_unwind(AssertUnwindSafe(|| conn.on_shutdown(now)));
            if told.is_err() {
                self.panicked(token);
                continue;
            }
            self.drive(token, now);
        }
    }

    /// Accepts while connections wait and the limit allows.
    fn accept(&mut self, now: Instant) {
        if !self.accept_ready || self.accept_after.is_some_and(|at| now < at) {
            return;
        }
        self.accept_after = None;
        loop {
            if self
                .max_connections
                .is_some_and(|max| self.open_sessions >= max)
            {
                // They wait in the kernel's backlog; retried when a session ends.
                return;
            }
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.socket.accept() {
                Ok((stream, peer)) => self.open(stream, peer, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.accept_ready = false;
                    return;
                }
                Err(e) if is_transient(&e) => {
                    tracing::debug!(error = %e, "accept failed");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; retrying in 100 ms");
                    self.accept_after = Some(now + ACCEPT_BACKOFF);
                    return;
                }
            }
        }
    }

    /// Registers an accepted connection, opens its session and sends what it has to say.
    fn open(&mut self, mut stream: TcpStream, peer: SocketAddr, now: Instant) {
        let Some(listener) = &self.listener else {
            return;
        };
        let local = stream.local_addr().unwrap_or(listener.local);
        let service = Arc::clone(&listener.service);
        let token = match self.register(&mut stream) {
            Ok(token) => token,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "could not register connection");
                return;
            }
        };
        let info = ConnInfo { peer, local };
        let Ok((session, handler)) =
            panic::catch_unwind(AssertUnwindSafe(|| service.open(&info, now)))
        else {
            tracing::error!(%peer, "Service::open panicked; connection dropped");
            let _ = self.poll.registry().deregister(&mut stream);
            return;
        };
        tracing::debug!(%peer, %local, ?token, "open");
        self.insert(token, Conn::new(stream, session, handler), now);
    }

    /// Takes over a connected stream given to [`Connections`](crate::Connections) as entry
    /// `slot`, and sends what its session has to say. If the stream cannot be set up, the
    /// handler gets `on_close` and goes back with the error at once.
    fn adopt(&mut self, slot: usize, stream: std::net::TcpStream, session: H::Session, handler: H) {
        let peer = stream.peer_addr().ok();
        let registered = stream.set_nonblocking(true).and_then(|()| {
            let mut stream = TcpStream::from_std(stream);
            self.register(&mut stream).map(|token| (token, stream))
        });
        let (token, stream) = match registered {
            Ok(registered) => registered,
            Err(e) => {
                tracing::debug!(?peer, slot, error = %e, "could not register connection");
                let mut handler = handler;
                let closed = panic::catch_unwind(AssertUnwindSafe(|| handler.on_close()));
                self.outcomes[slot] = Some(if closed.is_ok() {
                    Ok(Finished {
                        handler,
                        session,
                        error: Some(e),
                    })
                } else {
                    tracing::error!(slot, "Handler::on_close panicked");
                    drop_quietly((handler, session));
                    Err(Panicked)
                });
                return;
            }
        };
        tracing::debug!(?peer, ?token, slot, "open");
        let mut conn = Conn::new(stream, session, handler);
        conn.slot = Some(slot);
        self.insert(token, conn, Instant::now());
    }

    /// Registers a new connection's socket, readable only, under a fresh token.
    fn register(&mut self, stream: &mut TcpStream) -> io::Result<Token> {
        // Output is written in whole buffers; Nagle's algorithm would only delay replies.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let token = Token(self.next_token);
        // Tokens are never reused, so a late completion cannot reach a newer connection.
        self.next_token += 1;
        self.poll
            .registry()
            .register(stream, token, Interest::READABLE)?;
        Ok(token)
    }

    /// Starts driving a registered connection: steps it at once, so a greeting goes out
    /// without waiting for input.
    fn insert(&mut self, token: Token, conn: Conn<H>, now: Instant) {
        self.conns.insert(token, conn);
        self.open_sessions += 1;
        self.drive(token, now);
    }

    /// Applies a finished piece of work to its connection.
    fn complete(&mut self, done: Done<H>, now: Instant, todo: &mut Vec<Token>) {
        let Done { token, seq, result } = done;
        let Some(conn) = self.conns.get_mut(&token) else {
            // The connection was dropped while its work ran.
            return;
        };
        match panic::catch_unwind(AssertUnwindSafe(|| conn.on_done(seq, result, now))) {
            Ok(Ok(())) => todo.push(token),
            Ok(Err(e)) => {
                tracing::debug!(?token, error = %e, "connection dropped");
                self.remove(token, End::Failed(e));
            }
            Err(_) => self.panicked(token),
        }
    }

    /// Handles a connection's deadline.
    fn fire_timer(&mut self, token: Token, now: Instant, todo: &mut Vec<Token>) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        conn.armed = None;
        match panic::catch_unwind(AssertUnwindSafe(|| conn.on_timer(now))) {
            Ok(Ok(false)) => todo.push(token),
            Ok(Ok(true)) => self.remove(token, End::Done),
            Ok(Err(e)) => {
                tracing::debug!(?token, error = %e, "connection dropped");
                self.remove(token, End::Failed(e));
            }
            Err(_) => self.panicked(token),
        }
    }

    /// Steps a connection and acts on where it ends up.
    fn drive(&mut self, token: Token, now: Instant) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let mut ctx = Ctx {
            token,
            pool: &self.pool,
            scratch: &mut self.scratch,
            limits: &self.limits,
        };
        let stepped = panic::catch_unwind(AssertUnwindSafe(|| conn.step(now, &mut ctx)));
        match stepped {
            Ok(Ok(Status::Open { again })) => {
                if again {
                    self.again.push(token);
                }
                self.sync(token);
            }
            Ok(Ok(Status::Closed)) => self.retire(token, now),
            Ok(Ok(Status::Gone)) => self.remove(token, End::Done),
            Ok(Err(e)) => {
                tracing::debug!(?token, error = %e, "connection dropped");
                self.remove(token, End::Failed(e));
            }
            Err(_) => self.panicked(token),
        }
    }

    /// The session closed cleanly: half-close, tell the handler, then linger for the peer's EOF
    /// (only for what already arrived once the server is stopping).
    fn retire(&mut self, token: Token, now: Instant) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let until = now.checked_add(self.limits.linger).unwrap_or(now);
        conn.start_linger(until);
        self.open_sessions -= 1;
        tracing::debug!(?token, "closed");
        conn.close_handler();
        if self.stop_by.is_some() {
            self.remove(token, End::Done);
        } else {
            // Reads what already arrived and arms the linger deadline.
            self.drive(token, now);
        }
    }

    /// Drops a connection: discards what already arrived (so the kernel does not answer with a
    /// reset), deregisters and closes the socket, and calls `on_close` unless the session
    /// panicked or it was done already (a lingering connection's handler has heard it). A
    /// connection given to [`Connections`](crate::Connections) leaves its handler and session
    /// in its entry of the outcomes; any other is dropped.
    fn remove(&mut self, token: Token, end: End) {
        let Some(mut conn) = self.conns.remove(&token) else {
            return;
        };
        if let Some(at) = conn.armed.take() {
            self.timers.remove(&(at, token));
        }
        let lingering = conn.is_lingering();
        if !lingering {
            self.open_sessions -= 1;
        }
        let mut ctx = Ctx {
            token,
            pool: &self.pool,
            scratch: &mut self.scratch,
            limits: &self.limits,
        };
        conn.discard(&mut ctx);
        if let Err(e) = self.poll.registry().deregister(&mut conn.stream) {
            tracing::debug!(?token, error = %e, "deregistering failed");
        }
        let error = match end {
            End::Panicked => {
                if let Some(slot) = conn.slot {
                    self.outcomes[slot] = Some(Err(Panicked));
                }
                return drop_quietly(conn);
            }
            // Once the session has closed and its output is written, what happens to the socket
            // afterwards does not concern the handler.
            _ if lingering => None,
            End::Done => None,
            End::Failed(e) => Some(e),
        };
        if !lingering {
            conn.close_handler();
        }
        let Some(slot) = conn.slot else {
            return drop_quietly(conn);
        };
        let outcome = if conn.is_poisoned() {
            drop_quietly(conn);
            Err(Panicked)
        } else {
            panic::catch_unwind(AssertUnwindSafe(move || conn.into_parts()))
                .map(|(handler, session)| Finished {
                    handler,
                    session,
                    error,
                })
                .map_err(|_| {
                    tracing::error!(?token, "dropping a connection's buffers panicked");
                    Panicked
                })
        };
        self.outcomes[slot] = Some(outcome);
    }

    /// A panic in the session or handler: drop the connection without `on_close` (the handler
    /// may be in any state).
    fn panicked(&mut self, token: Token) {
        tracing::error!(?token, "session or handler panicked; connection dropped");
        self.remove(token, End::Panicked);
    }

    /// Brings the timer entry and the registered interest in line with the connection.
    fn sync(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let deadline = match panic::catch_unwind(AssertUnwindSafe(|| conn.deadline())) {
            Ok(deadline) => deadline,
            Err(_) => return self.panicked(token),
        };
        if deadline != conn.armed {
            if let Some(at) = conn.armed {
                self.timers.remove(&(at, token));
            }
            if let Some(at) = deadline {
                self.timers.insert((at, token));
            }
            conn.armed = deadline;
        }
        let writable = conn.wants_writable();
        if writable != conn.writable_registered {
            let interest = if writable {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            match self
                .poll
                .registry()
                .reregister(&mut conn.stream, token, interest)
            {
                Ok(()) => conn.writable_registered = writable,
                Err(e) => {
                    tracing::debug!(?token, error = %e, "reregistering failed");
                    self.remove(token, End::Failed(e));
                }
            }
        }
    }
}

/// Drops a connection, session or handler that is being thrown away; a panic in its `Drop` is
/// caught and logged.
fn drop_quietly<T>(value: T) {
    if panic::catch_unwind(AssertUnwindSafe(move || drop(value))).is_err() {
        tracing::error!("dropping a session or handler panicked");
    }
}

/// Accept errors that concern one connection only and are retried at once.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}
