//! Client connections under each runtime: streams the test connected to a [`Peer`], each with a
//! [`Script`] session and a [`Feeder`] handler, driven by [`Runtime::connections`]. Several at
//! once, a peer that closes early or right after pipelined replies, the session's own timer,
//! large uploads to an echoing peer, panics in session, handler, work and `on_close`, the linger
//! after our close, and shutdown.

use std::io::ErrorKind;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use conn_driver::{Ended, Outcome};
use session_api::TimerKind;

use crate::client::{Feeder, Job, Script};
use crate::peer::{Greet, Peer};
use crate::{LIMIT, Options, Runtime};

/// A connection to `peer` with a plain session and a handler with `jobs`.
pub fn conn(peer: &Peer, jobs: impl IntoIterator<Item = Job>) -> (TcpStream, Script, Feeder) {
    (peer.connect(), Script::new(), Feeder::new(jobs))
}

/// The handler and session of a connection that ended cleanly, after exactly one `on_close`.
pub fn clean(outcome: Outcome<Feeder>) -> Ended<Feeder> {
    let ended = outcome.expect("the connection panicked");
    assert!(
        ended.error.is_none(),
        "the connection ended with {:?}",
        ended.error
    );
    assert_eq!(ended.handler.closes, 1, "on_close calls");
    ended
}

/// The log of a connection that ended cleanly.
fn log_of(outcome: Outcome<Feeder>) -> Vec<String> {
    clean(outcome).handler.log
}

/// A connection dropped with a `TimedOut` error; its handler had `on_close` once.
fn timed_out(outcome: Outcome<Feeder>) -> Ended<Feeder> {
    let ended = outcome.expect("the connection panicked");
    let error = ended.error.as_ref().expect("the connection was dropped");
    assert_eq!(error.kind(), ErrorKind::TimedOut, "{error}");
    assert_eq!(ended.handler.closes, 1, "on_close for a dropped connection");
    ended
}

/// Starts a thread that triggers `trigger` once `ready` holds (checked every few milliseconds,
/// for at most [`LIMIT`]); it returns when it triggered.
fn trigger_when(
    trigger: crate::Trigger,
    ready: impl Fn() -> bool + Send + 'static,
) -> std::thread::JoinHandle<Instant> {
    std::thread::spawn(move || {
        crate::wait_until("the moment to shut down", ready);
        trigger.trigger();
        Instant::now()
    })
}

/// Connections are driven at once (each `GATE` is answered only once every connection has sent
/// one, so connections run one after another would hear `late`), some answering through work
/// and one pipelining; every handler and session comes back, in input order.
pub fn several_connections_at_once_come_back_in_input_order<R: Runtime>() {
    const GATED: usize = 6;
    let peer = Peer::with(Greet::Hi, GATED);
    let mut conns: Vec<_> = (0..GATED)
        .map(|i| {
            let jobs = [
                Job::Line(format!("ECHO {i}-a")),
                Job::Line(format!("GATE {i}-gate")),
                Job::Line(format!("ECHO {i}-b")),
                Job::line("QUIT"),
            ];
            // Some handlers answer through work; the first one slowest, so it ends last.
            let feeder = match i {
                0 => Feeder::new(jobs).slow(Duration::from_millis(100)),
                i if i % 2 == 1 => Feeder::new(jobs).slow(Duration::from_millis(20)),
                _ => Feeder::new(jobs),
            };
            (peer.connect(), Script::new(), feeder)
        })
        .collect();
    let pipelined: Vec<String> = (0..100).map(|i| format!("ECHO p{i}")).collect();
    conns.push(conn(
        &peer,
        [Job::Pipeline(pipelined.clone()), Job::line("QUIT")],
    ));
    conns.push(conn(&peer, []));
    let (outcomes, _) = R::connections(conns, Options::default()).run();
    assert_eq!(outcomes.len(), GATED + 2);
    let mut outcomes = outcomes.into_iter();
    for i in 0..GATED {
        let ended = clean(outcomes.next().unwrap());
        assert!(ended.session.is_greeted());
        // Connections were accepted in input order, so connection i got greeting `hi i`.
        assert_eq!(
            ended.handler.log,
            [
                format!("greeting hi {i}"),
                format!("{i}-a"),
                format!("{i}-gate"),
                format!("{i}-b"),
                "bye".to_owned(),
            ],
            "connection {i}"
        );
        assert_eq!(
            peer.received.lines(i),
            [
                format!("ECHO {i}-a"),
                format!("GATE {i}-gate"),
                format!("ECHO {i}-b"),
                "QUIT".to_owned(),
            ]
        );
    }
    let mut want = vec![format!("greeting hi {GATED}")];
    want.extend((0..100).map(|i| format!("p{i}")));
    want.push("bye".to_owned());
    assert_eq!(log_of(outcomes.next().unwrap()), want);
    let mut sent = pipelined;
    sent.push("QUIT".to_owned());
    assert_eq!(peer.received.lines(GATED), sent);
    assert_eq!(
        log_of(outcomes.next().unwrap()),
        [format!("greeting hi {}", GATED + 1)]
    );
    assert!(peer.received.lines(GATED + 1).is_empty());
}

