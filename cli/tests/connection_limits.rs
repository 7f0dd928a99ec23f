//! Connection limits: beyond them a client is greeted with 421 4.7.0 and closed, and a freed
//! slot is usable again.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::Server;

fn greeting(port: u16) -> (String, BufReader<TcpStream>) {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    (line, r)
}

/// A greeting once earlier connections (the start-up probe, a closed client) are released:
/// the server frees a slot when it notices the close, a moment after the client's.
fn first_220(port: u16) -> (String, BufReader<TcpStream>) {
    for _ in 0..100 {
        let (g, r) = greeting(port);
        if g.starts_with("220 ") {
            return (g, r);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no 220 greeting on port {port}");
}

fn assert_closed(r: &mut BufReader<TcpStream>) {
    let mut rest = String::new();
    assert_eq!(
        r.read_line(&mut rest).unwrap(),
        0,
        "expected EOF, got {rest:?}"
    );
}

fn limits(runtime: &str) {
    let server = Server::start(runtime, &["--max-connections", "2"]);
    let (g1, mut c1) = first_220(server.port);
    let (g2, _c2) = first_220(server.port);
    assert!(g1.starts_with("220 ") && g2.starts_with("220 "), "{g1}{g2}");
    let (g3, mut c3) = greeting(server.port);
    assert_eq!(
        g3,
        "421 4.7.0 mx.test Too many connections, try again later\r\n"
    );
    assert_closed(&mut c3);
    c1.get_mut().write_all(b"QUIT\r\n").unwrap();
    let mut bye = String::new();
    c1.read_line(&mut bye).unwrap();
    assert!(bye.starts_with("221 "), "{bye}");
    assert_closed(&mut c1);
    // The slot is free again.
    first_220(server.port);
    server.stop_and_check_clean();

    let server = Server::start(runtime, &["--max-connections-per-ip", "1"]);
    let (g1, _c1) = first_220(server.port);
    let (g2, mut c2) = greeting(server.port);
    assert!(g1.starts_with("220 "), "{g1}");
    assert_eq!(
        g2,
        "421 4.7.0 mx.test Too many connections from your address, try again later\r\n"
    );
    assert_closed(&mut c2);
    server.stop_and_check_clean();
}

#[test]
fn limits_under_smol() {
    limits("smol");
}

#[test]
fn limits_under_mio() {
    limits("mio");
}
