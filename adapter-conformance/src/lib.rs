//! One behaviour suite for buzon's runtime adapters, written once and run under each.
//!
//! An adapter's test crate implements [`Runtime`] (serve a [`Service`] on a loopback port with
//! the given [`Options`]; drive connected client streams) and expands [`suite!`] once; every
//! test below then runs under that runtime, so both runtimes are held to the same behaviour by
//! the same code. An adapter's own tests (what only one runtime has, such as mio's read budget or
//! smol's executor threads) use the same sessions and may call single tests under a runtime of
//! their own (one executor thread, a tiny budget).
//!
//! The test protocols and their peers:
//!
//! - [`liner`]: a line session for the server side (`ECHO`, `SLOW`, `RAW`, `BIG`, `PANIC`, ...),
//!   with [`liner::Client`], a blocking client for it; the tests are in [`inbound`].
//! - [`client`]: a client session ([`client::Script`]) and a handler that feeds it jobs
//!   ([`client::Feeder`]), driven by [`Runtime::connections`] against [`peer::Peer`], a
//!   blocking line server; the tests are in [`outbound`].
//! - [`pubsub`]: lines with `SUB` and `PUB` for server push between connections, and `STARTTLS`;
//!   the tests are in [`push`] and [`tls`].
//! - [`listeners`]: [`liner`] and [`pubsub`] served side by side by one process.
//!
//! Waits are bounded (a broken runtime fails a test within seconds instead of hanging it) and
//! every test asserts exact lines, counts and error kinds.

pub mod client;
pub mod inbound;
pub mod liner;
pub mod listeners;
pub mod outbound;
pub mod peer;
pub mod pubsub;
pub mod push;
pub mod tls;

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use conn_driver::{Outcome, TlsMode};
use session_api::{Handler, Service};

/// How long any wait in the suite may take before the test fails: a read, a server stopping, a
/// counter reaching its value, a run of client connections.
pub const LIMIT: Duration = Duration::from_secs(5);

/// What a test asks of the runtime: the tuning both adapters have, mapped by each to its own
/// options. Start from [`Options::default`].
#[derive(Debug, Clone)]
pub struct Options {
    /// TLS for accepted connections (implicit, or STARTTLS); `None`: plain.
    pub tls: Option<TlsMode>,
    /// Most unconsumed input kept per connection. Default 64 KiB.
    pub read_buffer: usize,
    /// Unsent output at which a session that keeps answering stops being offered input.
    /// Default 256 KiB.
    pub max_output: usize,
    /// How long a closed session's output may wait for the peer, and the peer's EOF is awaited
    /// after that. Default 5 s.
    pub linger: Duration,
    /// How long sessions have to close after shutdown. Default 3 s (shorter than the adapters'
    /// default, so a session that ignores shutdown fails a test quickly).
    pub grace: Duration,
    /// Most sessions open at once on a server. Default: no limit.
    pub max_connections: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tls: None,
            read_buffer: 64 * 1024,
            max_output: 256 * 1024,
            linger: Duration::from_secs(5),
            grace: Duration::from_secs(3),
            max_connections: None,
        }
    }
}

/// A runtime under test.
pub trait Runtime {
    /// Serves `service` on `127.0.0.1:0` (on threads of its own) with `opts`, until the server
    /// is stopped.
    fn start<S: Service>(service: Arc<S>, opts: Options) -> Server;

    /// Serves two services of different protocols (handler types) in one process, each on a
    /// loopback port of its own, stopped together (`adapter_smol::run_listeners` on one
    /// executor, `adapter_mio::Servers`). The server's [`addr`](Server::addr) is `a`'s; the
    /// second address is `b`'s.
    fn start_two<A: Service, B: Service>(
        a: Arc<A>,
        b: Arc<B>,
        opts: Options,
    ) -> (Server, SocketAddr);

