//! The connection rules, driven by hand with a fake clock and no socket: every test is exact
//! and deterministic.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use conn_driver::{Connection, Limits, Panicked, WorkId};
use session_api::{Completion, Deadline, Handler, Session, TimerKind, Work};

/// A line protocol: `wait X` asks the host and consumes nothing more until answered
/// (`done X`); `pair` asks two questions at once; `quit` says `bye` and closes; `boom` panics;
/// `big N` answers with N bytes; anything else is echoed as `ok LINE`. EOF answers `eof` and
/// closes; shutdown answers `shutdown` and closes once no question is open. With `idle` set, a
/// peer silent that long after its last line gets `timeout` and the session closes.
#[derive(Default)]
struct Lines {
    out: Vec<u8>,
    events: Vec<String>,
    open_questions: usize,
    closed: bool,
    stopping: bool,
    /// Calls of `handle_input`, for the re-offer cap.
    offers: usize,
    /// Answers every offer with an event and consumes nothing (a broken session).
    stubborn: bool,
    /// How long the peer may stay silent after a line; no timer if `None`.
    idle: Option<Duration>,
    /// When the idle timer fires, once a line was consumed.
    idle_until: Option<Instant>,
}

impl Lines {
    fn decide(&mut self, answer: &str) {
        self.out
            .extend_from_slice(format!("done {answer}\n").as_bytes());
        self.open_questions -= 1;
        if self.stopping && self.open_questions == 0 {
            self.say_shutdown();
        }
    }

    fn say_shutdown(&mut self) {
        self.out.extend_from_slice(b"shutdown\n");
        self.closed = true;
    }
}

impl Session for Lines {
    type Event = String;

    fn handle_input(&mut self, input: &[u8], now: Instant) -> usize {
        self.offers += 1;
        if self.stubborn {
            self.events.push("again".into());
            return 0;
        }
        let mut used = 0;
        while self.open_questions == 0 && !self.closed {
            let Some(end) = input[used..].iter().position(|&b| b == b'\n') else {
                break;
            };
            let line = String::from_utf8_lossy(&input[used..used + end]).into_owned();
            used += end + 1;
            match line.split_once(' ') {
                Some(("wait", x)) => {
                    self.open_questions = 1;
                    self.events.push(x.to_owned());
                }
                Some(("big", n)) => {
                    let n: usize = n.parse().unwrap();
                    self.out.extend(std::iter::repeat_n(b'x', n));
                }
                _ if line == "pair" => {
                    self.open_questions = 2;
                    self.events.push("first".into());
                    self.events.push("second".into());
                }
                _ if line == "quit" => {
                    self.out.extend_from_slice(b"bye\n");
                    self.closed = true;
                }
                _ if line == "boom" => panic!("the session panics on purpose"),
                _ => self
                    .out
                    .extend_from_slice(format!("ok {line}\n").as_bytes()),
            }
        }
        if used > 0 {
            self.idle_until = self.idle.map(|idle| now + idle);
        }
        used
    }

    fn handle_eof(&mut self, _now: Instant) {
        self.out.extend_from_slice(b"eof\n");
        self.closed = true;
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|d| now >= d.at) {
            self.out.extend_from_slice(b"timeout\n");
            self.closed = true;
        }
    }

    fn handle_shutdown(&mut self, _now: Instant) {
        self.stopping = true;
        if self.open_questions == 0 {
            self.say_shutdown();
        }
    }

    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let n = self.out.len();
        out.append(&mut self.out);
        n
    }

    fn poll_event(&mut self) -> Option<String> {
        (!self.events.is_empty()).then(|| self.events.remove(0))
    }

    fn poll_timeout(&self) -> Option<Deadline> {
        let at = self
            .idle_until
            .filter(|_| !self.closed && self.open_questions == 0)?;
        Some(Deadline::new(at, TimerKind::Idle))
    }

    fn is_closed(&self) -> bool {
        self.closed
    }
}

/// Answers each question with work that decides it; `panic` makes the work panic; counts
/// `on_close` calls in a counter that outlives it.
struct Asker {
    closes: Arc<AtomicUsize>,
}

impl Handler for Asker {
    type Session = Lines;
    type Notice = ();

    fn on_event(&mut self, _: &mut Lines, question: String, _: Instant) -> Option<Work<Self>> {
        if question == "again" {
            return None;
        }
        Some(Work::new(move || {
            if question == "panic" {
                panic!("the work panics on purpose");
            }
            Completion::new(move |_: &mut Asker, s: &mut Lines, _| s.decide(&question))
        }))
    }

    fn on_close(&mut self) {
        self.closes.fetch_add(1, Ordering::SeqCst);
    }
}

