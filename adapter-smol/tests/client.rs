//! `adapter-smol` driving outbound (client) connections: `run_connections` and
//! `drive_connection` against a blocking line server on loopback.

mod client_support;

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use adapter_smol::{Ended, Options, Panicked, Shutdown};
use client_support::{Feeder, Greet, Job, LineServer, Script};

fn opts() -> Options {
    Options {
        threads: Some(2),
        grace: Duration::from_secs(5),
        ..Options::default()
    }
}

/// A connection to `server` with a session that expects a greeting and a handler with `jobs`.
fn conn(
    server: &LineServer,
    jobs: impl IntoIterator<Item = Job>,
) -> (std::net::TcpStream, Script, Feeder) {
    (
        server.connect(),
        Script::new(None, false),
        Feeder::new(jobs, None),
    )
}

/// Runs `conns` on a thread, so a hang fails the test after 20 s instead of blocking it.
fn run(
    conns: Vec<(std::net::TcpStream, Script, Feeder)>,
    shutdown: Shutdown,
    opts: Options,
) -> Vec<Result<Ended<Feeder>, Panicked>> {
    let thread = std::thread::spawn(move || adapter_smol::run_connections(conns, shutdown, opts));
    let end = Instant::now() + Duration::from_secs(20);
    while !thread.is_finished() {
        assert!(Instant::now() < end, "run_connections did not return");
        std::thread::sleep(Duration::from_millis(5));
    }
    thread
        .join()
        .expect("run_connections panicked")
        .expect("run_connections failed")
}

/// The handler of a connection that ended cleanly.
fn clean(result: Result<Ended<Feeder>, Panicked>) -> Feeder {
    let ended = result.expect("connection panicked");
    assert!(
        ended.error.is_none(),
        "connection ended with {:?}",
        ended.error
    );
    assert_eq!(ended.handler.closes, 1, "on_close calls");
    ended.handler
}

#[test]
fn several_connections_at_once_all_complete_and_return_their_handlers() {
    const CONNS: usize = 8;
    // Every connection's `GATE` is answered only once all of them have sent one: a driver that
    // ran the connections one after another would get `late`.
    let server = LineServer::start(Greet::Hi, CONNS);
    let conns: Vec<_> = (0..CONNS)
        .map(|i| {
            let (stream, session, _) = conn(&server, []);
            let jobs = [
                Job::Line(format!("ECHO {i}-a")),
                Job::Line(format!("GATE {i}-gate")),
                Job::Line(format!("ECHO {i}-b")),
                Job::line("QUIT"),
            ];
            // Half of the handlers answer through `Work`, so completions are exercised too.
            let slow = (i % 2 == 1).then_some(Duration::from_millis(20));
            (stream, session, Feeder::new(jobs, slow))
        })
        .collect();
    let results = run(conns, Shutdown::new(), opts());
    assert_eq!(results.len(), CONNS);
    for (i, result) in results.into_iter().enumerate() {
        let handler = clean(result);
        // Connections were accepted in input order, so connection i got greeting `hi i`.
        assert_eq!(
            handler.log,
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
            server.received.lines(i),
            [
                format!("ECHO {i}-a"),
                format!("GATE {i}-gate"),
                format!("ECHO {i}-b"),
                "QUIT".to_owned(),
            ]
        );
    }
}

#[test]
fn a_server_that_closes_early_is_seen_as_eof() {
    let server = LineServer::start(Greet::Hi, 0);
    let mute = LineServer::start(Greet::CloseAtOnce, 0);
    let conns = vec![
        // Closed by the server after a request, with no reply.
        conn(&server, [Job::line("ECHO a"), Job::line("CLOSE")]),
        // Closed by the server before it even greets.
        conn(&mute, [Job::line("ECHO never sent")]),
        // Unaffected by the others.
        conn(&server, [Job::line("ECHO c"), Job::line("QUIT")]),
    ];
    let mut results = run(conns, Shutdown::new(), opts()).into_iter();
    assert_eq!(
        clean(results.next().unwrap()).log,
        ["greeting hi 0", "a", "eof"]
    );
    assert_eq!(clean(results.next().unwrap()).log, ["eof"]);
    assert_eq!(
        clean(results.next().unwrap()).log,
        ["greeting hi 1", "c", "bye"]
    );
    assert_eq!(server.received.lines(0), ["ECHO a", "CLOSE"]);
    assert!(mute.received.lines(0).is_empty());
}

#[test]
fn replies_pipelined_before_the_servers_close_are_read_before_eof() {
    let server = LineServer::start(Greet::Hi, 0);
    // The handler answers through slow `Work`: `bye` and the EOF arrive while it is running.
    let conns = vec![(
        server.connect(),
        Script::new(None, false),
        Feeder::new(
            [Job::line("LAST x"), Job::Listen, Job::Listen],
            Some(Duration::from_millis(100)),
        ),
    )];
    let mut results = run(conns, Shutdown::new(), opts());
    // An adapter that told the EOF at once would have closed the session before `bye`.
    assert_eq!(
        clean(results.remove(0)).log,
        ["greeting hi 0", "x", "bye", "eof"]
    );
}

#[test]
fn a_session_timer_fires_on_a_client_connection() {
    // The server never greets: only the session's own deadline can end this.
    let server = LineServer::start(Greet::Never, 0);
    let timeout = Duration::from_millis(200);
    let conns = vec![(
        server.connect(),
        Script::new(Some(timeout), false),
        Feeder::new([], None),
    )];
    let started = Instant::now();
    let mut results = run(conns, Shutdown::new(), opts());
    let took = started.elapsed();
    assert_eq!(clean(results.remove(0)).log, ["timeout"]);
    assert!(
        took >= timeout - Duration::from_millis(20),
        "timed out after {took:?}"
    );
    assert!(
        took < Duration::from_secs(3),
        "timed out only after {took:?}"
    );
}