    /// Prepares to drive already-connected streams, each with its client session and handler
    /// (`adapter_smol::run_connections`, `adapter_mio::Connections`). Nothing runs before
    /// [`Outbound::run`]; the outbound's [`Trigger`] works before and during it. Of the options,
    /// `tls` and `max_connections` do not apply.
    fn connections<H: Handler>(
        conns: Vec<(TcpStream, H::Session, H)>,
        opts: Options,
    ) -> Outbound<H>;
}

/// Asks a runtime to shut down, from any thread: cheap to clone.
#[derive(Clone)]
pub struct Trigger(Arc<dyn Fn() + Send + Sync>);

impl Trigger {
    /// A trigger that calls `f`, which must return at once.
    pub fn new(f: impl Fn() + Send + Sync + 'static) -> Self {
        Trigger(Arc::new(f))
    }

    /// Starts the shutdown.
    pub fn trigger(&self) {
        (self.0)()
    }
}

impl std::fmt::Debug for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Trigger")
    }
}

/// A running server, stopped (and waited for, at most [`LIMIT`]) when dropped.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    trigger: Trigger,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl Server {
    /// A server listening at `addr`, running on `thread` until `trigger` stops it.
    pub fn new(addr: SocketAddr, trigger: Trigger, thread: JoinHandle<io::Result<()>>) -> Self {
        Server {
            addr,
            trigger,
            thread: Some(thread),
        }
    }

    /// A trigger that starts the shutdown without waiting for it.
    pub fn trigger(&self) -> Trigger {
        self.trigger.clone()
    }

    /// Shuts the server down and waits until it has stopped; returns how long that took.
    /// Panics if it fails or takes longer than [`LIMIT`].
    pub fn stop(&mut self) -> Duration {
        let started = Instant::now();
        self.trigger.trigger();
        let thread = self.thread.take().expect("the server is stopped once");
        wait_until("the server to stop", || thread.is_finished());
        thread
            .join()
            .expect("the server thread panicked")
            .expect("the server failed");
        started.elapsed()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.thread.is_none() {
            return;
        }
        if std::thread::panicking() {
            // The test failed already: stop the server, but do not wait for a broken one.
            self.trigger.trigger();
        } else {
            self.stop();
        }
    }
}

/// Client connections prepared by [`Runtime::connections`], not running yet.
pub struct Outbound<H: Handler> {
    trigger: Trigger,
    run: Box<dyn FnOnce() -> io::Result<Vec<Outcome<H>>> + Send>,
}

impl<H: Handler> Outbound<H> {
    /// Connections that `run` drives to the end on the calling thread, stopped early by
    /// `trigger`.
    pub fn new(
        trigger: Trigger,
        run: impl FnOnce() -> io::Result<Vec<Outcome<H>>> + Send + 'static,
    ) -> Self {
        Outbound {
            trigger,
            run: Box::new(run),
        }
    }

    /// A trigger that shuts these connections down, before or while they run.
    pub fn trigger(&self) -> Trigger {
        self.trigger.clone()
    }

    /// Drives the connections until every one has ended, within [`LIMIT`]; returns their
    /// outcomes in input order and how long that took.
    pub fn run(self) -> (Vec<Outcome<H>>, Duration) {
        self.run_within(LIMIT)
    }

