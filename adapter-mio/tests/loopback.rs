//! The mio adapter over real loopback sockets, driving the test-only line protocol in
//! `support`.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use adapter_mio::Options;
use support::{Client, LinerService, Running, Stats};

fn opts() -> Options {
    Options {
        workers: 2,
        grace: Duration::from_secs(3),
        ..Options::default()
    }
}

#[test]
fn echo_with_input_split_across_writes() {
    let server = Running::start(LinerService::new(), opts());
    let mut c = Client::greeted(server.addr);
    for part in ["EC", "HO he", "llo wor", "ld\r", "\n"] {
        c.send(part);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(c.line(), "hello world");
    // A line split right after the CR and one split byte by byte.
    c.send("ECHO a\r");
    std::thread::sleep(Duration::from_millis(20));
    c.send("\nECHO b");
    std::thread::sleep(Duration::from_millis(20));
    c.send("\r\n");
    assert_eq!(c.line(), "a");
    assert_eq!(c.line(), "b");
    for b in "ECHO bytes\r\n".bytes() {
        c.stream.write_all(&[b]).unwrap();
    }
    assert_eq!(c.line(), "bytes");
    assert_eq!(
        server.stats.peers.lock().unwrap()[0],
        c.stream.local_addr().unwrap()
    );
}

#[test]
fn pipelined_lines_are_answered_in_order() {
    let server = Running::start(LinerService::new(), opts());
    let mut c = Client::greeted(server.addr);
    let mut batch = String::new();
    for i in 0..200 {
        batch.push_str(&format!("ECHO {i}\r\n"));
    }
    c.send(&batch);
    for i in 0..200 {
        assert_eq!(c.line(), i.to_string());
    }
}

#[test]
fn a_burst_larger_than_the_budget_is_read_to_the_end() {
    // mio is edge-triggered: once the budget stops reading, nothing new arrives to wake the
    // loop, so the adapter must come back to this connection on its own.
    let server = Running::start(
        LinerService::new(),
        Options {
            budget: 512,
            ..opts()
        },
    );
    let mut c = Client::greeted(server.addr);
    let mut batch = String::new();
    for i in 0..5000 {
        batch.push_str(&format!("ECHO {i}\r\n"));
    }
    c.send(&batch);
    for i in 0..5000 {
        assert_eq!(c.line(), i.to_string());
    }
}

#[test]
fn input_kept_while_work_runs_is_answered_after_it() {
    let server = Running::start(LinerService::new(), opts());
    let mut c = Client::greeted(server.addr);
    // The session consumes nothing after SLOW until its answer is applied; the rest of this
    // single write must be kept and offered again afterwards.
    // The same for an event answered at once inside `on_event` (QUICK), and for one that a
    // completion raises and `on_event` answers at once (CHAIN).
    c.send("ECHO 1\r\nSLOW a\r\nECHO 2\r\nQUICK b\r\nECHO 3\r\nSLOW c\r\nQUICK d\r\n");
    c.send("CHAIN e\r\nECHO 4\r\n");
    for want in [
        "1", "done a", "2", "done b", "3", "done c", "done d", "done e", "4",
    ] {
        assert_eq!(c.line(), want);
    }
}

#[test]
fn work_on_one_connection_does_not_block_another() {
    let mut service = LinerService::new();
    service.slow = Duration::from_secs(1);
    let server = Running::start(service, opts());
    let mut a = Client::greeted(server.addr);
    let mut b = Client::greeted(server.addr);
    let start = Instant::now();
    a.send("SLOW a\r\n");
    for i in 0..10 {
        b.send(&format!("ECHO {i}\r\n"));
        assert_eq!(b.line(), i.to_string());
    }
    let echoed = start.elapsed();
    assert_eq!(a.line(), "done a");
    let answered = start.elapsed();
    assert!(
        echoed < Duration::from_millis(500),
        "echoes took {echoed:?} while work ran on another connection"
    );
    assert!(
        answered >= Duration::from_secs(1),
        "work answered after {answered:?}"
    );
}

#[test]
fn work_runs_on_several_workers_at_once() {
    let mut service = LinerService::new();
    service.slow = Duration::from_millis(600);
    let server = Running::start(service, opts());
    let mut a = Client::greeted(server.addr);
    let mut b = Client::greeted(server.addr);
    let start = Instant::now();
    a.send("SLOW a\r\n");
    b.send("SLOW b\r\n");
    assert_eq!(a.line(), "done a");
    assert_eq!(b.line(), "done b");
    let took = start.elapsed();
    assert!(
        took < Duration::from_millis(1100),
        "two works took {took:?} with two workers"
    );
}

#[test]
fn idle_timer_fires_and_closes() {
    let mut service = LinerService::new();
    service.idle = Duration::from_millis(200);
    let server = Running::start(service, opts());
    let start = Instant::now();
    let mut c = Client::greeted(server.addr);
    // Activity pushes the deadline back.
    std::thread::sleep(Duration::from_millis(120));
    c.send("ECHO x\r\n");
    assert_eq!(c.line(), "x");
    let active = Instant::now();
    assert_eq!(c.line(), "timeout");
    let idle = active.elapsed();
    c.expect_eof();
    assert!(
        idle >= Duration::from_millis(150),
        "timed out after {idle:?}"
    );
    assert!(start.elapsed() >= Duration::from_millis(320));
    assert!(
        idle < Duration::from_secs(3),
        "timed out only after {idle:?}"
    );
    Stats::wait_for(&server.stats.closes, 1, "on_close after the timeout");
    assert_eq!(Stats::get(&server.stats.timeouts), 1);
}

#[test]
fn bye_flushes_then_closes() {
    let server = Running::start(LinerService::new(), opts());
    let mut c = Client::greeted(server.addr);
    c.send("ECHO last\r\nBYE\r\nECHO ignored\r\n");
    assert_eq!(c.line(), "last");
    assert_eq!(c.line(), "bye");
    c.expect_gone();
    Stats::wait_for(&server.stats.closes, 1, "on_close after BYE");
}

#[test]
fn bye_then_eof_is_a_clean_close() {
    let server = Running::start(LinerService::new(), opts());
    let mut c = Client::greeted(server.addr);
    c.send("BYE\r\n");
    assert_eq!(c.line(), "bye");
    c.expect_eof();
    c.half_close();
    Stats::wait_for(&server.stats.closes, 1, "on_close after BYE");
    assert_eq!(
        Stats::get(&server.stats.eofs),
        0,
        "EOF after close is not offered"
    );
}

#[test]
fn eof_is_handled() {
    let server = Running::start(LinerService::new(), opts());
    let mut c = Client::greeted(server.addr);
    c.send("ECHO a\r\nECHO b");
    c.half_close();
    assert_eq!(c.line(), "a");
    assert_eq!(c.line(), "eof");
    c.expect_eof();
    Stats::wait_for(&server.stats.closes, 1, "on_close after EOF");
    assert_eq!(Stats::get(&server.stats.eofs), 1);
}

#[test]
fn eof_waits_for_pending_work_and_kept_input() {
    let server = Running::start(LinerService::new(), opts());
    let mut c = Client::greeted(server.addr);
    c.send("SLOW a\r\nECHO b\r\n");
    c.half_close();
    for want in ["done a", "b", "eof"] {
        assert_eq!(c.line(), want);
    }
    c.expect_eof();
    Stats::wait_for(&server.stats.closes, 1, "on_close after EOF");
}

#[test]
fn shutdown_from_another_thread() {
    let mut server = Running::start(LinerService::new(), opts());
    let mut idle = Client::greeted(server.addr);
    let mut busy = Client::greeted(server.addr);
    idle.send("ECHO up\r\n");
    assert_eq!(idle.line(), "up");
    busy.send("SLOW last\r\n");
    std::thread::sleep(Duration::from_millis(50));

    let shutdown = server.shutdown.clone();
    let trigger = std::thread::spawn(move || shutdown.trigger());
    trigger.join().unwrap();
    assert!(server.shutdown.is_triggered());

    assert_eq!(idle.line(), "shutdown");
    idle.expect_eof();
    // Work in flight is finished and answered before the goodbye.
    assert_eq!(busy.line(), "done last");
    assert_eq!(busy.line(), "shutdown");
    busy.expect_eof();
    let took = server.stop_within(Duration::from_secs(3));
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
    assert_eq!(Stats::get(&server.stats.shutdowns), 2);
    assert_eq!(Stats::get(&server.stats.closes), 2);
    // The listener is closed.
    assert!(
        TcpStream::connect(server.addr).is_err(),
        "still accepting after shutdown"
    );
}

#[test]
fn shutdown_triggered_before_run_returns_at_once() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server =
        adapter_mio::Server::new(listener, std::sync::Arc::new(LinerService::new()), opts())
            .unwrap();
    server.shutdown_handle().trigger();
    let start = Instant::now();
    server.run().unwrap();
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[test]
fn grace_period_drops_sessions_that_ignore_shutdown() {
    let mut server = Running::start(
        LinerService::new(),
        Options {
            grace: Duration::from_millis(300),
            ..opts()
        },
    );
    let mut c = Client::greeted(server.addr);
    c.send("STUBBORN\r\n");
    assert_eq!(c.line(), "ok");
    let took = server.stop_within(Duration::from_secs(3));
    assert!(took >= Duration::from_millis(280), "gave up after {took:?}");
    c.expect_gone();
    assert_eq!(Stats::get(&server.stats.shutdowns), 1);
    assert_eq!(
        Stats::get(&server.stats.closes),
        1,
        "on_close for a dropped session"
    );
}

/// The client writes ~10 MiB of `ECHO` lines in one go without reading (its reader thread
/// starts late), the session echoes everything: both directions fill up, which deadlocks an
/// adapter that does not read while output is pending or never waits for WRITABLE. Every byte
/// must come back exactly, in order, followed by the answer to the EOF.
fn ten_mib_round_trip(opts: Options) {
    let server = Running::start(LinerService::new(), opts);
    let mut c = Client::greeted(server.addr);

    let mut request = Vec::new();
    let mut expected = Vec::new();
    let mut i = 0u64;
    while request.len() < 10 * 1024 * 1024 {
        let fill = (b'a' + (i % 26) as u8) as char;
        let payload = format!(
            "{i:08} {}",
            fill.to_string().repeat(1000 + (i % 37) as usize)
        );
        request.extend_from_slice(format!("ECHO {payload}\r\n").as_bytes());
        expected.extend_from_slice(format!("{payload}\r\n").as_bytes());
        i += 1;
    }
    expected.extend_from_slice(b"eof\r\n");

    let mut writer = c.stream.try_clone().unwrap();
    let write = std::thread::spawn(move || {
        writer.write_all(&request).expect("write 10 MiB");
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    // Let both directions' socket buffers fill before anyone reads.
    std::thread::sleep(Duration::from_millis(300));
    let mut got = Vec::with_capacity(expected.len());
    let mut reader = c.stream.try_clone().unwrap();
    reader
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    reader.read_to_end(&mut got).expect("read the echo");
    write.join().expect("writer thread");
    assert_eq!(got.len(), expected.len(), "echoed byte count");
    assert!(got == expected, "echoed bytes differ");
    c.expect_eof();
}

#[test]
fn ten_mib_echo_without_deadlock() {
    ten_mib_round_trip(opts());
}

#[test]
fn ten_mib_echo_with_tiny_buffers_and_budget() {
    ten_mib_round_trip(Options {
        read_buffer: 4 * 1024,
        max_output: 8 * 1024,
        budget: 1500,
        ..opts()
    });
}

#[test]
fn a_peer_that_does_not_read_is_not_read_either() {
    // Each `BIG` line asks for 100 kB of output. A peer that sends a thousand of them and never
    // reads may fill the socket buffers and `max_output`, but then the adapter must stop
    // offering input (and reading), instead of buffering 100 MB for it.
    let server = Running::start(LinerService::new(), opts());
    let c = Client::greeted(server.addr);
    let request = "BIG 100000\r\n".repeat(1000);
    let mut writer = c.stream.try_clone().unwrap();
    writer
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let write = std::thread::spawn(move || {
        // Blocks once the server stops reading; times out or fails when the socket goes.
        let _ = writer.write_all(request.as_bytes());
    });
    let mut seen = Stats::get(&server.stats.lines);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = Stats::get(&server.stats.lines);
        if now == seen {
            break;
        }
        seen = now;
    }
    assert!(seen > 0, "nothing answered");
    assert!(
        seen < 500,
        "{seen} of 1000 requests answered for a peer that reads nothing"
    );
    c.stream.shutdown(std::net::Shutdown::Both).unwrap();
    drop(c);
    write.join().unwrap();
    Stats::wait_for(&server.stats.closes, 1, "on_close for the stuck peer");
}

#[test]
fn busy_peer_does_not_starve_others() {
    // The busy peer sends 16 MB of silent `NOOP` lines as fast as it can, so its socket is
    // never empty while the loop works through them: without a per-turn read budget the loop
    // would read it until it is done and leave the other connection waiting.
    const FLOOD_LINES: usize = 16 * 1024 * 1024 / 6;
    let server = Running::start(LinerService::new(), opts());
    let busy = Client::greeted(server.addr);
    let mut c = Client::greeted(server.addr);
    let mut writer = busy.stream.try_clone().unwrap();
    let flood = std::thread::spawn(move || {
        writer
            .write_all("NOOP\r\n".repeat(FLOOD_LINES).as_bytes())
            .unwrap();
    });
    // Wait until the loop is busy with the flood.
    while Stats::get(&server.stats.lines) < 10_000 {
        std::thread::sleep(Duration::from_millis(1));
    }
    c.send("ECHO quick\r\n");
    assert_eq!(c.line(), "quick");
    let flooded = Stats::get(&server.stats.lines);
    assert!(
        flooded < FLOOD_LINES,
        "the echo was answered only after the whole flood ({flooded} lines)"
    );
    flood.join().unwrap();
    Stats::wait_for(&server.stats.lines, FLOOD_LINES + 1, "the flood processed");
}

#[test]
fn max_connections_holds_back_accept() {
    let server = Running::start(
        LinerService::new(),
        Options {
            max_connections: Some(1),
            ..opts()
        },
    );
    let mut first = Client::greeted(server.addr);
    let mut second = Client::connect(server.addr);
    assert!(
        second.silent_for(Duration::from_millis(300)),
        "second connection served over the limit"
    );
    first.send("BYE\r\n");
    assert_eq!(first.line(), "bye");
    assert_eq!(second.line(), "hello");
    second.send("ECHO served\r\n");
    assert_eq!(second.line(), "served");
}

#[test]
fn panicking_work_ends_only_its_connection() {
    let server = Running::start(LinerService::new(), opts());
    let mut bad = Client::greeted(server.addr);
    let mut good = Client::greeted(server.addr);
    bad.send("PANIC\r\n");
    bad.expect_gone();
    Stats::wait_for(&server.stats.closes, 1, "on_close after panicking work");
    good.send("ECHO still here\r\n");
    assert_eq!(good.line(), "still here");
    let mut later = Client::greeted(server.addr);
    later.send("SLOW after\r\n");
    assert_eq!(later.line(), "done after");
}

#[test]
fn panicking_session_ends_only_its_connection() {
    let server = Running::start(LinerService::new(), opts());
    let mut bad = Client::greeted(server.addr);
    let mut good = Client::greeted(server.addr);
    bad.send("BOOM\r\n");
    bad.expect_gone();
    good.send("ECHO still here\r\n");
    assert_eq!(good.line(), "still here");
    // No on_close for a handler that may be in any state.
    assert_eq!(Stats::get(&server.stats.closes), 0);
}

#[test]
fn peer_reset_is_not_fatal() {
    let server = Running::start(LinerService::new(), opts());
    {
        let c = Client::greeted(server.addr);
        c.send_and_drop_with_reset();
    }
    Stats::wait_for(&server.stats.closes, 1, "on_close after a reset");
    let mut c = Client::greeted(server.addr);
    c.send("ECHO fine\r\n");
    assert_eq!(c.line(), "fine");
}
