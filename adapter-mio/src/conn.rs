//! One connection: a session, its handler, and the buffers between them and the socket.

use std::collections::BTreeMap;
use std::io::{self, Read as _, Write as _};
use std::net::Shutdown as HalfClose;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use mio::Token;
use mio::event::Event;
use mio::net::TcpStream;
use session_api::{Completion, Handler, Session, Work};

use crate::pool::{Pool, WorkPanicked};

/// Rounds in a row in which a session answers events but consumes no input before [`Conn::pump`]
/// stops re-offering the kept input. A correct session never needs more than one (an event
/// answered at once lets it consume more); the cap only keeps a misbehaving one from spinning
/// the loop forever.
const MAX_IDLE_ROUNDS: u32 = 16;

/// The parts of [`Options`](crate::Options) a connection needs, already normalised.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) read_buffer: usize,
    pub(crate) max_output: usize,
    pub(crate) budget: usize,
    pub(crate) linger: Duration,
}

/// What the event loop lends a connection while it runs.
pub(crate) struct Ctx<'a, H: Handler> {
    pub(crate) token: Token,
    pub(crate) pool: &'a Pool<H>,
    /// Reused read buffer; its length is the most read in one call.
    pub(crate) scratch: &'a mut [u8],
    pub(crate) limits: &'a Limits,
}

/// Where a connection stands after [`Conn::step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Still open. `again`: the read budget ran out with input possibly left in the socket, so
    /// step it again without waiting for a new readiness edge.
    Open { again: bool },
    /// The session is closed, its output written and no work runs: half-close and linger.
    Closed,
    /// Lingering is over (peer EOF or an error): drop the socket.
    Gone,
}

/// A connection, from accept (or [`Connections::run`](crate::Connections::run)) until its socket
/// is dropped.
pub(crate) struct Conn<H: Handler> {
    pub(crate) stream: TcpStream,
    /// For a connection given to [`Connections`](crate::Connections): its index there, where its
    /// handler goes back once the connection is gone.
    pub(crate) slot: Option<usize>,
    /// `Handler::on_close` panicked: the handler may be in any state.
    poisoned: bool,
    handler: H,
    session: H::Session,
    /// Input the session has not consumed yet, oldest first.
    input: Vec<u8>,
    /// Output; `output[..sent]` is already written.
    output: Vec<u8>,
    sent: usize,
    /// The session produced output while the unsent output was already at `max_output`: hold
    /// back input (and reading) until the output drops below it. See [`Conn::input_held`].
    answered_over_limit: bool,
    /// The socket may have more to read. Set by a readable event, cleared only by `WouldBlock`
    /// or EOF: mio is edge-triggered, so whoever stops reading early must come back on their own.
    read_ready: bool,
    /// The socket reported an error condition; collect it with `take_error`.
    error_seen: bool,
    /// The peer's EOF has been read.
    eof_seen: bool,
    /// `handle_eof` has been called (or skipped because the session had already closed).
    eof_delivered: bool,
    /// Sequence number of the next work started; `applied` is the next one to apply.
    issued: u64,
    applied: u64,
    /// Completions that arrived before an earlier one of the same connection.
    finished: BTreeMap<u64, Result<Completion<H>, WorkPanicked>>,
    /// Work returned by `Handler::after_completion`, started at the next pump (which has the
    /// pool at hand).
    follow_up: Vec<Work<H>>,
    /// Octets read and dropped after the session closed.
    drained: usize,
    /// `handle_shutdown` has been called.
    shutdown_told: bool,
    /// Once the session is closed with output pending: when we give up on the peer reading it.
    flush_by: Option<Instant>,
    /// `Some` once the session is over and we read and discard until the peer's EOF, until then.
    linger_until: Option<Instant>,
    /// The deadline entered in the event loop's timer set.
    pub(crate) armed: Option<Instant>,
    /// WRITABLE is part of the registered interest.
    pub(crate) writable_registered: bool,
}

