//! End-to-end tests of the store against a real file system: every test
//! asserts the exact bytes and names on disk.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use mailstore::{FaultHook, FsOp, MailStore, Mailbox, StoreError, StoreOptions};
use tempfile::TempDir;

const HOST: &str = "mx.example.com";

fn store() -> (TempDir, MailStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = MailStore::open_with(dir.path(), StoreOptions::new().hostname(HOST)).unwrap();
    (dir, store)
}

fn store_with(hook: impl FaultHook + 'static) -> (TempDir, MailStore) {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions::new().hostname(HOST).fault_hook(hook);
    let store = MailStore::open_with(dir.path(), opts).unwrap();
    (dir, store)
}

fn mb(domain: &str, local: &str) -> Mailbox {
    Mailbox::new(domain, local).unwrap()
}

/// Sorted file names in `dir` (empty if it does not exist).
fn names(dir: impl AsRef<Path>) -> Vec<String> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn sub(store: &MailStore, m: &Mailbox, s: &str) -> PathBuf {
    store.mailbox_dir(m).join(s)
}

/// `<secs>.M<usec>P<pid>Q<n>.<host>,S=<size>`, checked field by field.
fn assert_dovecot_name(name: &str, size: usize) {
    let (base, s) = name.rsplit_once(",S=").expect("no ,S= field");
    assert_eq!(s, size.to_string(), "S= is not the real size in {name}");
    let host = format!(".{HOST}");
    let base = base.strip_suffix(&host).expect("host missing");
    let (secs, rest) = base.split_once(".M").expect("no .M");
    let (usec, rest) = rest.split_once('P').expect("no P");
    let (pid, q) = rest.split_once('Q').expect("no Q");
    for (field, v) in [("secs", secs), ("usec", usec), ("pid", pid), ("Q", q)] {
        assert!(
            !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()),
            "{field} {v:?} in {name}"
        );
    }
    assert_eq!(pid, std::process::id().to_string());
    assert!(usec.parse::<u32>().unwrap() < 1_000_000);
}

const MESSAGE: &[&[u8]] = &[
    b"Return-Path: <a@example.org>\r\n",
    b"Subject: test\r\n",
    b"\r\n",
    b"line one\r\n",
    b".dot line\r\n",
    b"\xc3\xa9 and a bare \n and \0 byte\r\n",
];

fn deliver(store: &MailStore, rcpts: &[Mailbox], chunks: &[&[u8]]) -> mailstore::Delivered {
    let mut d = store.begin(rcpts).unwrap();
    for c in chunks {
        d.write_all(c).unwrap();
    }
    d.commit().unwrap()
}

#[test]
fn deliver_to_one_mailbox() {
    let (_dir, store) = store();
    let alice = mb("Example.COM", "alice");
    let expected = MESSAGE.concat();

    let delivered = deliver(&store, std::slice::from_ref(&alice), MESSAGE);

    let new = names(sub(&store, &alice, "new"));
    assert_eq!(new, vec![delivered.name().to_owned()]);
    assert_dovecot_name(&new[0], expected.len());
    assert_eq!(delivered.size(), expected.len() as u64);
    assert_eq!(
        delivered.paths(),
        &[sub(&store, &alice, "new").join(&new[0])]
    );
    assert_eq!(fs::read(&delivered.paths()[0]).unwrap(), expected);
    assert!(names(sub(&store, &alice, "tmp")).is_empty());
    assert!(names(sub(&store, &alice, "cur")).is_empty());
    // Layout: <root>/<domain lowercased>/<local>/{tmp,new,cur}; nothing else.
    assert_eq!(names(store.root()), vec!["example.com"]);
    assert_eq!(names(store.root().join("example.com")), vec!["alice"]);
    assert_eq!(names(store.mailbox_dir(&alice)), vec!["cur", "new", "tmp"]);
}

