//! The IMAP index over Maildir: UIDs, flags in file names, mod-sequences, Dovecot's files,
//! several stores (processes) on one tree. Assertions read the bytes on disk.

use std::fs;
use std::path::Path;

use mailstore::{FlagOp, Flags, MailStore, Mailbox, StoreOptions};
use proptest::prelude::*;

fn store(dir: &Path) -> MailStore {
    MailStore::open_with(dir, StoreOptions::new().hostname("test.host").fsync(false)).unwrap()
}

fn alice() -> Mailbox {
    Mailbox::new("example.com", "alice").unwrap()
}

fn deliver(store: &MailStore, text: &str) {
    let mut d = store.begin(&[alice()]).unwrap();
    d.write_all(text.as_bytes()).unwrap();
    d.commit().unwrap();
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn flags(seen: bool, deleted: bool) -> Flags {
    Flags {
        seen,
        deleted,
        ..Flags::default()
    }
}

#[test]
fn delivery_then_select_assigns_uids_and_moves_new_to_cur() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    deliver(&s, "Subject: 1\r\n\r\na\r\n");
    deliver(&s, "Subject: 2\r\n\r\nb\r\n");
    let inbox = s.open_folder(&alice(), "INBOX").unwrap();
    let snap = inbox.sync(true).unwrap();
    let uids: Vec<u32> = snap.messages.iter().map(|m| m.uid).collect();
    assert_eq!(uids, [1, 2]);
    assert_eq!(snap.recent, [1, 2]);
    assert_eq!(snap.messages[0].size, 17);
    let root = dir.path().join("example.com/alice");
    assert!(files(&root.join("new")).is_empty());
    let cur = files(&root.join("cur"));
    assert_eq!(cur.len(), 2);
    assert!(cur.iter().all(|f| f.ends_with(",S=17:2,")), "{cur:?}");
    // The UID list is Dovecot's version 3.
    let list = fs::read_to_string(root.join("dovecot-uidlist")).unwrap();
    let header = list.lines().next().unwrap();
    assert_eq!(header, format!("3 V{} N3", snap.uid_validity));
    assert!(list.lines().nth(1).unwrap().starts_with("1 :"), "{list}");
    // A second select sees nothing recent: \Recent belongs to one session (RFC 3501 2.3.2).
    assert!(inbox.sync(true).unwrap().recent.is_empty());
}

#[test]
fn flags_live_in_file_names_and_bump_modseqs() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    deliver(&s, "Subject: 1\r\n\r\na\r\n");
    deliver(&s, "Subject: 2\r\n\r\nb\r\n");
    let inbox = s.open_folder(&alice(), "INBOX").unwrap();
    let snap = inbox.sync(true).unwrap();
    let base = snap.highest_modseq;
    let kw = Flags {
        seen: true,
        keywords: vec!["$Forwarded".into(), "NonJunk".into()],
        ..Flags::default()
    };
    let stored = inbox.store(&[1], FlagOp::Add, &kw, None).unwrap();
    assert_eq!(stored.updated[0].modseq, base + 1);
    assert_eq!(stored.updated[0].flags, kw);
    let root = dir.path().join("example.com/alice");
    let cur = files(&root.join("cur"));
    assert!(cur.iter().any(|f| f.ends_with(":2,Sab")), "{cur:?}");
    assert_eq!(
        fs::read_to_string(root.join("dovecot-keywords")).unwrap(),
        "0 $Forwarded\n1 NonJunk\n"
    );
    // Storing what is already there changes nothing, modseq included.
    let again = inbox
        .store(&[1], FlagOp::Add, &flags(true, false), None)
        .unwrap();
    assert_eq!(again.updated[0].modseq, base + 1);
    // UNCHANGEDSINCE (RFC 7162 3.1.3).
    let cond = inbox
        .store(&[1, 2], FlagOp::Add, &flags(false, true), Some(base))
        .unwrap();
    assert_eq!(cond.modified, [1]);
    assert_eq!(cond.updated.len(), 1);
    let ch = inbox.changes_since(base).unwrap();
    let uids: Vec<u32> = ch.changed.iter().map(|m| m.uid).collect();
    assert_eq!(uids, [1, 2]);
    assert_eq!(inbox.expunge(None).unwrap(), [2]);
    let ch = inbox.changes_since(base + 2).unwrap();
    assert_eq!(ch.vanished, [2]);
    assert!(ch.changed.is_empty());

    // The state survives a restart: a fresh store reads the same UIDs and mod-sequences.
    let s2 = store(dir.path());
    let again = s2
        .open_folder(&alice(), "INBOX")
        .unwrap()
        .sync(false)
        .unwrap();
    assert_eq!(again.messages, inbox.sync(false).unwrap().messages);
    assert_eq!(
        again.highest_modseq,
        inbox.sync(false).unwrap().highest_modseq
    );
}

