//! The event loop behind [`Server::run`](crate::Server::run) and
//! [`Connections::run`](crate::Connections::run).

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use conn_driver::{Connection, Limits, Outcome};
use mio::Waker;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use session_api::{ConnInfo, Handler, Notifier, Service};

use crate::conn::{Conn, Ctx, Status};
use crate::pool::{Done, Pool};
use crate::{Shared, WAKER};

/// Most bytes read from a socket in one call.
const READ_CHUNK: usize = 16 * 1024;

/// How long to wait before accepting again after an accept error that is not about one
/// connection (usually out of file descriptors), instead of spinning on it.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Readiness events taken per `poll`.
const EVENTS: usize = 1024;

/// A listening socket and the service that opens its connections' sessions.
pub(crate) struct Listener<H: Handler> {
    pub(crate) socket: TcpListener,
    pub(crate) local: SocketAddr,
    pub(crate) service: Arc<dyn Service<Handler = H>>,
    pub(crate) tls: Option<conn_driver::TlsMode>,
    /// Connections may be waiting in the backlog (no `WouldBlock` seen since the last edge).
    pub(crate) accept_ready: bool,
    /// After an accept error: not before this instant.
    pub(crate) accept_after: Option<Instant>,
}

/// The token of listener `i`; connection tokens follow the listeners'.
pub(crate) fn listener_token(i: usize) -> Token {
    Token(WAKER.0 + 1 + i)
}

/// Notices sent to this loop's connections from any thread, with the waker that rings the loop.
struct Notices<N> {
    queue: Mutex<Vec<(Token, N)>>,
    waker: Arc<Waker>,
}

impl<N: Send + 'static> Notices<N> {
    /// A notifier for the connection under `token`, which says "gone" once `alive` is cleared.
    fn notifier(self: &Arc<Self>, token: Token, alive: Arc<AtomicBool>) -> Notifier<N> {
        let notices = Arc::clone(self);
        Notifier::new(move |notice| {
            if !alive.load(Ordering::Acquire) {
                return false;
            }
            let mut queue = notices.queue.lock().unwrap_or_else(PoisonError::into_inner);
            // The loop takes the whole queue at once, so a queue that was not empty has a
            // wake-up on its way already: a batch of notices (a shared flush answering
            // many sessions) rings the loop once.
            let first = queue.is_empty();
            queue.push((token, notice));
            drop(queue);
            if first && let Err(e) = notices.waker.wake() {
                tracing::warn!(error = %e, "could not wake the event loop");
            }
            true
        })
    }

    fn take(&self) -> Vec<(Token, N)> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Everything the loop owns.
pub(crate) struct EventLoop<H: Handler> {
    poll: Poll,
    /// Accepted connections come from these (a [`Server`](crate::Server)); none for
    /// [`Connections`](crate::Connections), and none once shutdown began. The loop ends once
    /// there are none and no connection is left.
    listeners: Vec<Listener<H>>,
    shared: Arc<Shared>,
    /// One copy for every connection of the loop.
    limits: Arc<Limits>,
    /// Most bytes read from one connection per step.
    budget: usize,
    /// TLS for connections given to [`Connections`](crate::Connections) (the client side).
    outbound_tls: Option<conn_driver::TlsMode>,
    grace: Duration,
    max_connections: Option<usize>,
    pool: Pool<H>,
    notices: Arc<Notices<H::Notice>>,
    /// Boxed, so the map's spare capacity (up to twice the entries) costs a pointer per slot,
    /// not a whole connection: idle sessions are counted in KiB.
    conns: HashMap<Token, Box<Conn<H>>>,
    /// One entry per connection given to [`Connections`](crate::Connections), filled in when it
    /// leaves the loop.
    outcomes: Vec<Option<Outcome<H>>>,
    /// Connections whose session is still open (not lingering), for `max_connections`.
    open_sessions: usize,
    next_token: usize,
    /// The first token after the listeners'.
    first_conn_token: usize,
    /// Every connection's armed deadline; the first entry bounds the `poll` timeout.
    timers: BTreeSet<(Instant, Token)>,
    /// Connections to step again without waiting for a new edge (their read budget ran out).
    again: Vec<Token>,
    /// Set once shutdown began: when the grace period ends.
    stop_by: Option<Instant>,
    scratch: Vec<u8>,
}

