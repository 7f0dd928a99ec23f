//! `buzon send` end to end: a real `buzon serve` receives a merge of 1,000 rows under each
//! runtime; every message lands exactly once with the right name; an interrupted run resumes
//! without duplicates; dry run sends nothing; a CSV value cannot inject a header.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Server, read_new, send};

const TEMPLATE: &str = "From: Sender <sender@example.org>\nSubject: Hi {{ name }}\n\nHello {{ name }}, your code is {{ code }}.\n";

fn write_inputs(dir: &Path, rows: usize) -> (std::path::PathBuf, std::path::PathBuf) {
    let csv = dir.join("rcpt.csv");
    let mut text = String::from("email,name,code\n");
    for i in 0..rows {
        text.push_str(&format!("user{i}@example.com,User {i},C{i:04}\n"));
    }
    std::fs::write(&csv, text).unwrap();
    let tmpl = dir.join("msg.tmpl");
    std::fs::write(&tmpl, TEMPLATE).unwrap();
    (csv, tmpl)
}

fn assert_each_once(storage: &Path, rows: usize) {
    for i in 0..rows {
        let files = read_new(storage, "example.com", &format!("user{i}"));
        assert_eq!(files.len(), 1, "user{i} has {} messages", files.len());
        let text = String::from_utf8_lossy(&files[0].1);
        assert!(
            text.contains(&format!("To: \"User {i}\" <user{i}@example.com>"))
                || text.contains(&format!("To: User {i} <user{i}@example.com>")),
            "{text}"
        );
        assert!(
            text.contains(&format!("Hello User {i}, your code is C{i:04}.")),
            "{text}"
        );
    }
}

fn thousand_rows(runtime: &str) {
    let server = Server::start("smol", &[]);
    let dir = tempfile::tempdir().unwrap();
    let (csv, tmpl) = write_inputs(dir.path(), 1000);
    let out = send(
        &csv,
        &tmpl,
        server.port,
        &["--no-dry-run", "--concurrency", "8", "--runtime", runtime],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("sent 1000,"), "{stdout}");
    assert_each_once(&server.storage, 1000);
    let results = std::fs::read_to_string(dir.path().join("rcpt.csv.results.csv")).unwrap();
    assert_eq!(
        results.lines().filter(|l| l.contains(",sent,")).count(),
        1000
    );

    // A second run of the same command sends nothing and says so.
    let again = send(
        &csv,
        &tmpl,
        server.port,
        &["--no-dry-run", "--runtime", runtime],
    );
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(
        again.status.success() && stdout.contains("nothing to send"),
        "{stdout}"
    );
    assert_each_once(&server.storage, 1000);
    server.stop_and_check_clean();
}

#[test]
fn thousand_rows_over_smol() {
    thousand_rows("smol");
}

#[test]
fn thousand_rows_over_mio() {
    thousand_rows("mio");
}

fn start_slow_send(csv: &Path, tmpl: &Path, port: u16) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_buzon"))
        .arg("send")
        .arg("--csv")
        .arg(csv)
        .arg("--template")
        .arg(tmpl)
        .args([
            "--server",
            &format!("127.0.0.1:{port}"),
            "--no-dry-run",
            "--rate",
            "200/s",
            "--tls",
            "none",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn journal_lines(dir: &Path, kind: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join("rcpt.csv.journal"))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with(kind))
        .map(|l| l.rsplit('\t').next().unwrap().to_owned())
        .collect()
}

/// Ctrl-C (SIGINT) mid-run: replies in flight are awaited, so the re-run sends every
/// remaining row exactly once.
#[test]
fn interrupted_sender_resumes_exactly_once() {
    let server = Server::start("mio", &[]);
    let dir = tempfile::tempdir().unwrap();
    let (csv, tmpl) = write_inputs(dir.path(), 300);
    let mut child = start_slow_send(&csv, &tmpl, server.port);
    std::thread::sleep(Duration::from_millis(600));
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(130),
        "an interrupted run says so in its exit status"
    );
    let before = journal_lines(dir.path(), "sent").len();
    assert!(
        before > 0 && before < 300,
        "interrupted after {before} rows"
    );

    let out = send(&csv, &tmpl, server.port, &["--no-dry-run"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("may arrive twice"));
    assert_each_once(&server.storage, 300);
    server.stop_and_check_clean();
}