#[test]
fn deliver_to_several_mailboxes_hard_links_one_file() {
    let (_dir, store) = store();
    let rcpts = [
        mb("example.com", "alice"),
        mb("example.com", "bob"),
        mb("other.example", "carol"),
        mb("EXAMPLE.com", "ALICE"), // the same mailbox again: delivered once
    ];
    let expected = MESSAGE.concat();

    let delivered = deliver(&store, &rcpts, MESSAGE);

    assert_eq!(delivered.paths().len(), 3);
    let mut inodes = HashSet::new();
    for (m, path) in rcpts[..3].iter().zip(delivered.paths()) {
        assert_eq!(
            names(sub(&store, m, "new")),
            vec![delivered.name().to_owned()]
        );
        assert_eq!(path, &sub(&store, m, "new").join(delivered.name()));
        assert_eq!(fs::read(path).unwrap(), expected, "{m}");
        assert!(names(sub(&store, m, "tmp")).is_empty(), "{m}");
        let meta = fs::metadata(path).unwrap();
        assert_eq!(meta.nlink(), 3, "tmp name not removed or links missing");
        inodes.insert(meta.ino());
    }
    assert_eq!(inodes.len(), 1, "not one hard-linked file");
    assert_dovecot_name(delivered.name(), expected.len());
}

#[test]
fn large_message_streams_byte_exact() {
    let (_dir, store) = store();
    let m = mb("example.com", "big");
    // 3 MiB in uneven chunks, well past the write buffer.
    let body: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let mut d = store.begin(std::slice::from_ref(&m)).unwrap();
    for chunk in body.chunks(1000 + 17) {
        d.write_all(chunk).unwrap();
    }
    assert_eq!(d.size(), body.len() as u64);
    let delivered = d.commit().unwrap();
    assert_eq!(fs::read(&delivered.paths()[0]).unwrap(), body);
    assert!(delivered.name().ends_with(&format!(",S={}", body.len())));
}

#[test]
fn empty_message_is_stored_with_size_zero() {
    let (_dir, store) = store();
    let m = mb("example.com", "a");
    let delivered = deliver(&store, &[m], &[]);
    assert!(delivered.name().ends_with(",S=0"));
    assert_eq!(fs::read(&delivered.paths()[0]).unwrap(), b"");
}

#[test]
fn io_write_and_copy_work() {
    let (_dir, store) = store();
    let m = mb("example.com", "a");
    let mut d = store.begin(&[m]).unwrap();
    io::copy(&mut &b"via io::copy\r\n"[..], &mut d).unwrap();
    io::Write::flush(&mut d).unwrap();
    let delivered = d.commit().unwrap();
    assert_eq!(
        fs::read(&delivered.paths()[0]).unwrap(),
        b"via io::copy\r\n"
    );
}

#[test]
fn dropped_delivery_leaves_nothing() {
    let (_dir, store) = store();
    let rcpts = [mb("example.com", "a"), mb("example.com", "b")];
    let mut d = store.begin(&rcpts).unwrap();
    d.write_all(b"partial message\r\n").unwrap();
    let tmp = d.tmp_path().to_owned();
    assert!(tmp.starts_with(sub(&store, &rcpts[0], "tmp")));
    assert!(tmp.is_file());
    drop(d);
    assert!(!tmp.exists());
    for m in &rcpts {
        assert!(names(sub(&store, m, "new")).is_empty(), "{m}");
        assert!(names(sub(&store, m, "tmp")).is_empty(), "{m}");
    }
}

#[test]
fn begin_without_recipients_is_refused() {
    let (_dir, store) = store();
    assert!(matches!(store.begin(&[]), Err(StoreError::NoRecipients)));
}

