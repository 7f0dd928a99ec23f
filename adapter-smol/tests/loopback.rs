//! `adapter-smol` driving a test-only line protocol over real loopback sockets.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use adapter_smol::Options;
use support::{LineService, Server};

fn opts() -> Options {
    Options {
        threads: Some(2),
        grace: Duration::from_secs(2),
        ..Options::default()
    }
}

#[test]
fn echo_with_input_split_across_writes() {
    let server = Server::start(LineService::default(), opts());
    let mut client = server.connect();
    assert_eq!(client.line(), "hi");
    for part in [&b"EC"[..], b"HO hel", b"lo", b"\r", b"\n"] {
        client.send(part);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(client.line(), "hello");
    client.send(b"ECHO again\r\n");
    assert_eq!(client.line(), "again");
}

#[test]
fn pipelined_lines_get_all_replies_in_order() {
    let server = Server::start(LineService::default(), opts());
    let mut client = server.connect();
    client.send(b"ECHO 1\r\nECHO 2\r\nECHO 3\r\nBYE\r\nECHO never\r\n");
    assert_eq!(client.rest(), "hi\r\n1\r\n2\r\n3\r\nbye\r\n");
    server.log.wait_for("close", 1);
}

#[test]
fn input_kept_during_work_is_offered_after_it() {
    let server = Server::start(LineService::default(), opts());
    let mut client = server.connect();
    client.send(b"SLOW a\r\nECHO b\r\nSLOW c\r\nECHO d\r\n");
    assert_eq!(client.line(), "hi");
    assert_eq!(client.line(), "done a");
    assert_eq!(client.line(), "b");
    assert_eq!(client.line(), "done c");
    assert_eq!(client.line(), "d");
}

#[test]
fn work_does_not_block_other_connections() {
    // One executor thread: work run on it would hold up the second connection.
    let slow = Duration::from_millis(400);
    let service = LineService {
        slow,
        ..LineService::default()
    };
    let server = Server::start(
        service,
        Options {
            threads: Some(1),
            ..opts()
        },
    );
    let mut first = server.connect();
    let mut second = server.connect();
    assert_eq!(first.line(), "hi");
    assert_eq!(second.line(), "hi");

    let started = Instant::now();
    first.send(b"SLOW a\r\n");
    std::thread::sleep(Duration::from_millis(50)); // let the work start
    second.send(b"ECHO quick\r\n");
    assert_eq!(second.line(), "quick");
    let echoed = started.elapsed();
    assert_eq!(first.line(), "done a");
    let done = started.elapsed();
    assert!(
        echoed < slow / 2 + Duration::from_millis(50),
        "echo took {echoed:?} while work ran"
    );
    assert!(
        done >= slow,
        "work finished after {done:?}, sooner than it sleeps"
    );
}

#[test]
fn idle_timer_fires_and_closes() {
    let idle = Duration::from_millis(200);
    let service = LineService {
        idle,
        ..LineService::default()
    };
    let server = Server::start(service, opts());
    let mut client = server.connect();
    let started = Instant::now();
    assert_eq!(client.line(), "hi");
    assert_eq!(client.rest(), "timeout\r\n");
    let took = started.elapsed();
    assert!(
        took >= idle - Duration::from_millis(20),
        "timed out after {took:?}"
    );
    assert!(
        took < Duration::from_secs(3),
        "timed out only after {took:?}"
    );
    server.log.wait_for("close", 1);
    assert_eq!(server.log.count("timeout"), 1);
}

#[test]
fn input_postpones_the_idle_timer() {
    let idle = Duration::from_millis(200);
    let service = LineService {
        idle,
        ..LineService::default()
    };
    let server = Server::start(service, opts());
    let mut client = server.connect();
    assert_eq!(client.line(), "hi");
    for i in 0..4 {
        std::thread::sleep(idle / 2);
        client.send(format!("ECHO {i}\r\n").as_bytes());
        assert_eq!(client.line(), i.to_string());
    }
    assert_eq!(client.rest(), "timeout\r\n");
}

#[test]
fn eof_from_client_is_handled() {
    let server = Server::start(LineService::default(), opts());
    let mut client = server.connect();
    client.send(b"ECHO a\r\nECHO b");
    client.finish_sending();
    // The incomplete last line stays unconsumed; EOF still reaches the session.
    assert_eq!(client.rest(), "hi\r\na\r\neof\r\n");
    server.log.wait_for("close", 1);
    assert_eq!(server.log.count("eof"), 1);
    assert_eq!(server.log.count("close"), 1);
}

#[test]
fn eof_waits_for_work_in_flight_and_the_input_before_it() {
    let server = Server::start(LineService::default(), opts());
    let mut client = server.connect();
    client.send(b"SLOW a\r\nECHO b\r\n");
    client.finish_sending();
    // The EOF arrives while `SLOW a` is being worked on; `ECHO b` still gets its answer.
    assert_eq!(client.rest(), "hi\r\ndone a\r\nb\r\neof\r\n");
    server.log.wait_for("close", 1);
    assert_eq!(server.log.count("eof"), 1);
}

#[test]
fn shutdown_stops_accepting_and_says_goodbye() {
    let mut server = Server::start(LineService::default(), opts());
    let mut clients = [server.connect(), server.connect()];
    for client in &mut clients {
        assert_eq!(client.line(), "hi");
    }
    let started = Instant::now();
    server.stop().unwrap();
    let took = started.elapsed();
    // Grace is 2 s, but every session closed at once: no waiting for the peers' EOF.
    assert!(
        took < Duration::from_secs(1),
        "serve returned only after {took:?}"
    );
    for client in &mut clients {
        assert_eq!(client.rest(), "shutdown\r\n");
    }
    assert_eq!(server.log.count("shutdown"), 2);
    assert_eq!(server.log.count("close"), 2);
    let refused = TcpStream::connect(server.addr).map(|_| ()).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn shutdown_drops_sessions_that_outlive_the_grace_period() {
    let grace = Duration::from_millis(200);
    let service = LineService {
        ignore_shutdown: true,
        ..LineService::default()
    };
    let mut server = Server::start(service, Options { grace, ..opts() });
    let mut client = server.connect();
    assert_eq!(client.line(), "hi");
    let started = Instant::now();
    server.stop().unwrap();
    let took = started.elapsed();
    assert!(
        took >= grace,
        "serve returned after {took:?}, before the grace period ended"
    );
    assert_eq!(server.log.count("shutdown"), 1);
    assert_eq!(
        server.log.count("close"),
        1,
        "on_close is called for dropped sessions too"
    );
    assert_eq!(client.rest(), "");
}

#[test]
fn shutdown_waits_for_work_in_flight() {
    let service = LineService {
        slow: Duration::from_millis(300),
        ..LineService::default()
    };
    let mut server = Server::start(service, opts());
    let mut client = server.connect();
    assert_eq!(client.line(), "hi");
    client.send(b"SLOW a\r\n");
    std::thread::sleep(Duration::from_millis(50));
    server.stop().unwrap();
    // The session closed at once, but the adapter applied the work's completion first.
    assert_eq!(client.rest(), "shutdown\r\ndone a\r\n");
}

#[test]
fn ten_mib_echoed_back_exactly_while_both_sides_write() {
    const SIZE: usize = 10 * 1024 * 1024;
    let server = Server::start(LineService::default(), opts());
    let mut client = server.connect();
    let payload: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();

    let mut reader = client.stream.try_clone().unwrap();
    let receiver = std::thread::spawn(move || {
        let mut got = Vec::with_capacity(SIZE + 16);
        reader.read_to_end(&mut got).map(|_| got)
    });
    client.send(b"RAW\r\n");
    // Written in one call: this thread never reads.
    client.stream.write_all(&payload).unwrap();
    client.finish_sending();

    let got = receiver.join().unwrap().expect("reading the echo failed");
    let (greeting, rest) = got.split_at(4);
    assert_eq!(greeting, b"hi\r\n");
    assert_eq!(rest.len(), SIZE + 5, "echoed {} bytes", rest.len());
    assert!(
        rest[..SIZE] == payload[..],
        "echo differs from what was sent"
    );
    assert_eq!(&rest[SIZE..], b"eof\r\n");
}

#[test]
fn a_peer_that_reads_only_after_writing_does_not_deadlock() {
    // More than the kernel buffers both ways can hold, less than `max_output`: the adapter must
    // keep reading while its replies wait to be written, or both sides block on write.
    const SIZE: usize = 32 * 1024 * 1024;
    let opts = Options {
        max_output: 64 * 1024 * 1024,
        ..opts()
    };
    let server = Server::start(LineService::default(), opts);
    let mut client = server.connect();
    client
        .stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let payload: Vec<u8> = (0..SIZE).map(|i| (i % 253) as u8).collect();
    client.send(b"RAW\r\n");
    client
        .stream
        .write_all(&payload)
        .expect("deadlock: the server stopped reading");
    client.finish_sending();
    let mut got = Vec::with_capacity(SIZE + 16);
    client.reader.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), 4 + SIZE + 5);
    assert!(
        got[4..4 + SIZE] == payload[..],
        "echo differs from what was sent"
    );
}