#[test]
fn changes_made_by_other_programs_are_noticed() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    deliver(&s, "Subject: 1\r\n\r\na\r\n");
    deliver(&s, "Subject: 2\r\n\r\nb\r\n");
    let inbox = s.open_folder(&alice(), "INBOX").unwrap();
    let snap = inbox.sync(true).unwrap();
    let cur = dir.path().join("example.com/alice/cur");
    let names = files(&cur);
    // Another program (mutt, Dovecot) flags the first and deletes the second.
    fs::rename(
        cur.join(&names[0]),
        cur.join(names[0].replace(":2,", ":2,FS")),
    )
    .unwrap();
    fs::remove_file(cur.join(&names[1])).unwrap();
    let ch = inbox.changes_since(snap.highest_modseq).unwrap();
    assert_eq!(ch.changed.len(), 1);
    assert!(ch.changed[0].flags.seen && ch.changed[0].flags.flagged);
    assert_eq!(ch.vanished, [2]);
    // Mail dropped straight into new/ gets the next UID.
    fs::write(
        dir.path().join("example.com/alice/new/1.dropped.host"),
        "x\r\n",
    )
    .unwrap();
    let ch = inbox.changes_since(ch.highest_modseq).unwrap();
    assert_eq!(ch.changed.iter().map(|m| m.uid).collect::<Vec<_>>(), [3]);
}

#[test]
fn a_dovecot_maildir_keeps_its_uids_and_keywords() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("example.com/alice");
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(root.join(sub)).unwrap();
    }
    fs::write(root.join("cur/1690000000.M1P1.dove,S=2,W=3:2,S"), "a\n").unwrap();
    // Dovecot stores bare LF and gives the CRLF size as W=.
    fs::write(root.join("cur/1690000001.M2P1.dove,S=2,W=3:2,Fb"), "b\n").unwrap();
    fs::write(
        root.join("dovecot-uidlist"),
        "3 V1690000000 N43 G2f3a4b5c6d7e8f90\n17 :1690000000.M1P1.dove,S=2,W=3\n42 W3 :1690000001.M2P1.dove,S=2,W=3\n",
    )
    .unwrap();
    fs::write(root.join("dovecot-keywords"), "0 $Forwarded\n1 $Label1\n").unwrap();
    let s = store(dir.path());
    let snap = s
        .open_folder(&alice(), "INBOX")
        .unwrap()
        .sync(true)
        .unwrap();
    assert_eq!(snap.uid_validity, 1_690_000_000);
    assert_eq!(snap.uid_next, 43);
    let got: Vec<(u32, Flags)> = snap
        .messages
        .iter()
        .map(|m| (m.uid, m.flags.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (17, flags(true, false)),
            (
                42,
                Flags {
                    flagged: true,
                    keywords: vec!["$Label1".into()],
                    ..Flags::default()
                }
            )
        ]
    );
    assert_eq!(snap.messages[0].size, 3, "W= is the size IMAP reports");
    assert_eq!(snap.messages[1].size, 3);
    let inbox = s.open_folder(&alice(), "INBOX").unwrap();
    assert_eq!(
        inbox.open_message(42).unwrap().read_all().unwrap(),
        b"b\r\n",
        "served with CRLF"
    );
    deliver(&s, "new\r\n");
    let snap = s
        .open_folder(&alice(), "INBOX")
        .unwrap()
        .sync(false)
        .unwrap();
    assert_eq!(snap.messages.last().unwrap().uid, 43);
    // What we leave keeps Dovecot's header fields and line format; a new UID is appended, as
    // Dovecot appends them (readers take the next UID from the last line).
    let list = fs::read_to_string(root.join("dovecot-uidlist")).unwrap();
    assert!(
        list.starts_with(
            "3 V1690000000 N43 G2f3a4b5c6d7e8f90\n17 :1690000000.M1P1.dove,S=2,W=3\n42 W3 :1690000001.M2P1.dove,S=2,W=3\n43 :"
        ),
        "{list}"
    );
    assert_eq!(list.lines().count(), 4, "{list}");
}