#[test]
fn shutdown_makes_every_session_say_goodbye() {
    let server = LineServer::start(Greet::Hi, 0);
    let conns: Vec<_> = (0..3)
        .map(|_| conn(&server, [Job::line("ECHO a"), Job::line("WAIT")]))
        .collect();
    let shutdown = Shutdown::new();
    let trigger = shutdown.clone();
    let received = server.received.clone();
    let stopper = std::thread::spawn(move || {
        // Every session now waits for a reply that never comes.
        received.wait_for("WAIT", 3);
        trigger.trigger();
        Instant::now()
    });
    let results = run(conns, shutdown, opts());
    let took = stopper.join().unwrap().elapsed();
    // Grace is 5 s, but every session closed at once.
    assert!(
        took < Duration::from_secs(2),
        "returned {took:?} after shutdown"
    );
    for (i, result) in results.into_iter().enumerate() {
        assert_eq!(
            clean(result).log,
            [
                format!("greeting hi {i}"),
                "a".to_owned(),
                "shutdown".to_owned()
            ]
        );
        assert_eq!(server.received.lines(i), ["ECHO a", "WAIT", "QUIT"]);
    }
}

#[test]
fn shutdown_drops_sessions_that_outlive_the_grace_period_and_returns_their_handlers() {
    let server = LineServer::start(Greet::Hi, 0);
    let grace = Duration::from_millis(200);
    let conns = vec![
        (
            server.connect(),
            Script::new(None, true),
            Feeder::new([Job::line("WAIT")], None),
        ),
        conn(&server, [Job::line("WAIT")]),
    ];
    let shutdown = Shutdown::new();
    let trigger = shutdown.clone();
    let received = server.received.clone();
    let stopper = std::thread::spawn(move || {
        received.wait_for("WAIT", 2);
        trigger.trigger();
        Instant::now()
    });
    let mut results = run(conns, shutdown, Options { grace, ..opts() }).into_iter();
    let took = stopper.join().unwrap().elapsed();
    assert!(
        took >= grace,
        "returned {took:?} after shutdown, within grace"
    );
    assert!(
        took < Duration::from_secs(3),
        "returned {took:?} after shutdown"
    );

    let stubborn = results.next().unwrap().expect("no panic");
    let error = stubborn.error.expect("dropped at the end of grace");
    assert_eq!(error.kind(), ErrorKind::TimedOut, "{error}");
    assert_eq!(stubborn.handler.log, ["greeting hi 0", "shutdown"]);
    assert_eq!(stubborn.handler.closes, 1, "on_close for a dropped session");

    // The polite one closed at once, as usual.
    assert_eq!(
        clean(results.next().unwrap()).log,
        ["greeting hi 1", "shutdown"]
    );
}

#[test]
fn ten_mib_upload_while_the_server_echoes_does_not_deadlock() {
    const SIZE: usize = 10 * 1024 * 1024;
    // The server echoes on the thread that reads: once our receive buffer and its send buffer
    // are full it stops reading, so we must keep reading the echo while the upload is pending.
    let server = LineServer::start(Greet::Hi, 0);
    let conns = vec![
        conn(&server, [Job::Upload(SIZE)]),
        // A second connection is still served while the first moves 20 MiB.
        conn(&server, [Job::line("ECHO meanwhile"), Job::line("QUIT")]),
    ];
    let mut results = run(conns, Shutdown::new(), opts()).into_iter();
    assert_eq!(
        clean(results.next().unwrap()).log,
        ["greeting hi 0".to_owned(), format!("echoed {SIZE} wrong 0")]
    );
    assert_eq!(
        clean(results.next().unwrap()).log,
        ["greeting hi 1", "meanwhile", "bye"]
    );
}

#[test]
fn a_panicking_handler_ends_only_its_own_connection() {
    let server = LineServer::start(Greet::Hi, 0);
    let conns = vec![
        conn(&server, [Job::line("ECHO a"), Job::line("QUIT")]),
        conn(&server, [Job::line("ECHO b"), Job::Panic]),
        conn(&server, [Job::line("ECHO c"), Job::line("QUIT")]),
    ];
    // One executor thread: the panic must not take it down.
    let mut results = run(
        conns,
        Shutdown::new(),
        Options {
            threads: Some(1),
            ..opts()
        },
    )
    .into_iter();
    assert_eq!(
        clean(results.next().unwrap()).log,
        ["greeting hi 0", "a", "bye"]
    );
    let panic = results.next().unwrap().expect_err("the handler panicked");
    assert_eq!(panic.message(), "the test handler was told to panic");
    assert_eq!(
        clean(results.next().unwrap()).log,
        ["greeting hi 2", "c", "bye"]
    );
}

#[test]
fn no_connections_is_no_work() {
    let results = run(Vec::new(), Shutdown::new(), opts());
    assert!(results.is_empty());
}

#[test]
fn drive_connection_on_a_caller_owned_executor() {
    let server = LineServer::start(Greet::Hi, 0);
    let ended = smol::block_on(async {
        let stream = smol::Async::<std::net::TcpStream>::connect(server.addr)
            .await
            .unwrap();
        let handler = Feeder::new([Job::line("ECHO x"), Job::line("QUIT")], None);
        adapter_smol::drive_connection(
            stream,
            Script::new(None, false),
            handler,
            &Shutdown::new(),
            &opts(),
        )
        .await
    });
    assert_eq!(clean(ended).log, ["greeting hi 0", "x", "bye"]);
}
