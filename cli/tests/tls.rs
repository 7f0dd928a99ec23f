//! TLS in `buzon serve`, under both runtimes: STARTTLS on the SMTP port (with the pipelined
//! injection of CVE-2011-0411), implicit TLS on a second listener of the same process, and the
//! `Received:` header that says so.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{Server, free_port, read_new};
use conn_driver::rustls::{self, ClientConfig, ClientConnection, StreamOwned};

/// A self-signed certificate for `localhost` written to `dir`, and a client that trusts it.
fn certificate(dir: &Path) -> Arc<ClientConfig> {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// `buzon serve` with STARTTLS on its port and implicit TLS on `tls_port`.
fn start(runtime: &str, dir: &Path, tls_port: u16) -> Server {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    Server::start(
        runtime,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--tls-port",
            &tls_port.to_string(),
            "-d",
            "localhost",
        ],
    )
}

/// An SMTP client over any stream.
struct Smtp<S: Read + Write> {
    stream: BufReader<S>,
}

impl<S: Read + Write> Smtp<S> {
    fn new(stream: S) -> Self {
        Smtp {
            stream: BufReader::new(stream),
        }
    }

    fn send(&mut self, bytes: &str) {
        let s = self.stream.get_mut();
        s.write_all(bytes.as_bytes()).unwrap();
        s.flush().unwrap();
    }

    /// One whole reply, its lines joined by `\n`.
    fn reply(&mut self) -> String {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            assert!(
                self.stream.read_line(&mut line).unwrap() > 0,
                "EOF in a reply"
            );
            let line = line.trim_end().to_owned();
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return lines.join("\n");
            }
        }
    }

    fn ask(&mut self, line: &str) -> String {
        self.send(&format!("{line}\r\n"));
        self.reply()
    }

    fn deliver(&mut self, to: &str) {
        assert!(self.ask("EHLO client.test").starts_with("250-"));
        assert_eq!(self.ask("MAIL FROM:<a@example.org>"), "250 2.1.0 Ok");
        assert_eq!(self.ask(&format!("RCPT TO:<{to}>")), "250 2.1.5 Ok");
        assert!(self.ask("DATA").starts_with("354 "));
        let queued = self.ask("Subject: over TLS\r\n\r\nsecret\r\n.");
        assert!(queued.starts_with("250 2.0.0 Ok: queued as "), "{queued}");
        assert!(self.ask("QUIT").starts_with("221 "));
    }
}

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
}

fn tls(stream: TcpStream, config: &Arc<ClientConfig>) -> StreamOwned<ClientConnection, TcpStream> {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    StreamOwned::new(
        ClientConnection::new(Arc::clone(config), name).unwrap(),
        stream,
    )
}

/// Opens a plain connection, says EHLO and STARTTLS (plus `after`, in the same write), and
/// hands back the stream inside TLS.
fn starttls(
    port: u16,
    config: &Arc<ClientConfig>,
    after: &str,
) -> Smtp<StreamOwned<ClientConnection, TcpStream>> {
    let mut plain = Smtp::new(connect(port));
    assert!(plain.reply().starts_with("220 "));
    let ehlo = plain.ask("EHLO client.test");
    assert!(ehlo.contains("\n250-STARTTLS\n"), "{ehlo}");
    plain.send(&format!("STARTTLS\r\n{after}"));
    assert_eq!(plain.reply(), "220 2.0.0 Ready to start TLS");
    assert!(plain.stream.buffer().is_empty());
    Smtp::new(tls(plain.stream.into_inner(), config))
}

fn stored_received(server: &Server, user: &str) -> String {
    let files = read_new(&server.storage, "localhost", user);
    assert_eq!(files.len(), 1, "{user}");
    let text = String::from_utf8_lossy(&files[0].1).into_owned();
    // The header section: Return-Path, Received, and the message's own headers.
    text.split("\r\n\r\n").next().unwrap_or_default().to_owned()
}

fn starttls_then_delivery(runtime: &str) {
    let dir = tempfile::tempdir().unwrap();
    let client = certificate(dir.path());
    let server = start(runtime, dir.path(), free_port());
    let mut smtp = starttls(server.port, &client, "");
    // After TLS the session starts over: EHLO again, and STARTTLS is not offered twice.
    assert!(
        smtp.ask("MAIL FROM:<a@example.org>")
            .starts_with("503 5.5.1 ")
    );
    let ehlo = smtp.ask("EHLO client.test");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    smtp.deliver("user@localhost");
    let received = stored_received(&server, "user");
    assert!(received.contains(" with ESMTPS id "), "{received}");
    assert!(
        received.contains("(using TLSv1.3 with cipher TLS13_"),
        "{received}"
    );
    server.stop_and_check_clean();
}

#[test]
fn starttls_then_delivery_over_smol() {
    starttls_then_delivery("smol");
}

#[test]
fn starttls_then_delivery_over_mio() {
    starttls_then_delivery("mio");
}