#[test]
fn a_peer_that_never_reads_is_not_buffered_without_bound() {
    // An adapter that kept reading regardless of unsent output would take all 64 MiB.
    const SIZE: usize = 64 * 1024 * 1024;
    let server = Server::start(LineService::default(), opts());
    let mut client = server.connect();
    client
        .stream
        .set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    client.send(b"RAW\r\n");
    let chunk = vec![b'x'; 64 * 1024];
    let mut written = 0;
    let stalled = loop {
        if written >= SIZE {
            break false;
        }
        match client.stream.write(&chunk) {
            Ok(n) => written += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break true;
            }
            Err(e) => panic!("write failed: {e}"),
        }
    };
    assert!(
        stalled,
        "server took all {written} bytes without them being read"
    );
    // Going away without reading: the server's write fails, and the handler still hears of it.
    drop(client);
    server.log.wait_for("close", 1);
}

#[test]
fn max_connections_holds_new_connections_until_one_closes() {
    let server = Server::start(
        LineService::default(),
        Options {
            max_connections: Some(1),
            ..opts()
        },
    );
    let mut first = server.connect();
    assert_eq!(first.line(), "hi");
    let mut second = server.connect();
    second
        .stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0];
    let waited = second.stream.read(&mut byte).unwrap_err();
    assert!(
        matches!(waited.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{waited}"
    );

    first.send(b"BYE\r\n");
    assert_eq!(first.rest(), "bye\r\n");
    second
        .stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(second.line(), "hi");
}

#[test]
fn a_panicking_session_ends_only_its_own_connection() {
    // One executor thread, so the panic must not take that thread down.
    let server = Server::start(
        LineService::default(),
        Options {
            threads: Some(1),
            ..opts()
        },
    );
    let mut doomed = server.connect();
    assert_eq!(doomed.line(), "hi");
    doomed.send(b"PANIC\r\n");
    assert_eq!(doomed.rest(), "");
    let mut client = server.connect();
    assert_eq!(client.line(), "hi");
    client.send(b"ECHO still here\r\n");
    assert_eq!(client.line(), "still here");
}

#[test]
fn a_panicking_session_gets_no_on_close() {
    let server = Server::start(LineService::default(), opts());
    let mut doomed = server.connect();
    assert_eq!(doomed.line(), "hi");
    doomed.send(b"PANIC\r\n");
    // The socket is dropped after the driver, so the handler's fate is settled by now.
    assert_eq!(doomed.rest(), "");
    assert_eq!(
        server.log.count("close"),
        0,
        "on_close called on a handler in an unknown state"
    );
}
