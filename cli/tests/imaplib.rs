//! The built `buzon` binary against Python's `imaplib`, under both runtimes: mail sent with
//! `smtplib` is listed, fetched byte-exact, flagged, copied, moved and expunged; a second
//! session sees the changes; IDLE wakes on a delivery; users see only their own mailboxes.

mod common;

use common::{Server, python, user_add};

fn start(runtime: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("mail");
    for (user, pw) in [
        ("alice@example.com", "alice-pw"),
        ("bob@example.com", "bob-pw"),
    ] {
        let out = user_add(&storage, user, pw);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Server::start_in(dir, runtime, &["--allow-plaintext-auth-on-loopback"])
}

const PRELUDE: &str = r#"
import imaplib, smtplib, socket, ssl, sys, time, re

def send(port, to, subject, body="Hello,\r\nthis is a test.\r\n"):
    msg = f"From: Ann <ann@example.org>\r\nTo: {to}\r\nSubject: {subject}\r\n\r\n{body}"
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.sendmail("ann@example.org", [to], msg.encode())
    return msg.encode()

def ok(result):
    typ, data = result
    assert typ == "OK", (typ, data)
    return data
"#;

fn imaplib_reads_and_changes_mail(runtime: &str) {
    let server = start(runtime);
    let script = format!(
        r#"{PRELUDE}
sent = send({smtp}, "alice@example.com", "first")
a = imaplib.IMAP4("127.0.0.1", {imap})
assert "IDLE" in a.capabilities and "STARTTLS" in a.capabilities, a.capabilities
ok(a.login("alice@example.com", "alice-pw"))
caps = ok(a.capability())[0].split()
assert b"UIDPLUS" in caps and b"MOVE" in caps and b"CONDSTORE" in caps, caps
names = [l.decode() for l in ok(a.list())]
assert any(n.endswith(" INBOX") for n in names), names
ok(a.create("Archive"))
ok(a.create("Later"))
assert ok(a.select("INBOX")) == [b"1"]
assert ok(a.search(None, "ALL")) == [b"1"]
data = ok(a.fetch("1", "(RFC822)"))
stored = data[0][1]
# The stored message is what was sent, after the trace headers the server adds.
assert stored.endswith(sent), stored
assert stored.startswith(b"Return-Path: <ann@example.org>\r\nReceived: "), stored
flags = ok(a.fetch("1", "(FLAGS)"))[0]
assert b"\\Seen" in flags, flags  # RFC822 sets \Seen

b = imaplib.IMAP4("127.0.0.1", {imap})
ok(b.login("alice@example.com", "alice-pw"))
ok(b.select("INBOX"))

ok(a.store("1", "+FLAGS", "(\\Flagged)"))
typ, resp = a.copy("1", "Archive")
assert typ == "OK" and b"COPYUID" in resp[0], resp
ok(b.noop())
fetched = ok(b.fetch("1", "(FLAGS)"))[0]
assert b"\\Flagged" in fetched, fetched

typ, resp = a.uid("MOVE", "1", "Later")
assert typ == "OK", (typ, resp)
assert ok(a.search(None, "ALL")) == [b""]
ok(b.noop())
assert b.untagged_responses.get("EXPUNGE") == [b"1"], b.untagged_responses
assert ok(b.search(None, "ALL")) == [b""]

ok(a.select("Archive"))
ok(a.store("1", "+FLAGS", "(\\Deleted)"))
assert ok(a.expunge()) == [b"1"]
typ, st = a.status("Later", "(MESSAGES UNSEEN)")
assert typ == "OK" and b"MESSAGES 1" in st[0] and b"UNSEEN 0" in st[0], st
ok(a.select("Later"))
assert ok(a.fetch("1", "(BODY.PEEK[TEXT])"))[0][1] == b"Hello,\r\nthis is a test.\r\n"
a.logout(); b.logout()

# Another user sees only its own tree.
c = imaplib.IMAP4("127.0.0.1", {imap})
ok(c.login("bob@example.com", "bob-pw"))
names = [l.decode() for l in ok(c.list())]
assert not any("Archive" in n or "Later" in n for n in names), names
typ, _ = c.select("Later")
assert typ == "NO"
typ, _ = c.status("Archive", "(MESSAGES)")
assert typ == "NO"
send({smtp}, "bob@example.com", "for bob")
assert ok(c.select("INBOX")) == [b"1"]
typ, resp = c.copy("1", "Later")
assert typ == "NO" and b"TRYCREATE" in resp[0], resp
typ, _ = c.append("Later", None, None, b"Subject: x\r\n\r\nx\r\n")
assert typ == "NO"
c.logout()
try:
    imaplib.IMAP4("127.0.0.1", {imap}).login("alice@example.com", "wrong")
    sys.exit("a wrong password logged in")
except imaplib.IMAP4.error as e:
    assert "AUTHENTICATIONFAILED" in str(e), e

# Implicit TLS (self-signed certificate).
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = imaplib.IMAP4_SSL("127.0.0.1", {imaps}, ssl_context=ctx)
ok(s.login("alice@example.com", "alice-pw"))
assert ok(s.select("Later")) == [b"1"]
s.logout()
print("ok")
"#,
        smtp = server.port,
        imap = server.imap,
        imaps = server.imaps,
    );
    assert_eq!(python(&script).trim(), "ok");
    server.stop_and_check_clean();
}

#[test]
fn imaplib_reads_and_changes_mail_under_smol() {
    imaplib_reads_and_changes_mail("smol");
}

#[test]
fn imaplib_reads_and_changes_mail_under_mio() {
    imaplib_reads_and_changes_mail("mio");
}

/// IDLE (RFC 2177) wakes within a second of a delivery; imaplib 3.11 has no idle(), so the
/// IDLE part speaks the protocol on the socket imaplib opened.
fn idle_wakes_on_delivery(runtime: &str) {
    let server = start(runtime);
    let script = format!(
        r#"{PRELUDE}
a = imaplib.IMAP4("127.0.0.1", {imap})
ok(a.login("alice@example.com", "alice-pw"))
ok(a.select("INBOX"))
a.send(b"i1 IDLE\r\n")
assert a.readline().startswith(b"+ "), "no continuation"
started = time.monotonic()
send({smtp}, "alice@example.com", "wake up")
a.sock.settimeout(5)
line = a.readline()
waited = time.monotonic() - started
assert line == b"* 1 EXISTS\r\n", line
assert waited < 1.0, waited
a.send(b"DONE\r\n")
while True:
    line = a.readline()
    if line.startswith(b"i1 "):
        break
assert line == b"i1 OK IDLE terminated\r\n", line
a.logout()
print("ok")
"#,
        smtp = server.port,
        imap = server.imap,
    );
    assert_eq!(python(&script).trim(), "ok");
    server.stop_and_check_clean();
}

#[test]
fn idle_wakes_on_delivery_under_smol() {
    idle_wakes_on_delivery("smol");
}

#[test]
fn idle_wakes_on_delivery_under_mio() {
    idle_wakes_on_delivery("mio");
}

/// A 50 MiB APPEND and FETCH go through whole and byte-exact while the server's peak memory
/// stays far below the message size: literals stream both ways.
fn big_message_bounded_memory(runtime: &str) {
    let server = start(runtime);
    let pid = server.child.id();
    let script = format!(
        r#"{PRELUDE}
def peak():
    for line in open("/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
size = 50 * 1024 * 1024
line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!#$%&*+-=?^_~.,;:\r\n"
body = line * (size // len(line))
msg = b"Subject: big\r\n\r\n" + body
a = imaplib.IMAP4("127.0.0.1", {imap})
ok(a.login("alice@example.com", "alice-pw"))
# The binary's own mapped pages count in VmHWM and grow with the binary, not with the message.
base = peak()
typ, resp = a.append("INBOX", None, None, msg)
assert typ == "OK" and b"APPENDUID" in resp[0], resp
ok(a.select("INBOX"))
data = ok(a.fetch("1", "(BODY.PEEK[])"))
assert data[0][1] == msg, len(data[0][1])
a.logout()
used = peak() - base
assert used < 32 * 1024 * 1024, f"server peak memory grew {{used}} for a {{len(msg)}}-octet message"
print("ok")
"#,
        imap = server.imap,
    );
    assert_eq!(python(&script).trim(), "ok");
    server.stop_and_check_clean();
}

#[test]
fn big_message_bounded_memory_under_smol() {
    big_message_bounded_memory("smol");
}

#[test]
fn big_message_bounded_memory_under_mio() {
    big_message_bounded_memory("mio");
}
