//! `buzon-index` as an append-only log: what a crash may lose and what it may not, torn lines,
//! rewrites, the version 1 file, and UIDs dropped from the UID list by another program.
//! Assertions read the bytes on disk.

use std::fs;
use std::path::{Path, PathBuf};

use mailstore::{FlagOp, Flags, MailStore, Mailbox, StoreOptions};

fn store(dir: &Path) -> MailStore {
    MailStore::open_with(dir, StoreOptions::new().hostname("test.host").fsync(false)).unwrap()
}

fn alice() -> Mailbox {
    Mailbox::new("example.com", "alice").unwrap()
}

fn inbox_dir(dir: &Path) -> PathBuf {
    dir.join("example.com/alice")
}

fn log_of(dir: &Path) -> String {
    fs::read_to_string(inbox_dir(dir).join("buzon-index")).unwrap()
}

/// A folder of `n` delivered messages, selected once.
fn seeded(dir: &Path, n: usize) -> MailStore {
    let s = store(dir);
    for i in 0..n {
        let mut d = s.begin(&[alice()]).unwrap();
        d.write_all(format!("Subject: {i}\r\n\r\nbody\r\n").as_bytes())
            .unwrap();
        d.commit().unwrap();
    }
    s.open_folder(&alice(), "INBOX")
        .unwrap()
        .sync(true)
        .unwrap();
    s
}

fn seen() -> Flags {
    Flags {
        seen: true,
        ..Flags::default()
    }
}

#[test]
fn a_flag_change_appends_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let s = seeded(dir.path(), 3);
    let inbox = s.open_folder(&alice(), "INBOX").unwrap();
    // The first change above the last durable ceiling writes a new one (and syncs)...
    inbox.store(&[1], FlagOp::Add, &seen(), None).unwrap();
    assert!(log_of(dir.path()).ends_with(&format!("c {}\n", 5 + 1024)));
    // ...the next ones below it are one line each.
    let before = log_of(dir.path());
    let stored = inbox.store(&[2], FlagOp::Add, &seen(), None).unwrap();
    let after = log_of(dir.path());
    let modseq = stored.updated[0].modseq;
    assert!(after.starts_with(&before), "appended, not rewritten");
    assert_eq!(&after[before.len()..], format!("m 2 {modseq} S\n"));
}

#[test]
fn a_crash_that_loses_unsynced_lines_never_takes_highestmodseq_back() {
    let dir = tempfile::tempdir().unwrap();
    let s = seeded(dir.path(), 3);
    let inbox = s.open_folder(&alice(), "INBOX").unwrap();
    inbox.store(&[1], FlagOp::Add, &seen(), None).unwrap();
    let synced = log_of(dir.path());
    let last_ceiling = synced.rfind("\nc ").expect("a ceiling was written");
    assert!(!synced[last_ceiling..].contains("\ns\n"));
    // Changes after the ceiling are written without an fsync...
    inbox.store(&[2], FlagOp::Add, &seen(), None).unwrap();
    let stored = inbox.store(&[3], FlagOp::Add, &seen(), None).unwrap();
    let shown = inbox.status().unwrap().highest_modseq;
    assert_eq!(stored.updated[0].modseq, shown);
    let unsynced = log_of(dir.path());
    assert!(unsynced.len() > synced.len());
    // ...so a crash may lose them: the process dies (no handle is dropped) and the file is
    // cut back to what the last fsync made durable.
    std::mem::forget(inbox);
    std::mem::forget(s);
    fs::write(inbox_dir(dir.path()).join("buzon-index"), &synced).unwrap();

    let s = store(dir.path());
    let inbox = s.open_folder(&alice(), "INBOX").unwrap();
    let snap = inbox.sync(false).unwrap();
    assert!(
        snap.highest_modseq >= shown,
        "HIGHESTMODSEQ went back from {shown} to {}",
        snap.highest_modseq
    );
    // The flags on disk are the truth; what the log lost is reported again as a change.
    let changed: Vec<u32> = inbox
        .changes_since(shown)
        .unwrap()
        .changed
        .iter()
        .map(|m| m.uid)
        .collect();
    assert_eq!(changed, [2, 3]);
    assert!(snap.messages.iter().all(|m| m.flags.seen));
}

#[test]
fn a_clean_close_marks_the_log_synced_and_reopening_does_not_jump() {
    let dir = tempfile::tempdir().unwrap();
    let s = seeded(dir.path(), 2);
    let inbox = s.open_folder(&alice(), "INBOX").unwrap();
    inbox.store(&[1], FlagOp::Add, &seen(), None).unwrap();
    let highest = inbox.status().unwrap().highest_modseq;
    let again = s.open_folder(&alice(), "INBOX").unwrap();
    assert_eq!(again.status().unwrap().highest_modseq, highest);
    drop((inbox, again));
    // The store keeps recently used folders loaded; they are synced when it goes.
    drop(s);
    assert!(
        log_of(dir.path()).ends_with("\ns\n"),
        "{}",
        log_of(dir.path())
    );
    let s = store(dir.path());
    let inbox = s.open_folder(&alice(), "INBOX").unwrap();
    assert_eq!(inbox.status().unwrap().highest_modseq, highest);
}

