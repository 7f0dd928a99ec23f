//! The event loop behind [`Server::run`](crate::Server::run).

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use session_api::{ConnInfo, Service};

use crate::conn::{Conn, Ctx, Limits, Status};
use crate::pool::{Done, Pool};
use crate::{LISTENER, Shared, WAKER};

/// Most bytes read from a socket in one call.
const READ_CHUNK: usize = 16 * 1024;

/// How long to wait before accepting again after an accept error that is not about one
/// connection (usually out of file descriptors), instead of spinning on it.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Readiness events taken per `poll`.
const EVENTS: usize = 1024;

/// Everything the loop owns.
pub(crate) struct EventLoop<S: Service> {
    poll: Poll,
    /// `None` once shutdown began.
    listener: Option<TcpListener>,
    local: SocketAddr,
    service: Arc<S>,
    shared: Arc<Shared>,
    limits: Limits,
    grace: Duration,
    max_connections: Option<usize>,
    pool: Pool<S::Handler>,
    conns: HashMap<Token, Conn<S::Handler>>,
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

impl<S: Service> EventLoop<S> {
    pub(crate) fn new(
        poll: Poll,
        listener: TcpListener,
        local: SocketAddr,
        service: Arc<S>,
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
            listener: Some(listener),
            local,
            service,
            shared,
            scratch: vec![0; READ_CHUNK.min(limits.budget)],
            limits,
            grace: opts.grace,
            max_connections: opts.max_connections.map(|n| n.max(1)),
            pool,
            conns: HashMap::new(),
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

    /// Runs until shutdown has completed; then joins the workers.
    pub(crate) fn run(mut self) -> io::Result<()> {
        tracing::info!(local = %self.local, "serving");
        let result = self.run_loop();
        // Whatever ended the loop, every handler hears that its connection is gone.
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        if !tokens.is_empty() {
            tracing::warn!(connections = tokens.len(), "dropping connections");
        }
        for token in tokens {
            self.remove(token, true);
        }
        // Work already queued still runs (it may be storing a message); its results are dropped.
        self.pool.join();
        tracing::info!(local = %self.local, "stopped");
        result
    }

    fn run_loop(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS);
        let mut todo: Vec<Token> = Vec::new();
        loop {
            let now = Instant::now();
            if self.stop_by.is_none() && self.shared.is_triggered() {
                self.begin_shutdown(now);
            }
            if let Some(stop_by) = self.stop_by {
                if self.conns.is_empty() {
                    return Ok(());
                }
                if now >= stop_by {
                    tracing::warn!(
                        connections = self.conns.len(),
                        "grace period over; dropping connections"
                    );
                    return Ok(());
                }
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
        tracing::info!(
            local = %self.local,
            connections = self.conns.len(),
            "shutting down"
        );
        if let Some(mut listener) = self.listener.take()
            && let Err(e) = self.poll.registry().deregister(&mut listener)
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
                self.remove(token, false);
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
            match listener.accept() {
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
    fn open(&mut self, mut stream: mio::net::TcpStream, peer: SocketAddr, now: Instant) {
        let local = stream.local_addr().unwrap_or(self.local);
        // Output is written in whole buffers; Nagle's algorithm would only delay replies.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "could not set TCP_NODELAY");
        }
        let token = Token(self.next_token);
        // Tokens are never reused, so a late completion cannot reach a newer connection.
        self.next_token += 1;
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream, token, Interest::READABLE)
        {
            tracing::debug!(%peer, error = %e, "could not register connection");
            return;
        }
        let info = ConnInfo { peer, local };
        let service = &self.service;
        let Ok((session, handler)) =
            panic::catch_unwind(AssertUnwindSafe(|| service.open(&info, now)))
        else {
            tracing::error!(%peer, "Service::open panicked; connection dropped");
            let _ = self.poll.registry().deregister(&mut stream);
            return;
        };
        tracing::debug!(%peer, %local, ?token, "open");
        self.conns
            .insert(token, Conn::new(stream, session, handler));
        self.open_sessions += 1;
        self.drive(token, now);
    }

    /// Applies a finished piece of work to its connection.
    fn complete(&mut self, done: Done<S::Handler>, now: Instant, todo: &mut Vec<Token>) {
        let Done { token, seq, result } = done;
        let Some(conn) = self.conns.get_mut(&token) else {
            // The connection was dropped while its work ran.
            return;
        };
        match panic::catch_unwind(AssertUnwindSafe(|| conn.on_done(seq, result, now))) {
            Ok(Ok(())) => todo.push(token),
            Ok(Err(e)) => {
                tracing::debug!(?token, error = %e, "connection dropped");
                self.remove(token, true);
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
            Ok(Ok(true)) => self.remove(token, false),
            Ok(Err(e)) => {
                tracing::debug!(?token, error = %e, "connection dropped");
                self.remove(token, true);
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
            Ok(Ok(Status::Gone)) => self.remove(token, false),
            Ok(Err(e)) => {
                tracing::debug!(?token, error = %e, "connection dropped");
                let lingering = conn.is_lingering();
                self.remove(token, !lingering);
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
        if panic::catch_unwind(AssertUnwindSafe(|| conn.close_handler())).is_err() {
            tracing::error!(?token, "Handler::on_close panicked");
        }
        if self.stop_by.is_some() {
            self.remove(token, false);
        } else {
            // Reads what already arrived and arms the linger deadline.
            self.drive(token, now);
        }
    }

    /// Drops a connection: discards what already arrived (so the kernel does not answer with a
    /// reset), deregisters and closes the socket, and calls `on_close` if asked and not done
    /// already (a lingering connection's handler has heard it).
    fn remove(&mut self, token: Token, call_on_close: bool) {
        let Some(mut conn) = self.conns.remove(&token) else {
            return;
        };
        if let Some(at) = conn.armed.take() {
            self.timers.remove(&(at, token));
        }
        if !conn.is_lingering() {
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
        if call_on_close
            && !conn.is_lingering()
            && panic::catch_unwind(AssertUnwindSafe(|| conn.close_handler())).is_err()
        {
            tracing::error!(?token, "Handler::on_close panicked");
        }
        if panic::catch_unwind(AssertUnwindSafe(move || drop(conn))).is_err() {
            tracing::error!(?token, "dropping a session or handler panicked");
        }
    }

    /// A panic in the session or handler: drop the connection without `on_close` (the handler
    /// may be in any state).
    fn panicked(&mut self, token: Token) {
        tracing::error!(?token, "session or handler panicked; connection dropped");
        self.remove(token, false);
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
                    let lingering = conn.is_lingering();
                    self.remove(token, !lingering);
                }
            }
        }
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
