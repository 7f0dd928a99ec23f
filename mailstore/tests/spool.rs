//! Group commit through the intake spool: concurrent deliveries, replay after a crash (links
//! lost, records torn), failed flushes, and the settling before a message leaves a mailbox.
//!
//! A crash is simulated by copying the spool's segments while the store runs (the checkpoint
//! is held off), dropping the store, undoing what a crash could undo (links into `new/` that
//! were not yet durable), putting the copied segments back and opening the store again.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mailstore::{FaultHook, FlagOp, Flags, FsOp, MailStore, Mailbox, StoreOptions};
use tempfile::TempDir;

fn options() -> StoreOptions {
    StoreOptions::new()
        .hostname("mx.test")
        .group_commit(true)
        .checkpoint_after(Duration::from_secs(3600))
        // Every message through the spool, the 100 KiB ones too (several copy buffers each).
        .group_commit_max(u64::MAX)
}

fn mb(local: &str) -> Mailbox {
    Mailbox::new("example.com", local).unwrap()
}

fn message(i: usize) -> Vec<u8> {
    let mut m = format!("Message-ID: <{i}@spool.test>\r\nSubject: {i}\r\n\r\n").into_bytes();
    // Sizes from a few bytes to 100 KiB, so records span several copy buffers.
    m.extend(std::iter::repeat_n(
        b'a' + (i % 26) as u8,
        (i * 7919) % 100_000,
    ));
    m.extend_from_slice(b"\r\n");
    m
}

fn deliver(store: &MailStore, rcpts: &[Mailbox], body: &[u8]) -> mailstore::Delivered {
    let mut d = store.begin(rcpts).unwrap();
    for chunk in body.chunks(4096) {
        d.write_all(chunk).unwrap();
    }
    d.commit().unwrap()
}

/// Every message in a mailbox's `new/` and `cur/`: its Message-ID number, with the count.
fn stored(store: &MailStore, m: &Mailbox) -> BTreeMap<usize, Vec<Vec<u8>>> {
    let mut out: BTreeMap<usize, Vec<Vec<u8>>> = BTreeMap::new();
    for sub in ["new", "cur"] {
        let Ok(rd) = fs::read_dir(store.mailbox_dir(m).join(sub)) else {
            continue;
        };
        for e in rd {
            let bytes = fs::read(e.unwrap().path()).unwrap();
            let text = String::from_utf8_lossy(&bytes[..40.min(bytes.len())]).into_owned();
            let n = text["Message-ID: <".len()..].split('@').next().unwrap();
            out.entry(n.parse().unwrap()).or_default().push(bytes);
        }
    }
    out
}