#[test]
fn clean_tmp_removes_leftovers_only() {
    let (_dir, store) = store();
    let a = mb("example.com", "a");
    let b = mb("other.example", "b");
    let kept = deliver(&store, &[a.clone(), b.clone()], &[b"kept\r\n"]);
    fs::write(sub(&store, &a, "tmp").join("1.M1P1Q1.old"), b"x").unwrap();
    fs::write(sub(&store, &a, "tmp").join("2.M1P1Q1.old"), b"y").unwrap();
    fs::write(sub(&store, &b, "tmp").join("3.M1P1Q1.old"), b"z").unwrap();
    // A Maildir++ folder's tmp/ is cleaned too.
    let sent = store.folder_dir(&a, "Sent").unwrap();
    for s in ["tmp", "new", "cur"] {
        fs::create_dir_all(sent.join(s)).unwrap();
    }
    fs::write(sent.join("tmp").join("4.M1P1Q1.old"), b"w").unwrap();
    fs::write(sent.join("cur").join("5.M1P1Q1.h:2,S"), b"seen").unwrap();
    fs::write(sub(&store, &a, "cur").join("6.M1P1Q1.h:2,"), b"cur").unwrap();

    assert_eq!(store.clean_tmp().unwrap(), 4);

    for m in [&a, &b] {
        assert!(names(sub(&store, m, "tmp")).is_empty(), "{m}");
        assert_eq!(names(sub(&store, m, "new")), vec![kept.name().to_owned()]);
    }
    assert!(names(sent.join("tmp")).is_empty());
    assert_eq!(fs::read(&kept.paths()[0]).unwrap(), b"kept\r\n");
    assert_eq!(fs::read(sent.join("cur/5.M1P1Q1.h:2,S")).unwrap(), b"seen");
    assert_eq!(names(sub(&store, &a, "cur")), vec!["6.M1P1Q1.h:2,"]);
    // Nothing left: a second run removes nothing.
    assert_eq!(store.clean_tmp().unwrap(), 0);
}

#[test]
fn clean_tmp_on_fresh_store_and_stray_files() {
    let (_dir, store) = store();
    assert_eq!(store.clean_tmp().unwrap(), 0);
    // Stray files at domain and mailbox level are not mailboxes: skipped.
    fs::write(store.root().join("stray"), b"").unwrap();
    fs::create_dir(store.root().join("example.com")).unwrap();
    fs::write(store.root().join("example.com/stray"), b"").unwrap();
    assert_eq!(store.clean_tmp().unwrap(), 0);
    assert_eq!(names(store.root()), vec!["example.com", "stray"]);
}

#[test]
fn clean_tmp_older_than_keeps_fresh_files() {
    let (_dir, store) = store();
    let a = mb("example.com", "a");
    drop(store.begin(std::slice::from_ref(&a)).unwrap()); // creates the mailbox
    let tmp = sub(&store, &a, "tmp");
    fs::write(tmp.join("fresh"), b"").unwrap();
    let old = fs::File::create(tmp.join("old")).unwrap();
    old.set_modified(SystemTime::now() - Duration::from_secs(48 * 3600))
        .unwrap();
    drop(old);

    let day_and_half = Duration::from_secs(36 * 3600);
    assert_eq!(store.clean_tmp_older_than(day_and_half).unwrap(), 1);
    assert_eq!(names(&tmp), vec!["fresh"]);
    assert_eq!(store.clean_tmp_older_than(Duration::MAX).unwrap(), 0);
    assert_eq!(store.clean_tmp().unwrap(), 1);
    assert!(names(&tmp).is_empty());
}

#[test]
fn invalid_mailboxes_are_refused() {
    let long_local = "a".repeat(65);
    let long_domain = "d".repeat(256);
    let cases: &[(&str, &str)] = &[
        ("example.com", "../x"),
        ("example.com", ".."),
        ("example.com", "a/b"),
        ("example.com", ".hidden"),
        ("example.com", "a\0b"),
        ("example.com", "a\rb"),
        ("example.com", "a\\b"),
        ("example.com", ""),
        ("example.com", &long_local),
        ("", "a"),
        ("..", "a"),
        ("a/../..", "a"),
        ("exa\nmple", "a"),
        (&long_domain, "a"),
    ];
    for (domain, local) in cases {
        match Mailbox::new(domain, local) {
            Err(e @ StoreError::InvalidMailbox { .. }) => {
                assert!(e.to_string().starts_with("invalid mailbox"), "{e}");
            }
            other => panic!("{domain:?} {local:?} gave {other:?}"),
        }
    }
}

