//! The built `buzon` binary against Python's `smtplib` and raw pipelined sockets, under both
//! runtimes; the tests read the exact bytes back from Maildir.

mod common;

use common::{Server, python, read_new};

const MESSAGE: &str = "From: Ann <ann@example.org>\r\nTo: Bob <bob@example.com>\r\nSubject: smtplib test\r\n\r\nHello Bob,\r\n.a line starting with a dot\r\n\r\nbye\r\n";

fn smtplib_delivers(runtime: &str) {
    let server = Server::start(runtime, &[]);
    let script = format!(
        r#"
import smtplib, sys
msg = {MESSAGE:?}
with smtplib.SMTP("127.0.0.1", {port}, timeout=10) as s:
    code, caps = s.ehlo("client.example.org")
    assert code == 250, code
    assert s.has_extn("pipelining") and s.has_extn("size") and s.has_extn("smtputf8"), caps
    refused = s.sendmail("ann@example.org", ["bob@example.com", "Carol@EXAMPLE.com"], msg.encode())
    assert refused == {{}}, refused
    try:
        s.sendmail("ann@example.org", ["x@relay.example"], msg.encode())
        sys.exit("relay accepted")
    except smtplib.SMTPRecipientsRefused as e:
        code, text = e.recipients["x@relay.example"]
        assert code == 550 and text.startswith(b"5.7.1"), (code, text)
print("ok")
"#,
        port = server.port,
    );
    assert_eq!(python(&script).trim(), "ok");
    for user in ["bob", "carol"] {
        let files = read_new(&server.storage, "example.com", user);
        assert_eq!(files.len(), 1, "{user}: {files:?}");
        let (name, bytes) = &files[0];
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("Return-Path: <ann@example.org>\r\nReceived: from client.example.org ([127.0.0.1])\r\n\tby mx.test (buzon) with ESMTP id "), "{text}");
        assert!(text.ends_with(MESSAGE), "{text}");
        assert!(name.ends_with(&format!(",S={}", bytes.len())), "{name}");
    }
    assert!(read_new(&server.storage, "relay.example", "x").is_empty());
    server.stop_and_check_clean();
}

#[test]
fn smtplib_delivers_under_smol() {
    smtplib_delivers("smol");
}

#[test]
fn smtplib_delivers_under_mio() {
    smtplib_delivers("mio");
}

/// A whole transaction in one write, as a pipelining client sends it (RFC 2920); the replies
/// come back in order and the message lands once.
fn pipelined(runtime: &str) {
    let server = Server::start(runtime, &[]);
    let script = format!(
        r#"
import socket
s = socket.create_connection(("127.0.0.1", {port}), timeout=10)
f = s.makefile("rb")
def reply():
    lines = []
    while True:
        l = f.readline().decode()
        lines.append(l)
        if l[3] == " ":
            return "".join(lines)
assert reply().startswith("220 ")
s.sendall(b"EHLO pipe.example\r\n")
assert "PIPELINING" in reply()
s.sendall(b"MAIL FROM:<p@pipe.example>\r\nRCPT TO:<dora@example.com>\r\nRCPT TO:<nobody@else.example>\r\nDATA\r\n")
got = [reply() for _ in range(4)]
assert got == ["250 2.1.0 Ok\r\n", "250 2.1.5 Ok\r\n", "550 5.7.1 Relay access denied\r\n", "354 End data with <CR><LF>.<CR><LF>\r\n"], got
s.sendall(b"Subject: piped\r\n\r\n..x\r\n.\r\nQUIT\r\n")
r = reply()
assert r.startswith("250 2.0.0 Ok: queued as "), r
assert reply().startswith("221 2.0.0"), "no 221"
print("ok")
"#,
        port = server.port,
    );
    assert_eq!(python(&script).trim(), "ok");
    let files = read_new(&server.storage, "example.com", "dora");
    assert_eq!(files.len(), 1);
    assert!(files[0].1.ends_with(b"\r\nSubject: piped\r\n\r\n.x\r\n"));
    server.stop_and_check_clean();
}

#[test]
fn pipelined_transaction_under_smol() {
    pipelined("smol");
}

#[test]
fn pipelined_transaction_under_mio() {
    pipelined("mio");
}

/// Oversized messages are refused with 552 after the body and nothing is stored; unsafe local
/// parts get 553.
fn limits(runtime: &str) {
    let server = Server::start(runtime, &["--max-message-size", "1000"]);
    let script = format!(
        r#"
import smtplib
with smtplib.SMTP("127.0.0.1", {port}, timeout=10) as s:
    s.ehlo()
    code, _ = s.mail("a@example.org")
    assert code == 250
    code, text = s.rcpt('"../../etc"@example.com')
    assert (code, text[:5]) == (553, b"5.1.3"), (code, text)
    code, _ = s.rcpt("eve@example.com")
    assert code == 250
    code, text = s.data(b"x" * 900 + b"\r\n" + b"y" * 900 + b"\r\n")
    assert (code, text[:5]) == (552, b"5.3.4"), (code, text)
    code, text = s.mail("a@example.org", ["SIZE=5000"])
    assert (code, text[:5]) == (552, b"5.3.4"), (code, text)
    assert s.noop()[0] == 250
print("ok")
"#,
        port = server.port,
    );
    assert_eq!(python(&script).trim(), "ok");
    assert!(read_new(&server.storage, "example.com", "eve").is_empty());
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
