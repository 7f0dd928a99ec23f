//! `buzon ui`'s HTTP API without a browser: the access key, uploads, the lint, the preview, a
//! send to `buzon serve` watched over the progress stream, pause and resume (also across a
//! restart of `buzon ui`), and the downloads.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, read_new};

/// A running `buzon ui`.
struct Ui {
    child: Child,
    /// Kept open: the process may print more.
    _stdout: BufReader<std::process::ChildStdout>,
    port: u16,
    token: String,
}

impl Ui {
    fn start(dir: &Path) -> Ui {
        let mut child = Command::new(env!("CARGO_BIN_EXE_buzon"))
            .args(["ui", "--listen", "127.0.0.1:0", "--helo", "ui.test"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut first = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut first).unwrap();
        // buzon ui: open http://127.0.0.1:PORT/?token=TOKEN
        let url = first
            .trim()
            .strip_prefix("buzon ui: open http://127.0.0.1:")
            .unwrap_or_else(|| panic!("{first:?}"));
        let (port, token) = url.split_once("/?token=").unwrap();
        Ui {
            child,
            _stdout: stdout,
            port: port.parse().unwrap(),
            token: token.to_owned(),
        }
    }

    /// One request; `(status, body)`.
    fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<u8>) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.port,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        // A refused upload may be answered before the body is read; the answer counts.
        let _ = s.write_all(body);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out);
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no status in {text:?}"));
        let start = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = text[..start].to_ascii_lowercase();
        let mut body = out[start..].to_vec();
        if head.contains("transfer-encoding: chunked") {
            body = dechunk(&body);
        }
        (status, body)
    }

    fn call(&self, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
        let (status, body) = self.raw(
            method,
            path,
            &[("X-Buzon-Token", &self.token)],
            body.as_bytes(),
        );
        let v = serde_json::from_slice(&body)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into()));
        (status, v)
    }

    fn ok(&self, method: &str, path: &str, body: &str) -> serde_json::Value {
        let (status, v) = self.call(method, path, body);
        assert_eq!(status, 200, "{method} {path}: {v}");
        v
    }

    /// Waits until the campaign's state is `want`.
    fn wait_for(&self, want: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let state = self.ok("GET", "/api/state", "");
            if state["campaign"]["state"] == want {
                return state;
            }
            assert!(
                Instant::now() < deadline,
                "never {want}: {}",
                state["campaign"]
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let n = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if n == 0 || b.len() < eol + 2 + n {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 4 + n..];
    }
}

/// `n` recipients at example.com (user1..), one of them (row `bad`) not an address.
fn csv(n: usize, bad: usize) -> String {
    let mut s = String::from("email,name,plan\n");
    for i in 1..=n {
        if i == bad {
            s.push_str(&format!("user{i}.example.com,User {i},gold\n"));
        } else {
            s.push_str(&format!("user{i}@example.com,User {i},gold\n"));
        }
    }
    s
}

fn configure(ui: &Ui, port: u16) {
    let settings = serde_json::json!({
        "server": {"host": "127.0.0.1", "port": port, "tls": "none"},
        "message": {"from": "Shop <shop@example.com>", "subject": "Hello {{ name }}",
                    "text": "Your plan: {{ plan }}\n"},
        "sending": {"concurrency": 2},
    });
    ui.ok("PUT", "/api/settings", &settings.to_string());
}

#[test]
fn the_access_key_is_required_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let ui = Ui::start(dir.path());
    let (status, body) = ui.raw("GET", "/api/state", &[], b"");
    assert_eq!(status, 403);
    assert_eq!(
        String::from_utf8_lossy(&body),
        r#"{"error":"the access key is missing or wrong","hint":"open the address buzon ui printed: it includes the key (?token=...)"}"#
    );
    let wrong = "0".repeat(ui.token.len());
    assert_eq!(
        ui.raw("GET", "/api/state", &[("X-Buzon-Token", &wrong)], b"")
            .0,
        403
    );
    assert_eq!(
        ui.raw("GET", &format!("/api/state?token={wrong}"), &[], b"")
            .0,
        403
    );
    assert_eq!(ui.raw("GET", "/", &[], b"").0, 403);
    assert_eq!(
        ui.raw("GET", &format!("/api/state?token={}", ui.token), &[], b"")
            .0,
        200
    );
    let (status, page) = ui.raw("GET", &format!("/?token={}", ui.token), &[], b"");
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&page).contains("<script src=\"app.js\""));
    // Another host name (a DNS-rebinding page) is refused even with the key.
    let mut s = TcpStream::connect(("127.0.0.1", ui.port)).unwrap();
    write!(
        s,
        "GET /api/state?token={} HTTP/1.1\r\nHost: evil.example:{}\r\nConnection: close\r\n\r\n",
        ui.token, ui.port
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 403"), "{out}");
}