#[test]
fn valid_mailboxes_including_utf8_are_delivered() {
    let (_dir, store) = store();
    let cases = [
        mb("example.com", "j\u{f6}rg"),
        mb("b\u{fc}cher.example", "\u{7528}\u{6237}"),
        mb("example.com", &"x".repeat(64)),
        mb(&"d".repeat(63), "a.b+tag"),
    ];
    for m in &cases {
        let d = deliver(&store, std::slice::from_ref(m), &[b"hi\r\n"]);
        let expected_dir = store.root().join(m.domain()).join(m.local()).join("new");
        assert_eq!(d.paths()[0], expected_dir.join(d.name()));
        assert_eq!(fs::read(&d.paths()[0]).unwrap(), b"hi\r\n");
    }
}

#[test]
fn open_under_a_regular_file_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    fs::write(&file, b"").unwrap();
    for root in [file.join("mail"), file.clone()] {
        let err = MailStore::open(&root).unwrap_err();
        let StoreError::RootUnusable { path, .. } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(path, &root);
        let msg = err.to_string();
        assert!(msg.contains(&*root.to_string_lossy()), "{msg}");
        assert!(msg.contains("writable directory"), "{msg}");
    }
}

#[test]
fn open_read_only_root_fails() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ro");
    fs::create_dir(&root).unwrap();
    fs::set_permissions(&root, fs::Permissions::from_mode(0o500)).unwrap();
    // Root (uid 0) ignores permission bits; then there is nothing to test.
    let can_write = fs::write(root.join("x"), b"").is_ok();
    let result = MailStore::open(&root);
    fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).unwrap();
    if !can_write {
        assert!(matches!(result, Err(StoreError::RootUnusable { .. })));
    }
}

#[test]
fn open_creates_root_and_leaves_no_probe() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("a/b/mail");
    let store = MailStore::open(&root).unwrap();
    assert!(root.is_dir());
    assert!(names(&root).is_empty());
    assert!(store.root().is_absolute());
}

#[test]
fn names_unique_across_many_deliveries() {
    let (_dir, store) = store();
    let m = mb("example.com", "many");
    let mut seen = HashSet::new();
    for i in 0..500 {
        let d = deliver(
            &store,
            std::slice::from_ref(&m),
            &[format!("{i}\r\n").as_bytes()],
        );
        assert!(seen.insert(d.name().to_owned()), "repeated {}", d.name());
    }
    // Concurrent deliveries from clones of the store, on four threads.
    std::thread::scope(|s| {
        for t in 0..4 {
            let store = store.clone();
            let m = m.clone();
            s.spawn(move || {
                for i in 0..100 {
                    deliver(
                        &store,
                        std::slice::from_ref(&m),
                        &[format!("{t}.{i}\r\n").as_bytes()],
                    );
                }
            });
        }
    });
    let new = names(sub(&store, &m, "new"));
    assert_eq!(new.len(), 900);
    assert!(names(sub(&store, &m, "tmp")).is_empty());
    // Every file holds its own message: no name was shared.
    let bodies: HashSet<Vec<u8>> = new
        .iter()
        .map(|n| fs::read(sub(&store, &m, "new").join(n)).unwrap())
        .collect();
    assert_eq!(bodies.len(), 900);
}

#[test]
fn unsafe_mode_still_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let store = MailStore::open_with(dir.path(), StoreOptions::new().fsync(false)).unwrap();
    assert!(!store.is_fsync());
    let m = mb("example.com", "a");
    let d = deliver(&store, &[m], &[b"x"]);
    assert_eq!(fs::read(&d.paths()[0]).unwrap(), b"x");
}

// ---- fault injection ------------------------------------------------------

/// A hook made of a closure.
struct Hook<F>(F);
impl<F: Fn(FsOp, &Path) -> io::Result<()> + Send + Sync> FaultHook for Hook<F> {
    fn check(&self, op: FsOp, path: &Path) -> io::Result<()> {
        (self.0)(op, path)
    }
}

/// Asserts no mailbox below the root has anything in `new/` or `tmp/`.
fn assert_nothing_delivered(store: &MailStore, rcpts: &[Mailbox]) {
    for m in rcpts {
        assert!(names(sub(store, m, "new")).is_empty(), "new/ of {m}");
        assert!(names(sub(store, m, "tmp")).is_empty(), "tmp/ of {m}");
    }
}

