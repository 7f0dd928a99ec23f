//! Starting the built `buzon` binary for a test, and reading Maildir back.

#![allow(dead_code, unreachable_pub)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `buzon serve` on a free port with its own storage folder.
pub struct Server {
    pub child: Child,
    pub port: u16,
    /// The submission ports: STARTTLS, implicit TLS.
    pub submission: u16,
    pub submissions: u16,
    /// The IMAP ports: STARTTLS, implicit TLS.
    pub imap: u16,
    pub imaps: u16,
    /// The NNTP ports: STARTTLS, implicit TLS.
    pub nntp: u16,
    pub nntps: u16,
    pub storage: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts `buzon serve` for example.com under `runtime`, with extra flags.
    pub fn start(runtime: &str, extra: &[&str]) -> Server {
        Server::start_in(tempfile::tempdir().unwrap(), runtime, extra)
    }

    /// Like [`start`](Server::start), in `dir` (its `mail/` may be prepared already, with
    /// [`user_add`], say).
    pub fn start_in(dir: tempfile::TempDir, runtime: &str, extra: &[&str]) -> Server {
        Server::start_in_env(dir, runtime, extra, &[])
    }

    /// Like [`start_in`](Server::start_in), with variables set in the server's environment.
    pub fn start_in_env(
        dir: tempfile::TempDir,
        runtime: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let storage = dir.path().join("mail");
        let log_path = dir.path().join("server.log");
        // Free ports are found by binding and letting go, so a test running beside this one
        // can take one first: start again on other ports when that happens.
        for _ in 0..5 {
            let port = free_port();
            let (submission, submissions) = (free_port(), free_port());
            let (imap, imaps) = (free_port(), free_port());
            let (nntp, nntps) = (free_port(), free_port());
            // Logs go to a file: a pipe nobody reads fills up and blocks the server.
            let log = std::fs::File::create(&log_path).unwrap();
            let mut child = Command::new(env!("CARGO_BIN_EXE_buzon"))
                .args([
                    "serve",
                    "-d",
                    "example.com",
                    "-p",
                    &port.to_string(),
                    "--hostname",
                    "mx.test",
                ])
                .arg("-s")
                .arg(&storage)
                .args(["--runtime", runtime])
                .args(["--submission-port", &submission.to_string()])
                .args(["--submissions-port", &submissions.to_string()])
                .args(["--imap", &imap.to_string(), "--imaps", &imaps.to_string()])
                .args(["--nntp", &nntp.to_string(), "--nntps", &nntps.to_string()])
                .args(extra)
                .envs(env.iter().copied())
                .stdout(Stdio::null())
                .stderr(Stdio::from(log))
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Server {
                        child,
                        port,
                        submission,
                        submissions,
                        imap,
                        imaps,
                        nntp,
                        nntps,
                        storage,
                        _dir: dir,
                    };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "server did not start on port {port}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            assert!(log.contains("in use"), "server exited at start:\n{log}");
        }
        panic!("no free ports after 5 tries");
    }

    /// Sends SIGKILL and gives back the folder, to start again over the same storage.
    pub fn kill_keep_dir(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let placeholder = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self._dir, placeholder)
    }

    /// Sends SIGTERM, expects exit status 0, and checks no tmp/ file is left behind.
    pub fn stop_and_check_clean(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let status = self.child.wait().unwrap();
        let stderr =
            std::fs::read_to_string(self._dir.path().join("server.log")).unwrap_or_default();
        assert!(status.success(), "exit {status:?}; stderr:\n{stderr}");
        for domain in std::fs::read_dir(&self.storage).into_iter().flatten() {
            let domain = domain.unwrap().path();
            if !domain.is_dir() {
                continue; // the users file
            }
            for mailbox in std::fs::read_dir(domain).unwrap() {
                let tmp = mailbox.unwrap().path().join("tmp");
                if !tmp.is_dir() {
                    continue; // tls/cert.pem and the like
                }
                assert_eq!(
                    std::fs::read_dir(&tmp).unwrap().count(),
                    0,
                    "{tmp:?} not empty"
                );
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `buzon user add ADDRESS -s STORAGE` with `password` on stdin; returns its output.
pub fn user_add(storage: &Path, address: &str, password: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_buzon"))
        .args(["user", "add", address, "-s"])
        .arg(storage)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{password}").unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "server did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a Python script, returning its stdout; panics with its stderr if it fails.
pub fn python(script: &str) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The files in `<storage>/<domain>/<user>/new`, as (name, bytes), sorted by name.
pub fn read_new(storage: &Path, domain: &str, user: &str) -> Vec<(String, Vec<u8>)> {
    let dir = storage.join(domain).join(user).join("new");
    let mut files: Vec<(String, Vec<u8>)> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().into_string().unwrap(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

/// Runs `buzon send` with `csv` and `tmpl` against the server on `port` (EHLO `sender.test`),
/// plus `extra` flags; dry run unless `extra` says `--no-dry-run`.
pub fn send(csv: &Path, tmpl: &Path, port: u16, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_buzon"))
        .arg("send")
        .arg("--csv")
        .arg(csv)
        .arg("--template")
        .arg(tmpl)
        .args([
            "--server",
            &format!("127.0.0.1:{port}"),
            "--helo",
            "sender.test",
        ])
        // Plain unless the test is about TLS: the server's certificate is self-signed.
        .args(if extra.contains(&"--tls") {
            &[][..]
        } else {
            &["--tls", "none"][..]
        })
        .args(extra)
        .output()
        .unwrap()
}
