//! Bad flags, config keys, busy ports and unusable storage each give one clear line and exit 2.

mod common;

use std::process::{Command, Output};

fn buzon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_buzon"))
        .args(args)
        .output()
        .unwrap()
}

/// Exit status 2 and exactly one line on stderr containing every one of `needles`.
fn assert_one_line_error(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "want one line, got: {stderr}");
    assert!(lines[0].starts_with("buzon: error: "), "{stderr}");
    for n in needles {
        assert!(lines[0].contains(n), "{n:?} missing from: {stderr}");
    }
}

#[test]
fn unknown_flag() {
    assert_one_line_error(&buzon(&["serve", "--prot", "25"]), &["--prot"]);
}

#[test]
fn bad_port_value() {
    assert_one_line_error(&buzon(&["serve", "-p", "99999"]), &["99999", "--port"]);
}

#[test]
fn bad_runtime() {
    assert_one_line_error(&buzon(&["serve", "--runtime", "tokio"]), &["tokio"]);
}

#[test]
fn bad_domain() {
    assert_one_line_error(
        &buzon(&["serve", "-d", "exa mple.com"]),
        &["--domains", "exa mple.com"],
    );
}

#[test]
fn bad_config_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("buzon.toml");
    std::fs::write(&cfg, "port = 2525\ndomian = [\"x.org\"]\n").unwrap();
    let out = buzon(&["serve", "--config", cfg.to_str().unwrap()]);
    assert_one_line_error(&out, &["buzon.toml", "line 2", "unknown field `domian`"]);
}

#[test]
fn missing_config_file() {
    assert_one_line_error(
        &buzon(&["serve", "--config", "/nonexistent/b.toml"]),
        &["/nonexistent/b.toml"],
    );
}

#[test]
fn busy_port() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = buzon(&["serve", "-p", &port, "-s", dir.path().to_str().unwrap()]);
    assert_one_line_error(&out, &["cannot listen on 127.0.0.1:", "in use"]);
}

#[test]
fn unwritable_storage() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "not a folder").unwrap();
    let storage = file.join("mail");
    let out = buzon(&["serve", "-p", "0", "-s", storage.to_str().unwrap()]);
    assert_one_line_error(&out, &["storage folder", "plain-file"]);
}
