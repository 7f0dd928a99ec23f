//! `buzon send` with real names and real address-book exports, end to end: a real `buzon serve`
//! receives every row once under each runtime, and Python's `email` package with its default
//! policy (what countless scripts and archivers read mail with) reads every display name and
//! subject back exactly.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Server, python, read_new};

const TEMPLATE: &str = "From: Buzón News <news@example.org>\nTo: {{ name }} <{{ email }}>\nSubject: Hola {{ name }}, tu código\n\nHola {{ name }},\nhere is your code.\n";

/// What a name becomes in a header: each run of whitespace one space.
fn one_line(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn long_accented_name() -> String {
    let name = "María de los Ángeles Ñúñez-Gómez Fernández de Córdoba y Álvarez de Toledo, \
                Duquesa de Alba de Tormes, Condesa-Duquesa de Olivares, Señora de Éibar y Almadén";
    assert!(name.chars().count() >= 150, "{}", name.chars().count());
    name.to_owned()
}

/// `buzon send --no-dry-run` with `extra` flags.
fn send(csv: &Path, tmpl: &Path, port: u16, extra: &[&str]) -> Output {
    let mut args = vec!["--no-dry-run"];
    args.extend_from_slice(extra);
    common::send(csv, tmpl, port, &args)
}

fn assert_success(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Checks with Python that each user's one message has the expected display name in `To` and
/// the expected subject. `expected` holds (user, name, subject).
fn python_reads_back(storage: &Path, dir: &Path, expected: &[(String, String, String)]) {
    let mut lines = String::new();
    for (user, name, subject) in expected {
        let files = read_new(storage, "example.com", user);
        assert_eq!(files.len(), 1, "{user} has {} messages", files.len());
        let path = storage
            .join("example.com")
            .join(user)
            .join("new")
            .join(&files[0].0);
        lines.push_str(&format!("{}\t{name}\t{subject}\n", path.display()));
    }
    let list = dir.join("expected.tsv");
    std::fs::write(&list, lines).unwrap();
    let out = python(&format!(
        r#"
import email, email.policy, sys
bad = 0
rows = open({list:?}, encoding="utf-8").read().splitlines()
for line in rows:
    path, name, subject = line.split("\t")
    msg = email.message_from_bytes(open(path, "rb").read(), policy=email.policy.default)
    to = msg["To"].addresses
    got = (len(to), to[0].display_name, to[0].addr_spec.split("@")[0], str(msg["Subject"]))
    want = (1, name, path.split("/")[-3], subject)
    if got != want:
        bad += 1
        print("MISMATCH", repr(got), "!=", repr(want))
    sender = msg["From"].addresses[0].display_name
    if sender != "Buzón News":
        bad += 1
        print("MISMATCH From", repr(sender))
print("checked", len(rows), "bad", bad)
"#,
        list = list.display().to_string()
    ));
    assert!(
        out.ends_with(&format!("checked {} bad 0\n", expected.len())),
        "{out}"
    );
}

fn real_names(runtime: &str) {
    let server = Server::start(runtime, &[]);
    let dir = tempfile::tempdir().unwrap();
    let names = [
        "Smith, John".to_owned(),
        "Zoë \"Zed\" O'Brien".to_owned(),
        "李小龍".to_owned(),
        "Ada (the first)".to_owned(),
        long_accented_name(),
        "Bob\r\nBcc: x@example.com".to_owned(),
        "Re: Bob; Dept: Sales".to_owned(),
        "back\\slash <not@an.address>".to_owned(),
        "=?utf-8?q?looks_encoded?=".to_owned(),
    ];
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["email", "name"]).unwrap();
    for (i, name) in names.iter().enumerate() {
        w.write_record([format!("u{i}@example.com"), name.clone()])
            .unwrap();
    }
    let csv = dir.path().join("names.csv");
    std::fs::write(&csv, w.into_inner().unwrap()).unwrap();
    let tmpl = dir.path().join("t.tmpl");
    std::fs::write(&tmpl, TEMPLATE).unwrap();

    let out = send(&csv, &tmpl, server.port, &["--runtime", runtime]);
    let stdout = assert_success(&out);
    assert!(
        stdout.contains(&format!("sent {},", names.len())),
        "{stdout}"
    );

    let expected: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let name = one_line(name);
            let subject = format!("Hola {name}, tu código");
            (format!("u{i}"), name, subject)
        })
        .collect();
    python_reads_back(&server.storage, dir.path(), &expected);
    assert!(
        read_new(&server.storage, "example.com", "x").is_empty(),
        "the name's Bcc line got mail"
    );

    // A second identical run sends nothing.
    let again = send(&csv, &tmpl, server.port, &["--runtime", runtime]);
    let stdout = assert_success(&again);
    assert!(stdout.contains("nothing to send"), "{stdout}");
    python_reads_back(&server.storage, dir.path(), &expected);
    server.stop_and_check_clean();
}