#[test]
fn full_disk_on_write_is_full_and_poisons() {
    let (_dir, store) = store_with(Hook(|op, _: &Path| {
        if op == FsOp::Write {
            Err(io::Error::from_raw_os_error(28)) // ENOSPC
        } else {
            Ok(())
        }
    }));
    let m = mb("example.com", "a");
    let mut d = store.begin(std::slice::from_ref(&m)).unwrap();
    let err = d.write_all(b"x").unwrap_err();
    assert!(err.is_full(), "{err:?}");
    assert!(matches!(
        err,
        StoreError::Io {
            op: FsOp::Write,
            ..
        }
    ));
    assert!(matches!(
        d.write_all(b"y"),
        Err(StoreError::Poisoned { .. })
    ));
    let err = d.commit().unwrap_err();
    assert!(matches!(err, StoreError::Poisoned { .. }), "{err:?}");
    assert!(!err.is_full());
    assert_nothing_delivered(&store, &[m]);
}

#[test]
fn quota_exceeded_is_full() {
    let (_dir, store) = store_with(Hook(|op, _: &Path| match op {
        FsOp::Link => Err(io::ErrorKind::QuotaExceeded.into()),
        _ => Ok(()),
    }));
    let m = mb("example.com", "a");
    let mut d = store.begin(std::slice::from_ref(&m)).unwrap();
    d.write_all(b"x").unwrap();
    let err = d.commit().unwrap_err();
    assert!(err.is_full(), "{err:?}");
    assert_eq!(
        io::Error::from(err).kind(),
        io::ErrorKind::QuotaExceeded,
        "kind kept through io::Error"
    );
    assert_nothing_delivered(&store, &[m]);
}

#[test]
fn failing_file_fsync_delivers_nothing() {
    let (_dir, store) = store_with(Hook(|op, _: &Path| match op {
        FsOp::SyncFile => Err(io::Error::from_raw_os_error(5)), // EIO
        _ => Ok(()),
    }));
    let rcpts = [mb("example.com", "a"), mb("example.com", "b")];
    let mut d = store.begin(&rcpts).unwrap();
    d.write_all(b"x").unwrap();
    let err = d.commit().unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Io {
                op: FsOp::SyncFile,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_full());
    assert_nothing_delivered(&store, &rcpts);
}

#[test]
fn failure_on_a_later_recipient_rolls_back_earlier_ones() {
    let (_dir, store) = store_with(Hook(|op, path: &Path| {
        if op == FsOp::Link && path.to_string_lossy().contains("/b/new/") {
            return Err(io::Error::from_raw_os_error(5)); // EIO: no fallback
        }
        Ok(())
    }));
    let rcpts = [
        mb("example.com", "a"),
        mb("example.com", "b"),
        mb("example.com", "c"),
    ];
    let mut d = store.begin(&rcpts).unwrap();
    d.write_all(b"x").unwrap();
    let err = d.commit().unwrap_err();
    assert!(
        matches!(err, StoreError::Io { op: FsOp::Link, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("/b/new/"), "{err}");
    assert_nothing_delivered(&store, &rcpts);
}

#[test]
fn failing_directory_fsync_rolls_back() {
    let (_dir, store) = store();
    let rcpts = [mb("example.com", "a"), mb("example.com", "b")];
    drop(store.begin(&rcpts).unwrap()); // create the mailboxes first
    let hooked = MailStore::open_with(
        store.root(),
        StoreOptions::new().fault_hook(Hook(|op, path: &Path| {
            if op == FsOp::SyncDir && path.ends_with("b/new") {
                return Err(io::Error::from_raw_os_error(5));
            }
            Ok(())
        })),
    )
    .unwrap();
    let mut d = hooked.begin(&rcpts).unwrap();
    d.write_all(b"x").unwrap();
    let err = d.commit().unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Io {
                op: FsOp::SyncDir,
                ..
            }
        ),
        "{err:?}"
    );
    assert_nothing_delivered(&store, &rcpts);
}