#[test]
fn two_stores_on_one_tree_never_share_a_uid() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (store(dir.path()), store(dir.path()));
    a.create_folder(&alice(), "Shared").unwrap();
    let threads: Vec<_> = [a, b]
        .into_iter()
        .map(|s| {
            std::thread::spawn(move || {
                let f = s.open_folder(&alice(), "Shared").unwrap();
                (0..20)
                    .map(|i| {
                        let mut m = f.append(&Flags::default(), None).unwrap();
                        m.write_all(format!("Subject: {i}\r\n\r\nx\r\n").as_bytes())
                            .unwrap();
                        m.commit().unwrap()
                    })
                    .collect::<Vec<u32>>()
            })
        })
        .collect();
    let mut all: Vec<u32> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort();
    assert_eq!(all, (1..=40).collect::<Vec<u32>>());
    let fresh = store(dir.path())
        .open_folder(&alice(), "Shared")
        .unwrap()
        .sync(false)
        .unwrap();
    assert_eq!(fresh.messages.len(), 40);
}

#[test]
fn folders_create_rename_delete_and_copy_move() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    deliver(&s, "Subject: 1\r\n\r\na\r\n");
    deliver(&s, "Subject: 2\r\n\r\nb\r\n");
    s.create_folder(&alice(), "Archive").unwrap();
    s.create_folder(&alice(), "Archive.2024").unwrap();
    assert!(
        s.create_folder(&alice(), "Archive")
            .unwrap_err()
            .is_already_exists()
    );
    for bad in ["../bob", "a/b", "/etc", ".hidden", "a..b", "x\0y"] {
        assert!(
            s.create_folder(&alice(), bad)
                .unwrap_err()
                .is_invalid_name(),
            "{bad:?}"
        );
    }
    let inbox = s.open_folder(&alice(), "INBOX").unwrap();
    inbox.sync(true).unwrap();
    inbox
        .store(&[1], FlagOp::Add, &flags(true, false), None)
        .unwrap();
    let archive = s.open_folder(&alice(), "Archive").unwrap();
    assert_eq!(inbox.copy(&[1], &archive).unwrap(), [(1, 1)]);
    assert_eq!(inbox.move_to(&[2], &archive).unwrap(), [(2, 2)]);
    let a = archive.sync(false).unwrap();
    assert_eq!(a.messages.len(), 2);
    assert!(a.messages[0].flags.seen, "flags travel with a copy");
    let i = inbox.sync(false).unwrap();
    assert_eq!(i.messages.iter().map(|m| m.uid).collect::<Vec<_>>(), [1]);

    s.rename_folder(&alice(), "Archive", "Old").unwrap();
    let names: Vec<String> = s
        .folders(&alice())
        .unwrap()
        .into_iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(names, ["INBOX", "Old", "Old.2024"]);
    assert_eq!(
        s.open_folder(&alice(), "Old")
            .unwrap()
            .sync(false)
            .unwrap()
            .messages
            .len(),
        2
    );
    // RFC 3501 6.3.5: renaming INBOX moves its mail and leaves it empty.
    s.rename_folder(&alice(), "INBOX", "Before").unwrap();
    assert!(
        s.open_folder(&alice(), "INBOX")
            .unwrap()
            .sync(false)
            .unwrap()
            .messages
            .is_empty()
    );
    assert_eq!(
        s.open_folder(&alice(), "Before")
            .unwrap()
            .sync(false)
            .unwrap()
            .messages
            .len(),
        1
    );
    s.delete_folder(&alice(), "Old.2024").unwrap();
    assert!(
        s.open_folder(&alice(), "Old.2024")
            .unwrap_err()
            .is_not_found()
    );
    s.subscribe(&alice(), "Old", true).unwrap();
    let subs: Vec<bool> = s
        .folders(&alice())
        .unwrap()
        .iter()
        .map(|f| f.subscribed)
        .collect();
    // INBOX, Before, Old.
    assert_eq!(subs, [false, false, true]);
}