impl<H: Handler> Conn<H> {
    /// A freshly accepted connection; the first [`step`](Conn::step) sends any greeting.
    pub(crate) fn new(stream: TcpStream, session: H::Session, handler: H) -> Self {
        Conn {
            stream,
            slot: None,
            poisoned: false,
            handler,
            session,
            input: Vec::new(),
            output: Vec::new(),
            sent: 0,
            answered_over_limit: false,
            // Data may have arrived before the socket was registered.
            read_ready: true,
            error_seen: false,
            eof_seen: false,
            eof_delivered: false,
            issued: 0,
            applied: 0,
            finished: BTreeMap::new(),
            follow_up: Vec::new(),
            drained: 0,
            shutdown_told: false,
            flush_by: None,
            linger_until: None,
            armed: None,
            writable_registered: false,
        }
    }

    /// True once the session is over and only the peer's EOF is awaited.
    pub(crate) fn is_lingering(&self) -> bool {
        self.linger_until.is_some()
    }

    /// Bytes of output not yet written.
    fn pending(&self) -> usize {
        self.output.len() - self.sent
    }

    /// True while work runs or completions wait to be applied.
    fn has_work(&self) -> bool {
        self.issued != self.applied
    }

    /// Notes a readiness event; the loop then calls [`step`](Conn::step).
    pub(crate) fn on_ready(&mut self, event: &Event) {
        if event.is_readable() || event.is_read_closed() {
            self.read_ready = true;
        }
        if event.is_error() {
            self.error_seen = true;
            self.read_ready = true;
        }
    }