#[test]
fn after_a_clean_close_the_next_change_writes_a_ceiling_first() {
    let dir = tempfile::tempdir().unwrap();
    let s = seeded(dir.path(), 2);
    let inbox = s.open_folder(&alice(), "INBOX").unwrap();
    inbox.store(&[1], FlagOp::Add, &seen(), None).unwrap();
    drop((inbox, s));
    assert!(log_of(dir.path()).ends_with("\ns\n"));
    let s = store(dir.path());
    let inbox = s.open_folder(&alice(), "INBOX").unwrap();
    let stored = inbox.store(&[2], FlagOp::Add, &seen(), None).unwrap();
    let m = stored.updated[0].modseq;
    assert!(
        log_of(dir.path()).ends_with(&format!("m 2 {m} S\nc {}\n", m + 1024)),
        "{}",
        log_of(dir.path())
    );
}

#[test]
fn a_torn_last_line_is_cut_before_the_next_append() {
    let dir = tempfile::tempdir().unwrap();
    let s = seeded(dir.path(), 2);
    drop(s);
    let path = inbox_dir(dir.path()).join("buzon-index");
    let mut text = log_of(dir.path());
    text.push_str("m 1 99999 FS");
    fs::write(&path, &text).unwrap();

    let s = store(dir.path());
    let inbox = s.open_folder(&alice(), "INBOX").unwrap();
    let stored = inbox.store(&[2], FlagOp::Add, &seen(), None).unwrap();
    assert!(
        stored.updated[0].modseq < 99999,
        "the torn line was not taken"
    );
    let log = log_of(dir.path());
    assert!(!log.contains("99999"), "{log}");
    assert!(log.ends_with('\n'));
    // Every line reads back: a fresh store agrees with the first.
    let modseqs = |s: &MailStore| -> Vec<(u32, u64)> {
        let snap = s
            .open_folder(&alice(), "INBOX")
            .unwrap()
            .sync(false)
            .unwrap();
        snap.messages.iter().map(|m| (m.uid, m.modseq)).collect()
    };
    let mine = modseqs(&s);
    assert_eq!(modseqs(&store(dir.path())), mine);
}

#[test]
fn the_log_is_rewritten_when_it_outgrows_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let s = seeded(dir.path(), 4);
    let inbox = s.open_folder(&alice(), "INBOX").unwrap();
    let mut highest = 0;
    for i in 0..3000u32 {
        let op = if (i / 4) % 2 == 0 {
            FlagOp::Add
        } else {
            FlagOp::Remove
        };
        let stored = inbox.store(&[i % 4 + 1], op, &seen(), None).unwrap();
        let m = stored.updated[0].modseq;
        assert!(m > highest, "mod-sequences only grow");
        highest = m;
    }
    let lines = log_of(dir.path()).lines().count();
    assert!(lines <= 2 * 4 + 1024 + 16, "{lines} lines for 4 messages");
    drop(inbox);
    drop(s);
    let snap = store(dir.path())
        .open_folder(&alice(), "INBOX")
        .unwrap()
        .sync(false)
        .unwrap();
    assert_eq!(snap.highest_modseq, highest);
}

#[test]
fn a_version_1_file_keeps_its_mod_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let s = seeded(dir.path(), 2);
    let snap = s
        .open_folder(&alice(), "INBOX")
        .unwrap()
        .sync(false)
        .unwrap();
    drop(s);
    let v = snap.uid_validity;
    fs::write(
        inbox_dir(dir.path()).join("buzon-index"),
        format!("buzon-index 1\nV {v} M 500 R 3 T 0\nm 1 400\nm 2 450\nx 7 500\n"),
    )
    .unwrap();
    let s = store(dir.path());
    let inbox = s.open_folder(&alice(), "INBOX").unwrap();
    let snap = inbox.sync(false).unwrap();
    let got: Vec<(u32, u64)> = snap.messages.iter().map(|m| (m.uid, m.modseq)).collect();
    assert_eq!(got, [(1, 400), (2, 450)]);
    assert_eq!(snap.highest_modseq, 500);
    assert_eq!(inbox.changes_since(450).unwrap().vanished, [7]);
    inbox.store(&[1], FlagOp::Add, &seen(), None).unwrap();
    assert!(log_of(dir.path()).starts_with("buzon-index 2 V"));
}

#[test]
fn a_uid_dropped_from_the_uid_list_by_another_program_is_reported_vanished() {
    let dir = tempfile::tempdir().unwrap();
    let s = seeded(dir.path(), 3);
    let inbox = s.open_folder(&alice(), "INBOX").unwrap();
    let since = inbox.status().unwrap().highest_modseq;
    // Another program expunges message 2 and rewrites the UID list without it.
    let root = inbox_dir(dir.path());
    let list = fs::read_to_string(root.join("dovecot-uidlist")).unwrap();
    let (mut kept, mut doomed) = (String::new(), String::new());
    for line in list.lines() {
        if line.starts_with("2 ") {
            doomed = line.split_once(':').unwrap().1.to_owned();
        } else {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    for entry in fs::read_dir(root.join("cur")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().starts_with(&doomed) {
            fs::remove_file(entry.path()).unwrap();
        }
    }
    fs::write(root.join("dovecot-uidlist.new"), kept).unwrap();
    fs::rename(
        root.join("dovecot-uidlist.new"),
        root.join("dovecot-uidlist"),
    )
    .unwrap();
    let changes = inbox.changes_since(since).unwrap();
    assert_eq!(changes.vanished, [2]);
    assert!(changes.highest_modseq > since);
}