impl<H: Handler> EventLoop<H> {
    /// Prepares the loop and starts the worker threads. Listener `i` is registered under
    /// [`listener_token`]`(i)` already.
    pub(crate) fn new(
        poll: Poll,
        listeners: Vec<Listener<H>>,
        shared: Arc<Shared>,
        opts: &crate::Options,
    ) -> io::Result<Self> {
        let limits = Limits {
            read_buffer: opts.read_buffer,
            max_output: opts.max_output,
            linger: opts.linger,
            grace: Some(opts.grace),
        };
        let budget = opts.budget.max(1);
        let pool = Pool::start(opts.workers, Arc::clone(&shared.waker))?;
        let notices = Arc::new(Notices {
            queue: Mutex::new(Vec::new()),
            waker: Arc::clone(&shared.waker),
        });
        Ok(EventLoop {
            notices,
            poll,
            next_token: listener_token(listeners.len()).0,
            first_conn_token: listener_token(listeners.len()).0,
            listeners,
            shared,
            scratch: vec![0; READ_CHUNK.min(budget)],
            limits: Arc::new(limits),
            budget,
            outbound_tls: opts.tls.clone(),
            grace: opts.grace,
            max_connections: opts.max_connections.map(|n| n.max(1)),
            pool,
            conns: HashMap::new(),
            outcomes: Vec::new(),
            open_sessions: 0,
            timers: BTreeSet::new(),
            again: Vec::new(),
            stop_by: None,
        })
    }

    /// Serves the listeners until shutdown has completed; then joins the workers.
    pub(crate) fn serve(self) -> io::Result<()> {
        let locals: Vec<SocketAddr> = self.listeners.iter().map(|l| l.local).collect();
        for local in &locals {
            tracing::info!(%local, "serving");
        }
        let result = self.run().map(drop);
        for local in &locals {
            tracing::info!(%local, "stopped");
        }
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
            // The driver ends a connection that is not done with a `TimedOut` error.
            self.remove(token);
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
            if self.listeners.is_empty() && self.conns.is_empty() {
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
                    // Completions are collected below and the stop flag at the top.
                    WAKER => {}
                    token if token.0 < self.first_conn_token => {
                        if let Some(l) = self.listeners.get_mut(token.0 - listener_token(0).0) {
                            l.accept_ready = true;
                        }
                    }
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
            for (token, notice) in self.notices.take() {
                // A notice for a connection that is gone is dropped.
                if let Some(conn) = self.conns.get_mut(&token) {
                    conn.on_notice(notice, now);
                    todo.push(token);
                }
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
        let accept = self
            .listeners
            .iter()
            .filter(|l| l.accept_ready)
            .filter_map(|l| l.accept_after)
            .min();
        [timer, accept, self.stop_by].into_iter().flatten().min()
    }

    /// Stops accepting, tells every session, and starts the grace period.
    fn begin_shutdown(&mut self, now: Instant) {
        tracing::info!(connections = self.conns.len(), "shutting down");
        for mut listener in std::mem::take(&mut self.listeners) {
            if let Err(e) = self.poll.registry().deregister(&mut listener.socket) {
                tracing::debug!(error = %e, "deregistering a listener failed");
            }
        }
        self.stop_by = Some(now.checked_add(self.grace).unwrap_or(now));
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        for token in tokens {
            if let Some(conn) = self.conns.get_mut(&token) {
                // A lingering connection then takes what already arrived and goes: idle peers
                // must not hold up the shutdown.
                conn.on_shutdown(now);
                self.drive(token, now);
            }
        }
    }

    /// Accepts on every listener while connections wait and the limit allows.
    fn accept(&mut self, now: Instant) {
        for i in 0..self.listeners.len() {
            self.accept_on(i, now);
        }
    }

    fn accept_on(&mut self, i: usize, now: Instant) {
        let Some(listener) = self.listeners.get_mut(i) else {
            return;
        };
        if !listener.accept_ready || listener.accept_after.is_some_and(|at| now < at) {
            return;
        }
        listener.accept_after = None;
        loop {
            if self
                .max_connections
                .is_some_and(|max| self.open_sessions >= max)
            {
                // They wait in the kernel's backlog; retried when a session ends.
                return;
            }
            let Some(listener) = self.listeners.get_mut(i) else {
                return;
            };
            match listener.socket.accept() {
                Ok((stream, peer)) => self.open(i, stream, peer, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    listener.accept_ready = false;
                    return;
                }
                Err(e) if conn_driver::is_transient_accept_error(&e) => {
                    tracing::debug!(error = %e, "accept failed");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed; retrying in 100 ms");
                    listener.accept_after = Some(now + ACCEPT_BACKOFF);
                    return;
                }
            }
        }
    }

    /// Registers a connection accepted on listener `i`, opens its session and sends what it
    /// has to say.
    fn open(&mut self, i: usize, mut stream: TcpStream, peer: SocketAddr, now: Instant) {
        let Some(listener) = self.listeners.get(i) else {
            return;
        };
        let local = stream.local_addr().unwrap_or(listener.local);
        let service = Arc::clone(&listener.service);
        let tls = listener.tls.clone();
        let token = match self.register(&mut stream) {
            Ok(token) => token,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "could not register connection");
                return;
            }
        };
        let info = ConnInfo { peer, local };
        let alive = Arc::new(AtomicBool::new(true));
        let notifier = self.notices.notifier(token, Arc::clone(&alive));
        let Ok((session, handler)) =
            panic::catch_unwind(AssertUnwindSafe(|| service.open(&info, notifier, now)))
        else {
            tracing::error!(%peer, "Service::open panicked; connection dropped");
            let _ = self.poll.registry().deregister(&mut stream);
            return;
        };
        tracing::debug!(%peer, %local, ?token, "open");
        let driver = Connection::with_tls(session, handler, Arc::clone(&self.limits), tls, now);
        let mut conn = Conn::new(stream, driver);
        conn.alive = Some(alive);
        self.insert(token, conn, now);
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
        let now = Instant::now();
        let tls = self.outbound_tls.clone();
        let mut driver = Connection::with_tls(session, handler, Arc::clone(&self.limits), tls, now);
        let (token, stream) = match registered {
            Ok(registered) => registered,
            Err(e) => {
                tracing::debug!(?peer, slot, error = %e, "could not register connection");
                // Ends it at once: the handler gets `on_close` and goes back with the error.
                driver.handle_error(e);
                self.outcomes[slot] = Some(driver.into_outcome());
                return;
            }
        };
        tracing::debug!(?peer, ?token, slot, "open");
        let mut conn = Conn::new(stream, driver);
        conn.slot = Some(slot);
        self.insert(token, conn, now);
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
        self.conns.insert(token, Box::new(conn));
        self.open_sessions += 1;
        self.drive(token, now);
    }