#[test]
fn append_keeps_the_internal_date_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let inbox = s.open_folder(&alice(), "INBOX").unwrap();
    let date = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    let mut a = inbox.append(&flags(true, false), Some(date)).unwrap();
    a.write_all(b"Subject: x\r\n\r\nbody\r\n").unwrap();
    assert_eq!(a.commit().unwrap(), 1);
    let m = &inbox.sync(false).unwrap().messages[0];
    assert_eq!((m.internal_date, m.size, m.flags.seen), (date, 20, true));
    let text = inbox.open_message(1).unwrap().read_all().unwrap();
    assert_eq!(text, b"Subject: x\r\n\r\nbody\r\n");
    // An abandoned APPEND leaves nothing behind.
    let mut a = inbox.append(&Flags::default(), None).unwrap();
    a.write_all(b"partial").unwrap();
    drop(a);
    assert!(files(&dir.path().join("example.com/alice/tmp")).is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// UIDs strictly increase and are never given twice, across expunges and restarts.
    #[test]
    fn uids_only_grow(ops in proptest::collection::vec(0u8..4, 1..30)) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        let mut seen = std::collections::BTreeSet::new();
        let mut last = 0;
        for op in ops {
            match op {
                0 => deliver(&s, "Subject: x\r\n\r\nx\r\n"),
                1 => {
                    let f = s.open_folder(&alice(), "INBOX").unwrap();
                    let uids: Vec<u32> = f.sync(false).unwrap().messages.iter().map(|m| m.uid).collect();
                    f.store(&uids, FlagOp::Add, &flags(false, true), None).unwrap();
                    f.expunge(None).unwrap();
                }
                2 => s = store(dir.path()),
                _ => {
                    let f = s.open_folder(&alice(), "INBOX").unwrap();
                    let mut a = f.append(&Flags::default(), None).unwrap();
                    a.write_all(b"appended\r\n").unwrap();
                    a.commit().unwrap();
                }
            }
            let snap = s.open_folder(&alice(), "INBOX").unwrap().sync(false).unwrap();
            for m in &snap.messages {
                if seen.insert(m.uid) {
                    prop_assert!(m.uid > last, "uid {} after {}", m.uid, last);
                    last = m.uid;
                }
            }
            prop_assert!(snap.uid_next > last);
        }
    }

    /// Flags and keywords survive the trip through a file name.
    #[test]
    fn flags_round_trip_through_names(
        bits in 0u8..32,
        kws in proptest::collection::btree_set("[A-Za-z$][A-Za-z0-9_]{0,8}", 0..5),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let s = store(dir.path());
        deliver(&s, "x\r\n");
        let f = s.open_folder(&alice(), "INBOX").unwrap();
        f.sync(true).unwrap();
        let want = Flags {
            seen: bits & 1 != 0,
            answered: bits & 2 != 0,
            flagged: bits & 4 != 0,
            deleted: bits & 8 != 0,
            draft: bits & 16 != 0,
            keywords: kws.into_iter().collect(),
        };
        f.store(&[1], FlagOp::Replace, &want, None).unwrap();
        let fresh = store(dir.path()).open_folder(&alice(), "INBOX").unwrap().sync(false).unwrap();
        prop_assert_eq!(&fresh.messages[0].flags, &want);
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_file_another_program_drops_into_new_wakes_the_folder_watchers() {
    use std::sync::mpsc;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    s.open_folder(&alice(), "INBOX")
        .unwrap()
        .sync(false)
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let watch = s.watch_folder(&alice(), "INBOX", move || tx.send(()).is_ok());
    let root = dir.path().join("example.com/alice");
    // Not through the store: as procmail or a second server would.
    fs::write(
        root.join("tmp/1800000000.M1P1.other"),
        "Subject: x\r\n\r\ny\r\n",
    )
    .unwrap();
    fs::rename(
        root.join("tmp/1800000000.M1P1.other"),
        root.join("new/1800000000.M1P1.other"),
    )
    .unwrap();
    rx.recv_timeout(Duration::from_secs(5))
        .expect("inotify woke the watcher");
    drop(watch);
    let snap = s
        .open_folder(&alice(), "INBOX")
        .unwrap()
        .sync(false)
        .unwrap();
    assert_eq!(snap.messages.len(), 1);
}

#[test]
fn new_mail_is_recent_for_the_first_read_write_session_told_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    deliver(&s, "Subject: 1\r\n\r\na\r\n");
    let inbox = s.open_folder(&alice(), "INBOX").unwrap();
    let snap = inbox.sync(true).unwrap();
    assert_eq!(snap.recent, [1]);
    deliver(&s, "Subject: 2\r\n\r\nb\r\n");
    // An EXAMINE-ing session looks without claiming...
    let looked = inbox.changes_since(snap.highest_modseq).unwrap();
    assert_eq!(
        looked.changed.iter().map(|m| m.uid).collect::<Vec<_>>(),
        [2]
    );
    assert!(looked.recent.is_empty());
    // ...the first read-write one told of it claims it, and it leaves new/ (RFC 3501 2.3.2).
    let told = inbox.changes_since_claiming(snap.highest_modseq).unwrap();
    assert_eq!(told.recent, [2]);
    assert!(files(&dir.path().join("example.com/alice/new")).is_empty());
    let later = inbox.changes_since_claiming(snap.highest_modseq).unwrap();
    assert!(later.recent.is_empty(), "claimed once");
    assert_eq!(inbox.status().unwrap().recent, 0);
}
