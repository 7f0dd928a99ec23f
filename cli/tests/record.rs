//! `buzon serve --record DIR` writes each session as a transcript; `buzon replay` replays it
//! against the core and finds it identical, and finds a tampered copy different.

mod common;

use std::process::Command;

use common::{Server, python};

#[test]
fn recorded_session_replays_identically() {
    let rec = tempfile::tempdir().unwrap();
    let server = Server::start("smol", &["--record", rec.path().to_str().unwrap()]);
    let script = format!(
        r#"
import smtplib
with smtplib.SMTP("127.0.0.1", {port}, timeout=10) as s:
    s.ehlo("rec.example")
    s.sendmail("a@rec.example", ["u@example.com"], b"Subject: recorded\r\n\r\nbody\r\n")
    try:
        s.sendmail("a@rec.example", ["v@elsewhere.example"], b"x\r\n")
    except smtplib.SMTPRecipientsRefused:
        pass
    s.docmd("FROB")
print("ok")
"#,
        port = server.port
    );
    assert_eq!(python(&script).trim(), "ok");
    server.stop_and_check_clean();

    let files: Vec<_> = std::fs::read_dir(rec.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    for line in [
        "! config domains=example.com",
        "C: ehlo rec.example",
        "C: Subject: recorded",
        "C: FROB",
        "S: 500 5.5.2 Command unrecognized",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
    assert!(
        text.contains("! decide data = 250 2.0.0 Ok: queued as "),
        "{text}"
    );

    let replay = |path: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_buzon"))
            .arg("replay")
            .arg(path)
            .output()
            .unwrap()
    };
    let out = replay(&files[0]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(": ok") && stdout.contains("1 passed, 0 failed"),
        "{stdout}"
    );

    let tampered = rec.path().join("tampered.txt");
    std::fs::write(
        &tampered,
        text.replace("S: 500 5.5.2 Command unrecognized", "S: 250 2.0.0 Ok"),
    )
    .unwrap();
    let out = replay(&tampered);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("- S: 250 2.0.0 Ok")
            && stdout.contains("+ S: 500 5.5.2 Command unrecognized"),
        "{stdout}"
    );
}

/// A recorded session with logins keeps the passwords out (PLAIN on the AUTH line, LOGIN in
/// answer to the challenges, a wrong one and a right one), and still replays identically.
#[test]
fn recorded_logins_keep_the_password_out_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().join("mail");
    assert!(
        common::user_add(&storage, "alice@example.com", "s3cret-pw")
            .status
            .success()
    );
    // Not inside `dir`, which goes with the server when it stops.
    let rec_dir = tempfile::tempdir().unwrap();
    let rec = rec_dir.path().to_path_buf();
    let server = Server::start_in(
        dir,
        "smol",
        &[
            "--record",
            rec.to_str().unwrap(),
            "--allow-plaintext-auth-on-loopback",
        ],
    );
    let script = format!(
        r#"
import smtplib
for mechanism, password in [("PLAIN", "wrong-pw"), ("LOGIN", "s3cret-pw"), ("PLAIN", "s3cret-pw")]:
    with smtplib.SMTP("127.0.0.1", {port}, timeout=10) as s:
        s.ehlo("rec.example")
        s.user, s.password = "alice@example.com", password
        try:
            code, _ = s.auth(mechanism, getattr(s, "auth_" + mechanism.lower()), initial_response_ok=True)
        except smtplib.SMTPAuthenticationError as e:
            code = e.smtp_code
        assert code == (535 if password == "wrong-pw" else 235), code
print("ok")
"#,
        port = server.port
    );
    assert_eq!(python(&script).trim(), "ok");
    server.stop_and_check_clean();
    let files: Vec<_> = std::fs::read_dir(&rec)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 3, "{files:?}");
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for secret in ["s3cret-pw", "wrong-pw"] {
            let b64 = python(&format!(
                "import base64; print(base64.b64encode(b'{secret}').decode().rstrip('='))"
            ));
            assert!(!text.contains(secret), "{secret} in:\n{text}");
            assert!(!text.contains(b64.trim()), "{secret} (base64) in:\n{text}");
            let plain = python(&format!(
                "import base64; print(base64.b64encode(b'\\0alice@example.com\\0{secret}').decode())"
            ));
            assert!(!text.contains(plain.trim()), "{secret} (PLAIN) in:\n{text}");
        }
        assert!(text.contains("! decide auth = "), "{text}");
        let out = Command::new(env!("CARGO_BIN_EXE_buzon"))
            .arg("replay")
            .arg(file)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}\n{text}");
    }
}
