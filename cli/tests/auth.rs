//! Accounts and SMTP AUTH end to end, under both runtimes: `buzon user add`, then Python's
//! `smtplib` logging in with PLAIN and LOGIN (over loopback plaintext, which the operator
//! allows here; TLS is in `tls.rs`), recipients checked against the accounts, senders
//! against the login.

mod common;

use common::{Server, python, read_new, user_add};

fn start(runtime: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("mail");
    let out = user_add(&storage, "alice@example.com", "correct horse");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with("added alice@example.com; mail in "),
        "{stdout}"
    );
    for folder in ["new", ".Sent/cur", ".Drafts/new", ".Trash/tmp", ".Junk/cur"] {
        assert!(
            storage.join("example.com/alice").join(folder).is_dir(),
            "{folder}"
        );
    }
    let again = user_add(&storage, "Alice@example.com", "x");
    assert!(!again.status.success());
    assert_eq!(
        String::from_utf8_lossy(&again.stderr).trim(),
        "buzon: error: alice@example.com already exists"
    );
    Server::start_in(dir, runtime, &["--allow-plaintext-auth-on-loopback"])
}

fn logins_and_accounts(runtime: &str) {
    let server = start(runtime);
    let script = format!(
        r#"
import smtplib, sys
port = {port}
msg = b"Subject: hi\r\n\r\nhello\r\n"
with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
    s.ehlo("client.example.org")
    assert s.has_extn("auth"), s.esmtp_features
    assert s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"], s.esmtp_features
    try:
        s.login("alice@example.com", "wrong")
        sys.exit("a wrong password logged in")
    except smtplib.SMTPAuthenticationError as e:
        assert e.smtp_code == 535 and e.smtp_error.startswith(b"5.7.8"), e
    try:
        s.login("nobody@example.com", "correct horse")
        sys.exit("an unknown user logged in")
    except smtplib.SMTPAuthenticationError as e:
        assert e.smtp_code == 535, e
for mechanism in ["PLAIN", "LOGIN"]:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
        s.ehlo("client.example.org")
        s.user, s.password = "alice@example.com", "correct horse"
        code, text = s.auth(mechanism, getattr(s, "auth_" + mechanism.lower()), initial_response_ok=(mechanism == "PLAIN"))
        assert code == 235, (code, text)
        try:
            s.sendmail("bob@example.org", ["alice@example.com"], msg)
            sys.exit("sent as someone else")
        except smtplib.SMTPSenderRefused as e:
            assert e.smtp_code == 553 and b"5.7.1" in e.smtp_error, e
        try:
            s.sendmail("alice@example.com", ["nobody@example.com"], msg)
            sys.exit("mail for no user accepted")
        except smtplib.SMTPRecipientsRefused as e:
            code, text = e.recipients["nobody@example.com"]
            assert code == 550 and text.startswith(b"5.1.1"), (code, text)
        assert s.sendmail("alice@example.com", ["ALICE@example.com"], msg) == {{}}
print("ok")
"#,
        port = server.port,
    );
    assert_eq!(python(&script).trim(), "ok");
    let files = read_new(&server.storage, "example.com", "alice");
    assert_eq!(files.len(), 2);
    for (_, bytes) in &files {
        let text = String::from_utf8_lossy(bytes);
        // RFC 3848: authenticated, no TLS.
        assert!(text.contains(" with ESMTPA id "), "{text}");
        assert!(text.ends_with("Subject: hi\r\n\r\nhello\r\n"), "{text}");
    }
    assert!(read_new(&server.storage, "example.com", "nobody").is_empty());
    server.stop_and_check_clean();
}

#[test]
fn logins_and_accounts_under_smol() {
    logins_and_accounts("smol");
}

#[test]
fn logins_and_accounts_under_mio() {
    logins_and_accounts("mio");
}