/// No connections: nothing to wait for.
pub fn no_connections_is_no_work<R: Runtime>() {
    let (outcomes, took) = R::connections::<Feeder>(Vec::new(), Options::default()).run();
    assert!(outcomes.is_empty());
    assert!(took < Duration::from_secs(1), "returned after {took:?}");
}

/// A peer that closes (before its greeting, or after a request) is an EOF for that session
/// only.
pub fn a_server_that_closes_early_is_seen_as_eof<R: Runtime>() {
    let peer = Peer::start();
    let mute = Peer::with(Greet::CloseAtOnce, 0);
    let conns = vec![
        conn(
            &peer,
            [
                Job::line("ECHO a"),
                Job::line("CLOSE"),
                Job::line("ECHO never"),
            ],
        ),
        conn(&mute, [Job::line("ECHO never sent")]),
        conn(&peer, [Job::line("ECHO c"), Job::line("QUIT")]),
    ];
    let (outcomes, _) = R::connections(conns, Options::default()).run();
    let mut outcomes = outcomes.into_iter();
    assert_eq!(
        log_of(outcomes.next().unwrap()),
        ["greeting hi 0", "a", "eof"]
    );
    assert_eq!(log_of(outcomes.next().unwrap()), ["eof"]);
    assert_eq!(
        log_of(outcomes.next().unwrap()),
        ["greeting hi 1", "c", "bye"]
    );
    assert_eq!(peer.received.lines(0), ["ECHO a", "CLOSE"]);
    assert_eq!(mute.received.total(), 0);
}

/// The peer's last replies and its EOF arrive together while the handler's work runs: the
/// replies are still read, in order, before the session hears the EOF.
pub fn replies_pipelined_before_the_servers_close_are_read_before_eof<R: Runtime>() {
    let peer = Peer::start();
    let conns = vec![(
        peer.connect(),
        Script::new(),
        Feeder::new([Job::line("LAST x"), Job::Listen, Job::Listen])
            .slow(Duration::from_millis(100)),
    )];
    let (mut outcomes, _) = R::connections(conns, Options::default()).run();
    assert_eq!(
        log_of(outcomes.remove(0)),
        ["greeting hi 0", "x", "bye", "eof"]
    );
}

/// The session's own deadline fires on a client connection (the peer never greets).
pub fn a_session_timer_fires_on_a_client_connection<R: Runtime>() {
    let peer = Peer::with(Greet::Never, 0);
    let timeout = Duration::from_millis(200);
    let conns = vec![(
        peer.connect(),
        Script::new().greeting_timeout(timeout),
        Feeder::new([]),
    )];
    let (mut outcomes, took) = R::connections(conns, Options::default()).run();
    let ended = clean(outcomes.remove(0));
    assert_eq!(ended.handler.log, ["timeout"]);
    assert_eq!(ended.timed_out, Some(TimerKind::Greeting));
    assert!(
        took >= timeout - Duration::from_millis(20),
        "timed out after {took:?}"
    );
    assert!(
        took < Duration::from_secs(2),
        "timed out only after {took:?}"
    );
}

