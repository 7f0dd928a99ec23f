//! Notices against a real Maildir store: made on delivery, withdrawn when the mail is read
//! or expunged over IMAP, numbered for good across restarts, expired by count, and made by
//! the watch thread without anyone asking.

use std::time::{Duration, Instant};

use mailstore::{FlagOp, Flags, MailStore, Mailbox};
use notices::{NoticeOptions, Notices};
use proptest::prelude::*;

fn deliver(store: &MailStore, to: &Mailbox, subject: &str) {
    let mut d = store.begin(std::slice::from_ref(to)).unwrap();
    d.write_all(
        format!("From: Bob <bob@example.org>\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n")
            .as_bytes(),
    )
    .unwrap();
    d.commit().unwrap();
}

fn options() -> NoticeOptions {
    let mut o = NoticeOptions::new("mx.example.com");
    o.imap = Some(("mx.example.com".into(), 1143));
    o.fsync = false;
    o
}

fn subjects(n: &Notices, m: &Mailbox) -> Vec<(u64, String)> {
    let g = n.group(m).unwrap();
    n.articles(m, g.info.low, g.info.high)
        .unwrap()
        .iter()
        .map(|a| (a.number, a.header("Subject").unwrap_or_default()))
        .collect()
}

fn seen() -> Flags {
    Flags {
        seen: true,
        ..Flags::default()
    }
}

#[test]
fn notices_follow_the_inbox() {
    let dir = tempfile::tempdir().unwrap();
    let store = MailStore::open(dir.path()).unwrap();
    let alice = Mailbox::new("example.com", "alice").unwrap();
    for s in ["one", "two", "three"] {
        deliver(&store, &alice, s);
    }
    let n = Notices::new(store.clone(), options());
    assert_eq!(
        subjects(&n, &alice),
        [
            (1, "New mail from Bob: one".to_owned()),
            (2, "New mail from Bob: two".to_owned()),
            (3, "New mail from Bob: three".to_owned())
        ]
    );
    let article = &n.articles(&alice, 2, 2).unwrap()[0];
    let body = String::from_utf8_lossy(article.body()).into_owned();
    let inbox = store.open_folder(&alice, "INBOX").unwrap();
    let v = inbox.uid_validity();
    assert!(
        body.contains(&format!(
            "Open:    imap://alice%40example.com@mx.example.com:1143/INBOX;UIDVALIDITY={v}/;UID=2\r\n"
        )),
        "{body}"
    );
    assert!(body.ends_with("\r\nbody of two\r\n"), "{body}");
    let id = article.message_id().unwrap();
    assert_eq!(id, "<2.buzon.mail.example-com.alice@mx.example.com>");
    assert_eq!(n.by_message_id(&alice, &id).unwrap().unwrap().number, 2);

    // Read over IMAP: its notice goes; expunged: that one too.
    inbox.store(&[2], FlagOp::Add, &seen(), None).unwrap();
    inbox
        .store(
            &[3],
            FlagOp::Add,
            &Flags {
                deleted: true,
                ..Flags::default()
            },
            None,
        )
        .unwrap();
    inbox.expunge(None).unwrap();
    assert_eq!(
        subjects(&n, &alice),
        [(1, "New mail from Bob: one".to_owned())]
    );
    assert!(n.by_message_id(&alice, &id).unwrap().is_none());
    // Marked unread again: the notice does not come back (it was for new mail).
    inbox.store(&[2], FlagOp::Remove, &seen(), None).unwrap();
    deliver(&store, &alice, "four");
    let g = n.group(&alice).unwrap();
    assert_eq!((g.info.low, g.info.high, g.info.count), (1, 4, 2));
    assert_eq!(g.numbers, [1, 4]);

    // Another process (a restart) reads the same numbering and makes nothing twice.
    drop(n);
    let n = Notices::new(store.clone(), options());
    assert_eq!(n.group(&alice).unwrap().numbers, [1, 4]);
    deliver(&store, &alice, "five");
    assert_eq!(n.group(&alice).unwrap().numbers, [1, 4, 5]);
    assert!(
        n.made_since(&alice, 0)
            .unwrap()
            .contains(&"<5.buzon.mail.example-com.alice@mx.example.com>".to_owned())
    );
}