/// Without the loopback option nothing about AUTH shows or works over plaintext, loopback
/// included (RFC 4954 section 4: 538 before TLS).
#[test]
fn no_auth_over_plaintext_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("mail");
    assert!(
        user_add(&storage, "alice@example.com", "pw")
            .status
            .success()
    );
    let server = Server::start_in(dir, "smol", &[]);
    let script = format!(
        r#"
import smtplib, base64
with smtplib.SMTP("127.0.0.1", {port}, timeout=10) as s:
    s.ehlo("client.example.org")
    assert not s.has_extn("auth"), s.esmtp_features
    code, text = s.docmd("AUTH", "PLAIN " + base64.b64encode(b"\0alice@example.com\0pw").decode())
    assert code == 538 and text.startswith(b"5.7.11"), (code, text)
print("ok")
"#,
        port = server.port,
    );
    assert_eq!(python(&script).trim(), "ok");
    server.stop_and_check_clean();
}

/// Submission (RFC 6409) as a phone or a desktop client uses it, with the certificate the
/// first start made (verified here against itself: it is self-signed): STARTTLS on the
/// submission port and implicit TLS on the other (RFC 8314), AUTH required before MAIL, own
/// addresses only, local domains only.
fn submission(runtime: &str) {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("mail");
    assert!(
        user_add(&storage, "alice@example.com", "correct horse")
            .status
            .success()
    );
    let server = Server::start_in(dir, runtime, &[]);
    let cert = server.storage.join("tls/cert.pem");
    let key = server.storage.join("tls/key.pem");
    assert!(cert.is_file());
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let script = format!(
        r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context(cafile={cert:?})
msg = b"Subject: submitted\r\n\r\nfrom my phone\r\n"
with smtplib.SMTP("127.0.0.1", {submission}, timeout=10) as s:
    s.ehlo("phone.example")
    assert s.has_extn("starttls") and not s.has_extn("auth"), s.esmtp_features
    code, text = s.docmd("MAIL", "FROM:<alice@example.com>")
    assert code == 530 and text.startswith(b"5.7.0"), (code, text)
    s.starttls(context=ctx)
    s.ehlo("phone.example")
    assert s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"], s.esmtp_features
    try:
        s.sendmail("alice@example.com", ["alice@example.com"], msg)
        sys.exit("mail without AUTH accepted")
    except smtplib.SMTPSenderRefused as e:
        assert e.smtp_code == 530, e
    s.login("alice@example.com", "correct horse")
    try:
        s.sendmail("alice@example.com", ["someone@elsewhere.example"], msg)
        sys.exit("relayed")
    except smtplib.SMTPRecipientsRefused as e:
        code, text = e.recipients["someone@elsewhere.example"]
        assert code == 550 and b"Relaying is not supported" in text, (code, text)
    assert s.sendmail("alice@example.com", ["alice@example.com"], msg) == {{}}
with smtplib.SMTP_SSL("127.0.0.1", {submissions}, context=ctx, timeout=10) as s:
    s.login("alice@example.com", "correct horse")
    assert s.sendmail("alice@example.com", ["alice@example.com"], msg) == {{}}
print("ok")
"#,
        cert = cert.to_str().unwrap(),
        submission = server.submission,
        submissions = server.submissions,
    );
    assert_eq!(python(&script).trim(), "ok");
    let files = read_new(&server.storage, "example.com", "alice");
    assert_eq!(files.len(), 2);
    for (_, bytes) in &files {
        let text = String::from_utf8_lossy(bytes);
        assert!(text.contains(" with ESMTPSA id "), "{text}");
        assert!(text.ends_with("from my phone\r\n"), "{text}");
    }
    server.stop_and_check_clean();
}

#[test]
fn submission_under_smol() {
    submission("smol");
}

#[test]
fn submission_under_mio() {
    submission("mio");
}

