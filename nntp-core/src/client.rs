//! The posting client: one connection to a news server that posts a batch of articles
//! (RFC 3977 sections 5.3 and 6.3.1, AUTHINFO from RFC 4643), for the external feed.
//!
//! It says MODE READER (a mode-switching server such as INN's innd hands the connection to
//! nnrpd then; a reader server answers 200 or 201 and a transit-only one 5xx, which is
//! tolerated), logs in when it has credentials, then POSTs each article in turn and QUITs.
//! What became of each article is an [`ClientEvent`]; the caller removes from its queue only
//! what was [`Posted`](ClientEvent::Posted) or already there
//! ([`Duplicate`](ClientEvent::Duplicate)), so an article whose answer was lost is posted again
//! and the server's message-id check keeps it from appearing twice.
//!
//! ```
//! use std::time::Instant;
//! use nntp_core::client::{ClientConfig, ClientEvent, PostSession};
//! use session_api::Session;
//!
//! let now = Instant::now();
//! let article = b"Newsgroups: local.test\r\nMessage-ID: <1@x>\r\nSubject: s\r\nFrom: a@b\r\n\r\nbody\r\n".to_vec();
//! let mut c = PostSession::new(ClientConfig::default(), vec![article], now);
//! let mut out = Vec::new();
//! assert_eq!(c.handle_input(b"200 news.example.org ready\r\n", now), 28);
//! c.poll_transmit(&mut out);
//! assert_eq!(out, b"MODE READER\r\n");
//! # out.clear();
//! # let _ = c.handle_input(b"200 ok\r\n", now);
//! # c.poll_transmit(&mut out);
//! # assert_eq!(out, b"POST\r\n");
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use line_protocol::dot::DotEncoder;
use line_protocol::line::{LineReader, Next};
use line_protocol::sasl::Secret;
use session_api::{Deadline, Session, TimerKind};

/// How the client logs in and how long it waits.
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// AUTHINFO USER and PASS, if the server wants a login.
    pub login: Option<(String, Secret)>,
    /// How long to wait for any reply.
    pub reply_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            login: None,
            reply_timeout: Duration::from_secs(60),
        }
    }
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("user", &self.login.as_ref().map(|(u, _)| u))
            .field("reply_timeout", &self.reply_timeout)
            .finish()
    }
}

/// What happened to the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// Article `index` of the batch was accepted (`240`).
    Posted(usize),
    /// The server has it already (`441` naming a duplicate, as INN's `441 435 Duplicate`).
    Duplicate(usize),
    /// The server refused article `index` for good (another `441`): the reply.
    Rejected(usize, String),
    /// The connection cannot post (greeting refused, login refused, posting not allowed,
    /// a timeout, a reply we cannot read): the reply or the reason. The articles not yet
    /// answered stay to be tried again later.
    Failed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Greeting,
    Mode,
    User,
    Pass,
    Post,
    Article,
    Quit,
    Done,
}

/// A client connection posting a batch of articles.
#[derive(Debug)]
pub struct PostSession {
    config: ClientConfig,
    articles: Vec<Vec<u8>>,
    next: usize,
    step: Step,
    reader: LineReader,
    out: Vec<u8>,
    events: VecDeque<ClientEvent>,
    waiting_since: Instant,
}

impl PostSession {
    /// A session that will post `articles` (each a whole article, CRLF line ends, not
    /// dot-stuffed), in order.
    pub fn new(config: ClientConfig, articles: Vec<Vec<u8>>, now: Instant) -> Self {
        PostSession {
            config,
            articles,
            next: 0,
            step: Step::Greeting,
            reader: LineReader::new(2048, 64 * 1024),
            out: Vec::new(),
            events: VecDeque::new(),
            waiting_since: now,
        }
    }

    fn send(&mut self, line: &str, step: Step) {
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
        self.step = step;
    }

    fn fail(&mut self, why: String) {
        self.events.push_back(ClientEvent::Failed(why));
        if self.step == Step::Article || self.step == Step::Greeting {
            self.step = Step::Done;
        } else {
            self.send("QUIT", Step::Quit);
        }
    }