/// About 10 MiB of `ECHO` lines of about 1 kB each, and the answers the peer gives them.
pub fn ten_mib_of_lines() -> (Vec<String>, Vec<String>) {
    let mut lines = Vec::new();
    let mut answers = Vec::new();
    let mut size = 0;
    let mut i = 0u64;
    while size < 10 * 1024 * 1024 {
        let fill = char::from(b'a' + (i % 26) as u8);
        let payload = format!(
            "{i:08} {}",
            fill.to_string().repeat(1000 + (i % 37) as usize)
        );
        let line = format!("ECHO {payload}");
        size += line.len() + 2;
        lines.push(line);
        answers.push(payload);
        i += 1;
    }
    (lines, answers)
}

/// Client sessions that queue 10 MiB at once (one upload in a single write, and 10 MiB of
/// pipelined lines) to a peer that echoes on the thread that reads: once the echo fills the
/// sockets the peer stops reading until we read, so an adapter that stops reading because our
/// own output is large deadlocks. A third connection is served meanwhile.
pub fn ten_mib_uploads<R: Runtime>(opts: Options) {
    const SIZE: usize = 10 * 1024 * 1024;
    let peer = Peer::start();
    let (lines, answers) = ten_mib_of_lines();
    let conns = vec![
        conn(&peer, [Job::Upload(SIZE)]),
        conn(&peer, [Job::Pipeline(lines)]),
        conn(&peer, [Job::line("ECHO meanwhile"), Job::line("QUIT")]),
    ];
    let (outcomes, _) = R::connections(conns, opts).run_within(LIMIT * 3);
    let mut outcomes = outcomes.into_iter();
    assert_eq!(
        log_of(outcomes.next().unwrap()),
        ["greeting hi 0".to_owned(), format!("echoed {SIZE} wrong 0")]
    );
    let log = log_of(outcomes.next().unwrap());
    assert_eq!(log.len(), answers.len() + 1, "lines logged");
    assert_eq!(log[0], "greeting hi 1");
    assert!(log[1..] == answers[..], "echoed lines differ");
    assert_eq!(
        log_of(outcomes.next().unwrap()),
        ["greeting hi 2", "meanwhile", "bye"]
    );
}

/// [`ten_mib_uploads`] with the default options.
pub fn ten_mib_uploads_to_an_echoing_peer_do_not_deadlock<R: Runtime>() {
    ten_mib_uploads::<R>(Options::default());
}

/// [`ten_mib_uploads`] with a 4 KiB read buffer and an 8 KiB output limit.
pub fn ten_mib_uploads_with_tiny_buffers<R: Runtime>() {
    ten_mib_uploads::<R>(crate::inbound::tiny_buffers());
}

/// A panic in a session or handler (including `on_close`) is that connection's `Panicked`
/// entry; a panic in work ends its connection with an `Other` error and the handler back. The
/// other connections are not affected.
pub fn panics_end_only_their_own_connection<R: Runtime>() {
    let peer = Peer::start();
    let conns = vec![
        conn(&peer, [Job::line("ECHO a"), Job::line("QUIT")]),
        conn(&peer, [Job::line("ECHO boom")]),
        conn(&peer, [Job::line("ECHO b"), Job::PanicHandler]),
        conn(
            &peer,
            [Job::line("ECHO c"), Job::PanicWork, Job::line("ECHO never")],
        ),
        (
            peer.connect(),
            Script::new(),
            Feeder::new([Job::line("ECHO d"), Job::line("QUIT")]).panic_on_close(),
        ),
        conn(&peer, [Job::line("ECHO e"), Job::line("QUIT")]),
    ];
    let (outcomes, _) = R::connections(conns, Options::default()).run();
    let mut outcomes = outcomes.into_iter();
    assert_eq!(
        log_of(outcomes.next().unwrap()),
        ["greeting hi 0", "a", "bye"]
    );
    for want in [
        "the client session panics on purpose",
        "the handler panics on purpose",
    ] {
        let panic = outcomes.next().unwrap().expect_err("a panic");
        assert_eq!(panic.message(), want);
    }
    let work = outcomes
        .next()
        .unwrap()
        .expect("work panicking is not Panicked");
    let error = work.error.expect("an error");
    assert_eq!(error.kind(), ErrorKind::Other);
    assert_eq!(
        error.to_string(),
        "work panicked: the work panics on purpose"
    );
    assert_eq!(work.handler.closes, 1);
    assert_eq!(work.handler.log, ["greeting hi 3", "c"]);
    let on_close = outcomes.next().unwrap().expect_err("on_close panicked");
    assert_eq!(on_close.message(), "on_close panics on purpose");
    assert_eq!(
        log_of(outcomes.next().unwrap()),
        ["greeting hi 5", "e", "bye"]
    );
    assert_eq!(peer.received.lines(4), ["ECHO d", "QUIT"]);
}

