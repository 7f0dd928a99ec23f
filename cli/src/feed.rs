//! The external feed (`--notify-nntp nntp://user@host:port/group`): every notice is also posted
//! to another news server, from a durable queue that survives restarts and waits out that
//! server's outages.
//!
//! A notice enters the queue before it is stored (see `Notices::on_made`), so a crash never
//! loses one; the poster removes an entry only once the server has answered `240` (or said it
//! has the article already), so a crash or an outage in the middle of a post sends it again,
//! and the server's message-id check keeps it from appearing twice. Posting runs on the
//! chosen runtime's adapter with `nntp_core::client::PostSession`.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use line_protocol::sasl::Secret;
use nntp_core::client::{ClientConfig, ClientEvent, PostSession};
use notices::{FeedQueue, Notices, Posted};
use session_api::{Handler, Work};

use crate::settings::Runtime;

/// Where the feed posts.
#[derive(Clone)]
pub(crate) struct FeedTarget {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub group: String,
}

impl std::fmt::Debug for FeedTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl FeedTarget {
    /// Reads `nntp://[user@]host[:port]/group`; the password never comes in the URL (it would
    /// end up in shell histories and process lists) but from `password`.
    pub(crate) fn parse(url: &str, password: Option<String>) -> anyhow::Result<FeedTarget> {
        let rest = url.strip_prefix("nntp://").with_context(|| {
            format!("--notify-nntp {url:?}: expected nntp://[user@]host[:port]/group")
        })?;
        let (authority, group) = rest
            .split_once('/')
            .filter(|(_, g)| !g.is_empty())
            .with_context(|| format!("--notify-nntp: no newsgroup after the host in {url:?}"))?;
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        if user.is_some_and(|u| u.contains(':')) {
            bail!(
                "--notify-nntp: put the password in BUZON_NOTIFY_NNTP_PASSWORD or the config file's notify-nntp-password, not in the URL"
            );
        }
        let (host, port) = match hostport.strip_prefix('[') {
            // An IPv6 address: [addr] or [addr]:port.
            Some(rest) => {
                let (h, after) = rest
                    .split_once(']')
                    .with_context(|| format!("--notify-nntp: unclosed [ in {url:?}"))?;
                (h, after.strip_prefix(':'))
            }
            None => match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            },
        };
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .with_context(|| format!("--notify-nntp: bad port {p:?}"))?,
            None => 119,
        };
        if host.is_empty() {
            bail!("--notify-nntp: no host in {url:?}");
        }
        if group.contains(['/', ' ', ',', '*', '?', '!']) {
            bail!("--notify-nntp: {group:?} is not one newsgroup name");
        }
        let user = user.map(percent_decode).transpose()?;
        if user.is_some() && password.is_none() {
            bail!(
                "--notify-nntp names a user: set BUZON_NOTIFY_NNTP_PASSWORD or notify-nntp-password in the config file"
            );
        }
        Ok(FeedTarget {
            host: host.to_owned(),
            port,
            password: user.as_ref().and(password).map(Secret::new),
            user,
            group: group.to_owned(),
        })
    }

    /// For logs: who, where, which group; never the password.
    pub(crate) fn describe(&self) -> String {
        let user = self
            .user
            .as_deref()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        format!("nntp://{user}{}:{}/{}", self.host, self.port, self.group)
    }
}

fn percent_decode(text: &str) -> anyhow::Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .with_context(|| format!("--notify-nntp: bad %-escape in the user {text:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).context("--notify-nntp: the user is not UTF-8")
}

/// The notice as the external server gets it: the same article with its `Newsgroups` set
/// to the feed's group, and a `From` whose domain is a dotted name: INN refuses
/// `user@localhost` ("not in Internet syntax"), so a bare host name gets `.invalid` (RFC 2606
/// section 2) and the article is still taken.
fn for_feed(article: &[u8], group: &str) -> Vec<u8> {
    let head_end = memchr_find(article, b"\r\n\r\n").map_or(article.len(), |i| i + 2);
    let mut out = Vec::with_capacity(article.len() + group.len());
    let mut rest = &article[..head_end];
    while !rest.is_empty() {
        let end = memchr_find(rest, b"\r\n").map_or(rest.len(), |i| i + 2);
        let line = &rest[..end];
        if line.len() >= 11 && line[..11].eq_ignore_ascii_case(b"Newsgroups:") {
            out.extend_from_slice(format!("Newsgroups: {group}\r\n").as_bytes());
        } else if line.len() >= 5 && line[..5].eq_ignore_ascii_case(b"From:") {
            out.extend_from_slice(dotted_from(line).as_bytes());
        } else {
            out.extend_from_slice(line);
        }
        rest = &rest[end..];
    }
    out.extend_from_slice(&article[head_end..]);
    out
}

/// A `From:` line (CRLF included) with `.invalid` after an address's undotted domain.
fn dotted_from(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line).into_owned();
    let Some(at) = text.rfind('@') else {
        return text;
    };
    let end = text[at..]
        .find(['>', '\r', ' '])
        .map_or(text.len(), |i| at + i);
    if text[at + 1..end].contains('.') || end == at + 1 {
        return text;
    }
    format!("{}.invalid{}", &text[..end], &text[end..])
}