/// `buzon send` through buzon's own submission listeners: STARTTLS with AUTH, implicit TLS,
/// and the failures a user meets (a wrong password, a certificate nobody vouches for) as one
/// line each, with no row marked sent.
fn send_through_submission(runtime: &str) {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("mail");
    assert!(
        user_add(&storage, "alice@example.com", "correct horse")
            .status
            .success()
    );
    let server = Server::start_in(dir, runtime, &[]);
    let cert = server.storage.join("tls/cert.pem");
    let work = tempfile::tempdir().unwrap();
    let csv = work.path().join("rows.csv");
    std::fs::write(
        &csv,
        "email,name\nalice@example.com,Alice\nalice@example.com,Again\n",
    )
    .unwrap();
    let tmpl = work.path().join("t.tmpl");
    std::fs::write(
        &tmpl,
        "From: alice@example.com\nTo: {{ name }} <{{ email }}>\nSubject: hi {{ name }}\n\nhello\n",
    )
    .unwrap();
    let send = |port: u16, password: &str, extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_buzon"))
            .arg("send")
            .arg("--csv")
            .arg(&csv)
            .arg("--template")
            .arg(&tmpl)
            .args(["--server", &format!("127.0.0.1:{port}"), "--no-dry-run"])
            .args(["--user", "alice@example.com", "--runtime", runtime])
            .args(extra)
            .env("BUZON_SMTP_PASSWORD", password)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let ca = ["--ca-file", cert.to_str().unwrap()];
    let (code, _, err) = send(
        server.submission,
        "wrong",
        &[&["--tls", "starttls"][..], &ca].concat(),
    );
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(
        err.trim(),
        format!(
            "buzon: error: 127.0.0.1:{}: login refused: 535 5.7.8 Authentication credentials invalid (STARTTLS); nothing was sent",
            server.submission
        )
    );
    let (code, _, err) = send(server.submission, "correct horse", &["--tls", "starttls"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.trim().ends_with("TLS handshake failed: invalid peer certificate: UnknownIssuer (STARTTLS); nothing was sent"),
        "{err}"
    );
    assert!(read_new(&server.storage, "example.com", "alice").is_empty());
    // Both rows are still to send: the failures journalled nothing.
    let (code, out, err) = send(
        server.submission,
        "correct horse",
        &[&["--tls", "starttls"][..], &ca].concat(),
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("sent 2,"), "{out}");
    // A fresh run (the journal says both rows went), now over implicit TLS.
    for f in std::fs::read_dir(work.path()).unwrap() {
        let p = f.unwrap().path();
        if p.to_string_lossy().contains(".journal") {
            std::fs::remove_file(p).unwrap();
        }
    }
    let (code, out, err) = send(
        server.submissions,
        "correct horse",
        &[&["--tls", "implicit"][..], &ca].concat(),
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("sent 2,"), "{out}");
    let files = read_new(&server.storage, "example.com", "alice");
    assert_eq!(files.len(), 4);
    for (_, bytes) in &files {
        let text = String::from_utf8_lossy(bytes);
        assert!(text.contains(" with ESMTPSA id "), "{text}");
    }
    server.stop_and_check_clean();
}

#[test]
fn send_through_submission_under_smol() {
    send_through_submission("smol");
}

#[test]
fn send_through_submission_under_mio() {
    send_through_submission("mio");
}

/// Eight `buzon user add`s at once, while the server runs, lose no user; the server takes
/// them without a restart; a corrupt users file named with --users stops the start with its
/// path and line.
#[test]
fn concurrent_user_adds_and_a_corrupt_file() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("mail");
    let server = Server::start_in(dir, "smol", &["--allow-plaintext-auth-on-loopback"]);
    let adds: Vec<_> = (0..8)
        .map(|i| {
            let storage = server.storage.clone();
            std::thread::spawn(move || user_add(&storage, &format!("u{i}@example.com"), "pw"))
        })
        .collect();
    for a in adds {
        let out = a.join().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let list = std::process::Command::new(env!("CARGO_BIN_EXE_buzon"))
        .args(["user", "list", "-s"])
        .arg(&storage)
        .output()
        .unwrap();
    let listed = String::from_utf8(list.stdout).unwrap();
    assert_eq!(listed.lines().count(), 8, "{listed}");
    let script = format!(
        r#"
import smtplib
with smtplib.SMTP("127.0.0.1", {port}, timeout=10) as s:
    s.ehlo("c.example")
    s.login("u7@example.com", "pw")
print("ok")
"#,
        port = server.port
    );
    assert_eq!(python(&script).trim(), "ok");
    server.stop_and_check_clean();

    let bad = tempfile::tempdir().unwrap();
    let users = bad.path().join("users");
    std::fs::write(&users, "# users\nalice@example.com:not-a-hash:enabled:\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_buzon"))
        .args(["serve", "--no-submission", "-p", "0", "--users"])
        .arg(&users)
        .arg("-s")
        .arg(bad.path().join("mail"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!(
            "buzon: error: users file: {}: line 2: the password of alice@example.com is not an argon2 hash",
            users.display()
        )
    );
}