#[test]
fn mail_already_read_gets_no_notice_and_other_mailboxes_are_apart() {
    let dir = tempfile::tempdir().unwrap();
    let store = MailStore::open(dir.path()).unwrap();
    let (alice, bob) = (
        Mailbox::new("example.com", "alice").unwrap(),
        Mailbox::new("example.org", "bob").unwrap(),
    );
    deliver(&store, &alice, "old");
    store
        .open_folder(&alice, "INBOX")
        .unwrap()
        .store(&[1], FlagOp::Add, &seen(), None)
        .unwrap();
    deliver(&store, &bob, "for bob");
    let n = Notices::new(store, options());
    assert_eq!(n.group(&alice).unwrap().info.count, 0);
    let g = n.group(&alice).unwrap();
    assert_eq!((g.info.low, g.info.high), (1, 0));
    assert_eq!(
        subjects(&n, &bob),
        [(1, "New mail from Bob: for bob".to_owned())]
    );
    // Bob's notice is not alice's, by number or by message-id.
    assert!(n.articles(&alice, 1, 1).unwrap().is_empty());
    assert!(
        n.by_message_id(&alice, "<1.buzon.mail.example-org.bob@mx.example.com>")
            .unwrap()
            .is_none()
    );
}

#[test]
fn only_the_newest_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = MailStore::open(dir.path()).unwrap();
    let alice = Mailbox::new("example.com", "alice").unwrap();
    for i in 0..5 {
        deliver(&store, &alice, &format!("m{i}"));
    }
    let mut o = options();
    o.keep = 3;
    let n = Notices::new(store.clone(), o);
    assert_eq!(n.group(&alice).unwrap().numbers, [1, 2, 3]);
    deliver(&store, &alice, "m5");
    deliver(&store, &alice, "m6");
    let g = n.group(&alice).unwrap();
    assert_eq!(g.numbers, [3, 4, 5]);
    assert_eq!((g.info.low, g.info.high), (3, 5));
}

#[test]
fn the_watch_makes_notices_as_mail_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let store = MailStore::open(dir.path()).unwrap();
    let alice = Mailbox::new("example.com", "alice").unwrap();
    deliver(&store, &alice, "before the start");
    let n = Notices::new(store.clone(), options());
    let posted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = posted.clone();
    n.on_made(move |p| {
        log.lock().unwrap().push(p.article.number);
        Ok(())
    });
    let _watching = n.watch().unwrap();
    deliver(&store, &alice, "after");
    let deadline = Instant::now() + Duration::from_secs(10);
    while posted.lock().unwrap().len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(*posted.lock().unwrap(), [1, 2]);
}

/// What a property step does to the mailbox.
#[derive(Debug, Clone)]
enum Step {
    Deliver,
    Read(u32),
    Expunge(u32),
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => Just(Step::Deliver),
        1 => (1u32..12).prop_map(Step::Read),
        1 => (1u32..12).prop_map(Step::Expunge),
        1 => Just(Step::Restart),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever happens, numbers only grow (across restarts too), and the group holds exactly
    /// one notice for each message that is in the INBOX and unread.
    #[test]
    fn numbers_grow_and_the_group_matches_the_unread_mail(steps in prop::collection::vec(step(), 1..25)) {
        let dir = tempfile::tempdir().unwrap();
        let store = MailStore::open(dir.path()).unwrap();
        let alice = Mailbox::new("example.com", "alice").unwrap();
        let mut n = Notices::new(store.clone(), options());
        let mut highest = 0;
        for s in steps {
            let inbox = store.open_folder(&alice, "INBOX").unwrap();
            match s {
                Step::Deliver => deliver(&store, &alice, "x"),
                Step::Read(uid) => { inbox.store(&[uid], FlagOp::Add, &seen(), None).unwrap(); }
                Step::Expunge(uid) => {
                    inbox.store(&[uid], FlagOp::Add, &Flags { deleted: true, ..Flags::default() }, None).unwrap();
                    inbox.expunge(Some(&[uid])).unwrap();
                }
                Step::Restart => n = Notices::new(store.clone(), options()),
            }
            let g = n.group(&alice).unwrap();
            prop_assert!(g.info.high >= highest, "high went back from {} to {}", highest, g.info.high);
            highest = g.info.high;
            let snap = inbox.sync(false).unwrap();
            let unread: Vec<u32> = snap.messages.iter().filter(|m| !m.flags.seen && !m.flags.deleted).map(|m| m.uid).collect();
            // Each notice's IMAP URL names its message: one notice per unread UID, in order.
            let arts = n.articles(&alice, 1, u64::MAX).unwrap();
            let uids: Vec<u32> = arts
                .iter()
                .map(|a| {
                    let body = String::from_utf8_lossy(a.body()).into_owned();
                    let at = body.find(";UID=").expect("an IMAP URL") + 5;
                    body[at..].split_whitespace().next().unwrap().parse().unwrap()
                })
                .collect();
            prop_assert_eq!(uids, unread);
            prop_assert_eq!(g.numbers.len(), arts.len());
            prop_assert!(arts.windows(2).all(|w| w[0].number < w[1].number));
        }
    }
}