struct Fixture {
    conn: Connection<Asker>,
    closes: Arc<AtomicUsize>,
    now: Instant,
}

impl Fixture {
    fn new(limits: Limits) -> Self {
        Self::with(Lines::default(), limits)
    }

    fn with(session: Lines, limits: Limits) -> Self {
        let closes = Arc::new(AtomicUsize::new(0));
        let now = Instant::now();
        let handler = Asker {
            closes: Arc::clone(&closes),
        };
        Fixture {
            conn: Connection::new(session, handler, limits, now),
            closes,
            now,
        }
    }

    /// Writes all pending output, as a socket that takes everything would.
    fn written(&mut self) -> String {
        let out = String::from_utf8(self.conn.pending_output().to_vec()).unwrap();
        self.conn.handle_written(out.len(), self.now);
        out
    }

    /// Runs every piece of work the connection asks for, in the order given by `order`
    /// (indices into the list of work taken now).
    fn run_work(&mut self, order: &[usize]) {
        let mut works: Vec<Option<(WorkId, Work<Asker>)>> = Vec::new();
        while let Some(work) = self.conn.poll_work() {
            works.push(Some(work));
        }
        assert_eq!(works.len(), order.len(), "pieces of work");
        for &i in order {
            let (id, work) = works[i].take().unwrap();
            self.conn
                .handle_completion(id, conn_driver::run_work(work), self.now);
        }
    }

    fn closes(&self) -> usize {
        self.closes.load(Ordering::SeqCst)
    }
}

#[test]
fn pipelined_lines_before_eof_are_answered_before_it() {
    let mut f = Fixture::new(Limits::default());
    f.conn.handle_read(b"a\nb\nwait x\nc\n", f.now);
    f.conn.handle_eof(f.now);
    // The question is open: `c` and the EOF wait for its answer.
    assert_eq!(f.written(), "ok a\nok b\n");
    assert_eq!(f.conn.read_room(), 0, "nothing is read after EOF");
    f.run_work(&[0]);
    assert_eq!(f.written(), "done x\nok c\neof\n");
    assert!(f.conn.poll_half_close());
    // The peer's EOF was read already: no linger.
    assert!(f.conn.is_done());
    assert_eq!(f.closes(), 1);
    let ended = f.conn.into_outcome().unwrap();
    assert!(ended.error.is_none());
    assert_eq!(ended.timed_out, None, "closed by EOF, not by a timer");
    assert_eq!(f.closes.load(Ordering::SeqCst), 1, "on_close once");
}

#[test]
fn a_session_closed_by_its_idle_timer_says_so_in_the_outcome() {
    let idle = Duration::from_secs(30);
    let session = || Lines {
        idle: Some(idle),
        ..Lines::default()
    };
    let mut f = Fixture::with(session(), Limits::default());
    f.conn.handle_read(b"a\n", f.now);
    assert_eq!(f.written(), "ok a\n");
    let at = f.conn.poll_timeout().expect("the idle timer runs");
    assert_eq!(at, f.now + idle);
    f.conn.handle_timeout(at - Duration::from_millis(1));
    assert_eq!(f.written(), "", "early calls do nothing");
    f.conn.handle_timeout(at);
    assert_eq!(f.written(), "timeout\n");
    assert!(f.conn.poll_half_close());
    f.conn.handle_eof(at);
    assert!(f.conn.is_done());
    let ended = f.conn.into_outcome().unwrap();
    assert!(ended.error.is_none(), "{:?}", ended.error);
    assert_eq!(ended.timed_out, Some(TimerKind::Idle));

    // The timer's goodbye never read: both the session's timer and the driver's linger say
    // why.
    let mut f = Fixture::with(session(), Limits::default());
    f.conn.handle_read(b"a\n", f.now);
    f.written();
    let at = f.conn.poll_timeout().unwrap();
    f.conn.handle_timeout(at);
    let by = f.conn.poll_timeout().expect("the linger runs");
    assert_eq!(by, at + Limits::default().linger);
    f.conn.handle_timeout(by);
    let ended = f.conn.into_outcome().unwrap();
    assert_eq!(ended.timed_out, Some(TimerKind::Idle));
    let error = ended.error.expect("the last output was never read");
    assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
}

#[test]
fn completions_are_applied_in_the_order_the_work_started() {
    let mut f = Fixture::new(Limits::default());
    f.conn.handle_read(b"pair\nnext\n", f.now);
    assert_eq!(f.written(), "");
    // The second piece finishes first; its answer waits for the first one's.
    f.run_work(&[1, 0]);
    assert_eq!(f.written(), "done first\ndone second\nok next\n");
}

