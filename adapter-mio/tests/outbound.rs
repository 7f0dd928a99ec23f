//! [`Connections`]: client sessions on streams the test connected, driven by the mio loop
//! against the blocking line server in `support::peer`.

mod support;

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use adapter_mio::{Connections, Ended, Options, Panicked, Shutdown};
use support::peer::{LineClient, LineServer, Recorder};

type Outcome = Result<Ended<Recorder>, Panicked>;

fn opts() -> Options {
    Options {
        workers: 2,
        grace: Duration::from_secs(3),
        ..Options::default()
    }
}

/// Runs `conns` on another thread; panics if `run` fails or takes longer than `limit` (then it
/// is shut down, so a hung loop does not outlive the test by much).
fn run_within(conns: Connections<Recorder>, limit: Duration) -> (Vec<Outcome>, Duration) {
    let shutdown = conns.shutdown_handle();
    let start = Instant::now();
    let thread = std::thread::spawn(move || conns.run());
    while !thread.is_finished() {
        if start.elapsed() > limit {
            shutdown.trigger();
            panic!("Connections::run did not return within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let outcomes = thread
        .join()
        .expect("the loop thread panicked")
        .expect("Connections::run failed");
    (outcomes, start.elapsed())
}

/// Triggers `shutdown` once `counter` reaches `n` (from another thread).
fn trigger_when(shutdown: Shutdown, counter: &std::sync::Arc<AtomicUsize>, n: usize) {
    let counter = std::sync::Arc::clone(counter);
    std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(10);
        while counter.load(Ordering::SeqCst) < n && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(2));
        }
        shutdown.trigger();
    });
}

/// The entry of a connection that ended cleanly, its handler having heard `on_close` once.
fn clean(outcome: Outcome) -> Ended<Recorder> {
    let finished = outcome.expect("connection panicked");
    assert!(
        finished.error.is_none(),
        "{}: {:?}",
        finished.handler.name,
        finished.error
    );
    assert_eq!(
        finished.handler.closes, 1,
        "{}: on_close",
        finished.handler.name
    );
    finished
}