    /// Applies a finished piece of work to its connection.
    fn complete(&mut self, done: Done<H>, now: Instant, todo: &mut Vec<Token>) {
        let Done { token, id, result } = done;
        // The connection may have been dropped while its work ran.
        if let Some(conn) = self.conns.get_mut(&token) {
            conn.on_done(id, result, now);
            todo.push(token);
        }
    }

    /// Handles a connection's deadline.
    fn fire_timer(&mut self, token: Token, now: Instant, todo: &mut Vec<Token>) {
        if let Some(conn) = self.conns.get_mut(&token) {
            conn.armed = None;
            conn.on_timer(now);
            todo.push(token);
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
            budget: self.budget,
        };
        let status = conn.step(now, &mut ctx);
        if conn.counted_open && !conn.is_open() {
            conn.counted_open = false;
            self.open_sessions -= 1;
        }
        match status {
            Status::Open { again } => {
                if again {
                    self.again.push(token);
                }
                self.sync(token);
            }
            Status::Done => self.remove(token),
        }
    }

    /// Drops a connection: deregisters and closes the socket, and gives its outcome to its
    /// entry in [`Connections`](crate::Connections), if it has one.
    fn remove(&mut self, token: Token) {
        let Some(mut conn) = self.conns.remove(&token) else {
            return;
        };
        if let Some(at) = conn.armed.take() {
            self.timers.remove(&(at, token));
        }
        if let Some(alive) = conn.alive.take() {
            alive.store(false, Ordering::Release);
        }
        if conn.counted_open {
            self.open_sessions -= 1;
        }
        if let Err(e) = self.poll.registry().deregister(&mut conn.stream) {
            tracing::debug!(?token, error = %e, "deregistering failed");
        }
        let slot = conn.slot;
        let outcome = conn.into_outcome();
        match slot {
            Some(slot) => self.outcomes[slot] = Some(outcome),
            None => drop_quietly(outcome),
        }
    }

    /// Brings the timer entry and the registered interest in line with the connection.
    fn sync(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let deadline = conn.deadline();
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
                    conn.on_error(e);
                    self.remove(token);
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