fn memchr_find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The running feed: wakes the poster when a notice is queued.
pub(crate) struct Feed {
    _thread: std::thread::JoinHandle<()>,
}

/// Queues every notice `notices` makes from now on and starts the poster.
pub(crate) fn start(
    target: FeedTarget,
    queue_dir: &std::path::Path,
    fsync: bool,
    notices: &Notices,
    runtime: Runtime,
) -> anyhow::Result<Feed> {
    let queue = Arc::new(
        FeedQueue::open(queue_dir, fsync)
            .with_context(|| format!("feed queue {}", queue_dir.display()))?,
    );
    let (wake, woken) = mpsc::channel::<()>();
    {
        let queue = Arc::clone(&queue);
        let group = target.group.clone();
        notices.on_made(move |p: &Posted| {
            let id = p.article.message_id().unwrap_or_default();
            queue.enqueue(&id, &for_feed(p.article.text(), &group))?;
            let _ = wake.send(());
            Ok(())
        });
    }
    let waiting = queue.len().unwrap_or(0);
    tracing::info!(to = %target.describe(), waiting, "notice feed ready");
    let thread = std::thread::Builder::new()
        .name("buzon-feed".into())
        .spawn(move || post_forever(target, &queue, &woken, runtime))
        .context("cannot start the feed thread")?;
    Ok(Feed { _thread: thread })
}

/// At most this many articles per connection.
const BATCH: usize = 100;
/// The longest wait between tries while the server is down.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

fn post_forever(
    target: FeedTarget,
    queue: &FeedQueue,
    woken: &mpsc::Receiver<()>,
    runtime: Runtime,
) {
    let mut backoff = Duration::from_millis(500);
    let mut down_since: Option<Instant> = None;
    loop {
        let batch = match queue.pending(BATCH) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "notice feed: cannot read its queue");
                Vec::new()
            }
        };
        if batch.is_empty() {
            // Nothing to do until the next notice.
            if woken.recv().is_err() {
                return;
            }
            continue;
        }
        match post_batch(&target, &batch, runtime) {
            Ok(outcome) => {
                for (i, q) in batch.iter().enumerate() {
                    let result = match &outcome.results[i] {
                        Some(Ok(())) => queue.done(q),
                        Some(Err(reason)) => {
                            tracing::warn!(to = %target.describe(), article = %q.name, %reason, "notice feed: refused for good; kept in failed/");
                            queue.park(q, reason)
                        }
                        None => Ok(()),
                    };
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "notice feed: cannot update its queue");
                    }
                }
                let sent = outcome.results.iter().filter(|r| r.is_some()).count();
                if let Some(why) = outcome.failure {
                    note_down(&target, &mut down_since, &why);
                } else {
                    if let Some(since) = down_since.take() {
                        tracing::info!(to = %target.describe(), down_s = since.elapsed().as_secs(), "notice feed: server back");
                    }
                    backoff = Duration::from_millis(500);
                    tracing::debug!(to = %target.describe(), sent, "notice feed: batch posted");
                    continue;
                }
            }
            Err(why) => note_down(&target, &mut down_since, &why),
        }
        // Wait before the next try; a new notice does not cut the wait short.
        std::thread::sleep(backoff);
        while woken.try_recv().is_ok() {}
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn note_down(target: &FeedTarget, down_since: &mut Option<Instant>, why: &str) {
    if down_since.is_none() {
        tracing::warn!(to = %target.describe(), reason = %why, "notice feed: cannot post; notices wait in the queue and are retried");
        *down_since = Some(Instant::now());
    } else {
        tracing::debug!(to = %target.describe(), reason = %why, "notice feed: still cannot post");
    }
}

