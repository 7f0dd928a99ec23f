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
    let (g1, mut c1) = greeting(server.port);
    let (g2, _c2) = greeting(server.port);
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
    // The slot is free again (the release happens as the connection closes).
    let mut again = String::new();
    for _ in 0..50 {
        again = greeting(server.port).0;
        if again.starts_with("220 ") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(again.starts_with("220 "), "{again}");
    server.stop_and_check_clean();

    let server = Server::start(runtime, &["--max-connections-per-ip", "1"]);
    let (g1, _c1) = greeting(server.port);
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