    /// Like [`run`](Outbound::run) with a limit of its own (for bulk transfers, which a slow
    /// machine may need longer for). Past `limit` the connections are shut down and the test
    /// fails.
    pub fn run_within(self, limit: Duration) -> (Vec<Outcome<H>>, Duration) {
        let Outbound { trigger, run } = self;
        let started = Instant::now();
        let thread = std::thread::spawn(run);
        while !thread.is_finished() {
            if started.elapsed() > limit {
                trigger.trigger();
                panic!("the connections did not end within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let outcomes = thread
            .join()
            .expect("the runtime thread panicked")
            .expect("driving the connections failed");
        (outcomes, started.elapsed())
    }
}

/// Waits until `done` is true, checking every few milliseconds; panics with `what` after
/// [`LIMIT`].
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + LIMIT;
    while !done() {
        assert!(Instant::now() < end, "waited {LIMIT:?} for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Expands to one `#[test]` per conformance test, run under the given [`Runtime`], in modules
/// named after the suite's (`inbound::echo_with_input_split_across_writes`, ...). The runtime
/// must be nameable from a child module (a type of the calling file, or a path).
///
/// ```ignore
/// adapter_conformance::suite!(MyRuntime);
/// ```
#[macro_export]
macro_rules! suite {
    ($runtime:ty) => {
        $crate::__tests!($runtime; listeners:
            two_protocols_in_one_process_stop_together,
        );
        $crate::__tests!($runtime; push:
            notices_reach_other_connections,
            a_closed_connection_is_reported_gone,
        );
        $crate::__tests!($runtime; tls:
            starttls_drops_what_was_pipelined_after_it,
            a_failed_handshake_ends_only_its_connection,
            implicit_tls,
            close_notify_after_pipelined_commands_waits_for_their_answers,
        );
        $crate::__tests!($runtime; inbound:
            echo_with_input_split_across_writes,
            pipelined_lines_are_answered_in_order_up_to_the_close,
            input_kept_while_work_runs_is_offered_after_it,
            work_is_answered_in_the_order_it_was_started,
            work_does_not_block_other_connections,
            work_runs_on_several_workers_at_once,
            work_that_finishes_after_the_session_closed_is_still_answered,
            idle_timer_fires_and_input_postpones_it,
            eof_right_after_pipelined_commands_comes_after_their_answers,
            eof_waits_for_work_in_flight_and_the_input_after_it,
            eof_waits_for_answers_held_back_by_output_backpressure,
            eof_after_the_close_is_not_offered,
            ten_mib_echoed_while_both_sides_write,
            ten_mib_echoed_with_tiny_buffers,
            a_peer_that_reads_only_after_writing_everything_does_not_deadlock,
            a_peer_that_never_reads_is_not_read_without_bound,
            a_peer_that_never_reads_gets_no_more_answers,
            a_busy_peer_does_not_starve_the_others,
            max_connections_holds_new_connections_until_one_closes,
            a_panicking_session_ends_only_its_connection_without_on_close,
            a_panicking_handler_ends_only_its_connection_without_on_close,
            panicking_work_ends_only_its_connection_with_on_close,
            a_reset_from_the_peer_ends_only_its_connection,
            the_last_reply_survives_input_sent_after_the_close,
            a_peer_that_keeps_sending_after_the_close_is_cut_off,
            a_peer_that_never_reads_the_last_reply_is_dropped_after_linger,
            shutdown_says_goodbye_after_work_in_flight_and_stops_accepting,
            shutdown_does_not_wait_for_lingering_peers,
            shutdown_drops_sessions_that_outlive_the_grace_period,
        );
        $crate::__tests!($runtime; outbound:
            several_connections_at_once_come_back_in_input_order,
            no_connections_is_no_work,
            a_server_that_closes_early_is_seen_as_eof,
            replies_pipelined_before_the_servers_close_are_read_before_eof,
            a_session_timer_fires_on_a_client_connection,
            ten_mib_uploads_to_an_echoing_peer_do_not_deadlock,
            ten_mib_uploads_with_tiny_buffers,
            panics_end_only_their_own_connection,
            linger_waits_for_the_peers_eof_at_most_linger,
            a_peer_that_never_reads_our_last_output_is_dropped_after_linger,
            a_peer_that_keeps_sending_after_our_close_is_cut_off,
            shutdown_makes_every_session_say_goodbye,
            shutdown_drops_sessions_that_outlive_the_grace_period,
            shutdown_before_the_connections_run,
        );
    };
}

/// One module of [`suite!`]: a `#[test]` per function of `$crate::$module`.
#[doc(hidden)]
#[macro_export]
macro_rules! __tests {
    ($runtime:ty; $module:ident: $($name:ident),* $(,)?) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $name() {
                    $crate::$module::$name::<$runtime>();
                }
            )*
        }
    };
}