fn segments(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(root.join(".spool"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    v.sort();
    v
}

fn spooled_bytes(root: &Path) -> u64 {
    segments(root)
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum()
}

/// Delivers 40 messages from 8 threads (every fifth to two mailboxes) and returns the store
/// directory, the copied segments, and who got which message.
/// Segment files and their bytes at the moment of the "crash".
type Copies = Vec<(PathBuf, Vec<u8>)>;
/// Who got which message.
type Plan = BTreeMap<usize, Vec<Mailbox>>;

fn spool_and_copy() -> (TempDir, Copies, Plan) {
    let dir = tempfile::tempdir().unwrap();
    let store = MailStore::open_with(dir.path(), options()).unwrap();
    assert!(store.is_group_commit());
    let plan: BTreeMap<usize, Vec<Mailbox>> = (0..40)
        .map(|i| {
            let mut r = vec![mb(&format!("u{}", i % 5))];
            if i % 5 == 0 {
                r.push(mb("shared"));
            }
            (i, r)
        })
        .collect();
    let plan = Arc::new(plan);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (store, plan) = (store.clone(), plan.clone());
            std::thread::spawn(move || {
                for i in (t..40).step_by(8) {
                    deliver(&store, &plan[&i], &message(i));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let copies = segments(dir.path())
        .into_iter()
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    drop(store);
    (dir, copies, Arc::try_unwrap(plan).unwrap())
}

/// Removes every file from the `new/` of these example.com users: the links a power cut lost.
fn empty_new(root: &Path, users: &[&str]) {
    for user in users {
        for e in fs::read_dir(root.join("example.com").join(user).join("new")).unwrap() {
            fs::remove_file(e.unwrap().path()).unwrap();
        }
    }
}

fn put_back(copies: &[(PathBuf, Vec<u8>)]) {
    for (p, bytes) in copies {
        fs::write(p, bytes).unwrap();
    }
}

fn assert_each_once(store: &MailStore, plan: &BTreeMap<usize, Vec<Mailbox>>, skip: &[usize]) {
    let mut want: BTreeMap<Mailbox, Vec<usize>> = BTreeMap::new();
    for (i, rcpts) in plan {
        if !skip.contains(i) {
            for r in rcpts {
                want.entry(r.clone()).or_default().push(*i);
            }
        }
    }
    for (m, ids) in want {
        let got = stored(store, &m);
        assert_eq!(got.keys().copied().collect::<Vec<_>>(), ids, "{m:?}");
        for (i, copies) in got {
            assert_eq!(copies, [message(i)], "{m:?} message {i}");
        }
    }
}

#[test]
fn concurrent_deliveries_are_in_new_and_the_checkpoint_empties_the_spool() {
    let dir = tempfile::tempdir().unwrap();
    let store = MailStore::open_with(dir.path(), options()).unwrap();
    let d = deliver(&store, &[mb("a"), mb("b")], &message(1));
    assert_eq!(d.paths().len(), 2);
    for p in d.paths() {
        assert_eq!(fs::read(p).unwrap(), message(1));
    }
    assert!(d.name().ends_with(&format!(",S={}", message(1).len())));
    assert!(spooled_bytes(dir.path()) > message(1).len() as u64);
    // Nothing stays in tmp/: the message is in new/ (and in the spool).
    assert_eq!(
        fs::read_dir(store.mailbox_dir(&mb("a")).join("tmp"))
            .unwrap()
            .count(),
        0
    );
    store.checkpoint().unwrap();
    assert_eq!(spooled_bytes(dir.path()), 0);
    assert_eq!(segments(dir.path()).len(), 1, "one fresh segment");
    for p in d.paths() {
        assert_eq!(fs::read(p).unwrap(), message(1));
    }
}

#[test]
fn replay_puts_back_every_lost_link_exactly_once_and_twice_changes_nothing() {
    let (dir, copies, plan) = spool_and_copy();
    let store = MailStore::open_with(dir.path(), options().group_commit(false)).unwrap();
    // The crash lost some links; a reader had already moved another message to cur/ with
    // flags (its name changed after the unique part); one survived as it was.
    let mut moved = 0;
    for (n, m) in ["u0", "u1", "u2", "u3", "u4", "shared"].iter().enumerate() {
        let new = store.mailbox_dir(&mb(m)).join("new");
        let mut files: Vec<_> = fs::read_dir(&new)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for (k, f) in files.iter().enumerate() {
            match (k + n) % 3 {
                0 => fs::remove_file(f).unwrap(),
                1 => {
                    let name = f.file_name().unwrap().to_str().unwrap();
                    let to = store
                        .mailbox_dir(&mb(m))
                        .join("cur")
                        .join(format!("{name}:2,S"));
                    fs::rename(f, to).unwrap();
                    moved += 1;
                }
                _ => {}
            }
        }
    }
    assert!(moved > 0);
    drop(store);
    put_back(&copies);
    let store = MailStore::open_with(dir.path(), options()).unwrap();
    assert_each_once(&store, &plan, &[]);
    assert_eq!(
        spooled_bytes(dir.path()),
        0,
        "the replayed segments are gone"
    );
    drop(store);
    // A crash during the replay left the segments again: the second replay adds nothing.
    put_back(&copies);
    let store = MailStore::open_with(dir.path(), options()).unwrap();
    assert_each_once(&store, &plan, &[]);
}

#[test]
fn a_torn_or_damaged_record_is_ignored_with_everything_after_it() {
    let (dir, copies, plan) = spool_and_copy();
    // All links lost; the segment cut in the middle of its last record.
    empty_new(dir.path(), &["u0", "u1", "u2", "u3", "u4", "shared"]);
    let (path, bytes) = copies.last().unwrap();
    let last = {
        // The last record's message: the one whose body ends the segment.
        let tail =
            String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(200_000)..]).into_owned();
        let at = tail.rfind("Message-ID: <").unwrap();
        tail[at + 13..]
            .split('@')
            .next()
            .unwrap()
            .parse::<usize>()
            .unwrap()
    };
    fs::write(path, &bytes[..bytes.len() - 3]).unwrap();
    let store = MailStore::open_with(dir.path(), options()).unwrap();
    assert_each_once(&store, &plan, &[last]);
    drop(store);

    // A flipped byte in a body: that record and the rest of its segment are not replayed.
    empty_new(dir.path(), &["u0", "u1", "u2", "u3", "u4", "shared"]);
    let mut damaged = bytes.clone();
    let n = damaged.len();
    damaged[n - 2] ^= 1;
    fs::write(path, &damaged).unwrap();
    let store = MailStore::open_with(dir.path(), options()).unwrap();
    assert_each_once(&store, &plan, &[last]);
}

struct Hook<F>(F);
impl<F: Fn(FsOp, &Path) -> io::Result<()> + Send + Sync> FaultHook for Hook<F> {
    fn check(&self, op: FsOp, path: &Path) -> io::Result<()> {
        (self.0)(op, path)
    }
}

fn in_spool(path: &Path) -> bool {
    path.components().any(|c| c.as_os_str() == ".spool")
}

#[test]
fn a_failed_flush_fails_its_deliveries_and_they_never_come_back() {
    let fail = Arc::new(AtomicUsize::new(0));
    let f = fail.clone();
    let dir = tempfile::tempdir().unwrap();
    let hook = Hook(move |op, path: &Path| {
        if op == FsOp::SyncFile && in_spool(path) && f.load(Ordering::SeqCst) > 0 {
            f.fetch_sub(1, Ordering::SeqCst);
            return Err(io::Error::from_raw_os_error(5));
        }
        Ok(())
    });
    let store = MailStore::open_with(dir.path(), options().fault_hook(hook)).unwrap();
    deliver(&store, &[mb("a")], &message(1));
    fail.store(1, Ordering::SeqCst);
    let mut d = store.begin(&[mb("a")]).unwrap();
    d.write_all(&message(2)).unwrap();
    let err = d.commit().unwrap_err();
    assert_eq!(err.io_error().unwrap().raw_os_error(), Some(5), "{err}");
    assert!(!err.is_full());
    // The next delivery goes to a fresh segment and works.
    deliver(&store, &[mb("a")], &message(3));
    let got: Vec<usize> = stored(&store, &mb("a")).into_keys().collect();
    assert_eq!(got, [1, 3]);
    assert_eq!(
        fs::read_dir(store.mailbox_dir(&mb("a")).join("tmp"))
            .unwrap()
            .count(),
        0
    );
    // A crash now: the failed record was cut off, so a replay brings back 1 and 3 only.
    let copies: Vec<_> = segments(dir.path())
        .into_iter()
        .map(|p| {
            let b = fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    drop(store);
    empty_new(dir.path(), &["a"]);
    put_back(&copies);
    let store = MailStore::open_with(dir.path(), options()).unwrap();
    let got: Vec<usize> = stored(&store, &mb("a")).into_keys().collect();
    assert_eq!(got, [1, 3]);
}

#[test]
fn a_full_disk_at_the_spool_is_reported_as_full() {
    let dir = tempfile::tempdir().unwrap();
    let hook = Hook(|op, path: &Path| {
        if op == FsOp::Write && in_spool(path) {
            return Err(io::Error::from(io::ErrorKind::StorageFull));
        }
        Ok(())
    });
    let store = MailStore::open_with(dir.path(), options().fault_hook(hook)).unwrap();
    let mut d = store.begin(&[mb("a")]).unwrap();
    d.write_all(&message(1)).unwrap();
    let err = d.commit().unwrap_err();
    assert!(err.is_full(), "{err}");
    assert!(stored(&store, &mb("a")).is_empty());
    assert_eq!(
        fs::read_dir(store.mailbox_dir(&mb("a")).join("tmp"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(spooled_bytes(dir.path()), 0);
}

#[test]
fn a_link_that_fails_after_the_flush_is_made_by_the_checkpoint() {
    let fail = Arc::new(AtomicUsize::new(0));
    let f = fail.clone();
    let dir = tempfile::tempdir().unwrap();
    let hook = Hook(move |op, _: &Path| {
        if op == FsOp::Link && f.load(Ordering::SeqCst) > 0 {
            f.fetch_sub(1, Ordering::SeqCst);
            return Err(io::Error::from_raw_os_error(5));
        }
        Ok(())
    });
    let store = MailStore::open_with(dir.path(), options().fault_hook(hook)).unwrap();
    // Twice: the first attempt and the retry after making the mailbox again.
    fail.store(2, Ordering::SeqCst);
    let d = deliver(&store, &[mb("a")], &message(1));
    // Durable (the spool has it), so the delivery stands; not in new/ yet.
    assert!(!d.paths()[0].exists());
    store.checkpoint().unwrap();
    assert_eq!(fs::read(&d.paths()[0]).unwrap(), message(1));
    assert_eq!(
        fs::read_dir(store.mailbox_dir(&mb("a")).join("tmp"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(spooled_bytes(dir.path()), 0);
}

#[test]
fn an_expunge_settles_the_spool_first_so_a_replay_cannot_bring_the_message_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = MailStore::open_with(dir.path(), options()).unwrap();
    deliver(&store, &[mb("a")], &message(1));
    deliver(&store, &[mb("a")], &message(2));
    assert!(spooled_bytes(dir.path()) > 0);
    let inbox = store.open_folder(&mb("a"), "INBOX").unwrap();
    let deleted = Flags {
        deleted: true,
        ..Flags::default()
    };
    inbox.store(&[1], FlagOp::Add, &deleted, None).unwrap();
    assert_eq!(inbox.expunge(None).unwrap(), [1]);
    // The spool was emptied before the file went: a crash now replays nothing.
    assert_eq!(spooled_bytes(dir.path()), 0);
    drop(inbox);
    drop(store);
    let store = MailStore::open_with(dir.path(), options()).unwrap();
    let got: Vec<usize> = stored(&store, &mb("a")).into_keys().collect();
    assert_eq!(got, [2]);
}

#[test]
fn one_process_at_a_time_holds_the_spool() {
    let dir = tempfile::tempdir().unwrap();
    let first = MailStore::open_with(dir.path(), options()).unwrap();
    let second = MailStore::open_with(dir.path(), options()).unwrap_err();
    assert!(
        second.to_string().contains("in use by another process"),
        "{second}"
    );
    // Without group commit (a CLI command, an IMAP-only process) the store opens.
    MailStore::open_with(dir.path(), options().group_commit(false)).unwrap();
    drop(first);
    MailStore::open_with(dir.path(), options()).unwrap();
}

#[test]
fn a_message_over_the_limit_takes_its_own_flushes_and_stays_out_of_the_spool() {
    let dir = tempfile::tempdir().unwrap();
    let store = MailStore::open_with(dir.path(), options().group_commit_max(1000)).unwrap();
    let small = deliver(&store, &[mb("a")], &message(0));
    assert!(message(0).len() <= 1000);
    let after_small = spooled_bytes(dir.path());
    assert!(after_small > 0);
    let big = deliver(&store, &[mb("a")], &message(1));
    assert!(message(1).len() > 1000);
    assert_eq!(
        spooled_bytes(dir.path()),
        after_small,
        "the big one is not spooled"
    );
    assert_eq!(fs::read(&big.paths()[0]).unwrap(), message(1));
    assert_eq!(fs::read(&small.paths()[0]).unwrap(), message(0));
}