#[test]
fn late_or_repeated_completions_are_ignored() {
    let mut f = Fixture::new(Limits::default());
    f.conn.handle_read(b"wait x\n", f.now);
    let (id, work) = f.conn.poll_work().unwrap();
    let result = conn_driver::run_work(work);
    f.conn.handle_completion(id, result, f.now);
    // The same id again changes nothing.
    f.conn.handle_completion(
        id,
        Ok(Completion::new(|_: &mut Asker, s: &mut Lines, _| {
            s.decide("twice")
        })),
        f.now,
    );
    assert_eq!(f.written(), "done x\n");
}

#[test]
fn a_peer_that_does_not_read_stops_being_read() {
    let mut f = Fixture::new(Limits {
        max_output: 10,
        ..Limits::default()
    });
    // The first answer takes the output over the limit from below, which alone holds nothing
    // back; the second grows it while full, so input is no longer offered or read.
    f.conn.handle_read(b"big 20\n", f.now);
    assert!(!f.conn.is_backed_up());
    f.conn.handle_read(b"big 20\n", f.now);
    f.conn.handle_read(b"big 20\n", f.now);
    assert_eq!(f.conn.pending_output().len(), 40);
    assert!(f.conn.is_backed_up());
    assert_eq!(f.conn.read_room(), 0);
    // Once the output drains, the kept line is answered and reading resumes.
    f.conn.handle_written(40, f.now);
    assert_eq!(f.conn.pending_output().len(), 20);
    assert!(!f.conn.is_backed_up());
    assert!(f.conn.read_room() > 0);
}

#[test]
fn a_large_request_of_our_own_does_not_stop_reading() {
    let mut f = Fixture::new(Limits {
        max_output: 10,
        ..Limits::default()
    });
    f.conn.handle_read(b"big 1000\n", f.now);
    assert_eq!(f.conn.pending_output().len(), 1000);
    // Over the limit, but it did not grow while full: the peer's answers are still taken.
    assert!(f.conn.read_room() > 0);
    f.conn.handle_read(b"ping\n", f.now);
    assert!(f.written().ends_with("ok ping\n"));
}

#[test]
fn kept_input_is_bounded_by_the_read_buffer() {
    let mut f = Fixture::new(Limits {
        read_buffer: 16,
        ..Limits::default()
    });
    f.conn.handle_read(b"wait x\n0123456789", f.now);
    assert_eq!(f.conn.read_room(), 6);
    f.conn.handle_read(b"abcdef", f.now);
    assert_eq!(
        f.conn.read_room(),
        0,
        "16 bytes kept while the question is open"
    );
    f.run_work(&[0]);
    assert_eq!(f.conn.read_room(), 0, "an unfinished line of 16 bytes");
    f.conn.handle_written(f.conn.pending_output().len(), f.now);
}

#[test]
fn a_session_that_never_consumes_is_offered_input_a_bounded_number_of_times() {
    let session = Lines {
        stubborn: true,
        ..Lines::default()
    };
    let mut f = Fixture::with(session, Limits::default());
    f.conn.handle_read(b"x\n", f.now);
    let offers = f.conn.session().unwrap().offers;
    assert_eq!(offers, 17, "one offer and 16 re-offers");
}

#[test]
fn a_panicking_session_ends_only_with_its_message_and_no_on_close() {
    let mut f = Fixture::new(Limits::default());
    f.conn.handle_read(b"a\nboom\n", f.now);
    assert!(f.conn.is_done());
    assert!(f.conn.session().is_none());
    assert_eq!(f.conn.pending_output(), b"", "nothing more is written");
    let panic: Panicked = f.conn.into_outcome().unwrap_err();
    assert_eq!(panic.message(), "the session panics on purpose");
    assert_eq!(f.closes.load(Ordering::SeqCst), 0);
}

#[test]
fn panicking_work_ends_the_connection_with_on_close_and_an_error() {
    let mut f = Fixture::new(Limits::default());
    f.conn.handle_read(b"wait panic\n", f.now);
    f.run_work(&[0]);
    assert!(f.conn.is_done());
    assert_eq!(f.closes(), 1);
    let ended = f.conn.into_outcome().unwrap();
    let error = ended.error.unwrap();
    assert_eq!(error.kind(), std::io::ErrorKind::Other);
    assert!(
        error.to_string().contains("the work panics on purpose"),
        "{error}"
    );
    assert_eq!(f.closes.load(Ordering::SeqCst), 1);
}

