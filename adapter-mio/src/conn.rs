//! One connection: its socket, its readiness, and the [`conn_driver::Connection`] that holds
//! every rule about it.

use std::io::{self, Read as _, Write as _};
use std::net::Shutdown as HalfClose;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use conn_driver::{Connection, Outcome, WorkId, WorkResult};
use mio::Token;
use mio::event::Event;
use mio::net::TcpStream;
use session_api::Handler;

use crate::pool::Pool;

/// What the event loop lends a connection while it runs.
pub(crate) struct Ctx<'a, H: Handler> {
    pub(crate) token: Token,
    pub(crate) pool: &'a Pool<H>,
    /// Reused read buffer; its length is the most read in one call.
    pub(crate) scratch: &'a mut [u8],
    /// Most bytes read per step, so one busy peer cannot starve the others.
    pub(crate) budget: usize,
}

/// Where a connection stands after [`Conn::step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Still there. `again`: the read budget ran out with input possibly left in the socket, so
    /// step it again without waiting for a new readiness edge.
    Open { again: bool },
    /// Drop the socket.
    Done,
}

/// A connection, from accept (or [`Connections::run`](crate::Connections::run)) until its socket
/// is dropped.
pub(crate) struct Conn<H: Handler> {
    pub(crate) stream: TcpStream,
    /// For a connection given to [`Connections`](crate::Connections): its index there, where its
    /// outcome goes once the connection is gone.
    pub(crate) slot: Option<usize>,
    driver: Connection<H>,
    /// The socket may have more to read. Set by a readable event, cleared only by `WouldBlock`
    /// or EOF: mio is edge-triggered, so whoever stops reading early must come back on their own.
    read_ready: bool,
    /// The socket reported an error condition; collect it with `take_error`.
    error_seen: bool,
    /// The deadline entered in the event loop's timer set.
    pub(crate) armed: Option<Instant>,
    /// WRITABLE is part of the registered interest.
    pub(crate) writable_registered: bool,
    /// Counted among the loop's open sessions (for `max_connections`).
    pub(crate) counted_open: bool,
    /// Cleared when the connection is gone, so its notifiers say so (accepted connections only).
    pub(crate) alive: Option<Arc<AtomicBool>>,
}

impl<H: Handler> Conn<H> {
    /// A freshly accepted (or adopted) connection; the first [`step`](Conn::step) sends any
    /// greeting.
    pub(crate) fn new(stream: TcpStream, driver: Connection<H>) -> Self {
        Conn {
            stream,
            slot: None,
            driver,
            // Data may have arrived before the socket was registered.
            read_ready: true,
            error_seen: false,
            armed: None,
            writable_registered: false,
            counted_open: true,
            alive: None,
        }
    }

    /// True while the session is open (not lingering, not done).
    pub(crate) fn is_open(&self) -> bool {
        self.driver.is_open()
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
        self.driver.poll_timeout()
    }

    /// The armed deadline has passed.
    pub(crate) fn on_timer(&mut self, now: Instant) {
        self.driver.handle_timeout(now);
    }

    /// The server is stopping.
    pub(crate) fn on_shutdown(&mut self, now: Instant) {
        self.driver.handle_shutdown(now);
    }

    /// A piece of this connection's work finished.
    pub(crate) fn on_done(&mut self, id: WorkId, result: WorkResult<H>, now: Instant) {
        self.driver.handle_completion(id, result, now);
    }

    /// A notice from the connection's notifier.
    pub(crate) fn on_notice(&mut self, notice: H::Notice, now: Instant) {
        self.driver.handle_notice(notice, now);
    }

    /// The socket failed outside [`step`](Conn::step) (registering it, say).
    pub(crate) fn on_error(&mut self, error: io::Error) {
        self.driver.handle_error(error);
    }

    /// How the connection ended (see [`Connection::into_outcome`]).
    pub(crate) fn into_outcome(self) -> Outcome<H> {
        self.driver.into_outcome()
    }

    /// Moves everything along as far as it goes without blocking: starts work, writes pending
    /// output, reads within the budget (handing each chunk to the driver as it arrives), and
    /// reports whether the socket can go.
    pub(crate) fn step(&mut self, now: Instant, ctx: &mut Ctx<'_, H>) -> Status {
        if std::mem::take(&mut self.error_seen) {
            match self.stream.take_error() {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => self.driver.handle_error(e),
            }
        }
        let mut budget = ctx.budget;
        let mut again = false;
        loop {
            self.settle(ctx);
            if self.driver.is_done() {
                return Status::Done;
            }
            self.flush(now);
            let room = self.driver.read_room();
            if room == 0 {
                break;
            }
            if !self.read_ready {
                // Nothing arrived since the last `WouldBlock`: as good as another one.
                self.driver.handle_read_blocked(now);
                if self.driver.is_done() {
                    continue;
                }
                break;
            }
            if budget == 0 {
                again = true;
                break;
            }
            let want = budget.min(room).min(ctx.scratch.len());
            match self.stream.read(&mut ctx.scratch[..want]) {
                Ok(0) => {
                    self.read_ready = false;
                    self.driver.handle_eof(now);
                }
                Ok(n) => {
                    budget -= n;
                    self.driver.handle_read(&ctx.scratch[..n], now);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.read_ready = false;
                    self.driver.handle_read_blocked(now);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.driver.handle_error(e),
            }
        }
        self.settle(ctx);
        if self.driver.is_done() {
            Status::Done
        } else {
            Status::Open { again }
        }
    }

    /// Starts the work the driver asks for and shuts down the write half when it says so.
    fn settle(&mut self, ctx: &mut Ctx<'_, H>) {
        while let Some((id, work)) = self.driver.poll_work() {
            if let Err(work) = ctx.pool.submit(ctx.token, id, work) {
                // Only possible once the pool has been joined, i.e. after the loop ended.
                tracing::error!("worker pool is gone; dropping work");
                drop(work);
                self.driver
                    .handle_error(io::Error::other("the worker pool is gone"));
            }
        }
        if self.driver.poll_half_close()
            && let Err(e) = self.stream.shutdown(HalfClose::Write)
        {
            tracing::debug!(error = %e, "shutdown of the write half failed");
        }
    }

    /// Writes pending output until it is all written or the socket would block.
    fn flush(&mut self, now: Instant) {
        while !self.driver.pending_output().is_empty() {
            match self.stream.write(self.driver.pending_output()) {
                Ok(0) => return self.driver.handle_error(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.driver.handle_written(n, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.driver.handle_error(e),
            }
        }
    }

    /// True while output is waiting for the socket to become writable.
    pub(crate) fn wants_writable(&self) -> bool {
        !self.driver.pending_output().is_empty()
    }
}
