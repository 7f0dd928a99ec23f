//! Accepted connections under each runtime, speaking [`liner`](crate::liner): input split and pipelined, work
//! and the order of its answers, idle timers, EOF order, large transfers with peers that echo or
//! never read, fairness, connection limits, panics, the linger after a close, and shutdown.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::liner::{Client, LinerService, Stats};
use crate::{LIMIT, Options, Runtime, Server, wait_until};

/// Starts `service` under `R`; returns the server and the service's counters.
pub fn serve<R: Runtime>(service: LinerService, opts: Options) -> (Server, Arc<Stats>) {
    let stats = Arc::clone(&service.stats);
    (R::start(Arc::new(service), opts), stats)
}

fn serve_default<R: Runtime>() -> (Server, Arc<Stats>) {
    serve::<R>(LinerService::default(), Options::default())
}

/// A line split anywhere (inside the verb, between CR and LF, byte by byte) is one line; the
/// session hears the peer's real address.
pub fn echo_with_input_split_across_writes<R: Runtime>() {
    let (server, stats) = serve_default::<R>();
    let mut c = Client::greeted(server.addr);
    for part in ["EC", "HO he", "llo wor", "ld\r", "\n"] {
        c.send(part);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(c.line(), "hello world");
    c.send("ECHO a\r");
    std::thread::sleep(Duration::from_millis(20));
    c.send("\nECHO b");
    std::thread::sleep(Duration::from_millis(20));
    c.send("\r\n");
    assert_eq!(c.line(), "a");
    assert_eq!(c.line(), "b");
    for b in "ECHO bytes\r\n".bytes() {
        c.send_bytes(&[b]);
    }
    assert_eq!(c.line(), "bytes");
    assert_eq!(stats.peers(), [c.stream.local_addr().unwrap()]);
    assert_eq!(stats.lines(), 4);
}

/// Lines pipelined in one write are all answered, in order, up to the one that closes the
/// session; what follows it is never run, and the close is a clean FIN.
pub fn pipelined_lines_are_answered_in_order_up_to_the_close<R: Runtime>() {
    let (server, stats) = serve_default::<R>();
    let mut c = Client::greeted(server.addr);
    let mut batch: String = (0..200).map(|i| format!("ECHO {i}\r\n")).collect();
    batch.push_str("BYE\r\nECHO never\r\n");
    c.send(&batch);
    for i in 0..200 {
        assert_eq!(c.line(), i.to_string());
    }
    assert_eq!(c.line(), "bye");
    c.expect_eof();
    stats.wait_for(Stats::closes, 1, "on_close after BYE");
    assert_eq!(stats.lines(), 201, "lines run");
}

/// Input that arrives while the session waits for its host (work, an answer given at once, an
/// event raised by a completion) is kept and offered again, in order, after the answer.
pub fn input_kept_while_work_runs_is_offered_after_it<R: Runtime>() {
    let (server, _) = serve_default::<R>();
    let mut c = Client::greeted(server.addr);
    c.send("ECHO 1\r\nSLOW a\r\nECHO 2\r\nQUICK b\r\nECHO 3\r\nSLOW c\r\nQUICK d\r\n");
    c.send("CHAIN e\r\nECHO 4\r\n");
    for want in [
        "1", "done a", "2", "done b", "3", "done c", "done d", "done e", "4",
    ] {
        assert_eq!(c.line(), want);
    }
}

/// Several pieces of work of one connection run at once and finish in reverse order; their
/// completions are applied in the order the work was started.
pub fn work_is_answered_in_the_order_it_was_started<R: Runtime>() {
    let (server, _) = serve_default::<R>();
    let mut c = Client::greeted(server.addr);
    c.send("BURST 6\r\nECHO after\r\n");
    for i in 0..6 {
        assert_eq!(c.line(), format!("done {i}"));
    }
    assert_eq!(c.line(), "after");
}

/// Work runs off the event loop: another connection is answered while it runs.
pub fn work_does_not_block_other_connections<R: Runtime>() {
    let slow = Duration::from_secs(1);
    let (server, _) = serve::<R>(
        LinerService {
            slow,
            ..LinerService::default()
        },
        Options::default(),
    );
    let mut a = Client::greeted(server.addr);
    let mut b = Client::greeted(server.addr);
    let started = Instant::now();
    a.send("SLOW a\r\n");
    for i in 0..10 {
        b.send(&format!("ECHO {i}\r\n"));
        assert_eq!(b.line(), i.to_string());
    }
    let echoed = started.elapsed();
    assert_eq!(a.line(), "done a");
    let answered = started.elapsed();
    assert!(
        echoed < slow / 2,
        "echoes took {echoed:?} while work ran on another connection"
    );
    assert!(answered >= slow, "work answered after {answered:?}");
}

/// Two pieces of work run at once, not one after the other.
pub fn work_runs_on_several_workers_at_once<R: Runtime>() {
    let slow = Duration::from_millis(600);
    let (server, _) = serve::<R>(
        LinerService {
            slow,
            ..LinerService::default()
        },
        Options::default(),
    );
    let mut a = Client::greeted(server.addr);
    let mut b = Client::greeted(server.addr);
    let started = Instant::now();
    a.send("SLOW a\r\n");
    b.send("SLOW b\r\n");
    assert_eq!(a.line(), "done a");
    assert_eq!(b.line(), "done b");
    let took = started.elapsed();
    assert!(took >= slow, "answered after {took:?}");
    assert!(
        took < slow * 2 - Duration::from_millis(100),
        "two pieces of work took {took:?}"
    );
}

/// A session that closes while its work runs: the connection waits for the work, applies its
/// completion and sends what it added before it closes.
pub fn work_that_finishes_after_the_session_closed_is_still_answered<R: Runtime>() {
    let (server, stats) = serve_default::<R>();
    let mut c = Client::greeted(server.addr);
    c.send("LATE x\r\n");
    assert_eq!(c.line(), "closing");
    assert_eq!(c.line(), "done x");
    c.expect_eof();
    stats.wait_for(Stats::closes, 1, "on_close after the late answer");
}

/// The session's own deadline fires and closes it; each line consumed pushes it back.
pub fn idle_timer_fires_and_input_postpones_it<R: Runtime>() {
    let idle = Duration::from_millis(300);
    let (server, stats) = serve::<R>(
        LinerService {
            idle,
            ..LinerService::default()
        },
        Options::default(),
    );
    let started = Instant::now();
    let mut c = Client::greeted(server.addr);
    // Each pause is well under the idle timeout, together well over it.
    for i in 0..3 {
        std::thread::sleep(Duration::from_millis(150));
        c.send(&format!("ECHO {i}\r\n"));
        assert_eq!(c.line(), i.to_string());
    }
    let active = Instant::now();
    assert_eq!(c.line(), "timeout");
    let quiet = active.elapsed();
    c.expect_eof();
    assert!(
        quiet >= idle - Duration::from_millis(30),
        "timed out {quiet:?} after the last line"
    );
    assert!(
        quiet < LIMIT / 2,
        "timed out only {quiet:?} after the last line"
    );
    assert!(started.elapsed() >= Duration::from_millis(700));
    stats.wait_for(Stats::closes, 1, "on_close after the timeout");
    assert_eq!(stats.timeouts(), 1);
}

/// EOF right after pipelined commands: every complete line before it is answered first, then
/// the session hears the EOF (an incomplete last line is never run).
pub fn eof_right_after_pipelined_commands_comes_after_their_answers<R: Runtime>() {
    let (server, stats) = serve_default::<R>();
    let mut c = Client::greeted(server.addr);
    let mut batch: String = (0..100).map(|i| format!("ECHO {i}\r\n")).collect();
    batch.push_str("ECHO tail without an end");
    c.send(&batch);
    c.half_close();
    for i in 0..100 {
        assert_eq!(c.line(), i.to_string());
    }
    assert_eq!(c.line(), "eof");
    c.expect_eof();
    stats.wait_for(Stats::closes, 1, "on_close after EOF");
    assert_eq!((stats.eofs(), stats.lines()), (1, 100));
}

/// An EOF that arrives while work runs waits for it, and for the input kept behind it.
pub fn eof_waits_for_work_in_flight_and_the_input_after_it<R: Runtime>() {
    let (server, stats) = serve_default::<R>();
    let mut c = Client::greeted(server.addr);
    c.send("SLOW a\r\nECHO b\r\nQUICK c\r\nCHAIN d\r\nECHO e\r\n");
    c.half_close();
    for want in ["done a", "b", "done c", "done d", "e", "eof"] {
        assert_eq!(c.line(), want);
    }
    c.expect_eof();
    stats.wait_for(Stats::closes, 1, "on_close after EOF");
    assert_eq!(stats.eofs(), 1);
}

/// Pipelined commands whose answers exceed `max_output`, then EOF: the answers held back by
/// output backpressure all go out before the session hears the EOF.
pub fn eof_waits_for_answers_held_back_by_output_backpressure<R: Runtime>() {
    const BIG: usize = 100_000;
    const COUNT: usize = 30;
    let (server, stats) = serve_default::<R>();
    let mut c = Client::greeted(server.addr);
    let mut batch = format!("BIG {BIG}\r\n").repeat(COUNT);
    batch.push_str("ECHO last\r\n");
    c.send(&batch);
    c.half_close();
    let line = "x".repeat(BIG);
    for i in 0..COUNT {
        assert!(c.line() == line, "answer {i} differs");
    }
    assert_eq!(c.line(), "last");
    assert_eq!(c.line(), "eof");
    c.expect_eof();
    stats.wait_for(Stats::closes, 1, "on_close after EOF");
    assert_eq!(stats.lines(), COUNT + 1);
}

/// A session that closed does not hear the peer's EOF after it.
pub fn eof_after_the_close_is_not_offered<R: Runtime>() {
    let (mut server, stats) = serve_default::<R>();
    let mut c = Client::greeted(server.addr);
    c.send("BYE\r\n");
    assert_eq!(c.line(), "bye");
    c.expect_eof();
    c.half_close();
    stats.wait_for(Stats::closes, 1, "on_close after BYE");
    // Once the server has stopped, the EOF has certainly been read.
    server.stop();
    assert_eq!(stats.eofs(), 0, "EOF after the close was offered");
    assert_eq!(stats.closes(), 1);
}

/// The client writes about 10 MiB of `ECHO` lines in one go from one thread and starts reading
/// only once both directions' buffers had time to fill; the session echoes every line. Every
/// byte comes back, in order, then the answer to the EOF: an adapter that does not read while
/// output is pending, or never waits to write, deadlocks here.
pub fn ten_mib_echo<R: Runtime>(opts: Options) {
    let (server, _) = serve::<R>(LinerService::default(), opts);
    let mut c = Client::greeted(server.addr);
    let mut request = Vec::new();
    let mut expected = Vec::new();
    let mut i = 0u64;
    while request.len() < 10 * 1024 * 1024 {
        let fill = char::from(b'a' + (i % 26) as u8);
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
    let got = c.rest();
    write.join().expect("the writer thread");
    assert_eq!(got.len(), expected.len(), "echoed byte count");
    assert!(got == expected, "echoed bytes differ");
}

/// [`ten_mib_echo`] with the default options.
pub fn ten_mib_echoed_while_both_sides_write<R: Runtime>() {
    ten_mib_echo::<R>(Options::default());
}

/// [`ten_mib_echo`] with a 4 KiB read buffer and an 8 KiB output limit, so backpressure starts
/// and stops thousands of times.
pub fn ten_mib_echoed_with_tiny_buffers<R: Runtime>() {
    ten_mib_echo::<R>(tiny_buffers());
}

/// Options with a 4 KiB read buffer and an 8 KiB output limit.
pub fn tiny_buffers() -> Options {
    Options {
        read_buffer: 4 * 1024,
        max_output: 8 * 1024,
        ..Options::default()
    }
}

/// A peer that writes 32 MiB before it reads a byte: more than the kernel buffers both ways
/// hold, less than `max_output`, so the adapter must keep reading while its echo waits to be
/// written, or both sides block on writing.
pub fn a_peer_that_reads_only_after_writing_everything_does_not_deadlock<R: Runtime>() {
    const SIZE: usize = 32 * 1024 * 1024;
    let (server, _) = serve::<R>(
        LinerService::default(),
        Options {
            max_output: 64 * 1024 * 1024,
            ..Options::default()
        },
    );
    let mut c = Client::greeted(server.addr);
    let payload: Vec<u8> = (0..SIZE).map(|i| (i % 253) as u8).collect();
    c.send("RAW\r\n");
    c.stream
        .write_all(&payload)
        .expect("deadlock: the server stopped reading");
    c.half_close();
    let got = c.rest();
    assert_eq!(got.len(), SIZE + 5, "echoed byte count");
    assert!(
        got[..SIZE] == payload[..],
        "echo differs from what was sent"
    );
    assert_eq!(&got[SIZE..], b"eof\r\n");
}

/// A peer that sends bulk data to an echoing session and never reads: once the unsent echo is
/// backed up the adapter stops reading, so the peer's writes stall long before 64 MiB. When
/// the peer goes, the handler hears of it.
pub fn a_peer_that_never_reads_is_not_read_without_bound<R: Runtime>() {
    const SIZE: usize = 64 * 1024 * 1024;
    let (server, stats) = serve_default::<R>();
    let mut c = Client::greeted(server.addr);
    c.stream
        .set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    c.send("RAW\r\n");
    let chunk = vec![b'x'; 64 * 1024];
    let mut written = 0;
    let stalled = loop {
        if written >= SIZE {
            break false;
        }
        match c.stream.write(&chunk) {
            Ok(n) => written += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break true;
            }
            Err(e) => panic!("write failed: {e}"),
        }
    };
    assert!(
        stalled,
        "the server took all {written} bytes without them being read"
    );
    // Going away without reading: the server's write fails, and the handler still hears of it.
    drop(c);
    stats.wait_for(Stats::closes, 1, "on_close for the peer that never read");
}

/// A peer that pipelines a thousand commands of 100 kB answers each and never reads: once the
/// answers back up, the session is offered no more input (the commands all fit in the read
/// buffer, so this is not the socket being left unread).
pub fn a_peer_that_never_reads_gets_no_more_answers<R: Runtime>() {
    let (server, stats) = serve_default::<R>();
    let c = Client::greeted(server.addr);
    let request = "BIG 100000\r\n".repeat(1000);
    let mut writer = c.stream.try_clone().unwrap();
    let write = std::thread::spawn(move || {
        // All of it fits in the socket buffers; the server reads it at once.
        let _ = writer.write_all(request.as_bytes());
    });
    wait_until("the first answer", || stats.lines() > 0);
    // Wait until the count stands still for 300 ms.
    let mut seen = stats.lines();
    wait_until("the answers to stop", || {
        std::thread::sleep(Duration::from_millis(300));
        let now = stats.lines();
        std::mem::replace(&mut seen, now) == now
    });
    assert!(
        seen < 500,
        "{seen} of 1000 commands answered for a peer that reads nothing"
    );
    c.stream.shutdown(std::net::Shutdown::Both).unwrap();
    drop(c);
    write.join().unwrap();
    stats.wait_for(Stats::closes, 1, "on_close for the stuck peer");
}

/// A peer that floods the server with silent commands does not hold up another connection: its
/// answer comes while the flood is still being worked through.
pub fn a_busy_peer_does_not_starve_the_others<R: Runtime>() {
    const FLOOD_LINES: usize = 8 * 1024 * 1024 / 6;
    let (server, stats) = serve_default::<R>();
    let busy = Client::greeted(server.addr);
    let mut c = Client::greeted(server.addr);
    let mut writer = busy.stream.try_clone().unwrap();
    let flood = std::thread::spawn(move || {
        writer
            .write_all("NOOP\r\n".repeat(FLOOD_LINES).as_bytes())
            .expect("write the flood");
    });
    wait_until("the flood to start", || stats.lines() >= 10_000);
    c.send("ECHO quick\r\n");
    assert_eq!(c.line(), "quick");
    let flooded = stats.lines();
    assert!(
        flooded < FLOOD_LINES,
        "the echo was answered only after the whole flood ({flooded} lines)"
    );
    flood.join().unwrap();
    stats.wait_for(Stats::lines, FLOOD_LINES + 1, "the flood worked through");
}

/// With `max_connections: Some(1)` a second connection is not served until the first closes.
pub fn max_connections_holds_new_connections_until_one_closes<R: Runtime>() {
    let (server, stats) = serve::<R>(
        LinerService::default(),
        Options {
            max_connections: Some(1),
            ..Options::default()
        },
    );
    let mut first = Client::greeted(server.addr);
    let mut second = Client::connect(server.addr);
    assert!(
        second.silent_for(Duration::from_millis(300)),
        "second connection served over the limit"
    );
    assert_eq!(stats.opened(), 1);
    first.send("BYE\r\n");
    assert_eq!(first.line(), "bye");
    assert_eq!(second.line(), "hi");
    second.send("ECHO served\r\n");
    assert_eq!(second.line(), "served");
    assert_eq!(stats.opened(), 2);
}

/// Ends one connection with `command` (a panic somewhere), checks that the others are still
/// served and that the ended connection's handler heard `on_close` `closes` times (before the
/// server stops, which closes the others).
fn panic_with<R: Runtime>(command: &str, closes: usize) {
    let (server, stats) = serve_default::<R>();
    let mut bad = Client::greeted(server.addr);
    let mut good = Client::greeted(server.addr);
    bad.send(command);
    // The socket is dropped after the driver is done, so the handler's fate is settled then.
    bad.expect_gone();
    good.send("ECHO still here\r\n");
    assert_eq!(good.line(), "still here");
    // Work still runs (the workers survived), and new connections are served.
    let mut later = Client::greeted(server.addr);
    later.send("SLOW after\r\n");
    assert_eq!(later.line(), "done after");
    assert_eq!(stats.closes(), closes, "on_close calls");
    drop(server);
    assert_eq!(
        stats.closes(),
        closes + 2,
        "on_close calls after the server stopped"
    );
}

/// A panic in the session ends only its connection; its handler, in an unknown state, gets no
/// `on_close`.
pub fn a_panicking_session_ends_only_its_connection_without_on_close<R: Runtime>() {
    panic_with::<R>("PANIC session\r\n", 0);
}

/// A panic in the handler ends only its connection, without `on_close`.
pub fn a_panicking_handler_ends_only_its_connection_without_on_close<R: Runtime>() {
    panic_with::<R>("PANIC handler\r\n", 0);
}

/// A panic in work ends only its connection; the handler is intact and gets `on_close`.
pub fn panicking_work_ends_only_its_connection_with_on_close<R: Runtime>() {
    panic_with::<R>("PANIC work\r\n", 1);
}

/// A peer that resets the connection (it closes with our answer unread) ends only that
/// connection, with `on_close`.
pub fn a_reset_from_the_peer_ends_only_its_connection<R: Runtime>() {
    let (server, stats) = serve_default::<R>();
    let mut c = Client::greeted(server.addr);
    c.send("ECHO unread\r\n");
    // Closing with unread input makes the kernel send a reset instead of a FIN.
    c.wait_readable();
    drop(c);
    stats.wait_for(Stats::closes, 1, "on_close after a reset");
    let mut c = Client::greeted(server.addr);
    c.send("ECHO fine\r\n");
    assert_eq!(c.line(), "fine");
}

/// After the session closes, what the peer still sends is read and dropped (up to a limit)
/// rather than left unread: closing a socket with unread input resets the connection, and the
/// kernel then throws away what it had not sent yet of our last reply.
pub fn the_last_reply_survives_input_sent_after_the_close<R: Runtime>() {
    const BIG: usize = 500_000;
    let (server, stats) = serve_default::<R>();
    let mut c = Client::greeted(server.addr);
    let mut request = format!("BIG {BIG}\r\nBYE\r\n").into_bytes();
    request.extend(std::iter::repeat_n(b'z', 200 * 1024));
    c.send_bytes(&request);
    // The client reads nothing yet, so most of the answer is still in the server's send queue
    // when the session has handed it all over and closed. (Where the kernel takes less than
    // that, the wait ends without the close, and the test is weaker but still right.)
    if poll_until(Duration::from_secs(1), || stats.closes() == 1) {
        // A reset would come right after the close; give it time to arrive.
        std::thread::sleep(Duration::from_millis(100));
    }
    let line = c.line();
    assert!(
        line.len() == BIG && line.bytes().all(|b| b == b'x'),
        "the big answer was cut to {} bytes",
        line.len()
    );
    assert_eq!(c.line(), "bye");
    c.expect_eof();
    assert_eq!(stats.lines(), 2);
}

/// Checks `done` every few milliseconds until it is true (then true) or `limit` has passed
/// (then false).
fn poll_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A peer that keeps sending after the close is not drained for the whole linger: past the drain
/// limit the connection is dropped (and the peer's writes fail).
pub fn a_peer_that_keeps_sending_after_the_close_is_cut_off<R: Runtime>() {
    let (server, _) = serve_default::<R>();
    let mut c = Client::greeted(server.addr);
    c.send("BYE\r\n");
    assert_eq!(c.line(), "bye");
    c.expect_eof();
    let started = Instant::now();
    let chunk = vec![b'z'; 64 * 1024];
    let mut written = 0;
    let error = loop {
        assert!(
            started.elapsed() < Duration::from_millis(2500),
            "still accepting input {:?} after the close ({written} bytes)",
            started.elapsed()
        );
        match c.stream.write(&chunk) {
            Ok(n) => written += n,
            Err(e) => break e,
        }
    };
    assert!(
        matches!(
            error.kind(),
            ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
        ),
        "{error}"
    );
    assert!(
        written > session_api::LINGER_DRAIN_MAX,
        "cut off after only {written} bytes"
    );
}

/// A closed session whose peer does not read its last output for `linger` is dropped, with
/// `on_close`; the peer never gets the rest.
pub fn a_peer_that_never_reads_the_last_reply_is_dropped_after_linger<R: Runtime>() {
    const BIG: usize = 20 * 1024 * 1024;
    let linger = Duration::from_millis(300);
    let (server, stats) = serve::<R>(
        LinerService::default(),
        Options {
            linger,
            ..Options::default()
        },
    );
    let mut c = Client::greeted(server.addr);
    let started = Instant::now();
    c.send(&format!("BIG {BIG}\r\nBYE\r\n"));
    stats.wait_for(Stats::closes, 1, "the connection dropped");
    let took = started.elapsed();
    assert!(took >= linger, "dropped after {took:?}");
    // What was still unsent is lost: at most the kernel buffers' worth arrives, never `bye`.
    let mut got = Vec::new();
    let _ = c.stream.read_to_end(&mut got);
    assert!(got.len() < BIG, "got all {} bytes", got.len());
    assert!(!got.ends_with(b"bye\r\n"));
    assert_eq!(stats.lines(), 2);
}

/// Shutdown, triggered from another thread: the listener closes, an idle session says goodbye
/// at once, a session with work in flight after its answer, and the server stops as soon as
/// both are closed.
pub fn shutdown_says_goodbye_after_work_in_flight_and_stops_accepting<R: Runtime>() {
    let (mut server, stats) = serve_default::<R>();
    let mut idle = Client::greeted(server.addr);
    let mut busy = Client::greeted(server.addr);
    idle.send("ECHO up\r\n");
    assert_eq!(idle.line(), "up");
    busy.send("SLOW last\r\n");
    wait_until("the work to start", || stats.lines() == 2);
    let trigger = server.trigger();
    std::thread::spawn(move || trigger.trigger())
        .join()
        .unwrap();
    assert_eq!(idle.line(), "shutdown");
    idle.expect_eof();
    assert_eq!(busy.line(), "done last");
    assert_eq!(busy.line(), "shutdown");
    busy.expect_eof();
    let took = server.stop();
    // The grace period is 3 s, but every session closed at once.
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
    assert_eq!((stats.shutdowns(), stats.closes()), (2, 2));
    let refused = TcpStream::connect(server.addr).map(drop).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused, "{refused}");
}