    /// The next article, or QUIT when all are answered.
    fn post_next(&mut self) {
        if self.next < self.articles.len() {
            self.send("POST", Step::Post);
        } else {
            self.send("QUIT", Step::Quit);
        }
    }

    fn after_mode(&mut self) {
        match &self.config.login {
            Some((user, _)) => {
                let line = format!("AUTHINFO USER {user}");
                self.send(&line, Step::User);
            }
            None => self.post_next(),
        }
    }

    fn reply(&mut self, line: &str) {
        let code: u16 = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        let text = line.to_owned();
        match (self.step, code) {
            (Step::Greeting, 200 | 201) => self.send("MODE READER", Step::Mode),
            (Step::Greeting, _) => self.fail(text),
            // Any answer to MODE READER lets us try: a 5xx means the server does not switch.
            (Step::Mode, 200 | 201) | (Step::Mode, 500..=599) => self.after_mode(),
            (Step::Mode, _) => self.fail(text),
            (Step::User, 281) => self.post_next(),
            (Step::User, 381) => {
                let Some((_, password)) = &self.config.login else {
                    return self.fail(text);
                };
                let mut out = b"AUTHINFO PASS ".to_vec();
                out.extend_from_slice(password.expose());
                out.extend_from_slice(b"\r\n");
                self.out.extend_from_slice(&out);
                self.step = Step::Pass;
            }
            (Step::Pass, 281) => self.post_next(),
            (Step::User | Step::Pass, _) => self.fail(text),
            (Step::Post, 340) => {
                let mut encoder = DotEncoder::new();
                let article = std::mem::take(&mut self.articles[self.next]);
                encoder.encode(&article, &mut self.out);
                encoder.finish(&mut self.out);
                self.articles[self.next] = article;
                self.step = Step::Article;
            }
            (Step::Post, _) => self.fail(text),
            (Step::Article, 240) => {
                self.events.push_back(ClientEvent::Posted(self.next));
                self.next += 1;
                self.post_next();
            }
            (Step::Article, 441) if is_duplicate(&text) => {
                self.events.push_back(ClientEvent::Duplicate(self.next));
                self.next += 1;
                self.post_next();
            }
            (Step::Article, 441) => {
                self.events
                    .push_back(ClientEvent::Rejected(self.next, text));
                self.next += 1;
                self.post_next();
            }
            (Step::Article, _) => {
                self.step = Step::Post; // so that fail() says QUIT
                self.fail(text);
            }
            (Step::Quit, _) | (Step::Done, _) => self.step = Step::Done,
        }
    }
}

/// Whether a `441` says the article is there already: INN answers `441 435 Duplicate`
/// (innd's IHAVE code inside nnrpd's reply); others say "duplicate" in words.
fn is_duplicate(reply: &str) -> bool {
    let text = reply.get(3..).unwrap_or("").trim_start();
    text.starts_with("435") || text.to_ascii_lowercase().contains("duplicate")
}

impl Session for PostSession {
    type Event = ClientEvent;

    fn handle_input(&mut self, input: &[u8], now: Instant) -> usize {
        let mut used = 0;
        while self.step != Step::Done && used < input.len() {
            match self.reader.next(&input[used..]) {
                Next::Line { line, consumed } => {
                    used += consumed;
                    self.waiting_since = now;
                    let text = String::from_utf8_lossy(line).into_owned();
                    self.reply(&text);
                }
                Next::Incomplete => break,
                Next::Skipping { consumed } => used += consumed,
                Next::TooLong { consumed } | Next::GiveUp { consumed } => {
                    used += consumed;
                    self.fail("a reply line too long to be NNTP".into());
                }
            }
        }
        used
    }