#[test]
fn cross_device_link_falls_back_to_copy() {
    let failed = std::sync::Arc::new(AtomicUsize::new(0));
    let count = std::sync::Arc::clone(&failed);
    let (_dir, store) = store_with(Hook(move |op, path: &Path| {
        // The first link into b's new/ crosses devices; the copy's own link
        // (from b's tmp/) then succeeds.
        if op == FsOp::Link
            && path.to_string_lossy().contains("/b/new/")
            && count.fetch_add(1, Ordering::SeqCst) == 0
        {
            return Err(io::Error::from_raw_os_error(18)); // EXDEV
        }
        Ok(())
    }));
    let rcpts = [mb("example.com", "a"), mb("example.com", "b")];
    let expected = MESSAGE.concat();
    let delivered = deliver(&store, &rcpts, MESSAGE);
    assert_eq!(
        failed.load(Ordering::SeqCst),
        2,
        "copy not linked into new/"
    );
    let [pa, pb] = delivered.paths() else {
        panic!("{delivered:?}")
    };
    assert_eq!(fs::read(pa).unwrap(), expected);
    assert_eq!(fs::read(pb).unwrap(), expected);
    let (ma, mb_) = (fs::metadata(pa).unwrap(), fs::metadata(pb).unwrap());
    assert_ne!(ma.ino(), mb_.ino(), "b should hold a copy");
    assert_eq!((ma.nlink(), mb_.nlink()), (1, 1));
    assert_eq!(pb.file_name(), pa.file_name(), "same name in every new/");
    for m in &rcpts {
        assert!(names(sub(&store, m, "tmp")).is_empty(), "tmp/ of {m}");
    }
}

#[test]
fn vanished_folder_fails_and_rolls_back() {
    // The hook removes b's new/ right before the link into it, as if an
    // administrator deleted the mailbox mid-delivery.
    let fired = AtomicUsize::new(0);
    let (_dir, store) = store_with(Hook(move |op, path: &Path| {
        if op == FsOp::Link
            && path.to_string_lossy().contains("/b/new/")
            && fired.fetch_add(1, Ordering::SeqCst) == 0
        {
            fs::remove_dir(path.parent().unwrap()).unwrap();
        }
        Ok(())
    }));
    let rcpts = [mb("example.com", "a"), mb("example.com", "b")];
    let mut d = store.begin(&rcpts).unwrap();
    d.write_all(b"x").unwrap();
    let err = d.commit().unwrap_err();
    let io_kind = err.io_error().map(io::Error::kind);
    assert_eq!(io_kind, Some(io::ErrorKind::NotFound), "{err:?}");
    assert!(!err.is_full());
    assert_nothing_delivered(&store, &rcpts);
    // The next delivery recreates the missing directory.
    let d = deliver(&store, &rcpts, &[b"again"]);
    assert_eq!(fs::read(&d.paths()[1]).unwrap(), b"again");
}

#[test]
fn failing_mkdir_reports_the_directory() {
    let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
    let log = std::sync::Arc::clone(&seen);
    let (_dir, store) = store_with(Hook(move |op, path: &Path| {
        log.lock().unwrap().push((op, path.to_owned()));
        if op == FsOp::CreateDir && path.ends_with("new") {
            return Err(io::Error::from_raw_os_error(28));
        }
        Ok(())
    }));
    let m = mb("example.com", "a");
    let err = store.begin(std::slice::from_ref(&m)).unwrap_err();
    assert!(err.is_full());
    let StoreError::Io { op, path, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!((*op, path), (FsOp::CreateDir, &sub(&store, &m, "new")));
    // Directories are made durable as they are created: the root's entry
    // for the domain, the domain's entry for the mailbox.
    let log = seen.lock().unwrap();
    let syncs: Vec<&PathBuf> = log
        .iter()
        .filter(|(op, _)| *op == FsOp::SyncDir)
        .map(|(_, p)| p)
        .collect();
    assert_eq!(syncs, vec![store.root(), &store.root().join("example.com")]);
}