#[test]
fn real_names_arrive_intact_over_smol() {
    real_names("smol");
}

#[test]
fn real_names_arrive_intact_over_mio() {
    real_names("mio");
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mailmerge/tests/fixtures")
        .join(name)
}

/// Each export-shaped CSV sends to every row with no flag, and Python reads each name back.
#[test]
fn address_book_exports_send_with_no_flags() {
    let exports: [(&str, &[(&str, &str)]); 6] = [
        (
            "outlook.csv",
            &[
                ("john.smith", "John Smith"),
                ("zoe", "Zoë O'Brien"),
                ("ada", "Ada King Lovelace"),
            ],
        ),
        (
            "google.csv",
            &[
                ("bruce", "李 小龍"),
                ("zoe", "Zoë O'Brien"),
                ("mj", "María José Ñúñez de la Peña"),
            ],
        ),
        (
            "thunderbird.csv",
            &[
                ("john.smith", "Smith, John"),
                ("ada", "Ada (the first)"),
                ("grace", "Grace Hopper"),
            ],
        ),
        (
            "excel-es-1252.csv",
            &[
                ("jose", "José Ñúñez"),
                ("zoe", "Zoë \"Zed\" O'Brien"),
                ("smith", "Smith, John"),
            ],
        ),
        (
            "excel-unicode.txt",
            &[("bruce", "李小龍"), ("zoe", "Zoë \"Zed\" O'Brien")],
        ),
        (
            "excel-utf8-bom.csv",
            &[
                ("bruce", "李小龍"),
                ("smith", "Smith, John"),
                ("ada", "Ada (the first)"),
            ],
        ),
    ];
    for (file, people) in exports {
        // Each export to a server of its own, so every user has one message to check.
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join(file);
        std::fs::copy(fixture(file), &csv).unwrap();
        let tmpl = dir.path().join("t.tmpl");
        std::fs::write(&tmpl, TEMPLATE).unwrap();
        let server = Server::start("smol", &[]);
        let out = send(&csv, &tmpl, server.port, &[]);
        let stdout = assert_success(&out);
        assert!(
            stdout.contains(&format!("sent {},", people.len())),
            "{file}: {stdout}"
        );
        let expected: Vec<_> = people
            .iter()
            .map(|(user, name)| {
                (
                    (*user).to_owned(),
                    (*name).to_owned(),
                    format!("Hola {name}, tu código"),
                )
            })
            .collect();
        python_reads_back(&server.storage, dir.path(), &expected);
        server.stop_and_check_clean();
    }
}

/// The errors that remain say what is wrong and what to do.
#[test]
fn csv_errors_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let tmpl = dir.path().join("t.tmpl");
    std::fs::write(&tmpl, TEMPLATE).unwrap();
    let run = |csv_text: &[u8], extra: &[&str]| {
        let csv = dir.path().join("r.csv");
        std::fs::write(&csv, csv_text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_buzon"))
            .arg("send")
            .arg("--csv")
            .arg(&csv)
            .arg("--template")
            .arg(&tmpl)
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let (code, _, err) = run(b"email;name\na@example.com;A\n", &["--delimiter", ","]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains(r#"found one column "email;name": is the file separated by semicolons? try --delimiter ';'"#),
        "{err}"
    );

    let (code, _, err) = run(b"id,phone\n1,2\n", &[]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("--email-column") && err.contains(r#""id", "phone""#),
        "{err}"
    );

    let (code, out, err) = run(
        b"Correo,Nom\na@example.com,Jos\xe9\nnot-an-address,B\n",
        &["--email-column", "correo", "--name-column", "NOM"],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(err.contains("read as Windows-1252"), "{err}");
    assert!(
        err.contains(r#"line 3: column "Correo": "not-an-address" is not an email address: no @ in address (row skipped)"#),
        "{err}"
    );
    assert!(
        out.contains("To: =?utf-8?b?Sm9zw6k=?= <a@example.com>"),
        "{out}"
    );
    assert!(
        out.contains(r#"1 row(s), 1 skipped; windows-1252, ','-separated; addresses from "Correo", names from "Nom""#),
        "{out}"
    );

    let (code, _, err) = run(b"email\na@example.com\n", &["--encoding", "klingon"]);
    assert_eq!(code, Some(2));
    assert!(err.contains(r#"unknown encoding "klingon""#), "{err}");

    let (code, _, err) = run(b"email\na@example.com\n", &["--delimiter", "ab"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("is not a delimiter"), "{err}");
}