/// Once our session is closed and flushed, the peer's EOF is awaited for at most `linger`; a
/// peer that closes at our EOF ends the connection at once.
pub fn linger_waits_for_the_peers_eof_at_most_linger<R: Runtime>() {
    let peer = Peer::start();
    let linger = Duration::from_millis(300);
    let opts = Options {
        linger,
        ..Options::default()
    };
    let (mut outcomes, took) = R::connections(vec![conn(&peer, [Job::line("HOLD")])], opts).run();
    assert_eq!(log_of(outcomes.remove(0)), ["greeting hi 0", "holding"]);
    assert!(took >= linger, "returned after {took:?}");
    assert!(
        took < Duration::from_secs(2),
        "returned only after {took:?}"
    );

    // The default linger is 5 s, but this peer closes as soon as it reads our EOF.
    let conns = vec![conn(&peer, [Job::line("ECHO a")])];
    let (mut outcomes, took) = R::connections(conns, Options::default()).run();
    assert_eq!(log_of(outcomes.remove(0)), ["greeting hi 1", "a"]);
    assert!(
        took < Duration::from_secs(2),
        "returned only after {took:?}"
    );
}

/// A closed session whose peer does not read its last output for `linger` is dropped with
/// `TimedOut`.
pub fn a_peer_that_never_reads_our_last_output_is_dropped_after_linger<R: Runtime>() {
    let peer = Peer::start();
    let linger = Duration::from_millis(300);
    let opts = Options {
        linger,
        ..Options::default()
    };
    let conns = vec![conn(
        &peer,
        [Job::line("HOLD"), Job::FloodAndClose(16 * 1024 * 1024)],
    )];
    let (mut outcomes, took) = R::connections(conns, opts).run();
    let ended = timed_out(outcomes.remove(0));
    assert_eq!(ended.handler.log, ["greeting hi 0", "holding"]);
    assert!(took >= linger, "dropped after {took:?}");
    assert!(took < Duration::from_secs(3), "dropped only after {took:?}");
}

/// A peer that keeps sending after our close is not drained for the whole linger (5 s): past the
/// drain limit the connection ends.
pub fn a_peer_that_keeps_sending_after_our_close_is_cut_off<R: Runtime>() {
    let peer = Peer::start();
    let conns = vec![conn(&peer, [Job::SendAndClose("FLOOD".to_owned())])];
    let (mut outcomes, took) = R::connections(conns, Options::default()).run();
    assert_eq!(log_of(outcomes.remove(0)), ["greeting hi 0"]);
    assert!(
        took < Duration::from_millis(2500),
        "drained the peer for {took:?}"
    );
    assert_eq!(peer.received.lines(0), ["FLOOD"]);
}