/// SIGKILL mid-run: no row is lost; a duplicate is possible only for a row the server stored
/// but whose 250 the sender never recorded, and the re-run warns about exactly those.
#[test]
fn killed_sender_loses_nothing_and_duplicates_only_rows_in_flight() {
    let server = Server::start("smol", &[]);
    let dir = tempfile::tempdir().unwrap();
    let (csv, tmpl) = write_inputs(dir.path(), 300);
    let mut child = start_slow_send(&csv, &tmpl, server.port);
    std::thread::sleep(Duration::from_millis(600));
    child.kill().unwrap();
    child.wait().unwrap();
    let sent: std::collections::BTreeSet<String> =
        journal_lines(dir.path(), "sent").into_iter().collect();
    let started: std::collections::BTreeSet<String> =
        journal_lines(dir.path(), "start").into_iter().collect();
    let in_flight: std::collections::BTreeSet<&String> = started.difference(&sent).collect();
    assert!(!sent.is_empty() && sent.len() < 300);

    let out = send(&csv, &tmpl, server.port, &["--no-dry-run"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for i in 0..300 {
        let user = format!("user{i}");
        let n = read_new(&server.storage, "example.com", &user).len();
        let addr = format!("{user}@example.com");
        assert!(n >= 1, "{addr} lost");
        assert!(
            n == 1 || (n == 2 && in_flight.contains(&addr)),
            "{addr} has {n} copies but was not in flight"
        );
    }
    server.stop_and_check_clean();
}

#[test]
fn dry_run_is_the_default_and_sends_nothing() {
    let server = Server::start("smol", &[]);
    let dir = tempfile::tempdir().unwrap();
    let (csv, tmpl) = write_inputs(dir.path(), 5);
    let out = send(&csv, &tmpl, server.port, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("Subject: Hi User 0")
            && stdout.contains("Hello User 0, your code is C0000."),
        "{stdout}"
    );
    assert!(
        !stdout.contains("User 1,"),
        "only the first message is shown: {stdout}"
    );
    assert!(
        stdout.contains("dry run: 5 message(s) would be sent"),
        "{stdout}"
    );
    assert!(read_new(&server.storage, "example.com", "user0").is_empty());
    server.stop_and_check_clean();
}

#[test]
fn crlf_in_a_name_cannot_add_a_bcc() {
    let server = Server::start("smol", &[]);
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("evil.csv");
    std::fs::write(
        &csv,
        "email,name\r\nvictim@example.com,\"Eve\r\nBcc: x@example.com\"\r\n",
    )
    .unwrap();
    let tmpl = dir.path().join("t.tmpl");
    std::fs::write(
        &tmpl,
        "From: s@example.org\nSubject: for {{ name }}\n\nhi {{ name }}\n",
    )
    .unwrap();
    let out = send(&csv, &tmpl, server.port, &["--no-dry-run"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let files = read_new(&server.storage, "example.com", "victim");
    assert_eq!(files.len(), 1);
    let text = String::from_utf8_lossy(&files[0].1);
    let (head, _) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        !head
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
        "{head}"
    );
    assert!(
        read_new(&server.storage, "example.com", "x").is_empty(),
        "the injected Bcc got mail"
    );
    server.stop_and_check_clean();
}

/// A refused row does not stop the run: it is reported with the server's reply, written to the
/// failed-rows CSV (usable as the next --csv), and the exit status says something failed.
#[test]
fn refused_rows_are_reported_and_written_back() {
    let server = Server::start("smol", &[]);
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("rcpt.csv");
    std::fs::write(&csv, "email,name,code\nok1@example.com,One,A\nbad@elsewhere.example,Bad,B\nnot an address,X,C\nok2@example.com,Two,D\n").unwrap();
    let tmpl = dir.path().join("msg.tmpl");
    std::fs::write(&tmpl, TEMPLATE).unwrap();
    let out = send(
        &csv,
        &tmpl,
        server.port,
        &["--no-dry-run", "--concurrency", "1"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("line 4") && stderr.contains("row skipped"),
        "{stderr}"
    );
    assert!(
        stderr.contains("bad@elsewhere.example failed: ")
            && stderr.contains("550 5.7.1 Relay access denied"),
        "{stderr}"
    );
    assert!(
        stdout.contains("sent 2,") && stdout.contains("failed 1,") && stdout.contains("skipped 1"),
        "{stdout}"
    );
    let results = std::fs::read_to_string(dir.path().join("rcpt.csv.results.csv")).unwrap();
    let bad = results
        .lines()
        .find(|l| l.starts_with("3,bad@elsewhere.example,failed,"))
        .expect("row 3 in results");
    assert!(bad.contains("550 5.7.1 Relay access denied"), "{results}");
    let failed = std::fs::read_to_string(dir.path().join("rcpt.csv.failed.csv")).unwrap();
    // Every row to fix, the unusable one too, with the reason as the last column.
    assert_eq!(
        failed,
        "email,name,code,error\n\
         not an address,X,C,\"column \"\"email\"\": \"\"not an address\"\" is not an email address: address contains a space or control character\"\n\
         bad@elsewhere.example,Bad,B,bad@elsewhere.example: 550 5.7.1 Relay access denied\n"
    );
    assert_eq!(read_new(&server.storage, "example.com", "ok1").len(), 1);
    assert_eq!(read_new(&server.storage, "example.com", "ok2").len(), 1);
    server.stop_and_check_clean();
}

/// A recipient deferred with 4xx while the others were accepted is tried again alone, with
/// backoff, and the others are not sent twice.
#[test]
fn deferred_recipients_are_retried_alone() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let port = common::free_port();
    // A tiny SMTP server: the first RCPT for later@x.example gets 450, every later one 250.
    // Each accepted message's recipient list is logged.
    let script = format!(
        r#"
import socket, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", {port})); srv.listen(16)
seen = set(); lock = threading.Lock()
def serve(c):
    f = c.makefile("rb"); rcpts = []
    c.sendall(b"220 test ESMTP\r\n")
    while True:
        line = f.readline()
        if not line: return
        cmd = line.decode().strip(); up = cmd.upper()
        if up.startswith("EHLO"): c.sendall(b"250-test\r\n250 PIPELINING\r\n")
        elif up.startswith("MAIL"): rcpts = []; c.sendall(b"250 ok\r\n")
        elif up.startswith("RCPT"):
            addr = cmd[cmd.index("<")+1:cmd.index(">")]
            with lock:
                first = addr == "later@x.example" and addr not in seen
                seen.add(addr)
            if first: c.sendall(b"450 4.2.1 try later\r\n")
            else: rcpts.append(addr); c.sendall(b"250 ok\r\n")
        elif up == "DATA":
            c.sendall(b"354 go\r\n")
            while f.readline() not in (b".\r\n", b""): pass
            with open({log:?}, "a") as out: out.write(",".join(rcpts) + "\n")
            c.sendall(b"250 queued\r\n")
        elif up == "RSET": c.sendall(b"250 ok\r\n")
        elif up == "QUIT": c.sendall(b"221 bye\r\n"); c.close(); return
        else: c.sendall(b"500 what\r\n")
while True:
    conn, _ = srv.accept(); threading.Thread(target=serve, args=(conn,), daemon=True).start()
"#,
        log = log.to_str().unwrap()
    );
    let mut server = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .spawn()
        .unwrap();
    common::wait_for_port(port);
    let csv = dir.path().join("rcpt.csv");
    std::fs::write(&csv, "email,name\nnow@x.example,Now\n").unwrap();
    let tmpl = dir.path().join("t.tmpl");
    std::fs::write(
        &tmpl,
        "From: s@example.org\nCc: later@x.example\nSubject: hi\n\nhello\n",
    )
    .unwrap();
    let out = send(&csv, &tmpl, port, &["--no-dry-run", "--retries", "2"]);
    let _ = server.kill();
    let _ = server.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let delivered = std::fs::read_to_string(&log).unwrap();
    assert_eq!(delivered, "now@x.example\nlater@x.example\n", "{stdout}");
    let results = std::fs::read_to_string(dir.path().join("rcpt.csv.results.csv")).unwrap();
    assert!(
        results.contains(",partial,") && results.contains("will be tried again"),
        "{results}"
    );
    assert!(
        results.lines().last().unwrap().contains(",sent,"),
        "{results}"
    );
}

/// With --rate, each connection holds one row at a time: no row is handed to a connection that
/// is closing (which showed as `clear` lines in the journal and runs far slower than the rate).
#[test]
fn rate_limited_rows_are_never_handed_to_a_closing_connection() {
    // Few rows for the connections: the last rows are taken as connections come up, where a
    // connection used to take one row on Ready and another on Idle.
    for runtime in ["smol", "mio", "smol", "mio"] {
        let server = Server::start("smol", &[]);
        let dir = tempfile::tempdir().unwrap();
        let (csv, tmpl) = write_inputs(dir.path(), 3);
        let out = send(
            &csv,
            &tmpl,
            server.port,
            &[
                "--no-dry-run",
                "--rate",
                "50/s",
                "--concurrency",
                "2",
                "--runtime",
                runtime,
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let journal = std::fs::read_to_string(dir.path().join("rcpt.csv.journal")).unwrap();
        assert_eq!(
            journal.lines().filter(|l| l.starts_with("clear")).count(),
            0,
            "{runtime}: {journal}"
        );
        assert_eq!(
            journal.lines().filter(|l| l.starts_with("start")).count(),
            3,
            "{runtime}: {journal}"
        );
        assert_each_once(&server.storage, 3);
        server.stop_and_check_clean();
    }
}
