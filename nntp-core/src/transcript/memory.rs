//! An NNTP host kept in memory: users and their notice groups, answering every [`Request`]
//! the way buzon's host does. It drives transcript replays and property tests.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::article::Article;
use crate::event::{Answer, Event, GroupInfo, GroupView, Request};
use crate::server::ServerSession;
use crate::syntax::year_of;

/// One group: its owner, when it was made, its articles with their arrival times.
#[derive(Debug, Clone)]
struct Group {
    owner: String,
    created: i64,
    /// The highest number ever given.
    high: u64,
    articles: BTreeMap<u64, (Arc<Article>, i64)>,
}

/// Users, passwords and groups, and the clock DATE reads.
#[derive(Debug, Clone, Default)]
pub struct MemoryNews {
    users: Vec<(String, String)>,
    groups: BTreeMap<String, Group>,
    /// Unix seconds.
    pub clock: i64,
}

impl MemoryNews {
    /// An empty host whose clock reads `clock`.
    pub fn new(clock: i64) -> Self {
        MemoryNews {
            clock,
            ..Default::default()
        }
    }

    /// Adds a user and its notice group.
    pub fn add_user(&mut self, user: &str, password: &str) {
        self.users.push((user.into(), password.into()));
        let name = group_of(user);
        self.groups.entry(name).or_insert_with(|| Group {
            owner: user.into(),
            created: self.clock,
            high: 0,
            articles: BTreeMap::new(),
        });
    }

    /// Stores an article as `user`'s next one (or as number `number`); returns its number,
    /// or `None` if there is no such user or the number is not above every earlier one.
    pub fn post(&mut self, user: &str, number: Option<u64>, text: Vec<u8>) -> Option<u64> {
        let clock = self.clock;
        let g = self.groups.get_mut(&group_of(user))?;
        let n = number.unwrap_or(g.high + 1);
        if n <= g.high {
            return None;
        }
        g.high = n;
        g.articles
            .insert(n, (Arc::new(Article::new(n, text)), clock));
        Some(n)
    }

    /// Takes article `number` out of `user`'s group (its mail was read); false if absent.
    pub fn withdraw(&mut self, user: &str, number: u64) -> bool {
        self.groups
            .get_mut(&group_of(user))
            .is_some_and(|g| g.articles.remove(&number).is_some())
    }

    fn info(name: &str, g: &Group) -> GroupInfo {
        let low = g.articles.keys().next().copied().unwrap_or(g.high + 1);
        GroupInfo {
            name: name.into(),
            low,
            high: g.high,
            count: g.articles.len() as u64,
            created: g.created,
            creator: "buzon".into(),
            description: format!("New mail for {}", g.owner),
        }
    }

    /// The answer `user` (None before a login) gets to `request`.
    pub fn answer(&self, user: Option<&str>, request: Request) -> Answer {
        let mine = |name: &str| {
            self.groups
                .get(name)
                .filter(|g| Some(g.owner.as_str()) == user)
        };
        match request {
            Request::Login(c) => {
                let ok = self
                    .users
                    .iter()
                    .any(|(u, p)| *u == c.user && p.as_bytes() == c.password.expose());
                if ok {
                    Answer::LoggedIn
                } else {
                    Answer::LoginRefused
                }
            }
            Request::Date => Answer::Date(self.clock),
            Request::Groups { created_since } => {
                let since = created_since.map(|d| d.unix_seconds(year_of(self.clock)));
                Answer::Groups(
                    self.groups
                        .iter()
                        .filter(|(_, g)| Some(g.owner.as_str()) == user)
                        .filter(|(_, g)| since.is_none_or(|s| g.created >= s))
                        .map(|(n, g)| Self::info(n, g))
                        .collect(),
                )
            }
            Request::Group(name) => Answer::Group(mine(&name).map(|g| {
                Box::new(GroupView {
                    info: Self::info(&name, g),
                    numbers: g.articles.keys().copied().collect(),
                })
            })),
            Request::Articles { group, first, last } => Answer::Articles(
                mine(&group)
                    .map(|g| {
                        g.articles
                            .range(first..=last)
                            .map(|(_, (a, _))| Arc::clone(a))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            Request::ByMessageId(id) => Answer::Articles(
                self.groups
                    .values()
                    .filter(|g| Some(g.owner.as_str()) == user)
                    .flat_map(|g| g.articles.values())
                    .filter(|(a, _)| a.message_id().as_deref() == Some(id.as_str()))
                    .map(|(a, _)| Arc::clone(a))
                    .take(1)
                    .collect(),
            ),
            Request::NewNews { since } => {
                let since = since.unix_seconds(year_of(self.clock));
                Answer::MessageIds(
                    self.groups
                        .iter()
                        .filter(|(_, g)| Some(g.owner.as_str()) == user)
                        .flat_map(|(name, g)| {
                            g.articles
                                .values()
                                .filter(move |(_, at)| *at >= since)
                                .filter_map(move |(a, _)| Some((name.clone(), a.message_id()?)))
                        })
                        .collect(),
                )
            }
        }
    }
}

/// A host for one connection over a [`MemoryNews`]: it remembers who logged in.
#[derive(Debug, Clone)]
pub struct MemoryHost {
    news: MemoryNews,
    user: Option<String>,
}

impl MemoryHost {
    /// A connection's host over `news`.
    pub fn new(news: MemoryNews) -> Self {
        MemoryHost { news, user: None }
    }

    /// The news it serves.
    pub fn news_mut(&mut self) -> &mut MemoryNews {
        &mut self.news
    }

    /// Who logged in.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Answers every event `session` has; returns a line per event for the log.
    pub fn answer_all(
        &mut self,
        session: &mut ServerSession,
        now: std::time::Instant,
    ) -> Vec<String> {
        let mut log = Vec::new();
        while let Some(event) = session_api::Session::poll_event(session) {
            log.push(describe(&event));
            if let Event::Request { ticket, request } = event {
                let login = match &request {
                    Request::Login(c) => Some(c.user.clone()),
                    _ => None,
                };
                let answer = self.news.answer(self.user.as_deref(), request);
                if let (Some(u), Answer::LoggedIn) = (login, &answer) {
                    self.user = Some(u);
                }
                session.answer(ticket, answer, now);
            }
        }
        log
    }
}

/// The notice group of a user named by address.
pub fn group_of(user: &str) -> String {
    let (local, domain) = user.rsplit_once('@').unwrap_or((user, "localhost"));
    crate::notice_group(domain, local)
}

/// One line for the event log: what was asked, never a password.
pub fn describe(event: &Event) -> String {
    match event {
        Event::Request { request, .. } => match request {
            Request::Login(c) => format!("login {}", c.user),
            Request::Date => "date".into(),
            Request::Groups {
                created_since: None,
            } => "groups".into(),
            Request::Groups {
                created_since: Some(d),
            } => format!("groups created since {d:?}"),
            Request::Group(g) => format!("group {g}"),
            Request::Articles { group, first, last } => {
                format!("articles {group} {first}-{last}")
            }
            Request::ByMessageId(id) => format!("article {id}"),
            Request::NewNews { since } => format!("new news since {since:?}"),
        },
        Event::Violation(v) => format!("violation: {v}"),
    }
}