#[test]
fn uploads_are_checked_and_oversized_ones_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ui = Ui::start(dir.path());
    let big = vec![b'a'; 10 * 1024 * 1024 + 1];
    let (status, body) = ui.raw(
        "POST",
        "/api/recipients?name=big.csv",
        &[("X-Buzon-Token", &ui.token)],
        &big,
    );
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&body));
    let (status, v) = ui.call(
        "POST",
        "/api/recipients?name=x.csv",
        "name,plan\nAna,gold\n",
    );
    assert_eq!(status, 422);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("this CSV cannot be used: "),
        "{v}"
    );

    let state = ui.ok(
        "POST",
        "/api/recipients?name=list.csv",
        "email,name,plan\na@example.com,Ana,gold\nbroken,Bo,x\nA@example.com,Al,\n",
    );
    let r = &state["recipients"];
    assert_eq!(r["file"], "list.csv");
    assert_eq!(r["columns"], serde_json::json!(["email", "name", "plan"]));
    assert_eq!(r["total"], 3);
    let problems: Vec<_> = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["n"].as_u64().unwrap(),
                row["problems"].as_array().unwrap().len(),
            )
        })
        .collect();
    assert_eq!(problems, [(1, 0), (2, 1), (3, 1)]);
    assert_eq!(
        std::fs::read(dir.path().join("recipients.csv")).unwrap(),
        b"email,name,plan\na@example.com,Ana,gold\nbroken,Bo,x\nA@example.com,Al,\n"
    );

    // The lint: the message's own problem first, then each row's.
    let (status, v) = ui.call(
        "PUT",
        "/api/settings",
        r#"{"message": {"from": "shop@example.com", "subject": "Hi {{ nmae }}"}}"#,
    );
    assert_eq!(status, 200, "{v}");
    let c = ui.ok("POST", "/api/check", "");
    assert_eq!(c["ok"], false);
    assert_eq!(
        c["template_error"],
        "{{ nmae }} is not a column of the CSV, so no row has a value for it; the columns are email, name, plan"
    );
    ui.ok(
        "PUT",
        "/api/settings",
        r#"{"message": {"subject": "Hi {{ name }}", "text": "Plan {{ plan }}\n"}}"#,
    );
    let c = ui.ok("POST", "/api/check", "");
    let got: Vec<_> = c["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["n"].as_u64().unwrap(),
                p["problem"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0].0, 2);
    assert!(got[0].1.contains("\"broken\" is not an email address"));
    assert_eq!(
        got[1],
        (
            3,
            "the same address as row 1: it is sent once, so this row is skipped".to_owned()
        )
    );
    assert_eq!(got[2], (3, "{{ plan }} is empty in this row: fill it in the CSV, or write {{ plan or \"...\" }} in the message for a fallback".to_owned()));

    // An attachment; the preview shows it and the rendered text.
    ui.ok(
        "POST",
        "/api/attachments?name=terms%20v2.pdf",
        "%PDF-1.4 tiny",
    );
    let state = ui.ok(
        "PUT",
        "/api/settings",
        r#"{"message": {"attach": ["terms v2.pdf"]}}"#,
    );
    assert_eq!(
        state["attachments"],
        serde_json::json!([{"name": "terms v2.pdf", "size": 13}])
    );
    let p = ui.ok("GET", "/api/preview?n=1", "");
    assert_eq!(p["headers"]["subject"], "Hi Ana");
    assert_eq!(p["headers"]["to"], "Ana <a@example.com>");
    assert_eq!(p["text"], "Plan gold\r\n");
    assert_eq!(
        p["attachments"],
        serde_json::json!([{"name": "terms v2.pdf", "type": "application/pdf", "size": 13}])
    );
    let (status, v) = ui.call("GET", "/api/preview?n=2", "");
    assert_eq!(status, 422);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("row 2 cannot be sent: "),
        "{v}"
    );
    let (status, _) = ui.call("POST", "/api/attachments?name=..%2Fescape", "x");
    assert_eq!(status, 422);
    assert!(!dir.path().join("escape").exists());
}