    fn handle_eof(&mut self, _now: Instant) {
        if self.step != Step::Done {
            if self.step != Step::Quit {
                self.events.push_back(ClientEvent::Failed(
                    "the server closed the connection".into(),
                ));
            }
            self.step = Step::Done;
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if self.poll_timeout().is_some_and(|d| now >= d.at) {
            self.events.push_back(ClientEvent::Failed(format!(
                "no reply within {} seconds",
                self.config.reply_timeout.as_secs()
            )));
            self.step = Step::Done;
        }
    }

    fn handle_shutdown(&mut self, _now: Instant) {
        if self.step != Step::Done {
            self.events.push_back(ClientEvent::Failed(
                "stopped before the batch was posted".into(),
            ));
            self.step = Step::Done;
        }
    }

    fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let n = self.out.len();
        out.append(&mut self.out);
        n
    }

    fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    fn poll_timeout(&self) -> Option<Deadline> {
        (self.step != Step::Done).then(|| {
            Deadline::new(
                self.waiting_since + self.config.reply_timeout,
                TimerKind::Reply,
            )
        })
    }

    fn is_closed(&self) -> bool {
        self.step == Step::Done
    }
}

#[cfg(test)]
// A test reads the clock once for its starting point.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    fn run(config: ClientConfig, articles: usize, replies: &[&str]) -> (String, Vec<ClientEvent>) {
        let now = Instant::now();
        let batch = (0..articles)
            .map(|i| format!("Message-ID: <{i}@x>\r\n\r\n.dot\r\n").into_bytes())
            .collect();
        let mut c = PostSession::new(config, batch, now);
        let mut wire = Vec::new();
        for r in replies {
            let line = format!("{r}\r\n");
            assert_eq!(c.handle_input(line.as_bytes(), now), line.len());
            c.poll_transmit(&mut wire);
        }
        let mut events = Vec::new();
        while let Some(e) = c.poll_event() {
            events.push(e);
        }
        (String::from_utf8(wire).unwrap(), events)
    }

    #[test]
    fn logs_in_posts_each_article_and_quits() {
        let config = ClientConfig {
            login: Some(("feed".into(), Secret::new("pw with space"))),
            ..ClientConfig::default()
        };
        let (wire, events) = run(
            config,
            3,
            &[
                "200 ready",
                "200 reader",
                "381 more",
                "281 ok",
                "340 send",
                "240 posted",
                "340 send",
                "441 435 Duplicate",
                "340 send",
                "441 No such newsgroup",
                "205 bye",
            ],
        );
        assert_eq!(
            wire,
            "MODE READER\r\nAUTHINFO USER feed\r\nAUTHINFO PASS pw with space\r\nPOST\r\n\
             Message-ID: <0@x>\r\n\r\n..dot\r\n.\r\nPOST\r\nMessage-ID: <1@x>\r\n\r\n..dot\r\n.\r\n\
             POST\r\nMessage-ID: <2@x>\r\n\r\n..dot\r\n.\r\nQUIT\r\n"
        );
        assert_eq!(
            events,
            [
                ClientEvent::Posted(0),
                ClientEvent::Duplicate(1),
                ClientEvent::Rejected(2, "441 No such newsgroup".into())
            ]
        );
    }

    #[test]
    fn refusals_end_the_batch_and_keep_the_rest() {
        let (wire, events) = run(ClientConfig::default(), 2, &["400 busy"]);
        assert_eq!(wire, "");
        assert_eq!(events, [ClientEvent::Failed("400 busy".into())]);
        let (wire, events) = run(
            ClientConfig::default(),
            2,
            &[
                "201 no posting",
                "201 still no",
                "440 posting not permitted",
                "205 bye",
            ],
        );
        assert_eq!(wire, "MODE READER\r\nPOST\r\nQUIT\r\n");
        assert_eq!(
            events,
            [ClientEvent::Failed("440 posting not permitted".into())]
        );
        let (_, events) = run(
            ClientConfig::default(),
            1,
            &["200 ok", "500 what", "340 go", "436 try later"],
        );
        assert_eq!(events, [ClientEvent::Failed("436 try later".into())]);
    }

    #[test]
    fn the_password_is_not_in_debug_output() {
        let config = ClientConfig {
            login: Some(("feed".into(), Secret::new("hunter2"))),
            ..ClientConfig::default()
        };
        let s = PostSession::new(config, Vec::new(), Instant::now());
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
