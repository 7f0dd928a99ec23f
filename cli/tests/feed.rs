//! The external feed (`--notify-nntp`) against a small news server written here in Python:
//! every notice arrives once, including those made while that server was down and those
//! queued when buzon itself was killed.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, free_port, python, wait_for_port};

/// A news server that takes POSTs for one group, answers a repeated message-id as INN does
/// (`441 435 Duplicate`), and writes each article's message-id to a file as it takes it.
const NEWS_SERVER: &str = r#"
import socketserver, sys
port, log, group = int(sys.argv[1]), sys.argv[2], sys.argv[3]
seen = set(l.strip() for l in open(log)) if __import__("os").path.exists(log) else set()
class H(socketserver.StreamRequestHandler):
    def handle(self):
        w = lambda s: self.wfile.write((s + "\r\n").encode())
        w("200 fake news ready")
        user = None
        while True:
            line = self.rfile.readline().decode().rstrip("\r\n")
            if not line:
                return
            verb = line.split(" ")[0].upper()
            if verb == "MODE":
                w("200 reader")
            elif line.startswith("AUTHINFO USER "):
                user = line[14:]; w("381 password")
            elif line.startswith("AUTHINFO PASS "):
                w("281 ok" if (user, line[14:]) == ("feeder", "s3cret") else "481 no")
            elif verb == "POST":
                if user is None:
                    w("480 login first"); continue
                w("340 send it")
                head, lines = True, []
                while True:
                    l = self.rfile.readline().decode().rstrip("\r\n")
                    if l == ".":
                        break
                    lines.append(l[1:] if l.startswith("..") else l)
                mid = next(l[12:] for l in lines if l.lower().startswith("message-id: "))
                ng = next(l[12:] for l in lines if l.lower().startswith("newsgroups: "))
                if ng != group:
                    w("441 no such group " + ng)
                elif mid in seen:
                    w("441 435 Duplicate")
                else:
                    seen.add(mid)
                    with open(log, "a") as f:
                        f.write(mid + "\n")
                    w("240 article posted")
            elif verb == "QUIT":
                w("205 bye"); return
            else:
                w("500 what")
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("127.0.0.1", port), H).serve_forever()
"#;

fn news_server(port: u16, log: &std::path::Path) -> Child {
    let child = Command::new("python3")
        .args(["-c", NEWS_SERVER, &port.to_string()])
        .arg(log)
        .arg("local.notices")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port);
    child
}

fn received(log: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn wait_until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn send(smtp: u16, n: usize, from: usize) {
    let script = format!(
        r#"
import smtplib
with smtplib.SMTP("127.0.0.1", {smtp}) as s:
    for i in range({from}, {from} + {n}):
        s.sendmail("ann@example.org", ["alice@example.com"], f"Subject: m{{i}}\r\n\r\nbody {{i}}\r\n".encode())
print("ok")
"#
    );
    assert_eq!(python(&script).trim(), "ok");
}

fn feed_survives_outages(runtime: &str) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("received");
    let news_port = free_port();
    let url = format!("nntp://feeder@127.0.0.1:{news_port}/local.notices");
    let extra = ["--notify-nntp", url.as_str()];
    // The password comes from the environment, never the URL.
    let start = |d: tempfile::TempDir| {
        Server::start_in_env(
            d,
            runtime,
            &extra,
            &[("BUZON_NOTIFY_NNTP_PASSWORD", "s3cret")],
        )
    };
    let mut news = news_server(news_port, &log);
    let server = start(tempfile::tempdir().unwrap());
    send(server.port, 3, 0);
    wait_until("3 notices", || received(&log).len() == 3);

    // The news server goes away; mail keeps arriving.
    news.kill().unwrap();
    news.wait().unwrap();
    send(server.port, 3, 3);
    std::thread::sleep(Duration::from_millis(500));
    // buzon is killed too, with the notices queued; it starts again over the same storage.
    let storage = server.kill_keep_dir();
    let server = start(storage);
    send(server.port, 2, 6);
    let mut news = news_server(news_port, &log);
    wait_until("8 notices", || received(&log).len() == 8);
    std::thread::sleep(Duration::from_millis(300));
    let mut ids = received(&log);
    assert_eq!(ids.len(), 8, "{ids:?}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 8, "a notice arrived twice");
    assert!(
        ids.iter()
            .all(|id| id.ends_with(".buzon.mail.example-com.alice@mx.test>")),
        "{ids:?}"
    );
    news.kill().unwrap();
    let _ = news.wait();
    server.stop_and_check_clean();
}

#[test]
fn feed_survives_outages_under_smol() {
    feed_survives_outages("smol");
}

#[test]
fn feed_survives_outages_under_mio() {
    feed_survives_outages("mio");
}