#[test]
fn after_the_close_the_connection_lingers_until_eof() {
    let mut f = Fixture::new(Limits::default());
    f.conn.handle_read(b"quit\nignored\n", f.now);
    assert!(
        !f.conn.poll_half_close(),
        "not before the output is written"
    );
    assert_eq!(f.written(), "bye\n");
    assert!(f.conn.poll_half_close());
    assert!(!f.conn.poll_half_close(), "once");
    assert!(!f.conn.is_open() && !f.conn.is_done());
    assert_eq!(f.closes(), 1, "on_close when the session is over");
    // What the peer still sends is dropped, up to its EOF.
    assert!(f.conn.read_room() > 0);
    f.conn.handle_read(b"more\n", f.now);
    assert_eq!(f.conn.pending_output(), b"");
    f.conn.handle_eof(f.now);
    assert!(f.conn.is_done());
    assert!(f.conn.into_outcome().unwrap().error.is_none());
}

#[test]
fn lingering_ends_at_the_deadline_or_the_drain_limit() {
    let mut f = Fixture::new(Limits::default());
    f.conn.handle_read(b"quit\n", f.now);
    f.written();
    let until = f.conn.poll_timeout().unwrap();
    assert_eq!(until, f.now + Duration::from_secs(5));
    f.conn.handle_timeout(until - Duration::from_millis(1));
    assert!(!f.conn.is_done(), "early calls do nothing");
    f.conn.handle_timeout(until);
    assert!(f.conn.is_done());

    let mut f = Fixture::new(Limits::default());
    f.conn.handle_read(b"quit\n", f.now);
    f.written();
    let flood = vec![b'x'; session_api::LINGER_DRAIN_MAX];
    f.conn.handle_read(&flood, f.now);
    assert!(!f.conn.is_done());
    f.conn.handle_read(b"x", f.now);
    assert!(f.conn.is_done(), "more than the drain limit");
}

#[test]
fn a_peer_that_never_reads_the_last_output_is_dropped_after_the_linger() {
    let mut f = Fixture::new(Limits::default());
    f.conn.handle_read(b"quit\n", f.now);
    let by = f.conn.poll_timeout().unwrap();
    assert_eq!(by, f.now + Duration::from_secs(5));
    // Progress gives the peer the full linger again.
    let later = f.now + Duration::from_secs(3);
    f.conn.handle_written(1, later);
    assert_eq!(f.conn.poll_timeout(), Some(later + Duration::from_secs(5)));
    f.conn.handle_timeout(later + Duration::from_secs(5));
    assert!(f.conn.is_done());
    assert_eq!(f.closes(), 1);
    let error = f.conn.into_outcome().unwrap().error.unwrap();
    assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
}

#[test]
fn shutdown_lets_work_finish_then_the_session_says_goodbye() {
    let mut f = Fixture::new(Limits::default());
    f.conn.handle_read(b"wait x\n", f.now);
    f.conn.handle_shutdown(f.now);
    f.conn.handle_shutdown(f.now);
    assert_eq!(f.written(), "");
    f.run_work(&[0]);
    assert_eq!(f.written(), "done x\nshutdown\n");
    assert!(f.conn.poll_half_close());
    // Lingering after shutdown takes only what already arrived.
    f.conn.handle_read(b"late\n", f.now);
    assert!(!f.conn.is_done());
    f.conn.handle_read_blocked(f.now);
    assert!(f.conn.is_done());
}

#[test]
fn the_grace_period_after_shutdown_ends_a_session_that_does_not_close() {
    let mut f = Fixture::new(Limits {
        grace: Some(Duration::from_secs(2)),
        ..Limits::default()
    });
    f.conn.handle_read(b"wait x\n", f.now);
    let _work = f.conn.poll_work().unwrap();
    f.conn.handle_shutdown(f.now);
    assert_eq!(f.conn.poll_timeout(), Some(f.now + Duration::from_secs(2)));
    f.conn.handle_timeout(f.now + Duration::from_secs(2));
    assert!(f.conn.is_done());
    assert_eq!(f.closes(), 1);
    let error = f.conn.into_outcome().unwrap().error.unwrap();
    assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
}

#[test]
fn a_socket_error_ends_the_connection_with_on_close() {
    let mut f = Fixture::new(Limits::default());
    f.conn.handle_read(b"a\n", f.now);
    f.conn
        .handle_error(std::io::ErrorKind::ConnectionReset.into());
    assert!(f.conn.is_done());
    assert_eq!(f.closes(), 1);
    let error = f.conn.into_outcome().unwrap().error.unwrap();
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);
}

#[test]
fn a_connection_dropped_unfinished_still_calls_on_close() {
    let f = Fixture::new(Limits::default());
    let closes = Arc::clone(&f.closes);
    drop(f);
    assert_eq!(closes.load(Ordering::SeqCst), 1);

    let f = Fixture::new(Limits::default());
    let error = f.conn.into_outcome().unwrap().error.unwrap();
    assert_eq!(error.kind(), std::io::ErrorKind::TimedOut);
    assert_eq!(f.closes.load(Ordering::SeqCst), 1);
}