/// CVE-2011-0411: commands pipelined after STARTTLS in the same packet must never run inside
/// the TLS session.
fn pipelined_after_starttls_is_dropped(runtime: &str) {
    let dir = tempfile::tempdir().unwrap();
    let client = certificate(dir.path());
    let server = start(runtime, dir.path(), free_port());
    let mut smtp = starttls(
        server.port,
        &client,
        "MAIL FROM:<evil@example.org>\r\nRCPT TO:<victim@localhost>\r\n",
    );
    assert!(smtp.ask("EHLO client.test").starts_with("250-"));
    assert_eq!(
        smtp.ask("RCPT TO:<victim@localhost>"),
        "503 5.5.1 Need MAIL command first"
    );
    assert!(smtp.ask("QUIT").starts_with("221 "));
    assert!(read_new(&server.storage, "localhost", "victim").is_empty());
    server.stop_and_check_clean();
}

#[test]
fn pipelined_after_starttls_is_dropped_over_smol() {
    pipelined_after_starttls_is_dropped("smol");
}

#[test]
fn pipelined_after_starttls_is_dropped_over_mio() {
    pipelined_after_starttls_is_dropped("mio");
}

/// The implicit-TLS listener and the plain one serve side by side in one process.
fn implicit_tls_on_a_second_listener(runtime: &str) {
    let dir = tempfile::tempdir().unwrap();
    let client = certificate(dir.path());
    let tls_port = free_port();
    let server = start(runtime, dir.path(), tls_port);
    let mut smtps = Smtp::new(tls(connect(tls_port), &client));
    assert!(smtps.reply().starts_with("220 "));
    let ehlo = smtps.ask("EHLO client.test");
    assert!(!ehlo.contains("STARTTLS"), "already TLS: {ehlo}");
    assert!(smtps.ask("RSET").starts_with("250 "));
    smtps.send("QUIT\r\n");
    assert!(smtps.reply().starts_with("221 "));
    let mut smtps = Smtp::new(tls(connect(tls_port), &client));
    assert!(smtps.reply().starts_with("220 "));
    smtps.deliver("implicit@localhost");
    let mut plain = Smtp::new(connect(server.port));
    assert!(plain.reply().starts_with("220 "));
    plain.deliver("plain@localhost");
    assert!(stored_received(&server, "implicit").contains(" with ESMTPS id "));
    let plain_received = stored_received(&server, "plain");
    assert!(
        plain_received.contains(" with ESMTP id "),
        "{plain_received}"
    );
    server.stop_and_check_clean();
}

#[test]
fn implicit_tls_on_a_second_listener_over_smol() {
    implicit_tls_on_a_second_listener("smol");
}

#[test]
fn implicit_tls_on_a_second_listener_over_mio() {
    implicit_tls_on_a_second_listener("mio");
}

#[test]
fn tls_flags_are_checked() {
    let storage = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_buzon"))
            .arg("serve")
            .arg("-s")
            .arg(storage.path())
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not pem").unwrap();
    let (code, err) = run(&[
        "--tls-cert",
        junk.to_str().unwrap(),
        "--tls-key",
        junk.to_str().unwrap(),
        "-p",
        &free_port().to_string(),
        "--no-submission",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("holds no CERTIFICATE block"), "{err}");
    let (code, err) = run(&[
        "--tls-cert",
        "/nonexistent/cert.pem",
        "--tls-key",
        "/nonexistent/key.pem",
        "-p",
        &free_port().to_string(),
        "--no-submission",
    ]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err.trim(),
        "buzon: error: cannot read TLS certificate /nonexistent/cert.pem: No such file or directory (os error 2)"
    );
}

/// SIGHUP re-reads the certificate files: the next handshake gets the renewed certificate;
/// a broken file is refused and the one in use stays. The fingerprints are read by Python's
/// `ssl`, an independent client.
#[test]
fn sighup_reloads_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let _ = certificate(dir.path());
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let server = Server::start(
        "smol",
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let fingerprints = || {
        common::python(&format!(
            r#"
import hashlib, smtplib, ssl
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("127.0.0.1", {port}, timeout=10) as s:
    s.starttls(context=ctx)
    served = hashlib.sha256(s.sock.getpeercert(binary_form=True)).hexdigest()
on_disk = hashlib.sha256(ssl.PEM_cert_to_DER_cert(open({cert:?}).read())).hexdigest()
print(served, on_disk)
"#,
            port = server.port,
            cert = cert.to_str().unwrap(),
        ))
    };
    let hup = || {
        let status = std::process::Command::new("kill")
            .args(["-HUP", &server.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        std::thread::sleep(Duration::from_millis(300));
    };
    let first = fingerprints();
    let (served, on_disk) = first.trim().split_once(' ').unwrap();
    assert_eq!(served, on_disk);
    let _ = certificate(dir.path()); // renewed on disk
    hup();
    let second = fingerprints();
    let (served2, on_disk2) = second.trim().split_once(' ').unwrap();
    assert_eq!(served2, on_disk2, "the renewed certificate is served");
    assert_ne!(served2, served);
    std::fs::write(&cert, "not a certificate").unwrap();
    hup();
    let third = common::python(&format!(
        r#"
import hashlib, smtplib, ssl
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with smtplib.SMTP("127.0.0.1", {port}, timeout=10) as s:
    s.starttls(context=ctx)
    print(hashlib.sha256(s.sock.getpeercert(binary_form=True)).hexdigest())
"#,
        port = server.port
    ));
    assert_eq!(
        third.trim(),
        served2,
        "a broken file keeps the certificate in use"
    );
    server.stop_and_check_clean();
}