#[test]
fn a_send_streams_its_results_pauses_resumes_after_a_restart_and_delivers_each_row_once() {
    let server = Server::start("smol", &[]);
    let dir = tempfile::tempdir().unwrap();
    let ui = Ui::start(dir.path());
    configure(&ui, server.port);
    ui.ok("POST", "/api/recipients?name=fifty.csv", &csv(50, 7));
    // One message at a time, five a second: slow enough to pause half way.
    ui.ok(
        "PUT",
        "/api/settings",
        r#"{"sending": {"concurrency": 1, "rate": "5/s"}}"#,
    );

    // A test message to oneself: row 3 rendered, sent to user99 only.
    let t = ui.ok(
        "POST",
        "/api/test-send",
        r#"{"n": 3, "to": "user99@example.com"}"#,
    );
    assert_eq!(t["ok"], true, "{t}");
    let got = read_new(&server.storage, "example.com", "user99");
    assert_eq!(got.len(), 1);
    let text = String::from_utf8_lossy(&got[0].1);
    assert!(
        text.contains("Subject: Hello User 3\r\n")
            && text.contains("To: User 3 <user3@example.com>\r\n"),
        "{text}"
    );
    assert!(read_new(&server.storage, "example.com", "user3").is_empty());

    let state = ui.ok("POST", "/api/send", "");
    assert_eq!(state["campaign"]["state"], "running");
    assert_eq!(ui.call("POST", "/api/send", "").0, 409);

    // The progress stream: the campaign, then results as they come.
    let mut s = TcpStream::connect(("127.0.0.1", ui.port)).unwrap();
    write!(
        s,
        "GET /api/events?token={} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n",
        ui.token, ui.port
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut stream = BufReader::new(s);
    let mut results = 0;
    let mut saw_campaign = false;
    let mut line = String::new();
    while results < 10 {
        line.clear();
        assert!(stream.read_line(&mut line).unwrap() > 0, "the stream ended");
        saw_campaign |= line.starts_with("event: campaign");
        if line.starts_with("event: result") {
            results += 1;
        }
    }
    assert!(saw_campaign);
    drop(stream);

    let state = ui.ok("POST", "/api/pause", "");
    assert!(
        matches!(
            state["campaign"]["state"].as_str(),
            Some("pausing" | "paused")
        ),
        "{}",
        state["campaign"]
    );
    let paused = ui.wait_for("paused");
    let settled = paused["campaign"]["settled"].as_u64().unwrap();
    assert!((10..50).contains(&settled), "{}", paused["campaign"]);

    // buzon ui goes away and comes back: the campaign is where it was.
    drop(ui);
    let ui = Ui::start(dir.path());
    let state = ui.ok("GET", "/api/state", "");
    assert_eq!(state["campaign"]["state"], "paused");
    assert_eq!(state["campaign"]["settled"].as_u64().unwrap(), settled);
    ui.ok(
        "PUT",
        "/api/settings",
        r#"{"sending": {"concurrency": 4, "rate": ""}}"#,
    );
    ui.ok("POST", "/api/send", "");
    let done = ui.wait_for("done");
    assert_eq!(
        done["campaign"]["counts"]["sent"], 49,
        "{}",
        done["campaign"]
    );
    assert_eq!(done["campaign"]["counts"]["skipped"], 1);
    assert_eq!(done["campaign"]["pending"], 0);
    assert!(
        done["campaign"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Finished. 1 row(s) did not reach everyone"),
        "{}",
        done["campaign"]
    );

    // Every good row delivered exactly once (and the test message did not count).
    for i in (1..=50).filter(|&i| i != 7) {
        let got = read_new(&server.storage, "example.com", &format!("user{i}"));
        assert_eq!(got.len(), 1, "user{i}");
    }
    let (status, failed) = ui.raw(
        "GET",
        &format!("/api/failed.csv?token={}", ui.token),
        &[],
        b"",
    );
    assert_eq!(status, 200);
    assert_eq!(
        String::from_utf8_lossy(&failed),
        "email,name,plan,error\nuser7.example.com,User 7,gold,\"column \"\"email\"\": \"\"user7.example.com\"\" is not an email address: no @ in address\"\n"
    );
    let (_, results) = ui.raw(
        "GET",
        &format!("/api/results.csv?token={}", ui.token),
        &[],
        b"",
    );
    let results = String::from_utf8_lossy(&results);
    assert_eq!(
        results.lines().filter(|l| l.contains(",sent,")).count(),
        49,
        "{results}"
    );
    assert!(results.starts_with("line,email,status,reply\n"));
    // Sending again sends nobody.
    let again = ui.ok("POST", "/api/send", "");
    assert_eq!(again["campaign"]["state"], "done");
    assert_eq!(read_new(&server.storage, "example.com", "user1").len(), 1);
}

#[test]
fn test_mode_reports_deferrals_and_refusals_without_the_real_server() {
    let dir = tempfile::tempdir().unwrap();
    let ui = Ui::start(dir.path());
    // A port where nothing listens: test mode must not need it.
    configure(&ui, common::free_port());
    ui.ok(
        "PUT",
        "/api/settings",
        r#"{"sending": {"test_mode": true, "retries": 0}}"#,
    );
    ui.ok("POST", "/api/recipients?name=t.csv", "email,name,plan\nok@example.com,Ok,a\ntempfail@example.com,T,b\npermfail@example.com,P,c\n");
    ui.ok("POST", "/api/send", "");
    let done = ui.wait_for("done");
    let c = &done["campaign"];
    assert_eq!(c["test"], true);
    let by_email: std::collections::BTreeMap<String, (String, String)> = c["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["email"].as_str().unwrap().to_owned(),
                (
                    r["status"].as_str().unwrap().to_owned(),
                    r["reply"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect();
    assert_eq!(by_email["ok@example.com"].0, "sent");
    assert_eq!(by_email["tempfail@example.com"].0, "deferred");
    assert!(
        by_email["tempfail@example.com"].1.contains("451 4.3.0"),
        "{by_email:?}"
    );
    assert_eq!(by_email["permfail@example.com"].0, "failed");
    assert!(
        by_email["permfail@example.com"].1.contains("550 5.1.1"),
        "{by_email:?}"
    );
    // The campaign's own journal is untouched.
    assert!(!dir.path().join("recipients.csv.journal").exists());
    let t = ui.ok(
        "POST",
        "/api/test-send",
        r#"{"n": 1, "to": "permfail@example.com"}"#,
    );
    assert_eq!(t["ok"], false);
    assert_eq!(
        t["meaning"],
        "The receiving server says this address does not exist: check it for typos."
    );
}

#[test]
fn the_connection_test_names_what_the_server_offers_or_the_failing_step() {
    let server = Server::start("smol", &[]);
    let dir = tempfile::tempdir().unwrap();
    let ui = Ui::start(dir.path());
    configure(&ui, server.port);
    // The server's certificate is its own, self-signed: the step that fails is TLS.
    ui.ok("PUT", "/api/settings", r#"{"server": {"tls": "auto"}}"#);
    let t = ui.ok("POST", "/api/server/test", "");
    assert_eq!(t["ok"], false, "{t}");
    let last = &t["steps"][2];
    assert_eq!(last["step"], "tls", "{t}");
    assert!(
        last["detail"]
            .as_str()
            .unwrap()
            .starts_with("the TLS handshake failed: the server's certificate is not trusted: it is signed by no authority this machine trusts"),
        "{t}"
    );
    assert!(
        last["detail"]
            .as_str()
            .unwrap()
            .contains("tick \"Skip the certificate check\""),
        "{t}"
    );
    ui.ok("PUT", "/api/settings", r#"{"server": {"insecure": true}}"#);
    let t = ui.ok("POST", "/api/server/test", "");
    assert_eq!(t["ok"], true, "{t}");
    let steps: Vec<_> = t["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(steps, ["connect", "greeting", "tls", "login"]);
    assert_eq!(t["offered"]["tls_in_use"], true, "{t}");
    assert!(t["offered"]["size"].as_u64().unwrap() > 0);

    ui.ok(
        "PUT",
        "/api/settings",
        &format!(r#"{{"server": {{"port": {}}}}}"#, common::free_port()),
    );
    let t = ui.ok("POST", "/api/server/test", "");
    assert_eq!(t["ok"], false);
    assert_eq!(t["steps"][0]["step"], "connect");
    assert!(
        t["steps"][0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("cannot connect to 127.0.0.1:"),
        "{t}"
    );

    // A user without a password never reaches the network.
    ui.ok("PUT", "/api/settings", r#"{"server": {"user": "ana"}}"#);
    let t = ui.ok("POST", "/api/server/test", "");
    assert_eq!(t["steps"][0]["step"], "settings");
    assert!(
        t["steps"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("no password"),
        "{t}"
    );
    // The password is held, never saved.
    let state = ui.ok(
        "PUT",
        "/api/settings",
        r#"{"server": {"password": "s3cret-pw"}}"#,
    );
    assert_eq!(state["settings"]["server"]["password_set"], true);
    assert!(!state.to_string().contains("s3cret-pw"));
    let saved = std::fs::read_to_string(dir.path().join("settings.json")).unwrap();
    assert!(
        !saved.contains("s3cret-pw") && saved.contains("\"user\": \"ana\""),
        "{saved}"
    );
}
