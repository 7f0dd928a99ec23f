//! Two sessions on one mailbox: what one does reaches the other at the moments RFC 3501
//! section 7 allows, and IDLE hears of a delivery at once.
// A test reads the clock once for its starting point; everything after is relative to it.
#![allow(clippy::disallowed_methods)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use imap_core::transcript::{MemoryHost, MemoryStore};
use imap_core::{Flags, ServerConfig, ServerSession};
use session_api::Session;

struct Client {
    session: ServerSession,
    host: MemoryHost,
}

impl Client {
    fn new(store: &MemoryStore, now: Instant) -> Client {
        let mut config = ServerConfig::new("mx.example.com");
        config.plaintext_auth = true;
        let mut c = Client {
            session: ServerSession::new(Arc::new(config), false, now),
            host: MemoryHost::new(store.clone()),
        };
        c.send("t0 LOGIN alice secret", now);
        c.send("t1 SELECT INBOX", now);
        c
    }

    /// Sends a line, answers every request, returns what the server said.
    fn send(&mut self, line: &str, now: Instant) -> String {
        let input = format!("{line}\r\n");
        let mut used = 0;
        for _ in 0..100 {
            used += self.session.handle_input(&input.as_bytes()[used..], now);
            self.host.answer_all(&mut self.session, now);
            if used == input.len() {
                break;
            }
        }
        assert_eq!(used, input.len(), "the session took the whole line");
        self.take()
    }

    fn take(&mut self) -> String {
        let mut out = Vec::new();
        self.session.poll_transmit(&mut out);
        String::from_utf8(out).expect("UTF-8 output")
    }

    /// What a host does on a notice: hand the session the changes since its sync point.
    fn notice(&mut self, now: Instant) -> String {
        let changes = self
            .host
            .changes_for(&self.session)
            .expect("a mailbox is selected");
        self.session.handle_changes(changes, now);
        self.take()
    }
}

fn store_with(n: usize) -> MemoryStore {
    let store = MemoryStore::new();
    store.add_user("alice", "secret");
    for i in 0..n {
        store.deliver(
            "alice",
            "INBOX",
            format!("Subject: {i}\r\n\r\nbody\r\n").as_bytes(),
            Flags::default(),
        );
    }
    store
}

#[test]
fn an_expunge_by_one_session_waits_out_the_others_fetch_store_and_search() {
    let now = Instant::now();
    let store = store_with(3);
    let mut a = Client::new(&store, now);
    let mut b = Client::new(&store, now);
    a.send("a1 STORE 2 +FLAGS.SILENT (\\Deleted)", now);
    assert_eq!(
        a.send("a2 EXPUNGE", now),
        "* 2 EXPUNGE\r\na2 OK EXPUNGE completed\r\n"
    );

    // B hears of it, but FETCH, STORE and SEARCH must not announce the EXPUNGE (7.4.1): B's
    // numbers stay as they were, and message 3 is still number 3.
    assert_eq!(b.notice(now), "");
    let fetched = b.send("b1 FETCH 3 (UID)", now);
    assert_eq!(fetched, "* 3 FETCH (UID 3)\r\nb1 OK FETCH completed\r\n");
    // The expunged message keeps its number but no longer matches anything.
    assert_eq!(
        b.send("b2 SEARCH ALL", now),
        "* SEARCH 1 3\r\nb2 OK SEARCH completed\r\n"
    );
    let stored = b.send("b3 STORE 3 +FLAGS (\\Seen)", now);
    assert_eq!(
        stored,
        "* 3 FETCH (FLAGS (\\Seen))\r\nb3 OK STORE completed\r\n"
    );
    // A UID command may (7.4.1 note); NOOP does.
    assert_eq!(
        b.send("b4 NOOP", now),
        "* 2 EXPUNGE\r\nb4 OK NOOP completed\r\n"
    );
    assert_eq!(
        b.send("b5 FETCH 2 (UID)", now),
        "* 2 FETCH (UID 3)\r\nb5 OK FETCH completed\r\n"
    );

    // A sees B's flag change as an untagged FETCH at its next command.
    assert_eq!(
        a.send("a3 NOOP", now),
        "* 2 FETCH (FLAGS (\\Seen \\Recent))\r\na3 OK NOOP completed\r\n"
    );
}

#[test]
fn idle_hears_a_delivery_and_a_flag_change_at_once() {
    let now = Instant::now();
    let store = store_with(1);
    let mut a = Client::new(&store, now);
    let mut b = Client::new(&store, now);
    assert_eq!(a.send("a1 IDLE", now), "+ idling\r\n");
    store.deliver(
        "alice",
        "INBOX",
        b"Subject: new\r\n\r\nhi\r\n",
        Flags::default(),
    );
    // Message 1 is \Recent in A, which selected first; the new one too, since A is the first
    // session told of it (RFC 3501 2.3.2). B, which hears of it later, never sees it \Recent.
    assert_eq!(a.notice(now), "* 2 EXISTS\r\n* 2 RECENT\r\n");
    assert_eq!(
        b.send("b1 NOOP", now),
        "* 2 EXISTS\r\n* 0 RECENT\r\nb1 OK NOOP completed\r\n"
    );
    b.send("b2 STORE 1 +FLAGS (\\Flagged)", now);
    assert_eq!(a.notice(now), "* 1 FETCH (FLAGS (\\Flagged \\Recent))\r\n");
    assert_eq!(a.send("DONE", now), "a1 OK IDLE terminated\r\n");
}

#[test]
fn idle_polls_its_host_for_changes_no_notice_announced() {
    let now = Instant::now();
    let store = store_with(0);
    let mut a = Client::new(&store, now);
    a.send("a1 IDLE", now);
    store.deliver(
        "alice",
        "INBOX",
        b"Subject: dropped in\r\n\r\nhi\r\n",
        Flags::default(),
    );
    let deadline = a.session.poll_timeout().expect("an IDLE session polls");
    assert!(deadline.at <= now + Duration::from_secs(5));
    a.session.handle_timeout(deadline.at);
    a.host.answer_all(&mut a.session, deadline.at);
    assert_eq!(a.take(), "* 1 EXISTS\r\n* 1 RECENT\r\n");
}

#[test]
fn a_fetch_waits_for_the_output_to_drain_between_chunks() {
    let now = Instant::now();
    let store = MemoryStore::new();
    store.add_user("alice", "secret");
    let big = vec![b'x'; 1024 * 1024];
    store.deliver("alice", "INBOX", &big, Flags::default());
    let mut a = Client::new(&store, now);
    let used = a.session.handle_input(b"f1 FETCH 1 BODY.PEEK[]\r\n", now);
    assert_eq!(used, 24);
    // The host renders a chunk at a time; while the driver holds a large backlog the session
    // asks for no more.
    let mut total = 0;
    let mut rounds = 0;
    loop {
        a.session.handle_output_backlog(10 * 1024 * 1024);
        let asked = a.host.answer_all(&mut a.session, now);
        total += a.take().len();
        rounds += 1;
        if asked.is_empty() {
            // Nothing more while backed up: drain, and the next piece is asked for.
            a.session.handle_output_backlog(0);
            if a.host.answer_all(&mut a.session, now).is_empty() {
                break;
            }
            total += a.take().len();
        }
        assert!(rounds < 10_000);
    }
    assert!(total > big.len(), "the whole body went out");
}
