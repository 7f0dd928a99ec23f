//! The built `buzon` binary against Python's `nntplib`, under both runtimes: mail sent with
//! `smtplib` becomes a notice in the user's group, read by number and by message-id and in
//! OVER; reading the mail over IMAP withdraws it; another user can neither list nor read the
//! group; NNTPS and STARTTLS both carry the login.

mod common;

use common::{Server, python, user_add};

fn prepare() -> tempfile::TempDir {
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
    dir
}

const PRELUDE: &str = r#"
import imaplib, smtplib, ssl, sys, time, warnings
warnings.simplefilter("ignore", DeprecationWarning)
import nntplib

GROUP = "buzon.mail.example-com.alice"

def send(port, to, subject, body="Hello,\r\nthis is a test.\r\n"):
    msg = f"From: Ann <ann@example.org>\r\nTo: {to}\r\nSubject: {subject}\r\n\r\n{body}"
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.sendmail("ann@example.org", [to], msg.encode())

def tls():
    ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    return ctx

def wait_for(count, n, user="alice@example.com", pw="alice-pw"):
    # The notifier runs beside delivery, never inside it: give it a moment.
    for _ in range(100):
        s = nntplib.NNTP_SSL("127.0.0.1", n, ssl_context=tls())
        s.login(user, pw)
        _, c, first, last, _ = s.group(GROUP)
        if c == count:
            return s, first, last
        s.quit()
        time.sleep(0.05)
    sys.exit(f"the group never held {count} notices")
"#;

fn nntplib_reads_notices(runtime: &str) {
    let dir = prepare();
    let server = Server::start_in(dir, runtime, &["--allow-plaintext-auth-on-loopback"]);
    let script = format!(
        r#"{PRELUDE}
send({smtp}, "alice@example.com", "Lunch", "Are you free at noon?\r\n")
send({smtp}, "alice@example.com", "Report")
s, first, last = wait_for(2, {nntps})
assert (first, last) == (1, 2), (first, last)
assert "READER" in s.getcapabilities(), s.getcapabilities()
_, groups = s.list()
assert [g.group for g in groups] == [GROUP], groups

_, info = s.article(1)
text = b"\r\n".join(info.lines).decode()
assert info.number == 1 and info.message_id == f"<1.{{GROUP}}@mx.test>", info
assert "Subject: New mail from Ann: Lunch" in text, text
assert f"Newsgroups: {{GROUP}}" in text, text
assert "Open:    imap://alice%40example.com@127.0.0.1:{imap}/INBOX;UIDVALIDITY=" in text, text
assert text.endswith("Are you free at noon?"), text

_, by_id = s.article(f"<2.{{GROUP}}@mx.test>")
assert by_id.number == 0 and b"Subject: New mail from Ann: Report" in by_id.lines, by_id
_, over = s.over((1, 2))
assert [n for n, _ in over] == [1, 2], over
assert over[0][1]["subject"] == "New mail from Ann: Lunch", over
assert over[1][1]["from"] == "Ann <ann@example.org>", over
s.quit()

# Reading the mail over IMAP withdraws its notice.
m = imaplib.IMAP4("127.0.0.1", {imap})
m.login("alice@example.com", "alice-pw")
m.select("INBOX")
m.store("1", "+FLAGS", "(\\Seen)")
m.logout()
s, first, last = wait_for(1, {nntps})
assert (first, last) == (2, 2), (first, last)
try:
    s.article(1)
    sys.exit("a withdrawn notice was still readable")
except nntplib.NNTPTemporaryError as e:
    assert str(e).startswith("423"), e
s.quit()

# STARTTLS on the plain port carries the login as well.
p = nntplib.NNTP("127.0.0.1", {nntp})
p.starttls(context=tls())
p.login("alice@example.com", "alice-pw")
assert p.group(GROUP)[1] == 1
p.quit()

# Bob sees only his own group; alice's is unknown to him.
b = nntplib.NNTP_SSL("127.0.0.1", {nntps}, ssl_context=tls())
b.login("bob@example.com", "bob-pw")
_, groups = b.list()
assert [g.group for g in groups] == ["buzon.mail.example-com.bob"], groups
try:
    b.group(GROUP)
    sys.exit("bob selected alice's group")
except nntplib.NNTPTemporaryError as e:
    assert str(e).startswith("411"), e
try:
    b.article(f"<2.{{GROUP}}@mx.test>")
    sys.exit("bob read alice's notice")
except nntplib.NNTPTemporaryError as e:
    assert str(e).startswith("430"), e
b.quit()

# A wrong password.
try:
    nntplib.NNTP_SSL("127.0.0.1", {nntps}, ssl_context=tls()).login("alice@example.com", "nope")
    sys.exit("a wrong password logged in")
except nntplib.NNTPError as e:
    assert str(e).startswith("481"), e
print("ok")
"#,
        smtp = server.port,
        imap = server.imap,
        nntp = server.nntp,
        nntps = server.nntps,
    );
    assert_eq!(python(&script).trim(), "ok");
    server.stop_and_check_clean();
}

#[test]
fn nntplib_reads_notices_under_smol() {
    nntplib_reads_notices("smol");
}

#[test]
fn nntplib_reads_notices_under_mio() {
    nntplib_reads_notices("mio");
}