/// Shutdown: every session hears it, says goodbye in its protocol's words and closes on the
/// peer's answer, well before the grace period ends.
pub fn shutdown_makes_every_session_say_goodbye<R: Runtime>() {
    let peer = Peer::start();
    let conns: Vec<_> = (0..3)
        .map(|_| conn(&peer, [Job::line("ECHO a"), Job::line("WAIT")]))
        .collect();
    let outbound = R::connections(conns, Options::default());
    let received = peer.received.clone();
    // Every session then waits for a reply that never comes.
    let stopper = trigger_when(outbound.trigger(), move || {
        (0..3).all(|i| received.lines(i).len() == 2)
    });
    let (outcomes, _) = outbound.run();
    let took = stopper.join().unwrap().elapsed();
    // The grace period is 3 s, but every session closed at once.
    assert!(
        took < Duration::from_secs(2),
        "returned {took:?} after shutdown"
    );
    for (i, outcome) in outcomes.into_iter().enumerate() {
        let ended = clean(outcome);
        assert!(ended.session.is_quitting());
        assert_eq!(
            ended.handler.log,
            [
                format!("greeting hi {i}"),
                "a".to_owned(),
                "shutdown".to_owned(),
                "bye".to_owned()
            ]
        );
        assert_eq!(peer.received.lines(i), ["ECHO a", "WAIT", "QUIT"]);
    }
}

/// A session that ignores shutdown is dropped at the end of the grace period with `TimedOut`,
/// its handler back after `on_close`; a polite one beside it closes at once.
pub fn shutdown_drops_sessions_that_outlive_the_grace_period<R: Runtime>() {
    let peer = Peer::start();
    let grace = Duration::from_millis(300);
    let conns = vec![
        (
            peer.connect(),
            Script::new().stubborn(),
            Feeder::new([Job::line("WAIT")]),
        ),
        conn(&peer, [Job::line("ECHO a"), Job::line("WAIT")]),
    ];
    let outbound = R::connections(
        conns,
        Options {
            grace,
            ..Options::default()
        },
    );
    let received = peer.received.clone();
    let stopper = trigger_when(outbound.trigger(), move || received.total() == 3);
    let (mut outcomes, _) = outbound.run();
    let took = stopper.join().unwrap().elapsed();
    assert!(
        took >= grace - Duration::from_millis(20),
        "returned {took:?} after shutdown"
    );
    assert!(
        took < Duration::from_secs(2),
        "returned {took:?} after shutdown"
    );
    assert_eq!(
        log_of(outcomes.pop().unwrap()),
        ["greeting hi 1", "a", "shutdown", "bye"]
    );
    let stubborn = timed_out(outcomes.pop().unwrap());
    assert_eq!(stubborn.handler.log, ["greeting hi 0", "shutdown"]);
    assert_eq!(peer.received.lines(0), ["WAIT"]);
}

/// A shutdown triggered before the connections run: every session hears it first (these peers
/// never greet, so each closes at once, or is dropped after the grace period if stubborn).
pub fn shutdown_before_the_connections_run<R: Runtime>() {
    let peer = Peer::with(Greet::Never, 0);
    let grace = Duration::from_millis(300);
    let opts = Options {
        grace,
        ..Options::default()
    };
    let conns = vec![
        (peer.connect(), Script::new().stubborn(), Feeder::new([])),
        conn(&peer, []),
    ];
    let outbound = R::connections(conns, opts.clone());
    outbound.trigger().trigger();
    let (mut outcomes, took) = outbound.run();
    assert!(took >= grace, "returned after {took:?}");
    assert!(
        took < Duration::from_secs(2),
        "returned only after {took:?}"
    );
    assert_eq!(log_of(outcomes.pop().unwrap()), ["shutdown"]);
    let stubborn = timed_out(outcomes.pop().unwrap());
    assert_eq!(stubborn.handler.log, ["shutdown"]);

    // Without a stubborn session, it is over at once.
    let outbound = R::connections(vec![conn(&peer, [])], opts);
    outbound.trigger().trigger();
    let (mut outcomes, took) = outbound.run();
    assert!(took < Duration::from_secs(1), "returned after {took:?}");
    assert_eq!(log_of(outcomes.pop().unwrap()), ["shutdown"]);
    assert_eq!(peer.received.total(), 0);
}