/// A connection lingering for its peer's EOF does not hold up a shutdown.
pub fn shutdown_does_not_wait_for_lingering_peers<R: Runtime>() {
    let (mut server, stats) = serve_default::<R>();
    let mut c = Client::greeted(server.addr);
    c.send("BYE\r\n");
    assert_eq!(c.line(), "bye");
    c.expect_eof();
    stats.wait_for(Stats::closes, 1, "on_close after BYE");
    // The client stays, and the linger is 5 s.
    let took = server.stop();
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
    assert_eq!(stats.shutdowns(), 0, "a closed session heard shutdown");
    drop(c);
}

/// A session that ignores shutdown is dropped once the grace period is over; its handler still
/// gets `on_close`.
pub fn shutdown_drops_sessions_that_outlive_the_grace_period<R: Runtime>() {
    let grace = Duration::from_millis(300);
    let (mut server, stats) = serve::<R>(
        LinerService::default(),
        Options {
            grace,
            ..Options::default()
        },
    );
    let mut c = Client::greeted(server.addr);
    c.send("STUBBORN\r\n");
    assert_eq!(c.line(), "ok");
    let took = server.stop();
    assert!(took >= grace, "gave up after {took:?}");
    assert!(took < Duration::from_secs(2), "gave up only after {took:?}");
    c.expect_gone();
    assert_eq!(stats.shutdowns(), 1);
    assert_eq!(stats.closes(), 1, "on_close for a dropped session");
}