/// What one connection did with a batch: per article `Some(Ok)` posted (or there already),
/// `Some(Err)` refused for good, `None` not answered; and why the connection stopped early.
struct Outcome {
    results: Vec<Option<Result<(), String>>>,
    failure: Option<String>,
}

/// Records what the posting session reports.
struct FeedHandler {
    events: Vec<ClientEvent>,
}

impl Handler for FeedHandler {
    type Session = PostSession;
    type Notice = ();

    fn on_event(
        &mut self,
        _session: &mut PostSession,
        event: ClientEvent,
        _now: Instant,
    ) -> Option<Work<Self>> {
        self.events.push(event);
        None
    }
}

fn connect(target: &FeedTarget) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", target.host))?
        .collect();
    let mut last = String::from("no address");
    for a in addrs {
        match TcpStream::connect_timeout(&a, Duration::from_secs(10)) {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("cannot connect to {a}: {e}"),
        }
    }
    Err(last)
}

fn post_batch(
    target: &FeedTarget,
    batch: &[notices::Queued],
    runtime: Runtime,
) -> Result<Outcome, String> {
    let stream = connect(target)?;
    let config = {
        let mut c = ClientConfig::default();
        c.login = target.user.clone().zip(target.password.clone());
        c
    };
    let session = PostSession::new(
        config,
        batch.iter().map(|q| q.article.clone()).collect(),
        Instant::now(),
    );
    let handler = FeedHandler { events: Vec::new() };
    let conns = vec![(stream, session, handler)];
    let ended = match runtime {
        Runtime::Smol => {
            let opts = adapter_smol::Options {
                threads: Some(1),
                ..Default::default()
            };
            adapter_smol::run_connections(conns, adapter_smol::Shutdown::new(), opts)
        }
        Runtime::Mio => adapter_mio::Connections::new(conns, adapter_mio::Options::default())
            .and_then(|c| c.run()),
    }
    .map_err(|e| format!("runtime: {e}"))?;
    let Some(Ok(ended)) = ended.into_iter().next() else {
        return Err("the posting session failed".into());
    };
    let mut outcome = Outcome {
        results: vec![None; batch.len()],
        failure: ended.error.as_ref().map(|e| e.to_string()),
    };
    for e in ended.handler.events {
        match e {
            ClientEvent::Posted(i) | ClientEvent::Duplicate(i) => outcome.results[i] = Some(Ok(())),
            ClientEvent::Rejected(i, why) => outcome.results[i] = Some(Err(why)),
            ClientEvent::Failed(why) => outcome.failure = Some(why),
        }
    }
    if outcome.failure.is_none() && outcome.results.iter().any(Option::is_none) {
        outcome.failure = Some("the connection ended before every article was answered".into());
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = FeedTarget::parse(
            "nntp://feed@news.example.org:1190/local.mail",
            Some("pw".into()),
        )
        .unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.group.as_str()),
            ("news.example.org", 1190, "local.mail")
        );
        assert_eq!(t.user.as_deref(), Some("feed"));
        assert!(!format!("{t:?}").contains("pw"));
        let t = FeedTarget::parse("nntp://[::1]/x.y", None).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 119));
        for bad in [
            "news://h/g",
            "nntp://h",
            "nntp://h/",
            "nntp://u:pw@h/g",
            "nntp://h:0/g",
            "nntp://h:x/g",
            "nntp://u@h/g",
            "nntp://h/a,b",
        ] {
            assert!(FeedTarget::parse(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn undotted_sender_domains_are_marked_invalid() {
        assert_eq!(
            dotted_from(b"From: a@localhost\r\n"),
            "From: a@localhost.invalid\r\n"
        );
        assert_eq!(
            dotted_from(b"From: Ann <a@vm>\r\n"),
            "From: Ann <a@vm.invalid>\r\n"
        );
        assert_eq!(
            dotted_from(b"From: Ann <a@example.org>\r\n"),
            "From: Ann <a@example.org>\r\n"
        );
    }

    #[test]
    fn the_feed_copy_names_the_feed_group() {
        let a = b"Path: h!not-for-mail\r\nNewsgroups: buzon.mail.x.y\r\nSubject: s\r\n\r\nNewsgroups: body\r\n";
        assert_eq!(
            for_feed(a, "local.notices"),
            b"Path: h!not-for-mail\r\nNewsgroups: local.notices\r\nSubject: s\r\n\r\nNewsgroups: body\r\n"
        );
    }
}