fn log(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn several_connections_complete_and_come_back_in_input_order() {
    let server = LineServer::start(Some("hello"));
    // The first connection's work is the slowest, so it finishes last: entries must still come
    // back in input order, each with its own data.
    let mut conns = Connections::new(
        vec![(
            server.connect(),
            LineClient::new(["ECHO slow 1", "ECHO a"]),
            Recorder::new("first").slow(Duration::from_millis(600)),
        )],
        opts(),
    )
    .unwrap();
    assert!(!conns.is_empty());
    let second = conns.push(
        server.connect(),
        LineClient::new(["ECHO slow 2", "ECHO b", "NOPE"]),
        Recorder::new("second").slow(Duration::from_millis(400)),
    );
    conns.extend([
        (
            server.connect(),
            LineClient::new((0..100).map(|i| format!("ECHO {i}"))).pipelined(),
            Recorder::new("third"),
        ),
        (
            server.connect(),
            LineClient::new(Vec::<String>::new()),
            Recorder::new("fourth"),
        ),
    ]);
    assert_eq!((second, conns.len()), (1, 4));

    let (outcomes, took) = run_within(conns, Duration::from_secs(10));
    let done: Vec<Ended<Recorder>> = outcomes.into_iter().map(clean).collect();
    let names: Vec<&str> = done.iter().map(|f| f.handler.name.as_str()).collect();
    assert_eq!(names, ["first", "second", "third", "fourth"]);
    assert_eq!(
        done[0].handler.log,
        log(&["greeting hello", "slow 1 (work)", "a", "bye"])
    );
    assert_eq!(
        done[1].handler.log,
        log(&["greeting hello", "slow 2 (work)", "b", "err", "bye"])
    );
    let mut third = vec!["greeting hello".to_owned()];
    third.extend((0..100).map(|i| i.to_string()));
    third.push("bye".to_owned());
    assert_eq!(done[2].handler.log, third);
    assert_eq!(done[3].handler.log, log(&["greeting hello", "bye"]));
    assert!(done.iter().all(|f| f.session.is_quitting()));
    // 600 + 400 ms of work one after the other would take a second.
    assert!(
        took < Duration::from_millis(900),
        "the connections were not driven at once: {took:?}"
    );
    assert!(took >= Duration::from_millis(600), "done after {took:?}");
}

#[test]
fn a_server_closing_early_gives_eof() {
    let silent = LineServer::start(None);
    let server = LineServer::start(Some("hello"));
    let mut conns = Connections::new(Vec::new(), opts()).unwrap();
    // Closed before the greeting.
    conns.push(
        silent.connect(),
        LineClient::new(["ECHO a"]),
        Recorder::new("before greeting"),
    );
    // Closed in the middle: the last line is never sent.
    conns.push(
        server.connect(),
        LineClient::new(["ECHO a", "CLOSE", "ECHO never"]),
        Recorder::new("mid-way"),
    );
    let (outcomes, _) = run_within(conns, Duration::from_secs(10));
    let done: Vec<Ended<Recorder>> = outcomes.into_iter().map(clean).collect();
    assert_eq!(done[0].handler.log, log(&["eof"]));
    assert_eq!(done[1].handler.log, log(&["greeting hello", "a", "eof"]));
    assert_eq!(server.lines.load(Ordering::SeqCst), 2);
}

#[test]
fn shutdown_makes_sessions_say_goodbye() {
    let server = LineServer::start(Some("hello"));
    let mut conns = Connections::new(Vec::new(), opts()).unwrap();
    // Waits forever for an answer to WAIT.
    conns.push(
        server.connect(),
        LineClient::new(["ECHO a", "WAIT", "ECHO never"]),
        Recorder::new("waiting"),
    );
    trigger_when(conns.shutdown_handle(), &server.lines, 2);
    let (outcomes, took) = run_within(conns, Duration::from_secs(10));
    let done = clean(outcomes.into_iter().next().unwrap());
    assert_eq!(
        done.handler.log,
        log(&["greeting hello", "a", "shutdown", "bye"])
    );
    // The session closed by itself; the grace period (3 s) did not end it.
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
}

#[test]
fn grace_period_drops_sessions_that_ignore_shutdown() {
    let server = LineServer::start(Some("hello"));
    let mut conns = Connections::new(
        Vec::new(),
        Options {
            grace: Duration::from_millis(300),
            ..opts()
        },
    )
    .unwrap();
    conns.push(
        server.connect(),
        LineClient::new(["WAIT"]).stubborn(),
        Recorder::new("stubborn"),
    );
    conns.push(
        server.connect(),
        LineClient::new(["ECHO a", "WAIT"]),
        Recorder::new("polite"),
    );
    trigger_when(conns.shutdown_handle(), &server.lines, 3);
    let (mut outcomes, took) = run_within(conns, Duration::from_secs(10));
    let polite = clean(outcomes.pop().unwrap());
    assert_eq!(
        polite.handler.log,
        log(&["greeting hello", "a", "shutdown", "bye"])
    );
    let stubborn = outcomes.pop().unwrap().expect("not a panic");
    let error = stubborn.error.expect("dropped with an error");
    assert_eq!(error.kind(), io::ErrorKind::TimedOut, "{error}");
    assert_eq!(stubborn.handler.closes, 1, "on_close for a dropped session");
    assert_eq!(stubborn.handler.log, log(&["greeting hello", "shutdown"]));
    assert!(took >= Duration::from_millis(280), "gave up after {took:?}");
    assert!(took < Duration::from_secs(2), "gave up only after {took:?}");
}

#[test]
fn shutdown_triggered_before_run_returns_at_once() {
    let server = LineServer::start(Some("hello"));
    let mut conns = Connections::new(Vec::new(), opts()).unwrap();
    conns.push(
        server.connect(),
        LineClient::new(["WAIT"]).stubborn(),
        Recorder::new("stubborn"),
    );
    conns.push(
        server.connect(),
        LineClient::new(["ECHO a"]),
        Recorder::new("polite"),
    );
    let shutdown = conns.shutdown_handle();
    shutdown.trigger();
    assert!(shutdown.is_triggered());
    let (outcomes, took) = run_within(conns, Duration::from_secs(10));
    let [stubborn, polite] = <[Outcome; 2]>::try_from(outcomes).ok().unwrap();
    // The stubborn one keeps the loop up for the whole grace period.
    assert!(
        took >= Duration::from_millis(2900),
        "returned after {took:?}"
    );
    let stubborn = stubborn.unwrap();
    assert_eq!(stubborn.error.unwrap().kind(), io::ErrorKind::TimedOut);
    assert!(stubborn.handler.log.contains(&"shutdown".to_owned()));
    let polite = clean(polite);
    assert!(polite.handler.log.contains(&"shutdown".to_owned()));

    // Without a stubborn session, it is over at once.
    let mut conns = Connections::new(Vec::new(), opts()).unwrap();
    conns.push(
        server.connect(),
        LineClient::new(["ECHO a"]),
        Recorder::new("polite"),
    );
    conns.shutdown_handle().trigger();
    let (outcomes, took) = run_within(conns, Duration::from_secs(10));
    assert!(took < Duration::from_secs(1), "returned after {took:?}");
    let polite = clean(outcomes.into_iter().next().unwrap());
    assert!(polite.handler.log.contains(&"shutdown".to_owned()));
}

#[test]
fn no_connections_return_at_once() {
    let conns = Connections::<Recorder>::new(Vec::new(), opts()).unwrap();
    let (outcomes, took) = run_within(conns, Duration::from_secs(5));
    assert!(outcomes.is_empty());
    assert!(took < Duration::from_secs(1), "returned after {took:?}");
}

#[test]
fn a_panicking_session_is_an_error_entry_and_ends_only_its_connection() {
    let server = LineServer::start(Some("hello"));
    let mut conns = Connections::new(Vec::new(), opts()).unwrap();
    for (name, line) in [("a", "ECHO a"), ("boom", "ECHO boom"), ("c", "ECHO c")] {
        conns.push(
            server.connect(),
            LineClient::new([line]),
            Recorder::new(name),
        );
    }
    let (outcomes, _) = run_within(conns, Duration::from_secs(10));
    let [a, boom, c] = <[Outcome; 3]>::try_from(outcomes).ok().unwrap();
    assert_eq!(
        boom.err().map(|p| p.message().to_owned()),
        Some("the client session panics on purpose".to_owned())
    );
    assert_eq!(clean(a).handler.log, log(&["greeting hello", "a", "bye"]));
    assert_eq!(clean(c).handler.log, log(&["greeting hello", "c", "bye"]));
}

#[test]
fn panicking_work_gives_the_handler_back_with_an_error() {
    let server = LineServer::start(Some("hello"));
    let mut conns = Connections::new(Vec::new(), opts()).unwrap();
    conns.push(
        server.connect(),
        LineClient::new(["ECHO panic now", "ECHO never"]),
        Recorder::new("panic"),
    );
    let (outcomes, _) = run_within(conns, Duration::from_secs(10));
    let done = outcomes.into_iter().next().unwrap().expect("not a panic");
    assert_eq!(done.error.expect("an error").kind(), io::ErrorKind::Other);
    assert_eq!(done.handler.closes, 1);
    assert_eq!(done.handler.log, log(&["greeting hello"]));
}

/// The session queues ~10 MiB of `ECHO` lines at once, right after the greeting; the server
/// reads one line at a time and writes its echo before reading the next. Once the echoes fill
/// the sockets, the server stops reading until we read: an adapter that stops reading (or stops
/// offering input) because our own output is large deadlocks here.
fn ten_mib_upload(opts: Options) {
    let server = LineServer::start(Some("hello"));
    let mut lines = Vec::new();
    let mut expected = vec!["greeting hello".to_owned()];
    let mut size = 0;
    let mut i = 0u64;
    while size < 10 * 1024 * 1024 {
        let fill = (b'a' + (i % 26) as u8) as char;
        let payload = format!(
            "{i:08} {}",
            fill.to_string().repeat(1000 + (i % 37) as usize)
        );
        let line = format!("ECHO {payload}");
        size += line.len() + 2;
        lines.push(line);
        expected.push(payload);
        i += 1;
    }
    expected.push("bye".to_owned());
    let conns = Connections::new(
        [(
            server.connect(),
            LineClient::new(lines).pipelined(),
            Recorder::new("upload"),
        )],
        opts,
    )
    .unwrap();
    let (outcomes, _) = run_within(conns, Duration::from_secs(30));
    let done = clean(outcomes.into_iter().next().unwrap());
    assert_eq!(done.handler.log.len(), expected.len(), "lines logged");
    assert!(done.handler.log == expected, "echoed lines differ");
}

#[test]
fn ten_mib_upload_while_the_server_echoes() {
    ten_mib_upload(opts());
}

#[test]
fn ten_mib_upload_with_tiny_buffers_and_budget() {
    ten_mib_upload(Options {
        read_buffer: 4 * 1024,
        max_output: 8 * 1024,
        budget: 1500,
        ..opts()
    });
}