    /// When the loop should call [`on_timer`](Conn::on_timer) next.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        if self.linger_until.is_some() {
            return self.linger_until;
        }
        match (self.session.poll_timeout(), self.flush_by) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The armed deadline has passed. `Err` drops the connection; `Ok(true)` means lingering is
    /// over and the socket can go.
    pub(crate) fn on_timer(&mut self, now: Instant) -> io::Result<bool> {
        if let Some(until) = self.linger_until {
            return Ok(now >= until);
        }
        if self.flush_by.is_some_and(|at| now >= at) {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "peer did not read the last output in time",
            ));
        }
        // Early or repeated calls do nothing, per the `Session` contract.
        self.session.handle_timeout(now);
        Ok(false)
    }

    /// The server is stopping: tell the session once.
    pub(crate) fn on_shutdown(&mut self, now: Instant) {
        if !self.shutdown_told && self.linger_until.is_none() {
            self.shutdown_told = true;
            self.session.handle_shutdown(now);
        }
    }

    /// A piece of this connection's work finished. Completions are applied in the order the
    /// work was started, so a fast second piece waits for a slow first one. `Err` if a piece of
    /// work panicked: the session waits for an answer that will never come, so the connection
    /// must go.
    pub(crate) fn on_done(
        &mut self,
        seq: u64,
        result: Result<Completion<H>, WorkPanicked>,
        now: Instant,
    ) -> io::Result<()> {
        self.finished.insert(seq, result);
        while let Some(result) = self.finished.remove(&self.applied) {
            self.applied += 1;
            match result {
                Ok(completion) => {
                    completion.apply(&mut self.handler, &mut self.session, now);
                    if let Some(work) = self.handler.after_completion(&mut self.session, now) {
                        self.follow_up.push(work);
                    }
                }
                Err(WorkPanicked) => return Err(io::Error::other("work panicked")),
            }
        }
        Ok(())
    }

    /// Calls `Handler::on_close`; the loop does this exactly once per connection. A panic is
    /// caught and logged, and marks the connection [poisoned](Conn::is_poisoned).
    pub(crate) fn close_handler(&mut self) {
        let handler = &mut self.handler;
        if panic::catch_unwind(AssertUnwindSafe(|| handler.on_close())).is_err() {
            tracing::error!("Handler::on_close panicked");
            self.poisoned = true;
        }
    }

    /// True once `Handler::on_close` has panicked.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// The handler and the session, once the connection is gone (its socket is dropped here).
    pub(crate) fn into_parts(self) -> (H, H::Session) {
        (self.handler, self.session)
    }

    /// Moves everything along as far as it goes without blocking: writes pending output, offers
    /// kept input, reads within the budget and backpressure limits (offering each chunk as it
    /// arrives), delivers EOF, and reports whether the connection is done.
    pub(crate) fn step(&mut self, now: Instant, ctx: &mut Ctx<'_, H>) -> io::Result<Status> {
        if self.error_seen {
            self.error_seen = false;
            if let Some(e) = self.stream.take_error()? {
                return Err(e);
            }
        }
        if self.linger_until.is_some() {
            return Ok(self.discard(ctx));
        }
        let limits = ctx.limits;
        self.flush()?;
        self.pump(now, ctx);
        self.flush()?;

        let mut budget = limits.budget;
        let mut again = false;
        while self.read_ready && self.may_read(limits) {
            if budget == 0 {
                again = true;
                break;
            }
            let want = budget
                .min(limits.read_buffer - self.input.len())
                .min(ctx.scratch.len());
            match self.stream.read(&mut ctx.scratch[..want]) {
                Ok(0) => {
                    self.read_ready = false;
                    self.eof_seen = true;
                }
                Ok(n) => {
                    budget -= n;
                    self.input.extend_from_slice(&ctx.scratch[..n]);
                    self.pump(now, ctx);
                    self.flush()?;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.read_ready = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }

        // EOF comes after every byte before it: deliver it only once the session has taken all
        // of the kept input it will take, i.e. no answer is outstanding and the last pump was
        // not held back by unsent output.
        if self.eof_seen && !self.eof_delivered && !self.has_work() {
            self.pump(now, ctx);
            if self.input.is_empty() || !self.input_held(limits) {
                self.eof_delivered = true;
                if !self.session.is_closed() {
                    self.session.handle_eof(now);
                    self.pump(now, ctx);
                }
            }
            self.flush()?;
        }

        if self.session.is_closed() {
            if self.pending() == 0 && !self.has_work() {
                return Ok(Status::Closed);
            }
            if self.pending() > 0 && self.flush_by.is_none() {
                self.flush_by = now.checked_add(limits.linger);
            }
        } else {
            self.flush_by = None;
        }
        Ok(Status::Open { again })
    }

    /// Half-closes the socket and starts lingering until `until`.
    pub(crate) fn start_linger(&mut self, until: Instant) {
        if let Err(e) = self.stream.shutdown(HalfClose::Write) {
            tracing::debug!(error = %e, "shutdown of the write half failed");
        }
        self.linger_until = Some(until);
        self.flush_by = None;
        self.input = Vec::new();
        self.output = Vec::new();
        self.sent = 0;
    }

    /// Reads and throws away what has already arrived (at most `ctx.limits.budget` bytes).
    ///
    /// Closing a socket with unread input makes the kernel send a reset, and a reset can destroy
    /// data we sent but the peer has not read yet (our last reply).
    pub(crate) fn discard(&mut self, ctx: &mut Ctx<'_, H>) -> Status {
        let mut budget = ctx.limits.budget;
        loop {
            if budget == 0 {
                return Status::Open { again: true };
            }
            let want = budget.min(ctx.scratch.len());
            match self.stream.read(&mut ctx.scratch[..want]) {
                Ok(0) => return Status::Gone,
                Ok(n) => {
                    budget -= n;
                    // A peer still sending this much after the close is not finishing a
                    // pipelined group; let the reset come now rather than read it for `linger`.
                    self.drained += n;
                    if self.drained > session_api::LINGER_DRAIN_MAX {
                        return Status::Gone;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.read_ready = false;
                    return Status::Open { again: false };
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Status::Gone,
            }
        }
    }

    /// True while the socket may be read: the session still takes input, there is room for it,
    /// and input is not held back by unsent output (backpressure).
    fn may_read(&self, limits: &Limits) -> bool {
        !self.eof_seen
            && !self.session.is_closed()
            && self.input.len() < limits.read_buffer
            && !self.input_held(limits)
    }

    /// Output backpressure: true while the unsent output has reached `max_output` and the
    /// session added to it after it got there. Input is then neither offered nor read, so a
    /// peer that does not read our answers cannot make us buffer more of them.
    ///
    /// Output over the limit alone does not hold input back: a session may queue a large
    /// request of its own (a client uploading a message) and must keep taking the peer's
    /// answers meanwhile, or a peer that answers while it reads would block on writing to us,
    /// stop reading, and never let our output drain.
    fn input_held(&self, limits: &Limits) -> bool {
        self.answered_over_limit && self.pending() >= limits.max_output
    }

    /// Offers kept input, answers events (starting any work), collects output; repeats while
    /// the session consumes, since an event answered at once can let it consume more.
    fn pump(&mut self, now: Instant, ctx: &mut Ctx<'_, H>) {
        for work in std::mem::take(&mut self.follow_up) {
            self.start_work(work, ctx);
        }
        let mut idle_rounds = 0;
        loop {
            let mut consumed = false;
            if !self.input.is_empty() && !self.input_held(ctx.limits) && !self.session.is_closed() {
                // A slice at a time, so the output limit is checked between slices: 64 KiB of
                // pipelined commands can produce far more than 64 KiB of replies.
                let used = session_api::offer_input(&mut self.session, &self.input, now);
                if used > 0 {
                    self.input.drain(..used);
                    consumed = true;
                }
            }
            let mut answered = false;
            while let Some(event) = self.session.poll_event() {
                answered = true;
                if let Some(work) = self.handler.on_event(&mut self.session, event, now) {
                    self.start_work(work, ctx);
                }
            }
            let over_limit = self.pending() >= ctx.limits.max_output;
            let before = self.output.len();
            // The length, not the returned count: a session that misreports cannot fool us.
            self.session.poll_transmit(&mut self.output);
            if !over_limit {
                self.answered_over_limit = false;
            } else if self.output.len() > before {
                self.answered_over_limit = true;
            }
            if consumed {
                idle_rounds = 0;
            } else if answered && !self.input.is_empty() && idle_rounds < MAX_IDLE_ROUNDS {
                idle_rounds += 1;
            } else {
                break;
            }
        }
    }

    /// Hands `work` to the pool under this connection's next sequence number.
    fn start_work(&mut self, work: Work<H>, ctx: &mut Ctx<'_, H>) {
        let seq = self.issued;
        self.issued += 1;
        if ctx.pool.submit(ctx.token, seq, work).is_err() {
            // Only possible once the pool has been joined, i.e. after the loop ended.
            tracing::error!("worker pool is gone; dropping work");
            self.finished.insert(seq, Err(WorkPanicked));
        }
    }

    /// Writes pending output until it is all written or the socket would block.
    fn flush(&mut self) -> io::Result<()> {
        while self.sent < self.output.len() {
            match self.stream.write(&self.output[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.sent += n;
                    if self.flush_by.is_some() {
                        // The peer is reading: give it the full linger again.
                        self.flush_by = None;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.sent == self.output.len() {
            self.output.clear();
            self.sent = 0;
        } else if self.sent >= self.pending() {
            // Reclaim written output once it is at least half the buffer: amortised O(1) per
            // byte, and the buffer stays bounded while a slow peer never quite catches up.
            self.output.drain(..self.sent);
            self.sent = 0;
        }
        Ok(())
    }

    /// True while output is waiting for the socket to become writable.
    pub(crate) fn wants_writable(&self) -> bool {
        self.pending() > 0
    }
}
